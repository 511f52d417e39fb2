"""RLlib/Tune env names: "smac" (per-agent MultiAgentEnv) and "smac_team" (team view, vectorizable)."""

from __future__ import annotations

import functools
from typing import Any

from ray.tune.registry import ENV_CREATOR, _global_registry, register_env

from rllib_uas.envs import ENV_NAMES, import_class_path
from rllib_uas.envs.multi_agent import SMACMultiAgentEnv
from rllib_uas.envs.team import make_team_env

__all__ = ["ENV_NAMES", "register_class_path", "register_envs"]


def register_envs() -> None:
    """Register both names (idempotent; call before building an algorithm that names them)."""
    register_env("smac", lambda cfg: SMACMultiAgentEnv(cfg))
    register_env("smac_team", make_team_env)


def register_class_path(env: Any) -> bool:
    """Register an env given as an importable 'module.Class' path with Tune under that name, made as
    RLlib makes an env class, `Class(env_config)`. RLlib 2.60's env runners make a string env only
    from Tune's registry or as a gymnasium id, so the path failed there (gymnasium's NameNotFound).
    True when this call registered it; a gymnasium id or a name Tune knows is left alone."""
    if not isinstance(env, str) or "." not in env:
        return False
    import gymnasium

    if env in gymnasium.envs.registry or _global_registry.contains(ENV_CREATOR, env):
        return False
    cls = import_class_path(env)
    if cls is None:
        return False
    register_env(env, functools.partial(_make, cls))
    return True


def _make(cls, env_config):
    return cls(env_config)


register_envs()
