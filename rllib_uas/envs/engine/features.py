"""SMAC's observation, state and available-action layouts, compiled per env row (docs/smac.md).

The kernels fill preallocated [E, ...] buffers for the rows marked in `rows` only, so a partial
reset recomputes only the envs that were reset.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Optional

import numpy as np

from rllib_uas.envs.engine.actions import (
    MOVE_DIRS,
    MOVE_NORTH,
    N_ACTIONS_MOVE,
    N_ACTIONS_NO_ATTACK,
    NOOP,
    STOP,
    healing_agents,
)
from rllib_uas.envs.engine.battle import MIN_FEATURE_ENVS_PER_THREAD, BattleEngine
from rllib_uas.envs.engine.jit import F32, hypot32, njit
from rllib_uas.envs.engine.scenarios import smacv2_shoot_ranges

SIGHT_RANGE = 9.0  # SMAC's unit_sight_range(): always 9 (SMACv2's use_unit_ranges: per type)
SHOOT_RANGE = 6.0  # SMAC's unit_shoot_range(): always 6 (SMACv2's use_unit_ranges: per type)
N_OBS_PATHING, N_OBS_HEIGHT = 8, 9
PATHING_OFFSETS = np.array([(0, 4), (0, -4), (4, 0), (-4, 0), (2, 2), (-2, -2), (2, -2), (-2, 2)])
_SIGHT, _SHOOT = F32(SIGHT_RANGE), F32(SHOOT_RANGE)


@dataclass(frozen=True)
class FeatureFlags:
    obs_all_health: bool = True
    obs_own_health: bool = True
    obs_last_action: bool = False
    obs_pathing_grid: bool = False
    obs_terrain_height: bool = False
    obs_instead_of_state: bool = False
    obs_timestep_number: bool = False
    state_last_action: bool = True
    state_timestep_number: bool = False
    # SMACv2's flags; None = the scenario's published setting (on for SMACv2 scenarios, off for SMAC maps)
    obs_own_pos: Optional[bool] = None
    use_unit_ranges: Optional[bool] = None
    min_attack_range: float = 2.0


class FeatTables(NamedTuple):
    """What the feature kernels read besides the unit arrays."""

    n_agents: int
    n_actions: int
    utb: int  # unit-type bits
    shield_ally: bool
    shield_enemy: bool
    all_health: bool
    own_health: bool
    obs_last_action: bool
    pathing_grid: bool
    terrain: bool
    timestep: bool
    state_last_action: bool
    state_timestep: bool
    obs_instead_of_state: bool
    nf_en: int
    nf_al: int
    obs_size: int
    st_al: int
    st_en: int
    half_move: float  # move_amount / 2 (f32)
    map_x: int
    map_y: int
    grid: np.ndarray  # [X, Y] bool
    terrain_height: np.ndarray  # [X, Y] f32
    own_pos: bool
    # per unit table [T, ...]: one for every env of a fixed map, one per env for drawn teams (table_of)
    table_of: np.ndarray  # [E] int64 the table of each env
    hp_max: np.ndarray  # [T, U] f32
    sh_max: np.ndarray  # [T, U] f32, 1 where a unit has no shield
    onehot: np.ndarray  # [T, U, utb] f32
    medivac_heals: np.ndarray  # [T, n_a] bool: this agent's actions 6+j heal ally j
    heal_target_ok: np.ndarray  # [T, n_a] bool: can be healed (not a Medivac)
    cd_col: np.ndarray  # [T, n_a] f32 max cooldown for the state, NaN where energy is shown
    sight: np.ndarray  # [T, n_a] f32 sight range (9 in SMAC; per type with SMACv2's unit ranges)
    shoot: np.ndarray  # [T, n_a] f32 shoot range (6 in SMAC; per type with SMACv2's unit ranges)
    is_medivac: np.ndarray  # [T, U] bool (the rules' Medivac win and loss conditions)


@njit
def avail_rows(ft, x, y, alive, rows, out):
    """out[e] [n_agents, n_actions] int32 for the envs where rows[e]: SMAC's action masks."""
    # fields read once: a tuple-field read inside a loop costs a reference-count pair (docs/engine.md)
    grid, half_move, heal_target_ok_t, map_x = ft.grid, ft.half_move, ft.heal_target_ok, ft.map_x
    map_y, medivac_heals_t, n_agents, table_of, shoot_t = ft.map_y, ft.medivac_heals, ft.n_agents, ft.table_of, ft.shoot
    n_a = n_agents
    n_e = x.shape[1] - n_a
    for e in range(x.shape[0]):
        if not rows[e]:
            continue
        ti = table_of[e]
        heal_target_ok, medivac_heals, shoot = heal_target_ok_t[ti], medivac_heals_t[ti], shoot_t[ti]
        for i in range(n_a):
            av = out[e, i]
            av[:] = 0
            if not alive[e, i]:
                av[NOOP] = 1
                continue
            av[STOP] = 1
            ax, ay = x[e, i], y[e, i]
            for k in range(N_ACTIONS_MOVE):
                cx = np.int64(ax + MOVE_DIRS[k, 0] * half_move)
                cy = np.int64(ay + MOVE_DIRS[k, 1] * half_move)
                if 0 <= cx < map_x and 0 <= cy < map_y and grid[cx, cy]:
                    av[MOVE_NORTH + k] = 1
            if medivac_heals[i]:
                for j in range(n_a):
                    if alive[e, j] and heal_target_ok[j] and hypot32(x[e, j] - ax, y[e, j] - ay) <= shoot[i]:
                        av[N_ACTIONS_NO_ATTACK + j] = 1
            else:
                for k in range(n_e):
                    u = n_a + k
                    if alive[e, u] and hypot32(x[e, u] - ax, y[e, u] - ay) <= shoot[i]:
                        av[N_ACTIONS_NO_ATTACK + k] = 1


