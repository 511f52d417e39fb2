"""The vectorized battle engine: struct-of-arrays over [n_envs, n_units], stepped by a compiled kernel.

One `step` issues the agents' SMAC actions as SC2 orders and simulates `step_mul` (8) game loops
for every env at once, with normal-speed unit stats converted to per-loop values (docs/smac.md, "Time").
The battle semantics live in `simulate.py` (compiled with numba); this class owns the arrays, the
per-map constants and the resets.
"""

from __future__ import annotations

import functools
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from rllib_uas.envs.engine.actions import n_actions
from rllib_uas.envs.engine.ai import AMOVE, IDLE
from rllib_uas.envs.engine.jit import seed_streams
from rllib_uas.envs.engine.maps import Layout, MapSpec
from rllib_uas.envs.engine.pathing import geodesic_for_terrain
from rllib_uas.envs.engine.scenarios import Scenario, get_battle_spec, get_scenario, is_scenario
from rllib_uas.envs.engine.simulate import (
    SHIELD_REGEN_DELAY,
    STATE_F32,
    UNIT_BOOL,
    UNIT_F32,
    PackedTables,
    SimConsts,
    step_envs,
    step_envs_per_env,
)
from rllib_uas.envs.engine.tables import UnitTables, build_tables, gather_tables, tables_for
from rllib_uas.envs.engine.units import get_unit_type
from rllib_uas.value_types import is_integer


def _unit_columns(t: UnitTables, spec: MapSpec) -> tuple:
    """A table's per-unit arrays as `PackedTables` holds them (without the table axis): unit_f32, unit_bool,
    splash, hit_damage, can_hit."""
    n_a, U = t.n_agents, t.n_agents + t.n_enemies
    unit_scan = np.inf if spec.enemy_order["kind"] == "attack_units" else 1.0
    enemy = np.arange(U) >= n_a
    per_unit = dict(
        enemy_scan=np.where(enemy, t.scan * np.float32(unit_scan), 0),
        no_weapon_penalty=np.where(~enemy & ~t.has_weapon, 1000.0, 0.0),
        enemy_heal_scan=np.where(enemy, np.maximum(t.reach, 5.0) + 1.0, 0),
        pathing_units=~t.ignores_pathing,
        enemy_dealer=enemy & t.has_weapon & ~t.is_healer,
    )
    column = lambda name: per_unit[name] if name in per_unit else getattr(t, name)  # noqa: E731
    return (
        np.stack([column(n) for n in UNIT_F32]).astype(np.float32),
        np.stack([column(n) for n in UNIT_BOOL]).astype(bool),
        t.splash.astype(np.int64),
        t.hit_damage,
        t.can_hit,
    )


def _ground_pairs(t: UnitTables) -> tuple:
    """The separation pass's pair table [3, G, G], its ground units [G], the enemy healers [H], and the
    ground units' radius sums (for the separation window)."""
    ground = np.flatnonzero(~t.is_air & ~t.ignores_pathing)  # air flies; small units walk under a Colossus
    r = t.radius[ground]
    radius_sum = r[:, None] + r[None, :]
    # rooted units (speed 0) are not pushed; a mobile unit against one takes the full push
    mobile = (t.speed[ground] > 0).astype(np.float32)
    share = np.where(mobile[None, :] > 0, 0.5, 1.0)
    pair_g = np.stack([radius_sum, np.where(np.eye(r.size, dtype=bool), -1.0, radius_sum**2), share * mobile[:, None]])
    healers = np.flatnonzero(t.is_healer[t.n_agents :]).astype(np.int64)
    return (pair_g.astype(np.float32), ground.astype(np.int64), healers), radius_sum


def _pack(t: UnitTables, spec: MapSpec) -> tuple:
    """One table's arrays as `PackedTables` holds them (without the table axis), and its ground units'
    radius sums."""
    pairs, radius_sum = _ground_pairs(t)
    return _unit_columns(t, spec) + pairs, radius_sum


