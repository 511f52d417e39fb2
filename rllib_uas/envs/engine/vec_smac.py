"""SMAC episodes over the batched engine: one object, `n_envs` battles, SMAC semantics per battle.

Both the pymarl-style `StarCraft2Env` (n_envs=1) and the RLlib vector env build on this class, so
the reward, termination, masks and layouts are one implementation.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Dict, Optional

import numpy as np

from rllib_uas.envs.engine.battle import BattleEngine
from rllib_uas.envs.engine.features import FeatureFlags, Features
from rllib_uas.envs.engine.rules import DRAW, LOST, RUNNING, WON, RewardConfig, battle_reward, game_end_code, \
    max_reward


@dataclass
class StepResult:
    reward: np.ndarray        # [E] float64, scaled as configured
    terminated: np.ndarray    # [E] bool: win, loss, draw or time limit
    battle_won: np.ndarray    # [E] bool
    timeout: np.ndarray       # [E] bool: ended by the episode limit
    dead_allies: np.ndarray   # [E] int
    dead_enemies: np.ndarray  # [E] int


def check_actions(actions: np.ndarray, avail: np.ndarray) -> np.ndarray:
    """Validate SMAC actions [E, n_agents] against availability [E, n_agents, n_actions]; int64 actions."""
    a = np.asarray(actions)
    n_envs, n_agents, n_actions = avail.shape
    if a.shape != (n_envs, n_agents):
        raise ValueError(f"actions must have shape (n_envs={n_envs}, n_agents={n_agents}), got {a.shape}")
    if not np.issubdtype(a.dtype, np.integer):
        if not np.all(np.equal(np.mod(a, 1), 0)):
            raise ValueError(f"actions must be integers, got {a.dtype} values {a.ravel()[:8]}")
    a = a.astype(np.int64)
    in_range = (a >= 0) & (a < n_actions)
    ok = in_range & (np.take_along_axis(avail, np.clip(a, 0, n_actions - 1)[..., None], 2)[..., 0] == 1)
    if not ok.all():
        e, i = map(int, np.argwhere(~ok)[0])
        allowed = np.flatnonzero(avail[e, i]).tolist()
        where = f"env {e}, agent {i}" if n_envs > 1 else f"agent {i}"
        raise ValueError(f"{where}: action {int(a[e, i])} is not available; available actions: {allowed} "
                         f"(see get_avail_agent_actions)")
    return a


def split_kwargs(kwargs: Dict[str, Any]):
    """Split StarCraft2Env keyword arguments into feature flags, reward config and the rest."""
    ff = {f.name for f in fields(FeatureFlags)}
    rf = {f.name for f in fields(RewardConfig)}
    flags = FeatureFlags(**{k: v for k, v in kwargs.items() if k in ff})
    reward = RewardConfig(**{k: v for k, v in kwargs.items() if k in rf})
    rest = {k: v for k, v in kwargs.items() if k not in ff and k not in rf}
    return flags, reward, rest


class VectorizedSMAC:
    def __init__(self, map_name: str, n_envs: int = 1, seed: Optional[int] = None, step_mul: int = 8,
                 move_amount: float = 2.0, continuing_episode: bool = False,
                 flags: FeatureFlags = FeatureFlags(), reward: RewardConfig = RewardConfig()):
        self.engine = BattleEngine(map_name, n_envs=n_envs, seed=seed, step_mul=step_mul, move_amount=move_amount)
        self.features = Features(self.engine, flags)
        self.flags, self.reward_cfg = flags, reward
        self.continuing_episode = continuing_episode
        self.n_envs, self.n_agents, self.n_enemies = n_envs, self.engine.n_agents, self.engine.n_enemies
        self.n_actions = self.engine.n_actions
        self.episode_limit = self.engine.spec.limit
        self.max_reward = max_reward(self.engine.tables, reward)
        self.obs_size = self.features.obs_size + int(flags.obs_timestep_number)  # SMAC's size quirk
        self.state_size = self.features.state_size
        t = self.engine.tables
        # Medivacs heal (not attack) with actions 6+j only under the MMM map rules
        self.healer_agents = t.is_healer[:self.n_agents] & self.engine.spec.map_type.medivac_rules
        E, U = n_envs, self.engine.n_units
        self.death_tracker = np.zeros((E, U), dtype=bool)
        self.last_action = np.zeros((E, self.n_agents, self.n_actions), dtype=np.float32)
        self.episode_steps = np.zeros(E, dtype=np.int64)
        self._avail: Optional[np.ndarray] = None
        self._obs: Optional[np.ndarray] = None
        self._state: Optional[np.ndarray] = None

    # ------------------------------------------------------------------ episode control
    def reset(self, env_mask: Optional[np.ndarray] = None) -> None:
        m = np.ones(self.n_envs, dtype=bool) if env_mask is None else np.asarray(env_mask, dtype=bool)
        self.engine.reset(m)
        self.death_tracker[m] = False
        self.last_action[m] = 0.0
        self.episode_steps[m] = 0
        self._invalidate()

    def seed(self, seed: Optional[int]) -> None:
        """Reseed the engine's random stream (cooldown jitter, random attack points)."""
        self.engine.rng = np.random.default_rng(seed)

    def close(self) -> None:
        pass

    def _invalidate(self) -> None:
        self._avail = self._obs = self._state = None

    def check_actions(self, actions: np.ndarray) -> np.ndarray:
        return check_actions(actions, self.avail_actions())

    def step(self, actions: np.ndarray, validate: bool = True, active: Optional[np.ndarray] = None) -> StepResult:
        """Step every env, or only the envs where `active` [E] is True.

        An inactive env (one that ended and waits for its reset) is not simulated: its units are held
        for the step, so it neither changes nor draws from the random stream; its result row is
        meaningless and must be ignored. An env that ended must be reset or held, never stepped.
        `validate=False` skips the availability check: only for raw orders such as SMAC's heuristic AI.
        """
        a = self.check_actions(actions) if validate else np.asarray(actions, dtype=np.int64)
        eng = self.engine
        held = None if active is None else ~np.asarray(active, dtype=bool)
        if held is not None and not held.any():
            held = None
        if held is not None:
            a = np.where(held[:, None], 0, a)                  # no orders for held envs
            alive_before, last_before = eng.alive[held].copy(), self.last_action[held].copy()
            eng.alive[held] = False                            # dead units neither move, fire nor regenerate
        prev_hs = eng.hp + eng.sh
        self.last_action[...] = 0.0
        np.put_along_axis(self.last_action, a[..., None], 1.0, 2)
        eng.step(a)
        if held is not None:
            eng.alive[held] = alive_before
            self.last_action[held] = last_before
        self._invalidate()
        self.episode_steps += 1 if held is None else ~held
        cfg = self.reward_cfg
        reward = battle_reward(cfg, self.n_agents, prev_hs, eng.hp, eng.sh, self.death_tracker)
        code = game_end_code(eng.tables, eng.alive)
        won, lost = code == WON, code == LOST
        ended = code != RUNNING
        if cfg.reward_sparse:
            reward = np.where(won, 1.0, np.where(lost, -1.0, reward))
        else:
            reward = reward + np.where(won, cfg.reward_win, 0.0) + np.where(lost, cfg.reward_defeat, 0.0)
        timeout = ~ended & (self.episode_steps >= self.episode_limit)
        if cfg.reward_scale:
            reward = reward / (self.max_reward / cfg.reward_scale_rate)
        n_a = self.n_agents
        return StepResult(
            reward=reward, terminated=ended | timeout, battle_won=won, timeout=timeout,
            dead_allies=(~eng.alive[:, :n_a]).sum(1), dead_enemies=(~eng.alive[:, n_a:]).sum(1))

    # ------------------------------------------------------------------ features (cached per step)
    def avail_actions(self) -> np.ndarray:
        if self._avail is None:
            self._avail = self.features.avail_actions()
        return self._avail

    def observations(self) -> np.ndarray:
        if self._obs is None:
            self._obs = self.features.observations(self.avail_actions(), self.last_action, self.episode_steps,
                                                   self.episode_limit)
        return self._obs

    def states(self) -> np.ndarray:
        if self._state is None:
            obs = self.observations() if self.flags.obs_instead_of_state else None
            self._state = self.features.state(obs, self.last_action, self.episode_steps, self.episode_limit)
        return self._state


__all__ = ["VectorizedSMAC", "StepResult", "check_actions", "split_kwargs", "WON", "LOST", "DRAW", "RUNNING"]
