"""The team view of SMAC: one RLlib agent whose observation holds every SMAC agent.

Every timestep is one row with all agents, the global state and the team reward (docs/architecture.md: what
the CGI loss, the QMIX mixer and a centralized V(s) need). `TeamVectorEnv` is a native gymnasium
VectorEnv over the batched backend, so an RLlib `SingleAgentEnvRunner` with
`gym_env_vectorize_mode="vector_entry_point"` steps all its battles in one compiled call.

Observation (per env): the team observation of `rllib_uas.team_obs` (obs [n, D], action_mask [n, A],
state [S], alive [n], group [n], last_action [n, A] [, agent_state [n, S + D]]); action:
MultiDiscrete([A] * n), UAS indices when `uas` is on (default).
A win, loss or draw is a termination. The time limit is a truncation, which the learners bootstrap
(docs/algorithms.md): the env_config flag `continuing_episode` (SMAC's name) is True here unless given.
`continuing_episode: False` makes the time limit a termination, as PyMARL2 and MAPPO treat it on SMAC
(SMAC's own default, which `StarCraft2Env` keeps).
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Tuple

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from rllib_uas.envs.backend import continuing_episode_of, env_config_of, make_backend
from rllib_uas.envs.engine.vec_smac import integral_actions
from rllib_uas.team_obs import GROUP_MASKS, last_action_onehot, team_observation_space
from rllib_uas.uas import UnifiedActionSpace, smac_uas
from rllib_uas.value_types import is_integer


class TeamView:
    """Spaces and batched observation/action conversion for a backend, UAS or native actions.

    With fixed teams each agent's group is fixed and the UAS maps per agent. When the backend draws its
    teams at every reset (`backend.dynamic_groups`, SMACv2), the UAS is the union over the types that can
    appear, fixed per scenario, and each agent's group is read from the backend at every step: masks,
    actions and last actions are converted through its group's row (`group_uas_to_native` [G, A])."""

    def __init__(self, backend, uas: bool = True, agent_state: bool = False):
        self.backend, self.agent_state = backend, agent_state
        n, n_e = backend.n_agents, backend.n_enemies
        self.dynamic = bool(getattr(backend, "dynamic_groups", False))
        if self.dynamic:  # one prototype row per group: attackers, then healers when a healer can be drawn
            rows = [False, True] if backend.can_heal else [False]
            self.space_map: UnifiedActionSpace = smac_uas(n, n_e, rows, backend.n_actions)
        else:
            self.space_map = smac_uas(n, n_e, backend.healer_agents)
        self.uas = bool(uas)
        self.n_agents = n
        self.n_actions = self.space_map.size if self.uas else backend.n_actions
        D, S = backend.obs_size, backend.state_size
        if self.dynamic:
            rows = self.space_map
            self.group_uas_to_native, self.group_native_to_uas = rows.uas_to_native, rows.native_to_uas  # [G, .]
            G = rows.n_agents
            masks = rows.group_masks if self.uas else np.ones((G, self.n_actions), bool)
            static = np.broadcast_to(masks.any(0), (n, self.n_actions))
            self.observation_space = team_observation_space(D, S, static, None, agent_state, group_masks=masks)
            self._group_masks = masks.astype(np.float32)
        else:
            self.groups = self.space_map.agent_group.astype(np.float32)
            static = (self.space_map.uas_to_native >= 0) if self.uas else np.ones((n, self.n_actions), bool)
            self.observation_space = team_observation_space(D, S, static, self.space_map.agent_group, agent_state)
        self.action_space = gym.spaces.MultiDiscrete(np.full(n, self.n_actions, dtype=np.int64))

    def current_groups(self) -> np.ndarray:
        """[E, n] int64: each agent's group in each env's current battle."""
        if not self.dynamic:
            return np.broadcast_to(self.space_map.agent_group, (self.backend.n_envs, self.n_agents))
        return self.backend.healer_agents_of().astype(np.int64)  # group 0 attacks, group 1 heals

    def observations(self) -> Dict[str, np.ndarray]:
        """Batched obs dict, each array with a leading env axis."""
        b = self.backend
        avail = b.avail_actions()
        obs, state = b.observations(), b.states()
        E = obs.shape[0]
        groups = self.current_groups() if self.dynamic else None
        if not self.uas:
            mask = avail
        elif self.dynamic:
            mask = self._uas_mask(avail, groups)
        else:
            mask = self.space_map.uas_mask(avail)
        out = {
            "obs": obs,
            "action_mask": mask.astype(np.float32),
            "state": state,
            "alive": (avail[..., 1] == 1).astype(np.float32),
            "group": (groups if self.dynamic else np.broadcast_to(self.groups, (E, self.n_agents))).astype(np.float32),
            "last_action": self._last_action(E, groups),
        }
        if self.dynamic:
            out[GROUP_MASKS] = np.broadcast_to(self._group_masks, (E,) + self._group_masks.shape).copy()
        if self.agent_state:
            out["agent_state"] = np.concatenate(
                [np.broadcast_to(state[:, None, :], (E, self.n_agents, state.shape[-1])), obs], -1
            )
        return out

    def _uas_mask(self, avail: np.ndarray, groups: np.ndarray) -> np.ndarray:
        """Native availability [E, n, N] -> UAS availability [E, n, A] through each agent's group row."""
        u2n = self.group_uas_to_native[groups]  # [E, n, A]
        valid = u2n >= 0
        return np.where(valid, np.take_along_axis(avail, np.where(valid, u2n, 0), -1), 0).astype(avail.dtype)

    def _last_action(self, E: int, groups: Optional[np.ndarray]) -> np.ndarray:
        last = getattr(self.backend, "last_action", None)  # [E, n, N] native one-hot
        if last is None:
            return np.zeros((E, self.n_agents, self.n_actions), np.float32)
        if not self.uas:
            # a copy: the backend rewrites its own array at the next step, and an episode keeps this one
            return np.array(last, dtype=np.float32)
        native = np.asarray(last).argmax(-1)  # [E, n]; rows of zeros: no action yet
        if self.dynamic:
            uas = np.take_along_axis(self.group_native_to_uas[groups], native[..., None], -1)[..., 0]
        else:
            uas = self.space_map.native_to_uas[np.arange(self.n_agents), native]
        return last_action_onehot(uas, self.n_actions, valid=np.asarray(last).any(-1) & (uas >= 0))

    def to_native(self, actions: np.ndarray) -> np.ndarray:
        a = integral_actions(actions)  # a fraction or a string is refused, not truncated
        if a.shape[-1:] != (self.n_agents,):
            raise ValueError(f"team action must hold one action per agent ({self.n_agents}), got shape {a.shape}")
        if not self.uas:
            return a
        if not self.dynamic:
            return self.space_map.to_native(a)
        if ((a < 0) | (a >= self.n_actions)).any():
            raise ValueError(
                f"UAS actions must lie in [0, {self.n_actions}), got {a[(a < 0) | (a >= self.n_actions)][:5]}"
            )
        groups = self.current_groups()  # [E, n]
        native = np.take_along_axis(self.group_uas_to_native[groups], a[..., None], -1)[..., 0]
        if (native < 0).any():
            e, i = (int(v) for v in np.argwhere(native < 0)[0])
            g = int(groups[e, i])
            raise ValueError(
                f"env {e}, agent {i} (group {g} this episode) cannot take UAS action {int(a[e, i])} "
                f"({self.space_map.meanings[int(a[e, i])]}); its group's actions: "
                f"{np.flatnonzero(self.group_uas_to_native[g] >= 0).tolist()}"
            )
        return native


