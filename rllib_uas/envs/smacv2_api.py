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
        """A new battle. Without `episode_config` the engine draws the teams and start positions from the
        capability config; with one (what SMACv2's wrapper passes: `team_gen` {ally_team, enemy_team},
        `ally_start_positions` / `enemy_start_positions` {item}), it plays those, drawing any part left out."""
        if not episode_config:
            return super().reset()
        scenario = self._eng.scenario
        if scenario is None:
            raise ValueError("reset(episode_config=...) needs a SMACv2 map with a capability_config")
        unknown = sorted(set(episode_config) - {"team_gen", "ally_start_positions", "enemy_start_positions"})
        if unknown:
            raise ValueError(f"episode_config: {unknown} are not reproduced; give team_gen and start positions only")
        teams = episode_config.get("team_gen") or {}
        team, enemy_team = (teams["ally_team"], teams["enemy_team"]) if teams else scenario.draw_teams(self._eng.rng)
        for key, units, n in (("ally_team", team, scenario.n_units), ("enemy_team", enemy_team, scenario.n_enemies)):
            bad = [u for u in units if u not in scenario.unit_types]
            if len(units) != n or bad:
                kinds = list(scenario.unit_types)
                raise ValueError(f"episode_config team_gen.{key} must list {n} units of {kinds}, got {list(units)}")
        keys = ("ally_start_positions", "enemy_start_positions")
        items = [(episode_config.get(k) or {}).get("item") for k in keys]
        # a side left out is drawn (both sides together: reflected starts mirror the allies)
        drawn = scenario.draw_positions(self._eng.rng) if any(v is None for v in items) else (None, None)
        points = []
        for key, item, fallback, n in zip(keys, items, drawn, (scenario.n_units, scenario.n_enemies)):
            pts = fallback if item is None else np.asarray(item, dtype=np.float64)
            if pts.shape != (n, 2):
                raise ValueError(f"episode_config {key}.item must have shape ({n}, 2), got {pts.shape}")
            points.append(pts)
        return self._reset(scenario.layout(list(team), list(enemy_team), points[0], points[1]))

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

    def get_obs_feature_names(self) -> List[str]:
        """Names of the observation's entries, from agent 0's view (SMACv2's build_obs_feature_names)."""
        f, bits = self._vec.features, range(self.unit_type_bits)
        names = ["move_action_north", "move_action_south", "move_action_east", "move_action_west"]
        names += [f"pathing_grid_{k}" for k in range(self.n_obs_pathing)] * bool(self.obs_pathing_grid)
        names += [f"terrain_height_{k}" for k in range(self.n_obs_height)] * bool(self.obs_terrain_height)
        for e in range(self.n_enemies):
            names += [f"enemy_{k}_{e}" for k in ("shootable", "distance", "relative_x", "relative_y")]
            names += [f"enemy_health_{e}"] * bool(self.obs_all_health)
            names += [f"enemy_shield_{e}"] * bool(self.obs_all_health and self.shield_bits_enemy)
            names += [f"enemy_unit_type_{e}_bit_{b}" for b in bits]
        for a in range(1, self.n_agents):
            names += [f"ally_{k}_{a}" for k in ("visible", "distance", "relative_x", "relative_y")]
            names += [f"ally_health_{a}"] * bool(self.obs_all_health)
            names += [f"ally_shield_{a}"] * bool(self.obs_all_health and self.shield_bits_ally)
            names += [f"ally_unit_type_{a}_bit_{b}" for b in bits]
            names += [f"ally_last_action_{a}_action_{k}" for k in range(self.n_actions)] * bool(self.obs_last_action)
        names += ["own_health"] * bool(f.own_health) + ["own_shield"] * bool(f.own_health and self.shield_bits_ally)
        names += ["own_pos_x", "own_pos_y"] * bool(f.own_pos)
        names += [f"own_unit_type_bit_{b}" for b in bits]
        return names + ["timestep"] * bool(self.obs_timestep_number)

    def get_state_feature_names(self) -> List[str]:
        """Names of the global state's entries (SMACv2's build_state_feature_names)."""
        if self.obs_instead_of_state:
            raise NotImplementedError("no state feature names when obs_instead_of_state is set (as in SMACv2)")
        bits = range(self.unit_type_bits)
        names: List[str] = []
        for a in range(self.n_agents):
            names += [f"ally_{k}_{a}" for k in ("health", "cooldown", "relative_x", "relative_y")]
            names += [f"ally_shield_{a}"] * bool(self.shield_bits_ally)
            names += [f"ally_unit_type_{a}_bit_{b}" for b in bits]
        for e in range(self.n_enemies):
            names += [f"enemy_{k}_{e}" for k in ("health", "relative_x", "relative_y")]
            names += [f"enemy_shield_{e}"] * bool(self.shield_bits_enemy)
            names += [f"enemy_unit_type_{e}_bit_{b}" for b in bits]
        if self.state_last_action:
            names += [f"ally_last_action_{a}_action_{k}" for a in range(self.n_agents) for k in range(self.n_actions)]
        return names + ["timestep"] * bool(self.state_timestep_number)

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
