"""SMAC's observation, state and available-action layouts, vectorized over envs (spec/smac.md §2, §3)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rllib_uas.envs.engine.battle import MOVE_DIRS, BattleEngine

SIGHT_RANGE = 9.0   # unit_sight_range(): always 9
SHOOT_RANGE = 6.0   # unit_shoot_range(): always 6
N_OBS_PATHING, N_OBS_HEIGHT = 8, 9
PATHING_OFFSETS = np.array([(0, 4), (0, -4), (4, 0), (-4, 0), (2, 2), (-2, -2), (2, -2), (-2, 2)])


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


class Features:
    """Sizes and vectorized builders of SMAC's per-agent obs, global state and action masks."""

    def __init__(self, engine: BattleEngine, flags: FeatureFlags):
        self.eng, self.flags = engine, flags
        t, spec = engine.tables, engine.spec
        self.n_agents, self.n_enemies, self.n_actions = engine.n_agents, engine.n_enemies, engine.n_actions
        self.utb = spec.unit_type_bits
        self.shield_bits_ally = int(spec.a_race == "P")
        self.shield_bits_enemy = int(spec.b_race == "P")
        own_health = flags.obs_own_health or flags.obs_all_health
        self.own_health = own_health
        self.n_move = 4 + N_OBS_PATHING * flags.obs_pathing_grid + N_OBS_HEIGHT * flags.obs_terrain_height
        self.nf_en = 4 + self.utb + (1 + self.shield_bits_enemy if flags.obs_all_health else 0)
        self.nf_al = 4 + self.utb + (1 + self.shield_bits_ally if flags.obs_all_health else 0) \
            + (self.n_actions if flags.obs_last_action else 0)
        self.n_own = self.utb + (1 + self.shield_bits_ally if own_health else 0) + int(flags.obs_timestep_number)
        self.obs_size = self.n_move + self.n_enemies * self.nf_en + (self.n_agents - 1) * self.nf_al + self.n_own
        self.st_al = 4 + self.shield_bits_ally + self.utb
        self.st_en = 3 + self.shield_bits_enemy + self.utb
        if flags.obs_instead_of_state:
            self.state_size = self.obs_size * self.n_agents
        else:
            self.state_size = self.n_agents * self.st_al + self.n_enemies * self.st_en \
                + self.n_agents * self.n_actions * flags.state_last_action + int(flags.state_timestep_number)
        n_a = self.n_agents
        self._onehot = np.zeros((engine.n_units, self.utb), dtype=np.float32)
        if self.utb:
            self._onehot[np.arange(engine.n_units), t.type_onehot_idx] = 1.0
        self._sh_max = np.where(t.sh_max > 0, t.sh_max, 1.0)
        self._ally_medivac_heals = spec.map_type.medivac_rules & t.is_healer[:n_a]     # [n_a]
        self._heal_target_ok = ~t.is_medivac[:n_a]                                       # [n_a]
        # other allies of agent i in id order, skipping i: [n_a, n_a-1]
        self._others = np.array([[j for j in range(n_a) if j != i] for i in range(n_a)], dtype=np.int64) \
            .reshape(n_a, n_a - 1)
        self._cd_col = np.where(spec.map_type.medivac_rules & t.is_medivac[:n_a], np.nan, t.max_cd_obs[:n_a])
        self._terrain_height = np.full(engine.tables.grid.shape, 0.5, dtype=np.float32)  # flat (spec §6)

    # ------------------------------------------------------------------ masks
    def avail_actions(self) -> np.ndarray:
        """[E, n_agents, n_actions] int32 in SMAC's semantics."""
        eng, n_a, n_e = self.eng, self.n_agents, self.n_enemies
        E = eng.n_envs
        ax, ay, alive_a = eng.x[:, :n_a], eng.y[:, :n_a], eng.alive[:, :n_a]
        av = np.zeros((E, n_a, self.n_actions), dtype=np.int32)
        av[..., 0] = ~alive_a
        av[..., 1] = alive_a
        m = eng.move_amount / 2
        for k in range(4):
            cx = (ax + MOVE_DIRS[k, 0] * m).astype(np.int64)
            cy = (ay + MOVE_DIRS[k, 1] * m).astype(np.int64)
            inside = (cx >= 0) & (cy >= 0) & (cx < eng.map_x) & (cy < eng.map_y)
            ok = inside & eng.tables.grid[np.clip(cx, 0, eng.map_x - 1), np.clip(cy, 0, eng.map_y - 1)]
            av[..., 2 + k] = alive_a & ok
        d_en = np.hypot(eng.x[:, None, n_a:] - ax[..., None], eng.y[:, None, n_a:] - ay[..., None])  # [E, n_a, n_e]
        attack = alive_a[..., None] & eng.alive[:, None, n_a:] & (d_en <= SHOOT_RANGE)
        if self._ally_medivac_heals.any():
            d_al = np.hypot(ax[:, None, :] - ax[..., None], ay[:, None, :] - ay[..., None])   # [E, n_a, n_a]
            heal = alive_a[..., None] & alive_a[:, None, :] & self._heal_target_ok & (d_al <= SHOOT_RANGE)
            heal_full = np.zeros_like(attack)
            heal_full[..., :n_a] = heal
            attack = np.where(self._ally_medivac_heals[None, :, None], heal_full, attack)
        av[..., 6:6 + n_e] = attack
        return av

    # ------------------------------------------------------------------ observations
    def observations(self, avail: np.ndarray, last_action: np.ndarray, episode_steps: np.ndarray,
                     episode_limit: int) -> np.ndarray:
        """[E, n_agents, obs_size] float32; rows of dead agents are zeros."""
        eng, fl, t = self.eng, self.flags, self.eng.tables
        n_a, n_e = self.n_agents, self.n_enemies
        E = eng.n_envs
        ax, ay, alive = eng.x[:, :n_a], eng.y[:, :n_a], eng.alive
        parts = [avail[..., 2:6].astype(np.float32)]
        if fl.obs_pathing_grid or fl.obs_terrain_height:
            parts.extend(self._terrain_feats(ax, ay))

        # enemies
        ex, ey = eng.x[:, None, n_a:] - ax[..., None], eng.y[:, None, n_a:] - ay[..., None]   # [E, n_a, n_e]
        d = np.hypot(ex, ey)
        vis = (d < SIGHT_RANGE) & alive[:, None, n_a:]
        cols = [avail[..., 6:6 + n_e].astype(np.float32), d / SIGHT_RANGE, ex / SIGHT_RANGE, ey / SIGHT_RANGE]
        if fl.obs_all_health:
            cols.append(np.broadcast_to((eng.hp[:, n_a:] / t.hp_max[n_a:])[:, None, :], d.shape))
            if self.shield_bits_enemy:
                cols.append(np.broadcast_to((eng.sh[:, n_a:] / self._sh_max[n_a:])[:, None, :], d.shape))
        en = np.stack(cols, -1)
        if self.utb:
            en = np.concatenate([en, np.broadcast_to(self._onehot[n_a:], d.shape + (self.utb,))], -1)
        parts.append((en * vis[..., None]).reshape(E, n_a, -1))

        # allies (others, id order)
        o = self._others
        if n_a > 1:
            ox = ax[:, o] - ax[..., None]                                                      # [E, n_a, n_a-1]
            oy = ay[:, o] - ay[..., None]
            d = np.hypot(ox, oy)
            vis = (d < SIGHT_RANGE) & alive[:, :n_a][:, o]
            cols = [np.ones_like(d), d / SIGHT_RANGE, ox / SIGHT_RANGE, oy / SIGHT_RANGE]
            if fl.obs_all_health:
                cols.append((eng.hp[:, :n_a] / t.hp_max[:n_a])[:, o])
                if self.shield_bits_ally:
                    cols.append((eng.sh[:, :n_a] / self._sh_max[:n_a])[:, o])
            al = np.stack(cols, -1)
            extra = []
            if self.utb:
                extra.append(np.broadcast_to(self._onehot[:n_a][o], d.shape + (self.utb,)))
            if fl.obs_last_action:
                extra.append(last_action[:, o])
            if extra:
                al = np.concatenate([al] + extra, -1)
            parts.append((al * vis[..., None]).reshape(E, n_a, -1))

        # own
        own = []
        if self.own_health:
            own.append((eng.hp[:, :n_a] / t.hp_max[:n_a])[..., None])
            if self.shield_bits_ally:
                own.append((eng.sh[:, :n_a] / self._sh_max[:n_a])[..., None])
        if self.utb:
            own.append(np.broadcast_to(self._onehot[:n_a], (E, n_a, self.utb)))
        if fl.obs_timestep_number:
            own.append(np.zeros((E, n_a, 1), dtype=np.float32))  # SMAC's size quirk (spec §3.4)
        parts.extend(own)
        obs = np.concatenate([p.astype(np.float32, copy=False) for p in parts], -1)
        if fl.obs_timestep_number:
            ts = np.broadcast_to((episode_steps / episode_limit).astype(np.float32)[:, None, None], (E, n_a, 1))
            obs = np.concatenate([obs, ts], -1)
        obs *= alive[:, :n_a, None]
        return obs

    def _terrain_feats(self, ax, ay):
        eng = self.eng
        cx, cy = ax.astype(np.int64), ay.astype(np.int64)
        out = []
        px = cx[..., None] + PATHING_OFFSETS[:, 0]
        py = cy[..., None] + PATHING_OFFSETS[:, 1]
        inside = (px >= 0) & (py >= 0) & (px < eng.map_x) & (py < eng.map_y)
        pxc, pyc = np.clip(px, 0, eng.map_x - 1), np.clip(py, 0, eng.map_y - 1)
        if self.flags.obs_pathing_grid:
            out.append(np.where(inside, eng.tables.grid[pxc, pyc], 1.0).astype(np.float32))
        if self.flags.obs_terrain_height:
            h = np.where(inside, self._terrain_height[pxc, pyc], 1.0)
            own = self._terrain_height[np.clip(cx, 0, eng.map_x - 1), np.clip(cy, 0, eng.map_y - 1)][..., None]
            out.append(np.concatenate([h, own], -1).astype(np.float32))
        return out

    # ------------------------------------------------------------------ state
    def state(self, obs: np.ndarray, last_action: np.ndarray, episode_steps: np.ndarray,
              episode_limit: int) -> np.ndarray:
        """[E, state_size] float32."""
        eng, fl, t = self.eng, self.flags, self.eng.tables
        n_a = self.n_agents
        E = eng.n_envs
        if fl.obs_instead_of_state:
            return obs.reshape(E, -1)
        cx, cy = eng.map_x / 2, eng.map_y / 2
        rx, ry = (eng.x - cx) / eng.map_x, (eng.y - cy) / eng.map_y                          # max_distance = map size
        hp = eng.hp / t.hp_max
        cd = np.where(np.isnan(self._cd_col), eng.energy[:, :n_a] / 200.0, eng.cd[:, :n_a] / np.nan_to_num(self._cd_col, nan=1.0))
        al = [hp[:, :n_a], cd, rx[:, :n_a], ry[:, :n_a]]
        if self.shield_bits_ally:
            al.append(eng.sh[:, :n_a] / self._sh_max[:n_a])
        al = np.stack(al, -1)
        if self.utb:
            al = np.concatenate([al, np.broadcast_to(self._onehot[:n_a], (E, n_a, self.utb))], -1)
        en = [hp[:, n_a:], rx[:, n_a:], ry[:, n_a:]]
        if self.shield_bits_enemy:
            en.append(eng.sh[:, n_a:] / self._sh_max[n_a:])
        en = np.stack(en, -1)
        if self.utb:
            en = np.concatenate([en, np.broadcast_to(self._onehot[n_a:], (E, self.n_enemies, self.utb))], -1)
        al = al * eng.alive[:, :n_a, None]
        en = en * eng.alive[:, n_a:, None]
        parts = [al.reshape(E, -1), en.reshape(E, -1)]
        if fl.state_last_action:
            parts.append(last_action.reshape(E, -1))
        if fl.state_timestep_number:
            parts.append((episode_steps / episode_limit)[:, None])
        return np.concatenate([p.astype(np.float32, copy=False) for p in parts], -1)

    def visibility_matrix(self) -> np.ndarray:
        """[E, n_agents, n_agents + n_enemies] bool: alive units within sight of an alive agent."""
        eng, n_a = self.eng, self.n_agents
        d = np.hypot(eng.x[:, None, :] - eng.x[:, :n_a, None], eng.y[:, None, :] - eng.y[:, :n_a, None])
        return (d < SIGHT_RANGE) & eng.alive[:, :n_a, None] & eng.alive[:, None, :]