@njit
def obs_rows(ft, x, y, hp, sh, alive, avail, last_action, episode_steps, episode_limit, rows, out):
    """out[e] [n_agents, obs_size (+1)] f32 for the envs where rows[e]; dead agents' rows are zeros."""
    # fields read once: a tuple-field read inside a loop costs a reference-count pair (docs/engine.md)
    all_health, grid, hp_max_t, map_x = ft.all_health, ft.grid, ft.hp_max, ft.map_x
    map_y, n_actions, n_agents, nf_al = ft.map_y, ft.n_actions, ft.n_agents, ft.nf_al
    nf_en, obs_last_action, obs_size, onehot_t = ft.nf_en, ft.obs_last_action, ft.obs_size, ft.onehot
    own_health, pathing_grid, sh_max_t, shield_ally = ft.own_health, ft.pathing_grid, ft.sh_max, ft.shield_ally
    shield_enemy, terrain, terrain_height, timestep = ft.shield_enemy, ft.terrain, ft.terrain_height, ft.timestep
    utb, own_pos, table_of, sight_t = ft.utb, ft.own_pos, ft.table_of, ft.sight
    n_a = n_agents
    n_e = x.shape[1] - n_a
    fx, fy = F32(map_x), F32(map_y)
    for e in range(x.shape[0]):
        if not rows[e]:
            continue
        ti = table_of[e]
        hp_max, sh_max, onehot, sight_e = hp_max_t[ti], sh_max_t[ti], onehot_t[ti], sight_t[ti]
        for i in range(n_a):
            o = out[e, i]
            o[:] = 0.0
            if not alive[e, i]:
                continue
            ax, ay = x[e, i], y[e, i]
            sight = sight_e[i]
            for k in range(4):
                o[k] = avail[e, i, 2 + k]
            c = 4
            if pathing_grid or terrain:
                cx, cy = np.int64(ax), np.int64(ay)
                for k in range(N_OBS_PATHING):
                    px, py = cx + PATHING_OFFSETS[k, 0], cy + PATHING_OFFSETS[k, 1]
                    inside = 0 <= px < map_x and 0 <= py < map_y
                    if pathing_grid:
                        o[c + k] = grid[px, py] if inside else 1.0
                    if terrain:
                        o[c + N_OBS_PATHING * pathing_grid + k] = terrain_height[px, py] if inside else 1.0
                if terrain:
                    o[c + N_OBS_PATHING * pathing_grid + N_OBS_PATHING] = terrain_height[
                        min(max(cx, 0), map_x - 1), min(max(cy, 0), map_y - 1)
                    ]
                c += N_OBS_PATHING * pathing_grid + N_OBS_HEIGHT * terrain
            # the dead are skipped before their distance is computed; one-hots are copied entry by
            # entry (a slice assignment per unit cost more than the copy)
            for k in range(n_e):
                u = n_a + k
                if not alive[e, u]:
                    continue
                dx, dy = x[e, u] - ax, y[e, u] - ay
                d = hypot32(dx, dy)
                b = c + k * nf_en
                if d < sight:
                    o[b] = avail[e, i, N_ACTIONS_NO_ATTACK + k]  # a healer's reads its heal slot (SMAC)
                    o[b + 1], o[b + 2], o[b + 3] = d / sight, dx / sight, dy / sight
                    b += 4
                    if all_health:
                        o[b] = hp[e, u] / hp_max[u]
                        b += 1
                        if shield_enemy:
                            o[b] = sh[e, u] / sh_max[u]
                            b += 1
                    for t in range(utb):
                        o[b + t] = onehot[u, t]
            c += n_e * nf_en
            b = c - nf_al
            for j in range(n_a):
                if j == i:
                    continue
                b += nf_al
                if not alive[e, j]:
                    continue
                dx, dy = x[e, j] - ax, y[e, j] - ay
                d = hypot32(dx, dy)
                if d < sight:
                    o[b], o[b + 1], o[b + 2], o[b + 3] = 1.0, d / sight, dx / sight, dy / sight
                    f = b + 4
                    if all_health:
                        o[f] = hp[e, j] / hp_max[j]
                        f += 1
                        if shield_ally:
                            o[f] = sh[e, j] / sh_max[j]
                            f += 1
                    for t in range(utb):
                        o[f + t] = onehot[j, t]
                    f += utb
                    if obs_last_action:
                        for t in range(n_actions):
                            o[f + t] = last_action[e, j, t]
            b += nf_al
            if own_health:
                o[b] = hp[e, i] / hp_max[i]
                b += 1
                if shield_ally:
                    o[b] = sh[e, i] / sh_max[i]
                    b += 1
            if own_pos:  # SMACv2's obs_own_pos
                o[b], o[b + 1] = ax / fx, ay / fy
                b += 2
            for t in range(utb):  # loops, not slice copies: see spawn._place_all
                o[b + t] = onehot[i, t]
            if timestep:  # SMAC's size quirk: a zero column, then the time step appended (spec §3.4)
                o[obs_size] = F32(episode_steps[e] / episode_limit)


