"""SMACv2's `StarCraft2Env` and `StarCraftCapabilityEnvWrapper` over the embedded engine (docs/smac.md, "SMACv2").

A SMACv2 program runs on it by changing only its import::

    from rllib_uas.envs.smacv2_api import StarCraftCapabilityEnvWrapper   # instead of smacv2.env

    env = StarCraftCapabilityEnvWrapper(capability_config=config, map_name="10gen_terran", obs_own_pos=True,
                                        use_unit_ranges=True, min_attack_range=2, ...)

The wrapper takes SMACv2's keyword arguments. Teams and start positions are drawn at every reset from
`capability_config` (weighted teams with exception types, `surrounded_and_reflect`); SMACv2's optional
stochastic attack and health, enemy masks and conic field of view are refused with a clear error.
"""

from __future__ import annotations

import warnings
from typing import Any, Dict, List, Mapping, Optional

import numpy as np

from rllib_uas.envs.engine.scenarios import scenario_from_capability_config, smacv2_map_names
from rllib_uas.envs.smac_api import _DEFAULTS as _SMAC_DEFAULTS
from rllib_uas.envs.smac_api import MultiAgentEnv
from rllib_uas.envs.smac_api import StarCraft2Env as _SmacV1Env

__all__ = ["MultiAgentEnv", "StarCraft2Env", "StarCraftCapabilityEnvWrapper"]

# SMACv2's StarCraft2Env keywords beyond SMAC v1's, with SMACv2's defaults
_V2_EXTRA: Dict[str, Any] = dict(
    obs_own_pos=False,
    obs_starcraft=True,
    conic_fov=False,
    num_fov_actions=12,
    use_unit_ranges=False,
    min_attack_range=2,
    kill_unit_step_mul=2,
    fully_observable=False,
    capability_config={},
    prob_obs_enemy=0.0,
    action_mask=True,
)
# value -> why it is refused: options whose behaviour the engine does not reproduce
_REFUSED = {
    "conic_fov": (lambda v: bool(v), "the conic field of view is not reproduced; set conic_fov=False"),
    "fully_observable": (lambda v: bool(v), "fully_observable (a debugging view) is not reproduced; set it False"),
    "obs_starcraft": (
        lambda v: not v,
        "obs_starcraft=False (observations without the unit features) is not reproduced",
    ),
    "action_mask": (lambda v: not v, "action_mask=False (targets out of range available) is not reproduced"),
    "prob_obs_enemy": (
        lambda v: float(v) != 0.0,
        "extended partial observability (prob_obs_enemy > 0) is not reproduced; set prob_obs_enemy=0",
    ),
}
_EPO_NOTICE_GIVEN = False