STREAMS = ("shared", "per_env")
# a thread's share of a call is at least this many envs: below it, handing the range to a thread cost
# more than it saved (MMM2 on 2 threads: the step gained 1.6x from 32 envs per thread, 1.1x at 8; the
# feature rows broke even at 32 and gained 1.3x at 64; benchmarks/engine_throughput.py --threads 2)
MIN_STEP_ENVS_PER_THREAD = 32
MIN_FEATURE_ENVS_PER_THREAD = 64


@functools.lru_cache(maxsize=None)
def _pool(threads: int) -> ThreadPoolExecutor:
    """The worker threads of engines stepped on `threads` threads (the caller's thread is one of them)."""
    return ThreadPoolExecutor(threads - 1, thread_name_prefix="smac-engine")


def check_threading(streams: str, threads: int) -> None:
    """Refuse a random-stream mode or thread count the engine cannot run, saying what to set."""
    if streams not in STREAMS:
        raise ValueError(f"engine_streams must be one of {STREAMS}, got {streams!r}")
    if not is_integer(threads) or threads < 1:
        raise ValueError(f"engine_threads must be a positive integer, got {threads!r}")
    if threads > 1 and streams != "per_env":
        raise ValueError(
            f"engine_threads={threads} needs engine_streams='per_env': the shared stream draws in env "
            "order, so its envs cannot be stepped in parallel"
        )
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if threads > cpus:
        raise ValueError(f"engine_threads={threads} exceeds the {cpus} CPUs this process may use; set at most {cpus}")


