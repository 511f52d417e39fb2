"""The vectorized battle engine: struct-of-arrays over [n_envs, n_units], stepped by a compiled kernel.

One `step` issues the agents' SMAC actions as SC2 orders and simulates `step_mul` (8) game loops
for every env at once, with normal-speed unit stats converted to per-loop values (docs/smac.md, "Time").
The battle semantics live in `simulate.py` (compiled with numba); this class owns the arrays, the
per-map constants and the resets.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from rllib_uas.envs.engine.actions import n_actions
from rllib_uas.envs.engine.ai import AMOVE, IDLE
from rllib_uas.envs.engine.maps import get_map
from rllib_uas.envs.engine.pathing import geodesic_for_terrain
from rllib_uas.envs.engine.simulate import (
    SHIELD_REGEN_DELAY,
    STATE_F32,
    UNIT_BOOL,
    UNIT_F32,
    PackedTables,
    SimConsts,
    step_envs,
)
from rllib_uas.envs.engine.tables import UnitTables, build_tables


class BattleEngine:
    """Battles of one map in `n_envs` independent envs, stepped together."""

    def __init__(
        self, map_name: str, n_envs: int = 1, seed: Optional[int] = None, step_mul: int = 8, move_amount: float = 2.0
    ):
        self.spec = get_map(map_name)
        self.tables: UnitTables = build_tables(self.spec)
        self.n_envs, self.step_mul, self.move_amount = int(n_envs), int(step_mul), float(move_amount)
        self.n_agents, self.n_enemies = self.tables.n_agents, self.tables.n_enemies
        self.n_units = self.n_agents + self.n_enemies
        self.n_actions = n_actions(self.n_enemies)
        self.map_x, self.map_y = self.tables.grid.shape
        self.rng = np.random.default_rng(seed)
        self._precompute()
        E, U = self.n_envs, self.n_units
        self.state_f32 = np.zeros((len(STATE_F32), E, U), dtype=np.float32)  # x, y, hp, ...: one array for the kernels
        self.x, self.y, self.hp, self.sh, self.energy, self.cd, self.gx, self.gy, self.since_damage = self.state_f32
        self.alive = np.zeros((E, U), dtype=bool)
        self.order = np.zeros((E, U), dtype=np.int8)
        self.tgt = np.full((E, U), -1, dtype=np.int64)
        self.loop_count = np.zeros(E, dtype=np.int64)
        n_ground = max(self._tables_packed.ground_idx.size, 1)
        self._sweep_order = np.tile(np.arange(n_ground, dtype=np.int64), (E, 1))  # a speed hint only
        self.reset()

    # ------------------------------------------------------------------ setup
    def _precompute(self) -> None:
        t, n_a, U = self.tables, self.n_agents, self.n_units
        unit_scan = np.inf if self.spec.enemy_order["kind"] == "attack_units" else 1.0
        ground = np.flatnonzero(~t.is_air & ~t.ignores_pathing)  # air flies; small units walk under a Colossus
        r = t.radius[ground]
        radius_sum = r[:, None] + r[None, :]
        # rooted units (speed 0) are not pushed; a mobile unit against one takes the full push
        mobile = (t.speed[ground] > 0).astype(np.float32)
        share = np.where(mobile[None, :] > 0, 0.5, 1.0)
        enemy = np.arange(U) >= n_a
        per_unit = dict(
            enemy_scan=np.where(enemy, t.scan * np.float32(unit_scan), 0),
            no_weapon_penalty=np.where(~enemy & ~t.has_weapon, 1000.0, 0.0),
            enemy_heal_scan=np.where(enemy, np.maximum(t.reach, 5.0) + 1.0, 0),
            pathing_units=~t.ignores_pathing,
            enemy_dealer=enemy & t.has_weapon & ~t.is_healer,
        )
        column = lambda name: per_unit[name] if name in per_unit else getattr(t, name)  # noqa: E731
        geo = geodesic_for_terrain(self.spec.terrain)
        self._tables_packed = PackedTables(
            consts=SimConsts(
                n_agents=n_a,
                n_enemies=self.n_enemies,
                medivac_rules=bool(self.spec.map_type.medivac_rules),
                max_radius_sum=float(radius_sum.max(initial=0.0)),
                has_geo=geo is not None,
                geo_size_y=geo.size_y if geo is not None else 1,
                has_splash=bool((t.splash != 0).any()),
                has_healers=bool(t.is_healer.any()),
                has_regen=bool((t.hp_regen > 0).any()),
                has_shields=bool((t.sh_max > 0).any()),
                has_energy=bool((t.energy_max > 0).any()),
            ),
            unit_f32=np.stack([column(n) for n in UNIT_F32]).astype(np.float32),
            unit_bool=np.stack([column(n) for n in UNIT_BOOL]).astype(bool),
            splash=t.splash.astype(np.int64),
            hit_damage=t.hit_damage,
            can_hit=t.can_hit,
            pair_g=np.stack(
                [radius_sum, np.where(np.eye(r.size, dtype=bool), -1.0, radius_sum**2), share * mobile[:, None]]
            ).astype(np.float32),
            ground_idx=ground.astype(np.int64),
            enemy_healer_idx=np.flatnonzero(t.is_healer[n_a:]).astype(np.int64),
            grid=np.ascontiguousarray(t.grid),
            geo_dist=geo.dist if geo is not None else np.zeros((1, 1), np.float32),
            geo_nbr=geo.nbr if geo is not None else np.zeros((1, 8), np.int64),
        )

    def reset(self, env_mask: Optional[np.ndarray] = None) -> None:
        """Respawn every unit of the selected envs (all if `env_mask` is None)."""
        t, n_a = self.tables, self.n_agents
        m = np.ones(self.n_envs, dtype=bool) if env_mask is None else np.asarray(env_mask, dtype=bool)
        k = int(m.sum())
        if k == 0:
            return
        self.x[m] = t.spawn[:, 0]
        self.y[m] = t.spawn[:, 1]
        self.hp[m] = t.hp_max
        self.sh[m] = t.sh_max
        self.energy[m] = t.energy_start
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
            gx = np.full((k, 1), t.spawn[:n_a, 0].mean())
            gy = np.full((k, 1), t.spawn[:n_a, 1].mean())
        else:  # none: hold position, still auto-acquiring in range
            gx, gy = np.tile(t.spawn[n_a:, 0], (k, 1)), np.tile(t.spawn[n_a:, 1], (k, 1))
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
        step_envs(
            self._tables_packed,
            self.state_f32,
            self.alive,
            self.order,
            self.tgt,
            self.loop_count,
            self._sweep_order,
            a,
            act,
            self.step_mul,
            self.move_amount,
            bits.next_uint32,
            bits.state_address,
        )
