"""Engine throughput measurement shared by `rllib-uas bench` and benchmarks/engine_throughput.py."""

from __future__ import annotations

import time
from typing import Tuple

import numpy as np


def engine_throughput(
    map_name: str, n_envs: int, seconds: float = 3.0, api: bool = False, seed: int = 0
) -> Tuple[float, float]:
    """(env steps per wall second, per CPU-second of this process) with random valid actions; obs,
    state and masks computed every step; finished battles reset. A short warm-up is not timed."""
    rng = np.random.default_rng(seed)
    if api:
        from rllib_uas.envs.smac_api import StarCraft2Env

        env = StarCraft2Env(map_name=map_name, seed=seed)
        env.reset()

        def step() -> int:
            avail = np.array(env.get_avail_actions())
            _, terminated, _ = env.step((rng.random(avail.shape) * avail).argmax(1))
            env.get_obs(), env.get_state()
            if terminated:
                env.reset()
            return 1
    else:
        from rllib_uas.envs.engine.vec_smac import VectorizedSMAC

        vec = VectorizedSMAC(map_name, n_envs=n_envs, seed=seed)
        vec.reset()

        def step() -> int:
            avail = vec.avail_actions()
            res = vec.step((rng.random(avail.shape) * avail).argmax(-1))
            vec.observations(), vec.states(), vec.avail_actions()
            if res.terminated.any():
                vec.reset(res.terminated)
            return n_envs

    t0 = time.perf_counter()
    while time.perf_counter() - t0 < min(0.5, seconds / 4):  # warm-up (and numba cache load)
        step()
    steps, t0, c0 = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - t0 < seconds:
        steps += step()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return steps / wall, steps / max(cpu, 1e-9)


def engine_steps_per_second(
    map_name: str, n_envs: int, seconds: float = 3.0, api: bool = False, seed: int = 0
) -> float:
    """Env steps per wall second (see engine_throughput)."""
    return engine_throughput(map_name, n_envs, seconds, api, seed)[0]
