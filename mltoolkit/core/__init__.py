"""What all five techniques share: devices, run directories, checkpoints, I/O, console, errors.

Nothing in here imports torch, lightgbm or implicit at module level, so the CLI stays fast to start.
"""