@njit
def state_rows(ft, x, y, hp, sh, energy, cd, alive, last_action, episode_steps, episode_limit, rows, out):
    """out[e] [state_size] f32 for the envs where rows[e]: SMAC's global state."""
    # fields read once: a tuple-field read inside a loop costs a reference-count pair (docs/engine.md)
    cd_col_t, hp_max_t, map_x, map_y = ft.cd_col, ft.hp_max, ft.map_x, ft.map_y
    n_actions, n_agents, onehot_t, sh_max_t = ft.n_actions, ft.n_agents, ft.onehot, ft.sh_max
    table_of = ft.table_of
    shield_ally, shield_enemy, st_al, st_en = ft.shield_ally, ft.shield_enemy, ft.st_al, ft.st_en
    state_last_action, state_timestep, utb = ft.state_last_action, ft.state_timestep, ft.utb
    n_a = n_agents
    n_e = x.shape[1] - n_a
    cx, cy = F32(map_x / 2), F32(map_y / 2)
    mx, my = F32(map_x), F32(map_y)
    for e in range(x.shape[0]):
        if not rows[e]:
            continue
        ti = table_of[e]
        cd_col, hp_max, onehot, sh_max = cd_col_t[ti], hp_max_t[ti], onehot_t[ti], sh_max_t[ti]
        s = out[e]
        s[:] = 0.0
        for i in range(n_a):
            b = i * st_al
            if not alive[e, i]:
                continue
            cdv = energy[e, i] / F32(200.0) if np.isnan(cd_col[i]) else cd[e, i] / cd_col[i]
            s[b], s[b + 1], s[b + 2], s[b + 3] = hp[e, i] / hp_max[i], cdv, (x[e, i] - cx) / mx, (y[e, i] - cy) / my
            b += 4
            if shield_ally:
                s[b] = sh[e, i] / sh_max[i]
                b += 1
            for t in range(utb):
                s[b + t] = onehot[i, t]
        base = n_a * st_al
        for k in range(n_e):
            u, b = n_a + k, base + k * st_en
            if not alive[e, u]:
                continue
            s[b], s[b + 1], s[b + 2] = hp[e, u] / hp_max[u], (x[e, u] - cx) / mx, (y[e, u] - cy) / my
            b += 3
            if shield_enemy:
                s[b] = sh[e, u] / sh_max[u]
                b += 1
            for t in range(utb):
                s[b + t] = onehot[u, t]
        b = base + n_e * st_en
        if state_last_action:
            for i in range(n_a):
                for t in range(n_actions):
                    s[b + t] = last_action[e, i, t]
                b += n_actions
        if state_timestep:
            s[b] = F32(episode_steps[e] / episode_limit)


