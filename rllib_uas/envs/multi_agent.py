"""SMAC as an RLlib MultiAgentEnv: one agent id per SMAC agent (`agent_0`, `agent_1`, ...).

- obs per agent: Dict(obs [D], action_mask [A] (UAS by default, native with uas=False), state [S])
- the team reward goes to every agent (not summed: sum over agents for RLlib's episode return)
- dead agents keep stepping with only no-op available (the SMAC / pymarl convention), so every
  agent acts at every step and per-timestep alignment across agents holds
- `__all__` ends the episode: a win, loss or draw is a termination, the time limit a truncation
  (a termination with `continuing_episode: False`, as in rllib_uas.envs.team)
- infos carry battle_won, dead_allies, dead_enemies and timeout
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional

import gymnasium as gym
import numpy as np
from ray.rllib.env.multi_agent_env import MultiAgentEnv

from rllib_uas.envs.backend import continuing_episode_of, env_config_of, make_backend
from rllib_uas.envs.team import TeamView, episode_ends


class MaskedDiscrete(gym.spaces.Discrete):
    """A Discrete space whose `sample()` draws among the actions available when it was made.

    Equal to `Discrete(n)`; RLlib's env check and random-action sampling get valid actions, while
    `step()` still rejects unavailable ones.
    """

    def __init__(self, n: int, available: np.ndarray):
        super().__init__(n)
        self.available = np.asarray(available, dtype=np.int8)

    def sample(self, mask=None, probability=None):
        if mask is None and probability is None:
            mask = self.available
        return super().sample(mask=mask, probability=probability)


class SMACMultiAgentEnv(MultiAgentEnv):
    def __init__(self, env_config: Optional[Mapping[str, Any]] = None):
        super().__init__()
        cfg = env_config_of(env_config)
        self.backend = make_backend(cfg, n_envs=1, seed=cfg.get("seed"))
        self.view = TeamView(self.backend, uas=cfg.get("uas", True))
        n = self.view.n_agents
        self.possible_agents = [f"agent_{i}" for i in range(n)]
        self.agents = list(self.possible_agents)
        team = self.view.observation_space
        single = gym.spaces.Dict(
            {
                "obs": gym.spaces.Box(-np.inf, np.inf, team["obs"].shape[1:], np.float32),
                "action_mask": gym.spaces.Box(0.0, 1.0, team["action_mask"].shape[1:], np.float32),
                "state": team["state"],
            }
        )
        self.observation_spaces = {a: single for a in self.possible_agents}
        self.action_spaces = {a: gym.spaces.Discrete(self.view.n_actions) for a in self.possible_agents}
        self.map_name = cfg.get("map_name", "3m")
        self.continuing_episode = continuing_episode_of(cfg)

    def get_action_space(self, agent_id: str) -> gym.spaces.Discrete:
        i = self.possible_agents.index(agent_id)
        return MaskedDiscrete(self.view.n_actions, self.view.observations()["action_mask"][0, i])

    def _obs(self) -> Dict[str, Dict[str, np.ndarray]]:
        o = self.view.observations()
        return {
            a: {"obs": o["obs"][0, i], "action_mask": o["action_mask"][0, i], "state": o["state"][0]}
            for i, a in enumerate(self.possible_agents)
        }

    def reset(self, *, seed: Optional[int] = None, options: Optional[dict] = None):
        if seed is not None:
            self.backend.seed(seed)
        self.backend.reset()
        self.agents = list(self.possible_agents)
        return self._obs(), {a: {} for a in self.agents}

    def step(self, action_dict: Mapping[str, int]):
        missing = [a for a in self.possible_agents if a not in action_dict]
        if missing:
            raise ValueError(f"every agent acts every step (dead ones with no-op); missing actions for {missing}")
        unknown = [a for a in action_dict if a not in self.possible_agents]
        if unknown:  # a misspelt id would otherwise be dropped while its agent acted on a stale entry
            raise ValueError(f"actions for unknown agents {unknown}; the agents are {self.possible_agents}")
        # as given: the team view's conversion refuses fractions, strings and bools (int() would truncate 1.5)
        team = np.array([[action_dict[a] for a in self.possible_agents]])
        res = self.backend.step(self.view.to_native(team))
        obs = self._obs()
        reward = float(res.reward[0])
        term, trunc = episode_ends(res, np.ones(1, dtype=bool), self.continuing_episode)
        terminated, truncated = bool(term[0]), bool(trunc[0])
        info = {
            "battle_won": bool(res.battle_won[0]),
            "dead_allies": int(res.dead_allies[0]),
            "dead_enemies": int(res.dead_enemies[0]),
            "timeout": bool(res.timeout[0]),
        }
        agents = self.possible_agents
        return (
            obs,
            {a: reward for a in agents},
            {**{a: terminated for a in agents}, "__all__": terminated},
            {**{a: truncated for a in agents}, "__all__": truncated},
            {a: dict(info) for a in agents},
        )