class StarCraft2Env(_SmacV1Env):
    """SMACv2's StarCraft2Env: SMAC v1's API plus SMACv2's keywords and, with a `capability_config`
    holding `team_gen`, teams drawn at every reset on `10gen_{protoss,terran,zerg}`."""

    _DEFAULTS = {**_SMAC_DEFAULTS, **_V2_EXTRA}

    def __init__(self, map_name: str = "8m", **kwargs: Any):
        for key, (refused, why) in _REFUSED.items():
            if key in kwargs and refused(kwargs[key]):
                raise ValueError(f"{key}={kwargs[key]!r}: {why}")
        if "prob_obs_enemy" in kwargs:
            _epo_notice()
        capability = kwargs.get("capability_config") or {}
        if not isinstance(capability, Mapping):
            raise ValueError(f"capability_config must be a mapping, got {type(capability).__name__}")
        scenario = None
        if map_name in smacv2_map_names():
            if "team_gen" not in capability:
                raise ValueError(
                    f"map_name={map_name!r} draws its teams from capability_config: give one with n_units, "
                    "n_enemies, team_gen and start_positions (SMACv2's sc2_gen_*.yaml)"
                )
            scenario = scenario_from_capability_config(map_name, capability)
        elif capability:
            raise ValueError(f"capability_config is only read on SMACv2's maps {smacv2_map_names()}, not {map_name!r}")
        self._setup(scenario.name if scenario else map_name, kwargs, scenario=scenario)
        self.map_name = map_name
        self.capability_config = dict(capability)
        self.replace_teammates = scenario is not None
        self.random_start = scenario is not None
        self.capability_attr_names = [f"type_{b}" for b in range(self.unit_type_bits)]
        self.ally_state_attr_names = [n for n in self.ally_state_attr_names if not n.startswith("type_")]

    def reset(self, episode_config: Optional[Mapping[str, Any]] = None):
        """A new battle: the engine draws its teams and start positions (SMACv2's wrapper passes the draw
        as `episode_config`; here the draw happens inside, from the same distributions)."""
        if episode_config:
            raise ValueError(
                "reset(episode_config=...) with given teams is not supported: the embedded engine draws teams "
                "from capability_config itself; call reset() (StarCraftCapabilityEnvWrapper does)"
            )
        return super().reset()

    def get_capabilities_agent(self, agent_id: int) -> np.ndarray:
        """The agent's unit-type bits (SMACv2's capability features without stochastic attack/health)."""
        ft = self._vec.features.tables
        return ft.onehot[ft.table_of[0], agent_id].copy()

    def get_capabilities(self) -> np.ndarray:
        return np.concatenate([self.get_capabilities_agent(i) for i in range(self.n_agents)]).astype(np.float32)

    def get_cap_size(self) -> int:
        return self.unit_type_bits

    def get_env_info(self) -> Dict[str, Any]:
        info = super().get_env_info()
        info["agent_features"] = self.ally_state_attr_names + self.capability_attr_names
        return info

    def get_unit_type_names(self) -> List[str]:
        """This battle's unit types, allies (sorted as SMAC sorts agents) then enemies."""
        return self._vec.unit_names_of(0)


class StarCraftCapabilityEnvWrapper(MultiAgentEnv):
    """SMACv2's wrapper: `StarCraftCapabilityEnvWrapper(capability_config=..., map_name=..., **env_args)`."""

    def __init__(self, **kwargs: Any):
        if "capability_config" not in kwargs:
            raise ValueError("StarCraftCapabilityEnvWrapper needs capability_config (SMACv2's sc2_gen_*.yaml)")
        self.distribution_config = kwargs["capability_config"]
        self.env = StarCraft2Env(**kwargs)

    def reset(self):
        return self.env.reset()

    def __getattr__(self, name: str) -> Any:
        if name == "env":  # not yet set: the constructor failed
            raise AttributeError(name)
        return getattr(self.env, name)

    def step(self, actions):
        return self.env.step(actions)

    def get_obs(self):
        return self.env.get_obs()

    def get_state(self):
        return self.env.get_state()

    def get_avail_actions(self):
        return self.env.get_avail_actions()

    def get_env_info(self):
        return self.env.get_env_info()

    def get_obs_size(self):
        return self.env.get_obs_size()

    def get_state_size(self):
        return self.env.get_state_size()

    def get_total_actions(self):
        return self.env.get_total_actions()

    def get_obs_agent(self, agent_id):
        return self.env.get_obs_agent(agent_id)

    def get_avail_agent_actions(self, agent_id):
        return self.env.get_avail_agent_actions(agent_id)

    def get_stats(self):
        return self.env.get_stats()

    def render(self, mode: str = "rgb_array"):
        return self.env.render(mode=mode)

    def save_replay(self):
        return self.env.save_replay()

    def close(self):
        return self.env.close()


def _epo_notice() -> None:
    global _EPO_NOTICE_GIVEN
    if not _EPO_NOTICE_GIVEN:
        _EPO_NOTICE_GIVEN = True
        warnings.warn(
            "prob_obs_enemy=0: SMACv2's extended partial observability (an enemy is seen only by the first agent "
            "that spots it) is not reproduced; every agent sees the enemies within its sight range, as in "
            "SMACv2's published version (docs/smac.md, SMACv2)",
            stacklevel=3,
        )
