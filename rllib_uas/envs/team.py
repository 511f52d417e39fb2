"""The team view of SMAC: one RLlib agent whose observation holds every SMAC agent.

Every timestep is one row with all agents, the global state and the team reward (docs/architecture.md: what
the CGI loss, the QMIX mixer and a centralized V(s) need). `TeamVectorEnv` is a native gymnasium
VectorEnv over the batched backend, so an RLlib `SingleAgentEnvRunner` with
`gym_env_vectorize_mode="vector_entry_point"` steps all its battles in one compiled call.

Observation (per env): Dict(obs [n, D], action_mask [n, A], state [S], alive [n], group [n],
last_action [n, A] [, agent_state [n, S + D]]); action: MultiDiscrete([A] * n), UAS indices when `uas` is on (default).
The time limit is a truncation; a win, loss or draw a termination.
"""
from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Tuple

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from rllib_uas.envs.backend import make_backend
from rllib_uas.uas import UnifiedActionSpace, smac_uas


def static_mask_space(static: np.ndarray) -> gym.spaces.Box:
    """action_mask space whose `high` is each agent's static availability (its group's AM_g row)."""
    return gym.spaces.Box(np.zeros(static.shape, np.float32), static.astype(np.float32), dtype=np.float32)


def group_space(agent_group: np.ndarray) -> gym.spaces.Box:
    """group space with low == high == each agent's group id, so modules read groups off the space."""
    g = np.asarray(agent_group, np.float32)
    return gym.spaces.Box(g, g.copy(), dtype=np.float32)


def space_groups(observation_space: gym.spaces.Dict):
    """(agent_group [n], group_masks [G, A]) from a team observation space."""
    agent_group = observation_space["group"].high.astype(np.int64)
    static = observation_space["action_mask"].high > 0
    masks = np.zeros((int(agent_group.max()) + 1, static.shape[-1]), bool)
    for i, g in enumerate(agent_group):
        masks[g] |= static[i]
    return agent_group, masks


class TeamView:
    """Spaces and batched observation/action conversion for a backend, UAS or native actions."""

    def __init__(self, backend, uas: bool = True, agent_state: bool = False):
        self.backend, self.agent_state = backend, agent_state
        n, n_e = backend.n_agents, backend.n_enemies
        self.space_map: UnifiedActionSpace = smac_uas(n, n_e, backend.healer_agents)
        self.uas = bool(uas)
        self.n_agents = n
        self.n_actions = self.space_map.size if self.uas else backend.n_actions
        self.groups = self.space_map.agent_group.astype(np.float32)
        D, S = backend.obs_size, backend.state_size
        static = (self.space_map.uas_to_native >= 0) if self.uas else np.ones((n, self.n_actions), bool)
        spaces = {
            "obs": gym.spaces.Box(-np.inf, np.inf, (n, D), np.float32),
            "action_mask": static_mask_space(static),
            "state": gym.spaces.Box(-np.inf, np.inf, (S,), np.float32),
            "alive": gym.spaces.Box(0.0, 1.0, (n,), np.float32),
            "group": group_space(self.space_map.agent_group),
            # one-hot of each agent's previous action (in the action space used), zeros after reset
            "last_action": gym.spaces.Box(0.0, 1.0, (n, self.n_actions), np.float32),
        }
        if agent_state:
            spaces["agent_state"] = gym.spaces.Box(-np.inf, np.inf, (n, S + D), np.float32)
        self.observation_space = gym.spaces.Dict(spaces)
        self.action_space = gym.spaces.MultiDiscrete(np.full(n, self.n_actions, dtype=np.int64))

    def observations(self) -> Dict[str, np.ndarray]:
        """Batched obs dict, each array with a leading env axis."""
        b = self.backend
        avail = b.avail_actions()
        mask = self.space_map.uas_mask(avail) if self.uas else avail
        obs, state = b.observations(), b.states()
        E = obs.shape[0]
        out = {"obs": obs, "action_mask": mask.astype(np.float32), "state": state,
               "alive": (avail[..., 1] == 1).astype(np.float32),
               "group": np.broadcast_to(self.groups, (E, self.n_agents)).copy(),
               "last_action": self._last_action(E)}
        if self.agent_state:
            out["agent_state"] = np.concatenate(
                [np.broadcast_to(state[:, None, :], (E, self.n_agents, state.shape[-1])), obs], -1)
        return out

    def _last_action(self, E: int) -> np.ndarray:
        last = getattr(self.backend, "last_action", None)        # [E, n, N] native one-hot
        if last is None:
            return np.zeros((E, self.n_agents, self.n_actions), np.float32)
        if not self.uas:
            return np.asarray(last, np.float32)
        out = np.zeros((E, self.n_agents, self.n_actions), np.float32)
        e, i, k = np.nonzero(last)
        u = self.space_map.native_to_uas[i, k]
        ok = u >= 0
        out[e[ok], i[ok], u[ok]] = 1.0
        return out

    def to_native(self, actions: np.ndarray) -> np.ndarray:
        a = np.asarray(actions, dtype=np.int64)
        if a.shape[-1:] != (self.n_agents,):
            raise ValueError(f"team action must hold one action per agent ({self.n_agents}), got shape {a.shape}")
        return self.space_map.to_native(a) if self.uas else a


