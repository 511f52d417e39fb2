"""Choosing the SMAC backend from an env_config: the embedded engine (default) or real SMAC."""
from __future__ import annotations

from typing import Any, Callable, Dict, Mapping, Optional

from rllib_uas.envs.engine.vec_smac import VectorizedSMAC, split_kwargs
from rllib_uas.envs.sc2 import SMACAPIBatch, import_smac_env_class

BACKENDS = ("embedded", "sc2")
# env_config keys consumed by our env wrappers; everything else goes to StarCraft2Env
WRAPPER_KEYS = ("backend", "map_name", "uas", "agent_state", "num_envs", "seed", "env_factory")


def smac_kwargs(env_config: Mapping[str, Any]) -> Dict[str, Any]:
    return {k: v for k, v in env_config.items() if k not in WRAPPER_KEYS}


def make_backend(env_config: Mapping[str, Any], n_envs: int = 1, seed: Optional[int] = None):
    """A batched SMAC backend (`VectorizedSMAC` interface) of `n_envs` battles."""
    backend = env_config.get("backend", "embedded")
    map_name = env_config.get("map_name", "3m")
    kwargs = smac_kwargs(env_config)
    if backend == "embedded":
        flags, reward, rest = split_kwargs(kwargs)
        known = {"step_mul", "move_amount", "continuing_episode"}
        unknown = sorted(set(rest) - known - {"difficulty", "game_version", "replay_dir", "replay_prefix",
                                               "window_size_x", "window_size_y", "debug", "heuristic_ai",
                                               "heuristic_rest"})
        if unknown:
            raise ValueError(f"unknown env_config key(s) {unknown}; valid: StarCraft2Env's keyword arguments and "
                             f"{list(WRAPPER_KEYS)}")
        return VectorizedSMAC(map_name, n_envs=n_envs, seed=seed, flags=flags, reward=reward,
                              **{k: v for k, v in rest.items() if k in known})
    if backend == "sc2":
        factory: Callable[..., Any] = env_config.get("env_factory") or import_smac_env_class()
        return SMACAPIBatch([factory(map_name=map_name, seed=None if seed is None else seed + i, **kwargs)
                             for i in range(n_envs)])
    raise ValueError(f"unknown backend {backend!r}; choose one of {BACKENDS}")