def _infos(res, mask: np.ndarray) -> Dict[str, np.ndarray]:
    info = {
        "battle_won": res.battle_won,
        "dead_allies": res.dead_allies,
        "dead_enemies": res.dead_enemies,
        "timeout": res.timeout,  # ended by the episode limit, terminal or not
    }
    out: Dict[str, np.ndarray] = {}
    for k, v in info.items():
        out[k], out["_" + k] = v, mask.copy()
    return out


def episode_ends(res, active: np.ndarray, continuing_episode: bool) -> Tuple[np.ndarray, np.ndarray]:
    """(terminated [E], truncated [E]) of a backend step for the active envs: the time limit is a
    truncation with `continuing_episode`, otherwise a termination (SMAC's default)."""
    ended = res.terminated & active
    truncated = ended & res.timeout if continuing_episode else np.zeros_like(ended)
    return ended & ~truncated, truncated


class TeamVectorEnv(gym.vector.VectorEnv):
    """`num_envs` SMAC battles as one gymnasium VectorEnv (next-step autoreset, gymnasium 1.x)."""

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(
        self, env_config: Optional[Mapping[str, Any]] = None, num_envs: Optional[int] = None, autoreset: bool = True
    ):
        """`autoreset=False`: a finished battle waits for the caller's `reset()` (a single `TeamEnv`)."""
        cfg = env_config_of(env_config)
        self.autoreset = autoreset
        n = num_envs if num_envs is not None else cfg.get("num_envs", 1)
        if not is_integer(n) or n < 1:
            raise ValueError(f"num_envs must be a positive integer (battles stepped together), got {n!r}")
        self.num_envs = int(n)
        self.backend = make_backend(cfg, n_envs=self.num_envs, seed=cfg.get("seed"))
        self.view = TeamView(self.backend, uas=cfg.get("uas", True), agent_state=cfg.get("agent_state", False))
        self.single_observation_space = self.view.observation_space
        self.single_action_space = self.view.action_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.map_name = cfg.get("map_name", "3m")
        self.continuing_episode = continuing_episode_of(cfg)
        self._autoreset = np.zeros(self.num_envs, dtype=bool)  # ended at the last step: reset at the next
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
        restart = self._autoreset & ~self._held  # envs that ended last step: only reset, not stepped
        active = ~self._autoreset & ~self._held
        if active.all():
            native = self.view.to_native(actions)
        else:  # inactive envs' actions are ignored: a no-op for the conversion, any available one for the check
            keep = active[:, None]
            native = np.where(
                keep,
                self.view.to_native(np.where(keep, np.asarray(actions), 0)),
                self.backend.avail_actions().argmax(-1),
            )
        res = self.backend.step(native, active=None if active.all() else active)
        if restart.any():
            self.backend.reset(restart)
            self._autoreset[restart] = False
        terminated, truncated = episode_ends(res, active, self.continuing_episode)
        reward = np.where(active, res.reward, 0.0).astype(np.float32)
        if self.autoreset:
            self._autoreset |= terminated | truncated
        return self.view.observations(), reward, terminated, truncated, _infos(res, active)

    def close_extras(self, **kwargs) -> None:
        if hasattr(self, "backend"):
            self.backend.close()


