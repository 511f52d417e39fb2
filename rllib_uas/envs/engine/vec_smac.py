"""SMAC episodes over the batched engine: one object, `n_envs` battles, SMAC semantics per battle.

Both the pymarl-style `StarCraft2Env` (n_envs=1) and the RLlib vector env build on this class, so
the reward, termination, masks and layouts are one implementation.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, fields
from typing import Any, Dict, Optional, Sequence

import numpy as np

from rllib_uas.envs.engine.actions import healing_agents
from rllib_uas.envs.engine.battle import BattleEngine
from rllib_uas.envs.engine.compile_once import ensure_compiled
from rllib_uas.envs.engine.features import FeatureFlags, Features
from rllib_uas.envs.engine.jit import njit
from rllib_uas.envs.engine.maps import Layout
from rllib_uas.envs.engine.rules import DRAW, LOST, RUNNING, WON, OutcomeConsts, RewardConfig, max_reward, step_outcome
from rllib_uas.envs.engine.scenarios import Scenario


@dataclass
class StepResult:
    reward: np.ndarray  # [E] float64, scaled as configured
    terminated: np.ndarray  # [E] bool: win, loss, draw or time limit
    battle_won: np.ndarray  # [E] bool
    timeout: np.ndarray  # [E] bool: ended by the episode limit
    dead_allies: np.ndarray  # [E] int
    dead_enemies: np.ndarray  # [E] int


@njit
def _first_unavailable(a, avail):
    """Flat index (env * n_agents + agent) of the first action outside the mask, or -1."""
    n_actions = avail.shape[2]
    for e in range(a.shape[0]):
        for i in range(a.shape[1]):
            if not (0 <= a[e, i] < n_actions and avail[e, i, a[e, i]] == 1):
                return e * a.shape[1] + i
    return -1


@njit
def _before_step(a, active, hp, sh, last_action, prev_hs):
    """Health + shields before the step, and the one-hot last action of the active envs."""
    for e in range(a.shape[0]):
        for u in range(hp.shape[1]):
            prev_hs[e, u] = hp[e, u] + sh[e, u]
        if active[e]:
            last_action[e] = 0.0
            for i in range(a.shape[1]):
                last_action[e, i, a[e, i]] = 1.0


def check_actions(actions: np.ndarray, avail: np.ndarray) -> np.ndarray:
    """Validate SMAC actions [E, n_agents] against availability [E, n_agents, n_actions]; int64 actions."""
    n_envs, n_agents, n_actions = avail.shape
    shape = np.shape(actions)
    if shape != (n_envs, n_agents):
        raise ValueError(f"actions must have shape (n_envs={n_envs}, n_agents={n_agents}), got {shape}")
    a = integral_actions(actions)
    bad = _first_unavailable(a, avail)
    if bad >= 0:
        e, i = divmod(bad, n_agents)
        allowed = np.flatnonzero(avail[e, i]).tolist()
        where = f"env {e}, agent {i}" if n_envs > 1 else f"agent {i}"
        raise ValueError(
            f"{where}: action {int(a[e, i])} is not available; available actions: {allowed} "
            f"(see get_avail_agent_actions)"
        )
    return a


def integral_actions(actions) -> np.ndarray:
    """Actions as contiguous int64; integral floats pass (a runner may hand float tensors), anything else
    (fractions, NaN, inf, bools, strings, None) is a ValueError naming the first bad entry."""
    try:
        a = np.asarray(actions)
    except (TypeError, ValueError) as err:
        raise ValueError(f"actions must be an array of integers, got {type(actions).__name__}: {err}") from None
    if np.issubdtype(a.dtype, np.integer) and a.dtype != np.bool_:
        return np.ascontiguousarray(a, dtype=np.int64)
    if not np.issubdtype(a.dtype, np.floating):
        raise ValueError(f"actions must be integers, got dtype {a.dtype}: {a.ravel()[:8].tolist()}")
    bad = ~np.isfinite(a) | (a != np.round(a))
    if bad.any():
        idx = np.unravel_index(int(np.flatnonzero(bad)[0]), a.shape)
        where = f"env {idx[0]}, agent {idx[1]}" if a.ndim == 2 else f"agent {idx[-1]}" if a.ndim else "the action"
        raise ValueError(f"{where}: action {a[idx].item()!r} is not an integer action number")
    return np.ascontiguousarray(a, dtype=np.int64)


def split_kwargs(kwargs: Dict[str, Any]):
    """Split StarCraft2Env keyword arguments into feature flags, reward config and the rest."""
    ff = {f.name for f in fields(FeatureFlags)}
    rf = {f.name for f in fields(RewardConfig)}
    flags = FeatureFlags(**{k: v for k, v in kwargs.items() if k in ff})
    reward = RewardConfig(**{k: v for k, v in kwargs.items() if k in rf})
    rest = {k: v for k, v in kwargs.items() if k not in ff and k not in rf}
    return flags, reward, rest


class FeatureCache:
    """The masks, obs and state arrays [E, ...], kept between calls and recomputed together (one
    compiled call) only for the rows marked stale.

    An array once returned is never written again while anything still refers to it (the next
    recompute goes to a fresh array, copying the rows that did not change), so callers may keep what
    they were given, as with NumPy results. One that nobody holds any more (no reference, no view: its
    reference count says so) is reused instead: a fresh array of this size costs page faults.
    """

    NAMES = ("avail", "obs", "state")

    def __init__(self, shapes, dtypes, compute):
        self._bufs = {k: np.zeros(shapes[k], dtype=dtypes[k]) for k in self.NAMES}
        self._stale = np.ones(shapes["avail"][0], dtype=bool)
        self._handed_out = dict.fromkeys(self.NAMES, False)
        self._compute = compute  # compute(rows [E] bool, avail_out, obs_out, state_out)

    def mark(self, rows: Optional[np.ndarray] = None) -> None:
        if rows is None:
            self._stale[:] = True
        else:
            self._stale |= rows

    def get(self, name: str, hand_out: bool = True) -> np.ndarray:
        stale = self._stale
        if stale.any():
            for k in self.NAMES:
                if self._handed_out[k] and sys.getrefcount(self._bufs[k]) > 2:  # the dict's, the call's
                    fresh = np.empty_like(self._bufs[k])
                    if not stale.all():
                        fresh[~stale] = self._bufs[k][~stale]
                    self._bufs[k] = fresh
                self._handed_out[k] = False
            self._compute(stale, self._bufs["avail"], self._bufs["obs"], self._bufs["state"])
            stale[:] = False
        self._handed_out[name] |= hand_out
        return self._bufs[name]


class VectorizedSMAC:
    def __init__(
        self,
        map_name: str,
        n_envs: int = 1,
        seed: Optional[int] = None,
        step_mul: int = 8,
        move_amount: float = 2.0,
        continuing_episode: bool = False,
        flags: Optional[FeatureFlags] = None,
        reward: Optional[RewardConfig] = None,
        scenario: Optional[Scenario] = None,
        engine_streams: str = "shared",
        engine_threads: int = 1,
    ):
        ensure_compiled(map_name, scenario, engine_streams)  # compiled once per checkout, under a lock
        flags, reward = flags or FeatureFlags(), reward or RewardConfig()
        self.engine = BattleEngine(
            map_name,
            n_envs=n_envs,
            seed=seed,
            step_mul=step_mul,
            move_amount=move_amount,
            scenario=scenario,
            streams=engine_streams,
            threads=engine_threads,
        )
        self.features = Features(self.engine, flags)
        self.flags, self.reward_cfg = flags, reward
        self.continuing_episode = continuing_episode
        self.n_envs, self.n_agents, self.n_enemies = n_envs, self.engine.n_agents, self.engine.n_enemies
        self.n_actions = self.engine.n_actions
        self.episode_limit = self.engine.spec.limit
        # SMACv2: which agents heal (and so their action group) changes with every drawn team
        self.dynamic_groups = self.engine.scenario is not None
        self.can_heal = self.dynamic_groups and self.engine.scenario.can_heal
        self._outcome_consts = OutcomeConsts(
            n_agents=self.engine.n_agents,
            medivac_rules=bool(self.engine.spec.map_type.medivac_rules),
            only_medivacs_win=self.engine.scenario is not None,
            sparse=reward.reward_sparse,
            only_positive=reward.reward_only_positive,
            death_value=float(reward.reward_death_value),
            negative_scale=float(reward.reward_negative_scale),
            reward_win=float(reward.reward_win),
            reward_defeat=float(reward.reward_defeat),
            episode_limit=int(self.episode_limit),
        )
        # max_reward per env: a fixed map's is a constant; SMACv2 fixes it from the enemies of the env's
        # first battle (after construction or a seed), so it varies with that battle's team
        self.max_rewards = np.full(n_envs, max_reward(self.engine.tables, reward))
        self._divisor = np.zeros(n_envs)
        self._scale_pending = np.ones(n_envs, dtype=bool)
        self._fix_scale(self._scale_pending.copy())
        self.obs_size = self.features.obs_size + int(flags.obs_timestep_number)  # SMAC's size quirk
        self.state_size = self.features.state_size
        t = self.engine.tables
        # Medivacs heal (not attack) with actions 6+j only under the MMM map rules (a scenario's template:
        # its envs' healers change with every drawn team, see healer_agents_of)
        self.healer_agents = healing_agents(t.is_healer[: self.n_agents], self.engine.spec.map_type.medivac_rules)
        E, U = n_envs, self.engine.n_units
        self.death_tracker = np.zeros((E, U), dtype=bool)
        self.last_action = np.zeros((E, self.n_agents, self.n_actions), dtype=np.float32)
        self.episode_steps = np.zeros(E, dtype=np.int64)
        n_a = self.n_agents
        self._features = FeatureCache(
            {"avail": (E, n_a, self.n_actions), "obs": (E, n_a, self.obs_size), "state": (E, self.state_size)},
            {"avail": np.int32, "obs": np.float32, "state": np.float32},
            lambda rows, avail, obs, state: self.features.compute(
                self.last_action, self.episode_steps, self.episode_limit, rows, avail, obs, state
            ),
        )

    # ------------------------------------------------------------------ episode control
    def reset(self, env_mask: Optional[np.ndarray] = None, layouts: Optional[Sequence[Layout]] = None) -> None:
        """New battles in the selected envs (all if `env_mask` is None); `layouts`: given teams and spawn
        points for a scenario's reset envs instead of drawn ones."""
        m = np.ones(self.n_envs, dtype=bool) if env_mask is None else np.asarray(env_mask, dtype=bool)
        self.engine.reset(m, layouts)
        if self.engine.scenario is not None:
            self.features.refresh(m)
            self._fix_scale(m & self._scale_pending)
        self.death_tracker[m] = False
        self.last_action[m] = 0.0
        self.episode_steps[m] = 0
        self._invalidate(m)

    def seed(self, seed: Optional[int]) -> None:
        """Reseed the engine's random stream (cooldown jitter, random attack points, drawn teams)."""
        self.engine.reseed(seed)
        self._scale_pending[:] = self.engine.scenario is not None

    @property
    def max_reward(self) -> float:
        """SMAC's max_reward (env 0's under SMACv2, where each env fixes its own; see max_rewards)."""
        return float(self.max_rewards[0])

    def _fix_scale(self, rows: np.ndarray) -> None:
        for e in np.flatnonzero(rows):
            self.max_rewards[e] = max_reward(self.engine.tables_of(e), self.reward_cfg)
        cfg = self.reward_cfg
        self._divisor[:] = self.max_rewards / cfg.reward_scale_rate if cfg.reward_scale else 0.0
        self._scale_pending[rows] = False

    def healer_agents_of(self) -> np.ndarray:
        """[E, n_agents] bool: the agents whose actions 6+j heal ally j in each env's current battle (the
        feature tables' rows, refreshed at each reset)."""
        ft = self.features.tables
        return ft.medivac_heals[ft.table_of]

    def unit_names_of(self, e: int) -> list:
        """Unit type names of env `e`'s current battle, allies first (SMAC order)."""
        return [u.name for u in self.engine.tables_of(e).units]

    def close(self) -> None:
        pass

    def _invalidate(self, rows: Optional[np.ndarray] = None) -> None:
        """Mark the features of `rows` [E] bool (all by default) stale, e.g. after editing unit arrays."""
        self._features.mark(rows)

    def check_actions(self, actions: np.ndarray) -> np.ndarray:
        return check_actions(actions, self._features.get("avail", hand_out=False))

    def check_raw_actions(self, actions: np.ndarray) -> np.ndarray:
        """Raw orders [E, n_agents] as int64, shape and range checked but not availability: they still
        index the action tables, so out-of-range ones would read past them."""
        a = integral_actions(actions)
        if a.shape != (self.n_envs, self.n_agents):
            raise ValueError(
                f"raw actions must have shape ({self.n_envs}, {self.n_agents}) and lie in "
                f"0..{self.n_actions - 1}, got shape {a.shape}"
            )
        bad = np.flatnonzero(((a < 0) | (a >= self.n_actions)).ravel())
        if bad.size:
            e, i = divmod(int(bad[0]), self.n_agents)
            where = f"env {e}, agent {i}" if self.n_envs > 1 else f"agent {i}"
            raise ValueError(f"{where}: raw actions must lie in 0..{self.n_actions - 1}, got {int(a[e, i])}")
        return a

    def step(
        self,
        actions: np.ndarray,
        validate: bool = True,
        active: Optional[np.ndarray] = None,
        recorded: Optional[np.ndarray] = None,
    ) -> StepResult:
        """Step every env, or only the envs where `active` [E] is True.

        An inactive env (one that ended and waits for its reset) is not simulated: its units are held
        for the step, so it neither changes nor draws from the random stream; its result row is
        meaningless and must be ignored. An env that ended must be reset or held, never stepped.
        `validate=False` skips the availability check: only for raw orders such as SMAC's heuristic AI.
        `recorded` [E, n_agents]: the actions kept as last actions when they differ from the orders sent
        (SMAC's heuristic records the caller's actions); default `actions`.
        """
        if validate:
            a = self.check_actions(actions)
        else:
            a = self.check_raw_actions(actions)
        eng = self.engine
        act = np.ones(self.n_envs, dtype=bool) if active is None else np.asarray(active, dtype=bool)
        a = np.ascontiguousarray(a, dtype=np.int64)
        prev_hs = np.empty_like(eng.hp)
        rec = a if recorded is None else self.check_raw_actions(recorded)
        _before_step(rec, act, eng.hp, eng.sh, self.last_action, prev_hs)  # held envs keep their last action
        eng.step(a, act)
        self._invalidate(act)
        E = self.n_envs
        reward, terminated, won, timeout = np.zeros(E), np.zeros(E, bool), np.zeros(E, bool), np.zeros(E, bool)
        dead_allies, dead_enemies = np.zeros(E, np.int64), np.zeros(E, np.int64)
        step_outcome(
            self._outcome_consts,
            self.features.tables.is_medivac,
            self.features.tables.table_of,
            self._divisor,
            prev_hs,
            eng.hp,
            eng.sh,
            eng.alive,
            self.death_tracker,
            self.episode_steps,
            act,
            reward,
            terminated,
            won,
            timeout,
            dead_allies,
            dead_enemies,
        )
        return StepResult(
            reward=reward,
            terminated=terminated,
            battle_won=won,
            timeout=timeout,
            dead_allies=dead_allies,
            dead_enemies=dead_enemies,
        )

    # ------------------------------------------------------------------ features (cached per step)
    def avail_actions(self) -> np.ndarray:
        """[E, n_agents, n_actions] int32; never changed after it is returned."""
        return self._features.get("avail")

    def observations(self) -> np.ndarray:
        """[E, n_agents, obs_size] float32; never changed after it is returned."""
        return self._features.get("obs")

    def states(self) -> np.ndarray:
        """[E, state_size] float32; never changed after it is returned."""
        return self._features.get("state")


__all__ = [
    "VectorizedSMAC",
    "StepResult",
    "check_actions",
    "integral_actions",
    "split_kwargs",
    "WON",
    "LOST",
    "DRAW",
    "RUNNING",
]
