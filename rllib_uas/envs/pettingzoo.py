"""PettingZoo interoperability, both ways.

- `SMACParallelEnv`: SMAC (either backend) as a PettingZoo `ParallelEnv`; observations are
  Dict(observation, action_mask), the team reward goes to every agent, dead agents stay until the
  episode ends (acting no-op, as in SMAC).
- `PettingZooTeamEnv`: any discrete-action PettingZoo `ParallelEnv` with action masks as a team env
  (the same observation layout as `TeamEnv`), with a UAS built from a user semantics table, or by
  default aligned by action index with one group per agent type.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

import gymnasium as gym
import numpy as np
from pettingzoo import ParallelEnv

from rllib_uas.envs.multi_agent import SMACMultiAgentEnv
from rllib_uas.team_obs import last_action_onehot, team_observation_space
from rllib_uas.uas import UnifiedActionSpace


class SMACParallelEnv(ParallelEnv):
    metadata = {"name": "smac_v1", "render_modes": ["rgb_array"], "is_parallelizable": True}

    def __init__(self, env_config: Optional[Mapping[str, Any]] = None, render_mode: Optional[str] = None):
        self._env = SMACMultiAgentEnv(env_config)
        self.possible_agents = list(self._env.possible_agents)
        self.agents: List[str] = []
        self.render_mode = render_mode
        n_a = self._env.view.n_actions
        D = self._env.observation_spaces[self.possible_agents[0]]["obs"].shape
        self._obs_space = gym.spaces.Dict(
            {
                "observation": gym.spaces.Box(-np.inf, np.inf, D, np.float32),
                "action_mask": gym.spaces.Box(0, 1, (n_a,), np.int8),
            }
        )
        self._act_space = gym.spaces.Discrete(n_a)

    def observation_space(self, agent: str) -> gym.Space:
        return self._obs_space

    def action_space(self, agent: str) -> gym.Space:
        return self._act_space

    def state(self) -> np.ndarray:
        return self._env.view.observations()["state"][0]

    def _convert(self, obs):
        return {a: {"observation": o["obs"], "action_mask": o["action_mask"].astype(np.int8)} for a, o in obs.items()}

    def reset(self, seed: Optional[int] = None, options: Optional[dict] = None):
        obs, infos = self._env.reset(seed=seed, options=options)
        self.agents = list(self.possible_agents)
        return self._convert(obs), infos

    def step(self, actions: Mapping[str, int]):
        obs, rew, term, trunc, info = self._env.step(actions)
        done = term["__all__"] or trunc["__all__"]
        out = (
            self._convert(obs),
            rew,
            {a: term[a] for a in self.agents},
            {a: trunc[a] for a in self.agents},
            {a: info[a] for a in self.agents},
        )
        if done:
            self.agents = []
        return out

    def render(self):
        engine = getattr(self._env.backend, "engine", None)
        if engine is None:
            raise NotImplementedError("render() draws the embedded engine only")
        from rllib_uas.envs.engine.render import render_frame

        return render_frame(engine, 0)

    def close(self) -> None:
        self._env.backend.close()


def _agent_type(agent: str) -> str:
    """PettingZoo names agents '<type>_<index>'."""
    return agent.rsplit("_", 1)[0] if "_" in agent else agent


class PettingZooTeamEnv(gym.Env):
    """A masked, discrete PettingZoo ParallelEnv as one team agent with a UAS.

    semantics: {agent type: [meaning of native action k, ...]} (see `rllib_uas.uas`); by default
    native action k means "a<k>" for every type (aligned by index) and each agent type is a group.
    agent_types: {agent id: type}; by default the type is the agent name before its last "_".
    team_reward: how per-agent rewards become the team reward: "mean" (default: a shared reward
    stays as it is), "sum", or a callable taking the reward dict.
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        env: ParallelEnv | Callable[[], ParallelEnv],
        semantics: Optional[Mapping[str, Sequence[Optional[str]]]] = None,
        groups: Optional[Mapping[str, int]] = None,
        team_reward: Any = "mean",
        agent_types: Optional[Mapping[str, str]] = None,
    ):
        self.env = env() if callable(env) and not isinstance(env, ParallelEnv) else env
        self.agent_ids = list(self.env.possible_agents)
        types = [(agent_types or {}).get(a) or _agent_type(a) for a in self.agent_ids]
        for a in self.agent_ids:
            if not isinstance(self.env.action_space(a), gym.spaces.Discrete):
                raise TypeError(f"agent {a!r} has action space {self.env.action_space(a)}; only Discrete is supported")
        n_native = max(int(self.env.action_space(a).n) for a in self.agent_ids)
        if semantics is None:
            semantics = {}
            for a, t in zip(self.agent_ids, types):
                k = int(self.env.action_space(a).n)
                semantics[t] = [f"a{i}" for i in range(k)] + [None] * (n_native - k)
            groups = groups or {t: i for i, t in enumerate(dict.fromkeys(types))}
        self.uas = UnifiedActionSpace(semantics, types, groups)
        self.team_reward = team_reward
        self._dims = [int(np.prod(self._obs_part(self.env.observation_space(a)).shape)) for a in self.agent_ids]
        D, n, A = max(self._dims), len(self.agent_ids), self.uas.size
        state_dim = self._state_dim(D)
        self.observation_space = team_observation_space(D, state_dim, self.uas.uas_to_native >= 0, self.uas.agent_group)
        self.action_space = gym.spaces.MultiDiscrete(np.full(n, A, dtype=np.int64))
        self._last: Dict[str, Any] = {}

    @staticmethod
    def _obs_part(space: gym.Space) -> gym.Space:
        if isinstance(space, gym.spaces.Dict):
            if "observation" not in space.spaces:
                raise ValueError("Dict observations need an 'observation' entry (PettingZoo's masking convention)")
            return space["observation"]
        return space

    def _state_dim(self, D: int) -> int:
        """The global state's size: the env's `state_space`, else its `state()`; many envs answer `state()`
        only after a reset, so one reset probes it. Without a state, the agents' observations stand in
        (decided here once, so the space and every observation agree)."""
        self._has_state = True
        space = getattr(self.env, "state_space", None)
        if isinstance(space, gym.spaces.Box):
            return int(np.prod(space.shape))
        for probe in (False, True):
            try:
                if probe:
                    self.env.reset(seed=0)
                return int(np.prod(np.asarray(self.env.state()).shape))
            except Exception:  # NotImplementedError, AttributeError, or the env's own "reset first"
                continue
        self._has_state = False
        return D * len(self.agent_ids)

    def _team_obs(self, obs: Mapping[str, Any], infos: Mapping[str, Any]) -> Dict[str, np.ndarray]:
        n, D = len(self.agent_ids), self.observation_space["obs"].shape[1]
        flat = np.zeros((n, D), np.float32)
        native = np.zeros((n, self.uas.n_native), np.int8)
        alive = np.zeros(n, np.float32)
        for i, a in enumerate(self.agent_ids):
            if a not in obs:
                native[i, 0] = 1  # gone: a placeholder action that is never sent
                continue
            o = obs[a]
            mask = None
            if isinstance(o, Mapping):
                mask, o = o.get("action_mask"), o["observation"]
            if mask is None:
                mask = (infos.get(a) or {}).get("action_mask")
            if mask is None:
                raise ValueError(f"agent {a!r} gave no action mask (in obs['action_mask'] or infos['action_mask'])")
            flat[i, : self._dims[i]] = np.asarray(o, np.float32).ravel()
            native[i, : len(mask)] = np.asarray(mask, np.int8)
            alive[i] = 1.0
        state = np.asarray(self.env.state(), np.float32).ravel() if self._has_state else flat.ravel()
        return {
            "obs": flat,
            "action_mask": self.uas.uas_mask(native).astype(np.float32),
            "state": state,
            "alive": alive,
            "group": self.uas.agent_group.astype(np.float32),
            "last_action": self._last_action.copy(),
        }

    def reset(self, *, seed: Optional[int] = None, options: Optional[dict] = None):
        super().reset(seed=seed)
        obs, infos = self.env.reset(seed=seed, options=options)
        self._last_action = np.zeros(self.action_space.shape + (self.uas.size,), np.float32)
        self._last = self._team_obs(obs, infos)
        return self._last, {}

    def step(self, action):
        native = self.uas.to_native(np.asarray(action, dtype=np.int64))
        live = set(self.env.agents)
        acts = {a: int(native[i]) for i, a in enumerate(self.agent_ids) if a in live}
        for i, a in enumerate(self.agent_ids):
            if a in live and not self._last["action_mask"][i, int(np.asarray(action)[i])]:
                raise ValueError(f"agent {a!r}: UAS action {int(np.asarray(action)[i])} is not available")
        obs, rew, term, trunc, infos = self.env.step(acts)
        self._last_action = last_action_onehot(action, self.uas.size)
        if callable(self.team_reward):
            reward = float(self.team_reward(rew))
        elif self.team_reward == "sum":
            reward = float(sum(rew.values()))
        elif self.team_reward == "mean":
            reward = float(np.mean(list(rew.values()))) if rew else 0.0
        else:
            raise ValueError(f"team_reward must be 'mean', 'sum' or a callable, got {self.team_reward!r}")
        self._last = self._team_obs({a: o for a, o in obs.items() if a in self.env.agents}, infos)
        done = not self.env.agents
        terminated = done and all(term.get(a, True) for a in term) and not any(trunc.values())
        truncated = done and not terminated
        return self._last, reward, terminated, truncated, {}
