"""What pymarl-family programs import from `smac.env` besides StarCraft2Env: the MultiAgentEnv base with
SMAC's method set, and `get_map_params`. `rllib_uas.envs.smac_api` re-exports both, so

    from smac.env import MultiAgentEnv, StarCraft2Env            # oxwhirl/pymarl, PyMARL2, EPyMARL
    from smac.env.starcraft2.maps import get_map_params          # the MAPPO repo's SMAC runner

become `from rllib_uas.envs.smac_api import MultiAgentEnv, StarCraft2Env, get_map_params`.
"""

from __future__ import annotations

from typing import Any, Dict

from rllib_uas.envs.engine.scenarios import get_battle_spec


class MultiAgentEnv:
    """SMAC's abstract multi-agent env (smac/env/multiagentenv.py): the methods a pymarl runner calls.
    Envs a pymarl tree defines itself (matrix games, stag hunt, wrappers) subclass it."""

    n_agents: int
    episode_limit: int

    def step(self, actions):
        """Returns reward, terminated, info."""
        raise NotImplementedError

    def get_obs(self):
        """Returns all agent observations in a list."""
        raise NotImplementedError

    def get_obs_agent(self, agent_id):
        """Returns observation for agent_id."""
        raise NotImplementedError

    def get_obs_size(self):
        """Returns the size of the observation."""
        raise NotImplementedError

    def get_state(self):
        """Returns the global state."""
        raise NotImplementedError

    def get_state_size(self):
        """Returns the size of the global state."""
        raise NotImplementedError

    def get_avail_actions(self):
        """Returns the available actions of all agents in a list."""
        raise NotImplementedError

    def get_avail_agent_actions(self, agent_id):
        """Returns the available actions for agent_id."""
        raise NotImplementedError

    def get_total_actions(self):
        """Returns the total number of actions an agent could ever take."""
        raise NotImplementedError

    def reset(self):
        """Returns initial observations and states."""
        raise NotImplementedError

    def render(self):
        raise NotImplementedError

    def close(self):
        raise NotImplementedError

    def seed(self):
        raise NotImplementedError

    def save_replay(self):
        """Save a replay."""
        raise NotImplementedError

    def get_env_info(self) -> Dict[str, Any]:
        return {
            "state_shape": self.get_state_size(),
            "obs_shape": self.get_obs_size(),
            "n_actions": self.get_total_actions(),
            "n_agents": self.n_agents,
            "episode_limit": self.episode_limit,
        }


def get_map_params(map_name: str) -> Dict[str, Any]:
    """SMAC's map registry entry: n_agents, n_enemies, limit, a_race, b_race, unit_type_bits, map_type
    (also for our SMACv2 scenario names, e.g. terran_5_vs_5)."""
    spec = get_battle_spec(map_name)
    return {
        "n_agents": spec.n_agents,
        "n_enemies": spec.n_enemies,
        "limit": spec.limit,
        "a_race": spec.a_race,
        "b_race": spec.b_race,
        "unit_type_bits": spec.unit_type_bits,
        "map_type": spec.map_type.name,
    }
