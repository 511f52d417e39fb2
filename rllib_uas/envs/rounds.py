"""The reference sampling protocol: rounds in which every env plays exactly one episode.

PyMARL2's parallel runner collects episodes this way, and so does our evaluation; with a fixed
policy it gives the true episode-length distribution. `random_rounds` plays it under uniformly
random available actions, the yardstick the sampling tests and `benchmarks/episode_sampling.py`
compare the other paths against.
"""

from __future__ import annotations

from typing import Tuple

import numpy as np

from rllib_uas.envs.team import TeamVectorEnv


def random_rounds(map_name: str, n_episodes: int, num_envs: int = 8, seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """(lengths [N], timed_out [N]) of at least `n_episodes` episodes, whole rounds of `num_envs`."""
    env = TeamVectorEnv({"map_name": map_name}, num_envs=num_envs)
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)  # seeded once; every round continues the stream
    lengths, timeouts = [], []
    while len(lengths) < n_episodes:
        obs, _ = env.reset()
        steps = np.zeros(num_envs, dtype=np.int64)
        done = np.zeros(num_envs, dtype=bool)
        while not done.all():
            act = np.array([[rng.choice(np.flatnonzero(m)) for m in env_mask] for env_mask in obs["action_mask"]])
            obs, _, term, trunc, info = env.step(act)
            steps += ~done
            ended = (term | trunc) & ~done
            lengths += steps[ended].tolist()
            timeouts += info["timeout"][ended].tolist()
            done |= ended
            env.hold(done)
    env.close()
    return np.asarray(lengths), np.asarray(timeouts, dtype=bool)
