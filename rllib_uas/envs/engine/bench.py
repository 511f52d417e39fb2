"""Engine throughput measurement shared by `rllib-uas bench` and benchmarks/engine_throughput.py."""
from __future__ import annotations

import time

import numpy as np


def engine_steps_per_second(map_name: str, n_envs: int, seconds: float = 3.0, api: bool = False,
                            seed: int = 0) -> float:
    """Env steps/s with random valid actions; obs, state and masks computed every step."""
    rng = np.random.default_rng(seed)
    if api:
        from rllib_uas.envs.smac_api import StarCraft2Env

        env = StarCraft2Env(map_name=map_name, seed=seed)
        env.reset()
        steps, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            avail = np.array(env.get_avail_actions())
            _, terminated, _ = env.step((rng.random(avail.shape) * avail).argmax(1))
            env.get_obs(), env.get_state()
            steps += 1
            if terminated:
                env.reset()
        return steps / (time.perf_counter() - t0)
    from rllib_uas.envs.engine.vec_smac import VectorizedSMAC

    vec = VectorizedSMAC(map_name, n_envs=n_envs, seed=seed)
    vec.reset()
    steps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        avail = vec.avail_actions()
        res = vec.step((rng.random(avail.shape) * avail).argmax(-1))
        vec.observations(), vec.states(), vec.avail_actions()
        steps += n_envs
        if res.terminated.any():
            vec.reset(res.terminated)
    return steps / (time.perf_counter() - t0)