def _infos(res, mask: np.ndarray) -> Dict[str, np.ndarray]:
    info = {"battle_won": res.battle_won, "dead_allies": res.dead_allies, "dead_enemies": res.dead_enemies}
    out: Dict[str, np.ndarray] = {}
    for k, v in info.items():
        out[k], out["_" + k] = v, mask.copy()
    return out


class TeamVectorEnv(gym.vector.VectorEnv):
    """`num_envs` SMAC battles as one gymnasium VectorEnv (next-step autoreset, gymnasium 1.x)."""

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, env_config: Optional[Mapping[str, Any]] = None, num_envs: Optional[int] = None):
        cfg = dict(env_config or {})
        self.num_envs = int(num_envs if num_envs is not None else cfg.get("num_envs", 1))
        self.backend = make_backend(cfg, n_envs=self.num_envs, seed=cfg.get("seed"))
        self.view = TeamView(self.backend, uas=cfg.get("uas", True), agent_state=cfg.get("agent_state", False))
        self.single_observation_space = self.view.observation_space
        self.single_action_space = self.view.action_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.map_name = cfg.get("map_name", "3m")
        self._autoreset = np.zeros(self.num_envs, dtype=bool)   # ended at the last step: reset at the next
        self._held = np.zeros(self.num_envs, dtype=bool)

    def reset(self, *, seed: Optional[int] = None, options: Optional[dict] = None):
        if seed is not None:
            self.backend.seed(seed)
        self.backend.reset()
        self._autoreset[:] = False
        self._held[:] = False
        return self.view.observations(), {}

    def hold(self, env_mask: np.ndarray) -> None:
        """Hold the selected envs until the next `reset()`: they are neither stepped nor autoreset, and
        return their current observation with reward 0 and no termination. Used to play exactly one
        episode per env (evaluation rounds, `rllib_uas.env_runner`)."""
        self._held |= np.asarray(env_mask, dtype=bool)

    def step(self, actions):
        restart = self._autoreset & ~self._held       # envs that ended last step: only reset, not stepped
        active = ~self._autoreset & ~self._held
        if active.all():
            native = self.view.to_native(actions)
        else:  # inactive envs' actions are ignored: a no-op for the conversion, any available one for the check
            keep = active[:, None]
            native = np.where(keep, self.view.to_native(np.where(keep, np.asarray(actions), 0)),
                              self.backend.avail_actions().argmax(-1))
        res = self.backend.step(native, active=None if active.all() else active)
        if restart.any():
            self.backend.reset(restart)
            self._autoreset[restart] = False
        terminated = res.terminated & ~res.timeout & active
        truncated = res.timeout & active
        reward = np.where(active, res.reward, 0.0).astype(np.float32)
        self._autoreset |= terminated | truncated
        return self.view.observations(), reward, terminated, truncated, _infos(res, active)

    def close_extras(self, **kwargs) -> None:
        if hasattr(self, "backend"):
            self.backend.close()


class TeamEnv(gym.Env):
    """One SMAC battle with the team observation (a single-env `TeamVectorEnv`)."""

    metadata = {"render_modes": ["rgb_array"]}

    def __init__(self, env_config: Optional[Mapping[str, Any]] = None):
        cfg = dict(env_config or {})
        cfg.pop("num_envs", None)
        self._vec = TeamVectorEnv(cfg, num_envs=1)
        self.observation_space = self._vec.single_observation_space
        self.action_space = self._vec.single_action_space
        self.view = self._vec.view

    @property
    def backend(self):
        return self._vec.backend

    def reset(self, *, seed: Optional[int] = None, options: Optional[dict] = None) -> Tuple[dict, dict]:
        super().reset(seed=seed)
        obs, _ = self._vec.reset(seed=seed)
        return {k: v[0] for k, v in obs.items()}, {}

    def step(self, action):
        action = np.asarray(action)
        obs, rew, term, trunc, info = self._vec.step(action[None, :])
        self._vec._autoreset[:] = False  # a single env is reset by its caller
        return ({k: v[0] for k, v in obs.items()}, float(rew[0]), bool(term[0]), bool(trunc[0]),
                {k: v[0].item() for k, v in info.items() if not k.startswith("_")})

    def render(self):
        from rllib_uas.envs.engine.render import render_frame

        engine = getattr(self.backend, "engine", None)
        if engine is None:
            raise NotImplementedError("render() draws the embedded engine; the sc2 backend renders in the game")
        return render_frame(engine, 0)


def make_team_env(env_config: Optional[Mapping[str, Any]] = None):
    """RLlib env creator: a `TeamVectorEnv` when RLlib asks for `num_envs`, else a `TeamEnv`."""
    cfg = dict(env_config or {})
    if "num_envs" in cfg:
        return TeamVectorEnv(cfg, num_envs=cfg["num_envs"])
    return TeamEnv(cfg)
