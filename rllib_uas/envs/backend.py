"""Choosing the SMAC backend from an env_config: the embedded engine (default) or real SMAC."""

from __future__ import annotations

from typing import Any, Callable, Dict, Mapping, Optional

from rllib_uas.envs.engine.battle import check_threading
from rllib_uas.envs.engine.scenarios import get_scenario, is_scenario
from rllib_uas.envs.engine.vec_smac import VectorizedSMAC, split_kwargs
from rllib_uas.envs.sc2 import SMACAPIBatch, import_smac_env_class, import_smacv2_wrapper_class
from rllib_uas.envs.smac_api import SMAC_KWARGS, check_smac_values
from rllib_uas.value_types import is_integer

BACKENDS = ("embedded", "sc2")
# env_config keys consumed by our env wrappers; everything else goes to StarCraft2Env
WRAPPER_KEYS = ("backend", "map_name", "uas", "agent_state", "num_envs", "seed", "env_factory")
# SMACv2's observation keywords (on by default for its scenarios, as in its published sc2_gen_*.yaml)
SMACV2_PUBLISHED = {"obs_own_pos": True, "use_unit_ranges": True, "min_attack_range": 2}
# the embedded engine's own: random streams and threads (BattleEngine; docs/engine.md, "Threads")
ENGINE_KEYS = ("engine_streams", "engine_threads")
# every key a SMAC env_config may hold: the wrappers', the engine's and StarCraft2Env's keyword arguments
ENV_CONFIG_KEYS = tuple(sorted(set(WRAPPER_KEYS) | set(ENGINE_KEYS) | set(SMAC_KWARGS) | set(SMACV2_PUBLISHED)))


def smac_kwargs(env_config: Mapping[str, Any]) -> Dict[str, Any]:
    return {k: v for k, v in env_config.items() if k not in WRAPPER_KEYS and k not in ENGINE_KEYS}


def check_engine_keys(env_config: Mapping[str, Any]) -> None:
    """The engine keys' values (ValueError saying what to set); with real SMAC they do not apply."""
    given = [k for k in ENGINE_KEYS if k in env_config]
    if not given:
        return
    if env_config.get("backend", "embedded") != "embedded":
        keys = ", ".join(given)
        raise ValueError(f"env_config {keys}: only the embedded engine has them; remove them for backend sc2")
    check_threading(env_config.get("engine_streams", "shared"), env_config.get("engine_threads", 1))


def env_config_of(env_config: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    """A copy of an env's config (None: every default); a TypeError that says what to pass for anything
    that is not a mapping (a bare map name failed as 'dictionary update sequence element #0')."""
    if env_config is None:
        return {}
    if not isinstance(env_config, Mapping):
        raise TypeError(f"env_config must be a mapping such as {{'map_name': '3m'}}, got {env_config!r}")
    return dict(env_config)


def check_env_config_values(env_config: Mapping[str, Any]) -> None:
    """The values of a SMAC env_config (ValueError naming the key and what it takes): the engine keys,
    the wrappers' switches and count, and StarCraft2Env's keywords against SMAC's (SMACv2's) defaults."""
    from rllib_uas.envs.smacv2_api import StarCraft2Env as SMACv2Env  # its defaults hold SMAC v1's too

    check_engine_keys(env_config)
    continuing_episode_of(env_config)
    for key in ("uas", "agent_state"):
        if key in env_config and not isinstance(env_config[key], bool):
            raise ValueError(f"env_config {key} must be true or false, got {env_config[key]!r}")
    n = env_config.get("num_envs", 1)
    if not is_integer(n) or n < 1:
        raise ValueError(f"env_config num_envs must be a positive integer, got {n!r}")
    try:
        check_smac_values(smac_kwargs(env_config) | {"seed": env_config.get("seed")}, SMACv2Env._DEFAULTS)
    except ValueError as err:
        raise ValueError(f"env_config {err}") from None


def continuing_episode_of(env_config: Mapping[str, Any]) -> bool:
    """The env_config's `continuing_episode` (default True: the time limit is a truncation)."""
    value = env_config.get("continuing_episode", True)
    if not isinstance(value, bool):
        raise ValueError(
            f"env_config continuing_episode must be true (the time limit is a truncation) or false (a "
            f"termination), got {value!r}"
        )
    return value


def make_backend(env_config: Mapping[str, Any], n_envs: int = 1, seed: Optional[int] = None):
    """A batched SMAC backend (`VectorizedSMAC` interface) of `n_envs` battles."""
    backend = env_config.get("backend", "embedded")
    map_name = env_config.get("map_name", "3m")
    kwargs = smac_kwargs(env_config)
    check_env_config_values(env_config)
    if backend == "embedded":
        flags, reward, rest = split_kwargs(kwargs)
        known = {"step_mul", "move_amount", "continuing_episode"}  # the rest of SMAC_KWARGS have no effect here
        unknown = sorted(set(env_config) - set(ENV_CONFIG_KEYS))
        if unknown:
            raise ValueError(
                f"unknown env_config key(s) {unknown}; valid: StarCraft2Env's keyword arguments and "
                f"{list(WRAPPER_KEYS)}"
            )
        return VectorizedSMAC(
            map_name,
            n_envs=n_envs,
            seed=seed,
            flags=flags,
            reward=reward,
            **{k: v for k, v in rest.items() if k in known},
            **{k: env_config[k] for k in ENGINE_KEYS if k in env_config},
        )
    if backend == "sc2":
        if is_scenario(map_name):  # real SMACv2: its wrapper, with the scenario's capability config
            factory: Callable[..., Any] = env_config.get("env_factory") or import_smacv2_wrapper_class()
            s = get_scenario(map_name)
            args = {**SMACV2_PUBLISHED, "capability_config": s.capability_config(), **kwargs, "map_name": s.map_name}
            return SMACAPIBatch([factory(seed=None if seed is None else seed + i, **args) for i in range(n_envs)])
        factory = env_config.get("env_factory") or import_smac_env_class()
        return SMACAPIBatch(
            [factory(map_name=map_name, seed=None if seed is None else seed + i, **kwargs) for i in range(n_envs)]
        )
    raise ValueError(f"unknown backend {backend!r}; choose one of {BACKENDS}")