class TeamEnv(gym.Env):
    """One SMAC battle with the team observation (a single-env `TeamVectorEnv`)."""

    metadata = {"render_modes": ["rgb_array"]}

    def __init__(self, env_config: Optional[Mapping[str, Any]] = None):
        cfg = env_config_of(env_config)
        cfg.pop("num_envs", None)
        self._vec = TeamVectorEnv(cfg, num_envs=1, autoreset=False)  # its caller resets it
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
        return (
            {k: v[0] for k, v in obs.items()},
            float(rew[0]),
            bool(term[0]),
            bool(trunc[0]),
            {k: v[0].item() for k, v in info.items() if not k.startswith("_")},
        )

    def render(self):
        from rllib_uas.envs.engine.render import render_frame

        engine = getattr(self.backend, "engine", None)
        if engine is None:
            raise NotImplementedError("render() draws the embedded engine; the sc2 backend renders in the game")
        return render_frame(engine, 0)


def make_team_env(env_config: Optional[Mapping[str, Any]] = None):
    """RLlib env creator: a `TeamVectorEnv` when RLlib asks for `num_envs`, else a `TeamEnv`."""
    cfg = env_config_of(env_config)
    if "num_envs" in cfg:
        return TeamVectorEnv(cfg, num_envs=cfg["num_envs"])
    return TeamEnv(cfg)
