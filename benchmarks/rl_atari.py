"""mltk vs Stable-Baselines3 DQN on Atari from pixels: env steps per second while learning, peak RSS, replay memory.

    python benchmarks/rl_atari.py                        # speed (30k steps each, 2 rounds) and memory
    python benchmarks/rl_atari.py --steps 12000 --rounds 1 --learning-starts 10000   # a shorter look
    python benchmarks/rl_atari.py --part memory          # the 1M-frame replay memory alone
    python benchmarks/rl_atari.py --device cuda          # both on the GPU

Speed: SB3's DQN ``CnnPolicy`` with rl-baselines3-zoo's Atari hyperparameters (hyperparams/dqn.yml
``atari``: buffer 100k, lr 1e-4, batch 32, train every 4 steps, 1 gradient step, target update every
1000 steps, exploration over the first 10% of the steps down to 0.01; learning starts at 10k here, as
issue 16 asks, instead of the zoo's 100k) on ``PongNoFrameskip-v4`` through SB3's ``AtariWrapper``
and a 4-frame ``VecFrameStack``; mltk with the same hyperparameters (plain DQN targets like SB3's)
through ``rl.train``, what ``mltk rl train`` runs (one evaluation game at the end, outside the timed
span). Each run is a fresh child process with the same torch threads, the two tools interleaved
round by round so load changes hit both alike. Env steps per second are counted from the step
learning starts to the last update (mltk: from the first to the last call of ``DQN.update``); peak
RSS comes from ``os.wait4`` of the child (file-backed pages of mltk's memory-mapped replay count as
they are touched, as SB3's lazily touched numpy pages do).

Memory: a 1M-transition replay memory of 84x84 frames allocated by mltk (``FrameReplay``) and filled
with a few thousand steps of Pong, against SB3's ``ReplayBuffer`` of the same capacity, whose size
is measured on a 1000-transition buffer and scaled (1M would not fit in this machine's memory).
SB3 needs `pip install -e ".[bench]"` (stable-baselines3, psutil, opencv-python-headless for its AtariWrapper).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENV_ID = "PongNoFrameskip-v4"
ZOO_ATARI = {  # rl-baselines3-zoo hyperparams/dqn.yml, atari block (learning_starts set per run)
    "buffer_size": 100_000,
    "learning_rate": 1e-4,
    "batch_size": 32,
    "target_update_interval": 1000,
    "train_freq": 4,
    "gradient_steps": 1,
    "exploration_fraction": 0.1,
    "exploration_final_eps": 0.01,
}
CAPACITY = 1_000_000


def sb3_child(steps: int, learning_starts: int, threads: int, device: str, seed: int) -> dict:
    import ale_py
    import gymnasium as gym
    import torch
    from stable_baselines3 import DQN
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_atari_env
    from stable_baselines3.common.vec_env import VecFrameStack

    gym.register_envs(ale_py)
    torch.set_num_threads(threads)

    class Clock(BaseCallback):
        """The step and time at which learning starts."""

        started: tuple[int, float] | None = None

        def _on_step(self) -> bool:
            if self.started is None and self.num_timesteps >= learning_starts:
                self.started = (self.num_timesteps, time.perf_counter())
            return True

    env = VecFrameStack(make_atari_env(ENV_ID, n_envs=1, seed=seed), n_stack=4)
    model = DQN("CnnPolicy", env, learning_starts=learning_starts, seed=seed, device=device, **ZOO_ATARI)
    clock = Clock()
    model.learn(total_timesteps=steps, callback=clock)
    learned = model.num_timesteps - clock.started[0]
    return {"steps": model.num_timesteps, "learning_steps_per_s": learned / (time.perf_counter() - clock.started[1])}


def mltk_child(steps: int, learning_starts: int, threads: int, device: str, seed: int) -> dict:
    from mltoolkit import rl
    from mltoolkit.rl.dqn import DQN

    updates: list[float] = []  # the time of every gradient step, one per train_freq env steps
    update = DQN.update

    def timed_update(self: DQN, batch: tuple) -> tuple:
        updates.append(time.perf_counter())
        return update(self, batch)

    DQN.update = timed_update
    config = rl.Config(
        env=ENV_ID,
        total_steps=steps,
        buffer_size=ZOO_ATARI["buffer_size"],
        learning_rate=ZOO_ATARI["learning_rate"],
        batch_size=ZOO_ATARI["batch_size"],
        learning_starts=learning_starts,
        train_freq=ZOO_ATARI["train_freq"],
        gradient_steps=ZOO_ATARI["gradient_steps"],
        target_update_interval=ZOO_ATARI["target_update_interval"],
        double_dqn=False,  # SB3's DQN targets
        exploration_steps=int(ZOO_ATARI["exploration_fraction"] * steps),
        epsilon_end=ZOO_ATARI["exploration_final_eps"],
        eval_every=steps,
        eval_episodes=1,
        target_return=float("inf"),
        device=device,
        threads=threads,
        seed=seed,
    )
    with tempfile.TemporaryDirectory(prefix="rl-atari-runs-") as runs_dir:
        result = rl.train(config, runs_dir=runs_dir, name="bench")
    learned = (len(updates) - 1) * ZOO_ATARI["train_freq"]
    return {"steps": result.summary["final"]["step"], "learning_steps_per_s": learned / (updates[-1] - updates[0])}


def memory_child(fill: int) -> dict:
    """mltk's 1M-frame memory allocated and filled with ``fill`` Pong steps; SB3's of the same capacity."""
    import numpy as np

    from mltoolkit.rl.atari import make_atari_vector_env
    from mltoolkit.rl.frames import FrameReplay, frame_replay_bytes

    envs = make_atari_vector_env(ENV_ID, 1)
    shape = envs.single_observation_space.shape
    with tempfile.TemporaryDirectory(prefix="rl-atari-memory-") as directory:
        memory = FrameReplay(directory, CAPACITY, shape)
        rng = np.random.default_rng(0)
        obs, _ = envs.reset(seed=0)
        for _ in range(fill):
            actions = rng.integers(envs.single_action_space.n, size=1)
            next_obs, rewards, terminated, truncated, info = envs.step(actions)
            memory.add(obs, actions, np.sign(rewards), next_obs, terminated)
            obs = next_obs
        memory.sample(32, rng)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MiB, before SB3 (and torch) is imported
        held = sum(array.nbytes for array in (memory.frames, memory.actions, memory.rewards, memory.terminated))
        held += memory.valid.nbytes + memory.cursor.nbytes
        on_disk = sum(path.stat().st_blocks * 512 for path in Path(directory).iterdir())
    envs.close()
    return {
        "mltk_bytes_computed": frame_replay_bytes(CAPACITY, shape),
        "mltk_bytes_allocated": held,
        "mltk_disk_bytes_after_fill": on_disk,
        "transitions_filled": len(memory),
        "mltk_rss_mib": rss,
        **sb3_replay_bytes(shape),
    }


def sb3_replay_bytes(shape: tuple[int, ...]) -> dict:
    """SB3's ReplayBuffer arrays for 1M transitions, measured at 1000 and scaled (they are linear in capacity)."""
    try:
        from gymnasium import spaces
        from stable_baselines3.common.buffers import ReplayBuffer
    except ImportError:
        return {}
    sizes = {}
    for optimize in (False, True):
        small = ReplayBuffer(
            1000,
            spaces.Box(0, 255, shape, "uint8"),
            spaces.Discrete(6),
            "cpu",
            optimize_memory_usage=optimize,
            handle_timeout_termination=not optimize,  # SB3 allows the memory optimisation only without it
        )
        arrays = [small.observations, small.actions, small.rewards, small.dones, small.timeouts]
        arrays += [] if optimize else [small.next_observations]
        sizes[f"sb3_bytes{'_optimize_memory_usage' if optimize else ''}"] = sum(a.nbytes for a in arrays) * 1000
    return sizes


