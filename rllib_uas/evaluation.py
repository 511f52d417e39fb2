"""Greedy evaluation of a checkpoint on the team env, in-process (no Ray needed)."""

from __future__ import annotations

import math
import pickle
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import numpy as np
import torch
from ray.rllib.core.columns import Columns

from rllib_uas.envs.team import TeamVectorEnv
from rllib_uas.value_types import is_integer

MODULE_DIR = Path("learner_group") / "learner" / "rl_module" / "default_policy"


class CheckpointError(ValueError):
    """The path is not a usable rllib-uas checkpoint; the message says what is missing."""


def wilson_interval(wins: int, n: int, z: float = 1.96) -> Tuple[float, float]:
    """95% Wilson score interval of a win rate."""
    if n == 0:
        return 0.0, 1.0
    p = wins / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def find_checkpoint(path: str | Path) -> Path:
    """A checkpoint dir, or a Tune trial/experiment dir whose newest checkpoint is used."""
    path = Path(path).expanduser().resolve()
    if not path.exists():
        raise CheckpointError(f"checkpoint path {path} does not exist")
    if (path / "rllib_checkpoint.json").exists():
        return path
    found = sorted(path.rglob("rllib_checkpoint.json"), key=lambda p: p.stat().st_mtime)
    found = [p.parent for p in found if (p.parent / MODULE_DIR).exists()]
    if not found:
        raise CheckpointError(f"no RLlib checkpoint (rllib_checkpoint.json) under {path}")
    return found[-1]


def load_policy(path: str | Path):
    """(module, env_config, algorithm class name) of a checkpoint."""
    from ray.rllib.core.rl_module.rl_module import RLModule

    ckpt = find_checkpoint(path)
    if not (ckpt / MODULE_DIR).exists():
        raise CheckpointError(f"{ckpt} has no {MODULE_DIR} (only single-module team checkpoints are supported)")
    with open(ckpt / "class_and_ctor_args.pkl", "rb") as f:
        meta = pickle.load(f)
    config = meta["ctor_args_and_kwargs"][0][0]
    env_config = dict(config.get("env_config", {}) if isinstance(config, dict) else config.env_config)
    module = RLModule.from_checkpoint(str(ckpt / MODULE_DIR))
    module.eval()
    return module, env_config, meta["class"].__name__


def greedy_actions(module, obs: Dict[str, np.ndarray], h: torch.Tensor):
    batch = {Columns.OBS: {k: torch.as_tensor(v)[:, None] for k, v in obs.items()}, Columns.STATE_IN: {"h": h}}
    with torch.no_grad():
        out = module.forward_inference(batch)
    actions = out[Columns.ACTIONS] if Columns.ACTIONS in out else out[Columns.ACTION_DIST_INPUTS].argmax(-1)
    return actions[:, 0].numpy(), out[Columns.STATE_OUT]["h"]


def evaluate(
    module,
    env_config: Dict[str, Any],
    episodes: int = 32,
    num_envs: int = 8,
    seed: int = 0,
    gif_path: Optional[str] = None,
) -> Dict[str, Any]:
    """Greedy evaluation: ceil(episodes / num_envs) rounds in which every env plays exactly one episode
    (the first `episodes` to finish would favour short battles). Win rate with its 95% interval, mean
    return and battle stats over all the rounds' episodes."""
    for name, value, low in (("episodes", episodes, 1), ("num_envs", num_envs, 1), ("seed", seed, 0)):
        if not is_integer(value) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    env = TeamVectorEnv({k: v for k, v in env_config.items() if k != "num_envs"}, num_envs=min(num_envs, episodes))
    space = module.observation_space
    for key in ("obs", "action_mask", "state"):
        if env.single_observation_space[key].shape != space[key].shape:
            raise CheckpointError(
                f"the checkpoint's policy expects {key} of shape {space[key].shape}, but map "
                f"{env.map_name!r} gives {env.single_observation_space[key].shape}; evaluate on a "
                "map with the same unit counts"
            )
    env.reset(seed=seed)  # seeded once; each round continues the stream
    h0 = torch.as_tensor(module.get_initial_state()["h"])
    record = gif_path is not None and getattr(env.backend, "engine", None) is not None
    frames = []
    returns, wins, dead_a, dead_e, lengths = [], [], [], [], []
    for round_ in range(math.ceil(episodes / env.num_envs)):
        obs, _ = env.reset()
        recording = record and round_ == 0  # the GIF shows env 0's first battle
        if recording:
            from rllib_uas.envs.engine.render import annotated_frame, outcome_of

            frames.append(annotated_frame(env.backend.engine, 0, step=0))
        h = h0.expand(env.num_envs, *h0.shape).clone()
        running = np.zeros(env.num_envs)
        steps = np.zeros(env.num_envs, dtype=int)
        finished = np.zeros(env.num_envs, dtype=bool)
        while not finished.all():
            actions, h = greedy_actions(module, obs, h)
            obs, reward, term, trunc, info = env.step(actions)
            if recording:
                outcome = None
                if term[0] or trunc[0]:  # env 0's battle ended at this step: its last frame says how
                    outcome = outcome_of(
                        bool(info["battle_won"][0]),
                        bool(trunc[0]),
                        int(info["dead_allies"][0]),
                        int(info["dead_enemies"][0]),
                        env.backend.n_agents,
                        env.backend.n_enemies,
                    )
                frames.append(annotated_frame(env.backend.engine, 0, step=int(steps[0]) + 1, outcome=outcome))
            running += reward * ~finished
            steps += ~finished
            ended = (term | trunc) & ~finished
            for e in np.flatnonzero(ended):
                returns.append(running[e])
                wins.append(bool(info["battle_won"][e]))
                dead_a.append(int(info["dead_allies"][e]))
                dead_e.append(int(info["dead_enemies"][e]))
                lengths.append(int(steps[e]))
                recording = recording and e != 0
            finished |= ended
            env.hold(finished)
    if record:
        from rllib_uas.envs.engine.render import save_gif

        save_gif(frames, gif_path)
    low, high = wilson_interval(sum(wins), len(wins))
    return {
        "episodes": len(wins),
        "win_rate": float(np.mean(wins)),
        "win_rate_ci95": (low, high),
        "return_mean": float(np.mean(returns)),
        "dead_allies_mean": float(np.mean(dead_a)),
        "dead_enemies_mean": float(np.mean(dead_e)),
        "length_mean": float(np.mean(lengths)),
        "map_name": env.map_name,
        "gif": gif_path if record else None,
    }