@njit
def all_rows(ft, state_f32, alive, last_action, episode_steps, episode_limit, rows, avail, obs, state):
    """Masks, then obs (which read them), then state, for the envs where rows[e]: one call from Python."""
    x, y, hp, sh, energy, cd = state_f32[0], state_f32[1], state_f32[2], state_f32[3], state_f32[4], state_f32[5]
    avail_rows(ft, x, y, alive, rows, avail)
    obs_rows(ft, x, y, hp, sh, alive, avail, last_action, episode_steps, episode_limit, rows, obs)
    if not ft.obs_instead_of_state:
        state_rows(ft, x, y, hp, sh, energy, cd, alive, last_action, episode_steps, episode_limit, rows, state)


class Features:
    """Sizes and builders of SMAC's per-agent obs, global state and action masks."""

    def __init__(self, engine: BattleEngine, flags: FeatureFlags):
        self.eng, self.flags = engine, flags
        spec = engine.spec
        self.n_agents, self.n_enemies, self.n_actions = engine.n_agents, engine.n_enemies, engine.n_actions
        self.utb = spec.unit_type_bits
        self.shield_bits_ally = int(spec.a_race == "P")
        self.shield_bits_enemy = int(spec.b_race == "P")
        own_health = flags.obs_own_health or flags.obs_all_health
        self.own_health = own_health
        scenario = engine.scenario is not None
        self.own_pos = bool(scenario if flags.obs_own_pos is None else flags.obs_own_pos)
        self.unit_ranges = bool(scenario if flags.use_unit_ranges is None else flags.use_unit_ranges)
        self.n_move = 4 + N_OBS_PATHING * flags.obs_pathing_grid + N_OBS_HEIGHT * flags.obs_terrain_height
        self.nf_en = 4 + self.utb + (1 + self.shield_bits_enemy if flags.obs_all_health else 0)
        self.nf_al = (
            4
            + self.utb
            + (1 + self.shield_bits_ally if flags.obs_all_health else 0)
            + (self.n_actions if flags.obs_last_action else 0)
        )
        self.n_own = (
            self.utb
            + (1 + self.shield_bits_ally if own_health else 0)
            + 2 * self.own_pos
            + int(flags.obs_timestep_number)
        )
        self.obs_size = self.n_move + self.n_enemies * self.nf_en + (self.n_agents - 1) * self.nf_al + self.n_own
        self.st_al = 4 + self.shield_bits_ally + self.utb
        self.st_en = 3 + self.shield_bits_enemy + self.utb
        if flags.obs_instead_of_state:
            self.state_size = self.obs_size * self.n_agents
        else:
            self.state_size = (
                self.n_agents * self.st_al
                + self.n_enemies * self.st_en
                + self.n_agents * self.n_actions * flags.state_last_action
                + int(flags.state_timestep_number)
            )
        n_a = self.n_agents
        self.terrain_height = np.full(engine.tables.grid.shape, 0.5, dtype=np.float32)  # flat (spec §6)
        E = engine.n_envs
        per_env = engine.scenario is not None
        rows = [self._unit_rows(engine.tables_of(e)) for e in range(E if per_env else 1)]
        stacked = {k: np.ascontiguousarray(np.stack([r[k] for r in rows])) for k in rows[0]}
        self.tables = FeatTables(
            n_agents=n_a,
            n_actions=self.n_actions,
            utb=self.utb,
            shield_ally=bool(self.shield_bits_ally),
            shield_enemy=bool(self.shield_bits_enemy),
            all_health=flags.obs_all_health,
            own_health=own_health,
            obs_last_action=flags.obs_last_action,
            pathing_grid=flags.obs_pathing_grid,
            terrain=flags.obs_terrain_height,
            timestep=flags.obs_timestep_number,
            state_last_action=flags.state_last_action,
            state_timestep=flags.state_timestep_number,
            obs_instead_of_state=flags.obs_instead_of_state,
            nf_en=self.nf_en,
            nf_al=self.nf_al,
            obs_size=self.obs_size,
            st_al=self.st_al,
            st_en=self.st_en,
            half_move=F32(engine.move_amount / 2),
            map_x=engine.map_x,
            map_y=engine.map_y,
            grid=np.ascontiguousarray(engine.tables.grid),
            terrain_height=self.terrain_height,
            own_pos=self.own_pos,
            table_of=np.arange(E, dtype=np.int64) if per_env else np.zeros(E, dtype=np.int64),
            **stacked,
        )

    def _unit_rows(self, t) -> dict:
        """One unit table's rows of the FeatTables arrays."""
        n_a, spec = self.n_agents, self.eng.spec
        onehot = np.zeros((t.n_agents + t.n_enemies, self.utb), dtype=np.float32)
        if self.utb:
            onehot[np.arange(onehot.shape[0]), t.type_onehot_idx] = 1.0
        heals = healing_agents(t.is_healer[:n_a], spec.map_type.medivac_rules)  # [n_a]
        names = [u.name for u in t.units[:n_a]]
        if self.unit_ranges:  # SMACv2's unit_sight_range / unit_shoot_range
            sight = np.array([u.sight for u in t.units[:n_a]], dtype=np.float32)
            shoot = smacv2_shoot_ranges(names, self.flags.min_attack_range)
        else:
            sight, shoot = np.full(n_a, _SIGHT, np.float32), np.full(n_a, _SHOOT, np.float32)
        return dict(
            hp_max=t.hp_max.astype(np.float32),
            sh_max=np.where(t.sh_max > 0, t.sh_max, 1.0).astype(np.float32),
            onehot=onehot,
            medivac_heals=heals,
            heal_target_ok=~t.is_medivac[:n_a],
            # SMAC's state shows energy / 200 instead of the cooldown for the agents that heal
            cd_col=np.where(heals, np.nan, t.max_cd_obs[:n_a]).astype(np.float32),
            sight=sight,
            shoot=shoot,
            is_medivac=t.is_medivac,
        )

    def refresh(self, rows: np.ndarray) -> None:
        """After a reset drew new teams: the per-env tables of `rows` [E] bool follow the engine's."""
        if self.eng.scenario is None:
            return
        for e in np.flatnonzero(rows):
            for k, v in self._unit_rows(self.eng.tables_of(e)).items():
                getattr(self.tables, k)[e] = v

    # ------------------------------------------------------------------ builder
    def compute(
        self,
        last_action: np.ndarray,
        episode_steps: np.ndarray,
        episode_limit: int,
        rows: np.ndarray,
        avail: np.ndarray,
        obs: np.ndarray,
        state: np.ndarray,
    ) -> None:
        """SMAC's masks [E, n_agents, n_actions] int32, obs [E, n_agents, obs_size (+1)] and state
        [E, state_size] float32, into the given arrays for the envs where `rows` [E]."""
        eng = self.eng
        args = (self.tables, eng.state_f32, eng.alive, last_action, episode_steps, episode_limit)
        if eng.threads == 1:
            all_rows(*args, rows, avail, obs, state)
        else:  # each thread the rows of its env range (where a thread's share pays for its hand-off)

            def part(lo: int, hi: int) -> None:
                mine = np.zeros_like(rows)
                mine[lo:hi] = rows[lo:hi]
                all_rows(*args, mine, avail, obs, state)

            eng.over_env_ranges(part, MIN_FEATURE_ENVS_PER_THREAD)
        if self.flags.obs_instead_of_state:
            state[rows] = obs[rows].reshape(int(rows.sum()), -1)

    def visibility_matrix(self) -> np.ndarray:
        """[E, n_agents, n_agents + n_enemies] bool: alive units within sight of an alive agent."""
        eng, n_a = self.eng, self.n_agents
        d = np.hypot(eng.x[:, None, :] - eng.x[:, :n_a, None], eng.y[:, None, :] - eng.y[:, :n_a, None])
        sight = self.tables.sight[self.tables.table_of][:, :, None]  # [E, n_a, 1]
        return (d < sight) & eng.alive[:, :n_a, None] & eng.alive[:, None, :]
