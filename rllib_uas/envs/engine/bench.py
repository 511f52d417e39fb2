"""Engine throughput measurement shared by `rllib-uas bench` and benchmarks/engine_throughput.py.

This module imports nothing of the package at its top: benchmarks/engine_throughput.py loads it by
file path, so an older checkout put first on sys.path runs under this same harness.
"""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any, Optional, Tuple

import numpy as np


def random_valid_actions(avail: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A uniformly random available action per row of `avail` [..., A] (0/1): the largest of uniform
    draws over the available entries (three NumPy calls: at one env, call count is the cost)."""
    return (rng.random(avail.shape) * avail).argmax(-1)


def _this_package() -> Any:
    from rllib_uas.envs.engine.vec_smac import VectorizedSMAC
    from rllib_uas.envs.smac_api import StarCraft2Env

    return SimpleNamespace(VectorizedSMAC=VectorizedSMAC, StarCraft2Env=StarCraft2Env)


def engine_throughput(
    map_name: str,
    n_envs: int,
    seconds: float = 3.0,
    api: bool = False,
    seed: int = 0,
    streams: str = "shared",
    threads: int = 1,
    engine: Optional[Any] = None,
) -> Tuple[float, float]:
    """(env steps per wall second, per CPU-second of this process) with random valid actions; obs,
    state and masks computed every step; finished battles reset. A short warm-up is not timed.
    `streams`, `threads`: the engine's random-stream mode and threads (VectorizedSMAC only).
    `engine`: what provides `VectorizedSMAC` and `StarCraft2Env` (default: the package on sys.path)."""
    engine = engine or _this_package()
    rng = np.random.default_rng(seed)
    if api:
        env = engine.StarCraft2Env(map_name=map_name, seed=seed)
        env.reset()

        def step() -> int:
            _, terminated, _ = env.step(random_valid_actions(np.asarray(env.get_avail_actions()), rng))
            env.get_obs(), env.get_state()
            if terminated:
                env.reset()
            return 1
    else:
        mode = {} if streams == "shared" and threads == 1 else dict(engine_streams=streams, engine_threads=threads)
        vec = engine.VectorizedSMAC(map_name, n_envs=n_envs, seed=seed, **mode)
        vec.reset()

        def step() -> int:
            res = vec.step(random_valid_actions(vec.avail_actions(), rng))
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
