"""Deterministic evaluation of a trained policy, and an animated GIF of one episode."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mltoolkit.core.errors import DataError, UsageError
from mltoolkit.core.io import atomic_path, write_json
from mltoolkit.rl.envs import make_env, play_episodes
from mltoolkit.rl.policy import Policy, load_policy


def evaluate(
    run: str | Path,
    data: None = None,
    *,
    runs_dir: str | Path = "runs",
    episodes: int = 100,
    seed: int = 0,
    gif: str | Path | None = None,
) -> dict[str, Any]:
    """Play ``episodes`` greedy episodes (episode ``i`` from ``reset(seed=seed + i)``; Atari: full games, raw scores)
    and summarise the returns.

    ``data`` is there for the technique contract only: a policy is evaluated in its run's own environment.
    Writes ``eval.json`` into the run directory when the policy came from one.
    """
    if data is not None:
        raise UsageError("rl evaluate takes no data: the policy plays episodes of its run's environment")
    if episodes < 1:
        raise DataError(f"--episodes must be at least 1 (got {episodes})")
    if seed < 0:
        raise DataError(f"--seed must be >= 0 (got {seed}): gymnasium seeds episodes with non-negative numbers")
    if gif is not None and Path(gif).is_dir():
        raise DataError(f"--gif {gif}: is a directory; expected a file name such as {Path(gif) / 'episode.gif'}")
    policy = load_policy(run, runs_dir)
    returns, lengths = play_episodes(policy.act, policy.env_id, episodes, seed, policy.pixels)
    result: dict[str, Any] = {
        "env": policy.env_id,
        "checkpoint": str(policy.checkpoint),
        "episodes": episodes,
        "seed": seed,
        "return_mean": float(returns.mean()),
        "return_std": float(returns.std()),
        "return_min": float(returns.min()),
        "return_max": float(returns.max()),
        "length_mean": float(lengths.mean()),
    }
    if gif is not None:
        frames = record_gif(policy, gif, seed)
        result["gif"] = str(gif)
        result["gif_frames"] = frames
    if policy.run_dir is not None:
        write_json(policy.run_dir / "eval.json", result)
    return result


def record_gif(policy: Policy, path: str | Path, seed: int, fps: int | None = None) -> int:
    """Render one greedy episode to an animated GIF of the env's own screen (RGB, not the frames the network sees);
    returns the frame count. Atari's is played by gymnasium's wrappers, so its no-ops may differ from ``evaluate``'s."""
    import os

    from PIL import Image

    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # off-screen rendering: no display, no SDL warnings
    env = make_env(policy.env_id, render_mode="rgb_array", pixels=policy.pixels)
    fps = fps or int(env.metadata.get("render_fps") or 30)
    obs, _ = env.reset(seed=seed)
    frames = [Image.fromarray(np.asarray(env.render()))]
    done = False
    while not done:
        obs, _, terminated, truncated, _ = env.step(int(policy.act(obs[None])[0]))
        frames.append(Image.fromarray(np.asarray(env.render())))
        done = terminated or truncated
    env.close()
    # One shared palette from the first frame keeps the file small and the colours stable.
    palette = frames[0].quantize(colors=64)
    frames = [frame.quantize(palette=palette) for frame in frames]
    with atomic_path(Path(path)) as tmp:
        frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:], duration=1000 // fps, loop=0)
    return len(frames)
