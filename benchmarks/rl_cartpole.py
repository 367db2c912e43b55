"""mltk rl vs Stable-Baselines3 DQN on CartPole-v1: quality, CPU time, wall time, peak memory.

    python benchmarks/rl_cartpole.py               # seeds 0-4, interleaved SB3 / mltk
    python benchmarks/rl_cartpole.py --quick       # one seed, 5k steps each: checks the script works
    python benchmarks/rl_cartpole.py --seeds 0,3

SB3 uses rl-baselines3-zoo's CartPole-v1 hyperparameters (50k steps, lr 2.3e-3, batch 64, buffer
1e5, learning_starts 1000, gamma 0.99, target_update_interval 10, train_freq 256, gradient_steps 128,
exploration_fraction 0.16, final eps 0.04, net [256, 256]); mltk runs `mltk rl train --env
CartPole-v1` with its defaults. Every training run is a fresh child process, so its CPU seconds
(user + system) and peak RSS come from ``os.wait4`` for that child alone: imports included, the
same for both. Both final models are then scored by the same deterministic 100-episode evaluation
(episode i reset with seed i), in a separate process that is not timed. SB3 needs `pip install -e
".[bench]"` (stable-baselines3, psutil).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ZOO = {
    "learning_rate": 2.3e-3,
    "batch_size": 64,
    "buffer_size": 100_000,
    "learning_starts": 1000,
    "gamma": 0.99,
    "target_update_interval": 10,
    "train_freq": 256,
    "gradient_steps": 128,
    "exploration_fraction": 0.16,
    "exploration_final_eps": 0.04,
}
EVAL_EPISODES = 100
SOLVED = 475.0


def sb3_train(seed: int, steps: int, out: Path, threads: int) -> None:
    """Child process: SB3 DQN with the zoo hyperparameters, saved to ``out/model.zip``."""
    import torch
    from stable_baselines3 import DQN

    torch.set_num_threads(threads)
    model = DQN("MlpPolicy", "CartPole-v1", policy_kwargs={"net_arch": [256, 256]}, seed=seed, device="cpu", **ZOO)
    model.learn(total_timesteps=steps)
    model.save(out / "model.zip")
    (out / "steps.json").write_text(json.dumps({"steps": int(model.num_timesteps)}))


def sb3_evaluate(out: Path) -> None:
    """Child process: the same deterministic evaluation as `mltk rl evaluate` (episode i from seed i)."""
    import gymnasium as gym
    import numpy as np
    from stable_baselines3 import DQN

    model = DQN.load(out / "model.zip", device="cpu")
    env = gym.make("CartPole-v1")
    returns = []
    for episode in range(EVAL_EPISODES):
        obs, _ = env.reset(seed=episode)
        total, done = 0.0, False
        while not done:
            action, _ = model.predict(obs, deterministic=True)
            obs, reward, terminated, truncated, _ = env.step(int(action))
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    print(json.dumps({"return_mean": float(np.mean(returns))}))


def measure(command: list[str]) -> dict[str, float]:
    """Run a child process; its own CPU seconds, wall seconds and peak RSS (MiB)."""
    start = time.perf_counter()
    child = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    stdout, stderr = child.stdout.read(), child.stderr.read()
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({child.returncode}):\n{stderr.decode()[-3000:]}")
    return {
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "wall_s": wall,
        "rss_mib": usage.ru_maxrss / 1024,
        "stdout": stdout.decode(),
    }


def run_sb3(seed: int, steps: int, work: Path, threads: int) -> dict[str, float]:
    out = work / f"sb3-{seed}"
    out.mkdir()
    me = [sys.executable, __file__]
    row = measure(
        me
        + [
            "--child",
            "sb3-train",
            "--seeds",
            str(seed),
            "--steps",
            str(steps),
            "--out",
            str(out),
            "--sb3-threads",
            str(threads),
        ]
    )
    row["steps"] = json.loads((out / "steps.json").read_text())["steps"]
    row["return_mean"] = json.loads(measure(me + ["--child", "sb3-eval", "--out", str(out)])["stdout"])["return_mean"]
    return row


def run_mltk(seed: int, steps: int | None, work: Path, env: str = "CartPole-v1") -> dict[str, float]:
    """`mltk rl train --env ENV` (its preset) in a fresh process, then its 100-episode evaluation."""
    mltk = [sys.executable, "-m", "mltoolkit", "rl"]
    command = mltk + ["train", "--env", env, "--seed", str(seed), "--runs-dir", str(work), "--quiet"]
    command += ["--name", f"{env}-{seed}"] + (["--total-steps", str(steps)] if steps else [])
    row = measure(command)
    result = json.loads(row["stdout"].strip().splitlines()[-1])
    row["steps"] = result["steps"]
    evaluation = measure(mltk + ["evaluate", result["run_dir"], "--episodes", str(EVAL_EPISODES), "--format", "json"])
    row["return_mean"] = json.loads(evaluation["stdout"])["return_mean"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated seeds")
    parser.add_argument("--quick", action="store_true", help="one seed, 5000 steps each: a smoke test")
    parser.add_argument("--sb3-threads", type=int, default=1, help="torch threads for SB3 (mltk uses 1)")
    parser.add_argument("--steps", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--child", choices=["sb3-train", "sb3-eval"], help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.child == "sb3-train":
        return sb3_train(seeds[0], args.steps, args.out, args.sb3_threads)
    if args.child == "sb3-eval":
        return sb3_evaluate(args.out)
    if args.quick:
        seeds, sb3_steps, mltk_steps = seeds[:1], 5000, 5000
    else:
        sb3_steps, mltk_steps = 50_000, None  # mltk: its CartPole preset (at most 50k steps, stops when solved)

    print(f"uptime at start: {os.popen('uptime').read().strip()}")
    print(f"cores: {len(os.sched_getaffinity(0))}, SB3 torch threads: {args.sb3_threads}, mltk threads: 1 (default)")
    rows = []
    with tempfile.TemporaryDirectory(prefix="rl-bench-") as tmp:
        work = Path(tmp)
        for seed in seeds:  # interleaved, so load changes hit both alike
            rows.append({"seed": seed, "tool": "sb3", **run_sb3(seed, sb3_steps, work, args.sb3_threads)})
            print(_line(rows[-1]), flush=True)
            rows.append({"seed": seed, "tool": "mltk", **run_mltk(seed, mltk_steps, work)})
            print(_line(rows[-1]), flush=True)
    print(f"uptime at end: {os.popen('uptime').read().strip()}")
    print()
    print(_header())
    for row in rows:
        print(_line(row))
    print()
    for tool in ("sb3", "mltk"):
        mine = [r for r in rows if r["tool"] == tool]
        solved = sum(r["return_mean"] >= SOLVED for r in mine)
        print(
            f"{tool:5s} median: steps {statistics.median(r['steps'] for r in mine):.0f}, "
            f"CPU {statistics.median(r['cpu_s'] for r in mine):.1f} s, "
            f"wall {statistics.median(r['wall_s'] for r in mine):.1f} s, "
            f"peak RSS {statistics.median(r['rss_mib'] for r in mine):.0f} MiB, "
            f"100-episode mean {statistics.median(r['return_mean'] for r in mine):.1f}; "
            f"solved (>= {SOLVED:.0f}) in {solved} of {len(mine)} seeds"
        )
    for key, label in (("cpu_s", "CPU time"), ("wall_s", "wall time"), ("rss_mib", "peak RSS"), ("steps", "env steps")):
        ratios = [m[key] / s[key] for s, m in zip(rows[0::2], rows[1::2])]
        print(
            f"median ratio mltk/SB3 {label}: {statistics.median(ratios):.3f} (per seed: "
            + ", ".join(f"{r:.3f}" for r in ratios)
            + ")"
        )


def _header() -> str:
    return (
        f"{'seed':>4} {'tool':>5} {'env steps':>9} {'CPU s':>7} {'wall s':>7} {'peak RSS MiB':>12} {'100-ep mean':>11}"
    )


def _line(row: dict) -> str:
    return (
        f"{row['seed']:>4} {row['tool']:>5} {row['steps']:>9} {row['cpu_s']:>7.1f} {row['wall_s']:>7.1f} "
        f"{row['rss_mib']:>12.0f} {row['return_mean']:>11.1f}"
    )


if __name__ == "__main__":
    main()