class BattleEngine:
    """Battles of one map (or SMACv2 scenario) in `n_envs` independent envs, stepped together.

    A fixed map has one unit table for every env (`tables`). A scenario (`rllib_uas.envs.engine.scenarios`)
    draws each env's teams and spawn points at every reset: its envs each have their own table
    (`env_tables[e]`), and `tables` is only the template that sizes the teams.

    Random streams: with `streams="shared"` (the default) the battles draw their cooldown jitter from
    the one Generator `rng`, in env order, as the reference engine did (golden trajectories). With
    `streams="per_env"` each env has its own stream, seeded once from `rng`, so the envs can be
    stepped independently: on `threads` threads (the compiled step releases the GIL), with the same
    result for any thread count. The two modes play different (equally valid) random battles.
    """

    def __init__(
        self,
        map_name: str,
        n_envs: int = 1,
        seed: Optional[int] = None,
        step_mul: int = 8,
        move_amount: float = 2.0,
        scenario: Optional[Scenario] = None,
        streams: str = "shared",
        threads: int = 1,
    ):
        check_threading(streams, threads)
        self.streams, self.threads = streams, int(threads)
        if scenario is None and is_scenario(map_name):
            scenario = get_scenario(map_name)
        self.scenario = scenario
        self.spec = scenario.spec if scenario is not None else get_battle_spec(map_name)
        self.tables: UnitTables = build_tables(self.spec) if scenario is None else self._template_tables()
        self.n_envs, self.step_mul, self.move_amount = int(n_envs), int(step_mul), float(move_amount)
        self.n_agents, self.n_enemies = self.tables.n_agents, self.tables.n_enemies
        self.n_units = self.n_agents + self.n_enemies
        heal_slots = scenario is not None and self.spec.map_type.medivac_rules
        self.n_actions = n_actions(self.n_enemies, self.n_agents, heal_slots)
        self.map_x, self.map_y = self.tables.grid.shape
        self.reseed(seed)
        self._precompute()
        E, U = self.n_envs, self.n_units
        self.state_f32 = np.zeros((len(STATE_F32), E, U), dtype=np.float32)  # x, y, hp, ...: one array for the kernels
        self.x, self.y, self.hp, self.sh, self.energy, self.cd, self.gx, self.gy, self.since_damage = self.state_f32
        self.alive = np.zeros((E, U), dtype=bool)
        self.order = np.zeros((E, U), dtype=np.int8)
        self.tgt = np.full((E, U), -1, dtype=np.int64)
        self.loop_count = np.zeros(E, dtype=np.int64)
        n_ground = max(self._tables_packed.ground_idx.shape[1], 1)
        self._sweep_order = np.tile(np.arange(n_ground, dtype=np.int64), (E, 1))  # a speed hint only
        self.env_tables: List[UnitTables] = [self.tables] * E
        if scenario is not None:
            self._kind_tables()
        self.reset()

    def reseed(self, seed: Optional[int]) -> None:
        """A new random stream (and, with per-env streams, new per-env streams drawn from it)."""
        self.rng = np.random.default_rng(seed)
        if self.streams == "per_env":
            base = self.rng.integers(0, 2**64, dtype=np.uint64)
            self._env_streams = seed_streams(base, 0, self.n_envs)

    # ------------------------------------------------------------------ setup
    def _template_tables(self) -> UnitTables:
        s = self.scenario
        first = s.unit_types[0]
        a_pts = np.tile([s.map_x / 2, s.map_y / 2], (s.n_units, 1))
        e_pts = np.tile([s.map_x - 1.0, s.map_y / 2], (s.n_enemies, 1))
        return tables_for(self.spec, s.layout([first] * s.n_units, [first] * s.n_enemies, a_pts, e_pts))

    def _precompute(self) -> None:
        t, n_a = self.tables, self.n_agents
        arrays, radius_sum = _pack(t, self.spec)
        if self.scenario is None:
            kinds = t.units
            max_radius_sum = float(radius_sum.max(initial=0.0))
            T = 1
        else:  # any type of the scenario may appear on either side
            kinds = tuple(get_unit_type(n) for n in self.scenario.unit_types)
            ground_r = [u.radius for u in kinds if not (u.air or u.cliff_walker)]
            max_radius_sum = 2.0 * max(ground_r, default=0.0)
            T = self.n_envs
        U = self.n_units
        geo = geodesic_for_terrain(self.spec.terrain)
        self._tables_packed = PackedTables(
            consts=SimConsts(
                n_agents=n_a,
                n_enemies=self.n_enemies,
                medivac_rules=bool(self.spec.map_type.medivac_rules),
                max_radius_sum=max_radius_sum,
                has_geo=geo is not None,
                geo_size_y=geo.size_y if geo is not None else 1,
                has_splash=any(u.weapon is not None and u.weapon.splash != "none" for u in kinds),
                has_healers=any(u.is_healer for u in kinds),
                has_regen=any(u.hp_regen > 0 for u in kinds),
                has_shields=any(u.shield > 0 for u in kinds),
                has_energy=any(u.energy_max > 0 for u in kinds),
            ),
            unit_f32=np.zeros((T, len(UNIT_F32), U), np.float32),
            unit_bool=np.zeros((T, len(UNIT_BOOL), U), bool),
            splash=np.zeros((T, U), np.int64),
            hit_damage=np.zeros((T, U, U), np.float32),
            can_hit=np.zeros((T, U, U), bool),
            pair_g=np.zeros((T, 3, U, U), np.float32) if self.scenario else np.zeros((T, *arrays[5].shape), np.float32),
            ground_idx=np.zeros((T, U if self.scenario else arrays[6].size), np.int64),
            enemy_healer_idx=np.zeros((T, self.n_enemies if self.scenario else arrays[7].size), np.int64),
            counts=np.zeros((T, 2), np.int64),
            grid=np.ascontiguousarray(t.grid),
            geo_dist=geo.dist if geo is not None else np.zeros((1, 1), np.float32),
            geo_nbr=geo.nbr if geo is not None else np.zeros((1, 8), np.int64),
        )
        for ti in range(T):
            self._set_table(ti, arrays)

    def _set_table(self, ti: int, arrays: tuple) -> None:
        """Write one table's packed arrays into row `ti` of the kernel's tables."""
        pk = self._tables_packed
        unit_f32, unit_bool, splash, hit_damage, can_hit, pair_g, ground, healers = arrays
        pk.unit_f32[ti], pk.unit_bool[ti], pk.splash[ti] = unit_f32, unit_bool, splash
        pk.hit_damage[ti], pk.can_hit[ti] = hit_damage, can_hit
        g, h = ground.size, healers.size
        pk.pair_g[ti, :, :g, :g] = pair_g
        pk.ground_idx[ti, :g] = ground
        pk.enemy_healer_idx[ti, :h] = healers
        pk.counts[ti] = g, h

    def tables_of(self, e: int) -> UnitTables:
        """The unit tables of env `e`'s current battle."""
        return self.env_tables[e]

    def _kind_tables(self) -> None:
        """The scenario's per-kind tables: one unit of each kind it may draw, on each side."""
        kinds = tuple(get_unit_type(n) for n in self.scenario.unit_types)
        K = len(kinds)
        self._kinds = tables_for(self.spec, Layout(kinds, np.zeros((K, 2)), kinds, np.zeros((K, 2))))
        self._kind_columns = _unit_columns(self._kinds, self.spec)
        self._kind_index = {u.name: k for k, u in enumerate(kinds)}

    def _battle_tables(self, layout: Layout) -> Tuple[UnitTables, tuple]:
        """One drawn battle's tables and packed arrays, gathered from the scenario's per-kind tables (one unit
        of each kind per side): every per-unit value depends only on the unit's kind and side."""
        K = len(self._kind_index)
        src = np.array(
            [self._kind_index[u.name] for u in layout.ally_units]
            + [K + self._kind_index[u.name] for u in layout.enemy_units]
        )
        t = gather_tables(self._kinds, src, len(layout.ally_units), layout)
        f32, flags, splash, damage, can_hit = self._kind_columns
        pairs, _ = _ground_pairs(t)
        cols = (f32[:, src], flags[:, src], splash[src], damage[np.ix_(src, src)], can_hit[np.ix_(src, src)])
        return t, cols + pairs

    def _draw_battles(self, envs: np.ndarray, layouts: Optional[Sequence[Layout]] = None) -> None:
        """New teams and spawn points for the scenario envs `envs`, in env order (one random stream), or
        the given `layouts` (one per env of `envs`)."""
        for k, e in enumerate(envs):
            layout = self.scenario.draw(self.rng) if layouts is None else layouts[k]
            t, packed = self._battle_tables(layout)
            self.env_tables[e] = t
            self._set_table(int(e), packed)
            self._sweep_order[e] = np.arange(self._sweep_order.shape[1])

    def reset(self, env_mask: Optional[np.ndarray] = None, layouts: Optional[Sequence[Layout]] = None) -> None:
        """Respawn every unit of the selected envs (all if `env_mask` is None). A scenario draws new teams,
        or takes `layouts` (one per selected env: SMACv2's reset with an episode config)."""
        n_a = self.n_agents
        m = np.ones(self.n_envs, dtype=bool) if env_mask is None else np.asarray(env_mask, dtype=bool)
        k = int(m.sum())
        if k == 0:
            return
        if layouts is not None and (self.scenario is None or len(layouts) != k):
            raise ValueError(f"layouts: give one per reset env ({k}), and only for a scenario's drawn teams")
        if self.scenario is not None:
            envs = np.flatnonzero(m)
            self._draw_battles(envs, layouts)
            cols = lambda name: np.stack([getattr(self.env_tables[e], name) for e in envs])  # noqa: E731
            spawn, hp_max, sh_max, energy_start = cols("spawn"), cols("hp_max"), cols("sh_max"), cols("energy_start")
        else:
            t = self.tables
            spawn, hp_max, sh_max, energy_start = t.spawn, t.hp_max, t.sh_max, t.energy_start
        self.x[m] = spawn[..., 0]
        self.y[m] = spawn[..., 1]
        self.hp[m] = hp_max
        self.sh[m] = sh_max
        self.energy[m] = energy_start
        self.cd[m] = 0.0
        self.since_damage[m] = SHIELD_REGEN_DELAY
        self.alive[m] = True
        self.tgt[m] = -1
        self.loop_count[m] = 0
        order = np.full(self.n_units, IDLE, dtype=np.int8)
        order[n_a:] = AMOVE
        self.order[m] = order
        kind = self.spec.enemy_order["kind"]
        if kind == "attack_move":
            px, py = self.spec.enemy_order["point"]
            gx, gy = np.full((k, 1), px), np.full((k, 1), py)
        elif kind == "attack_move_random":
            (x0, y0), (x1, y1) = self.spec.enemy_order["between"]
            u = self.rng.random((k, 1))
            gx, gy = x0 + u * (x1 - x0), y0 + u * (y1 - y0)
        elif kind == "attack_units":
            sx, sy = np.broadcast_to(spawn[..., :n_a, 0], (k, n_a)), np.broadcast_to(spawn[..., :n_a, 1], (k, n_a))
            gx, gy = sx.mean(axis=1, keepdims=True), sy.mean(axis=1, keepdims=True)
        else:  # none: hold position, still auto-acquiring in range
            gx = np.broadcast_to(spawn[..., n_a:, 0], (k, self.n_enemies))
            gy = np.broadcast_to(spawn[..., n_a:, 1], (k, self.n_enemies))
        self.gx[m] = 0.0
        self.gy[m] = 0.0
        self.gx[np.ix_(m, np.arange(n_a, self.n_units))] = gx
        self.gy[np.ix_(m, np.arange(n_a, self.n_units))] = gy

    # ------------------------------------------------------------------ simulation
    def step(self, actions: np.ndarray, active: Optional[np.ndarray] = None) -> None:
        """Issue SMAC actions [E, n_agents] and simulate `step_mul` game loops of the envs where
        `active` [E] is True (all by default); the other envs do not change at all."""
        a = np.ascontiguousarray(actions, dtype=np.int64).reshape(self.n_envs, self.n_agents)
        act = np.ones(self.n_envs, dtype=bool) if active is None else np.asarray(active, dtype=bool)
        bits = self.rng.bit_generator.ctypes  # the Generator's own stream, shared with NumPy draws
        arrays = (self._tables_packed, self.state_f32, self.alive, self.order, self.tgt, self.loop_count)
        arrays += (self._sweep_order, a, act, self.step_mul, self.move_amount)
        if self.streams == "shared":
            step_envs(*arrays, bits.next_uint32, bits.state_address)
        else:
            fn = lambda lo, hi: step_envs_per_env(*arrays, self._env_streams, lo, hi)  # noqa: E731
            self.over_env_ranges(fn, MIN_STEP_ENVS_PER_THREAD)

    def env_ranges(self, min_per_thread: int) -> List[int]:
        """Bounds of the env ranges for the threads a call uses: `threads`, fewer where a thread would get
        under `min_per_thread` envs (the hand-off costs more than it saves), equal shares."""
        used = max(1, min(self.threads, self.n_envs // max(min_per_thread, 1)))
        return [self.n_envs * k // used for k in range(used + 1)]

    def over_env_ranges(self, fn: Callable[[int, int], None], min_per_thread: int = 1) -> None:
        """fn(lo, hi) over disjoint env ranges covering every env (`env_ranges`), concurrently; fn must
        release the GIL (a compiled kernel). With per-env streams, any split plays the same battles."""
        bounds = self.env_ranges(min_per_thread)
        calls = [_pool(self.threads).submit(fn, lo, hi) for lo, hi in zip(bounds[1:-1], bounds[2:])]
        fn(bounds[0], bounds[1])
        for c in calls:
            c.result()