def measure(command: list[str]) -> dict:
    """A child process's JSON result, its wall and CPU seconds and peak RSS (MiB).

    CPU seconds are the load-robust figure: both tools do the same env steps and gradient steps, and a
    busy machine stretches their wall time by how much other work it has at that moment."""
    start = time.perf_counter()
    child = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    stdout, stderr = child.stdout.read(), child.stderr.read()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(command)} failed:\n{stderr.decode()[-3000:]}")
    return {
        **json.loads(stdout.decode().strip().splitlines()[-1]),
        "wall_s": time.perf_counter() - start,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "rss_mib": usage.ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["all", "speed", "memory"], default="all")
    parser.add_argument("--steps", type=int, default=30_000, help="env steps per speed run")
    parser.add_argument("--learning-starts", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=2, help="interleaved SB3 / mltk pairs")
    parser.add_argument("--threads", type=int, default=1, help="torch threads, the same for both")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--fill", type=int, default=5000, help="steps written into the 1M-frame memory")
    parser.add_argument("--child", choices=["sb3", "mltk", "memory"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        if args.child == "memory":
            result = memory_child(args.fill)
        else:
            child = sb3_child if args.child == "sb3" else mltk_child
            result = child(args.steps, args.learning_starts, args.threads, args.device, seed=0)
        print(json.dumps(result))
        return

    me = [sys.executable, __file__, "--steps", str(args.steps), "--learning-starts", str(args.learning_starts)]
    me += ["--threads", str(args.threads), "--device", args.device, "--fill", str(args.fill)]
    print(f"uptime at start: {os.popen('uptime').read().strip()}")
    if args.part in ("all", "speed"):
        print(f"{ENV_ID}, {args.steps} env steps, learning from {args.learning_starts}, {args.threads} torch thread(s)")
        print(f"{'round':>5} {'tool':>5} {'steps/s learning':>16} {'peak RSS MiB':>12} {'wall s':>7} {'CPU s':>7}")
        rows = []
        for round_ in range(args.rounds):
            for tool in ("sb3", "mltk") if round_ % 2 == 0 else ("mltk", "sb3"):
                rows.append({"round": round_, "tool": tool, **measure(me + ["--child", tool])})
                row = rows[-1]
                print(
                    f"{round_:>5} {tool:>5} {row['learning_steps_per_s']:>16.1f} {row['rss_mib']:>12.0f} "
                    f"{row['wall_s']:>7.0f} {row['cpu_s']:>7.0f}",
                    flush=True,
                )
        for key, label in (
            ("learning_steps_per_s", "env steps/s while learning"),
            ("cpu_s", "CPU seconds for the same steps"),
            ("rss_mib", "peak RSS"),
        ):
            ratios = [
                next(r[key] for r in rows if r["round"] == n and r["tool"] == "mltk")
                / next(r[key] for r in rows if r["round"] == n and r["tool"] == "sb3")
                for n in range(args.rounds)
            ]
            print(f"mltk/SB3 {label}: " + ", ".join(f"{ratio:.2f}" for ratio in ratios) + " (per round)")
    if args.part in ("all", "memory"):
        memory = measure(me + ["--child", "memory"])
        print(f"replay memory for {CAPACITY} transitions of 4x84x84 frames ({memory['transitions_filled']} filled):")
        for key in ("mltk_bytes_computed", "mltk_bytes_allocated", "sb3_bytes", "sb3_bytes_optimize_memory_usage"):
            if key in memory:
                print(f"  {key:34s} {memory[key] / 1e9:7.2f} GB")
        print(f"  {'mltk on disk after the fill':34s} {memory['mltk_disk_bytes_after_fill'] / 1e9:7.2f} GB")
        print(f"  {'mltk peak RSS, filled, no torch':34s} {memory['mltk_rss_mib'] / 1024:7.2f} GiB")
    print(f"uptime at end: {os.popen('uptime').read().strip()}")


if __name__ == "__main__":
    main()
