"""RLlib/Tune env names: "smac" (per-agent MultiAgentEnv) and "smac_team" (team view, vectorizable)."""

from __future__ import annotations

from ray.tune.registry import register_env

from rllib_uas.envs import ENV_NAMES
from rllib_uas.envs.multi_agent import SMACMultiAgentEnv
from rllib_uas.envs.team import make_team_env

__all__ = ["ENV_NAMES", "register_envs"]


def register_envs() -> None:
    """Register both names (idempotent; call before building an algorithm that names them)."""
    register_env("smac", lambda cfg: SMACMultiAgentEnv(cfg))
    register_env("smac_team", make_team_env)


register_envs()
