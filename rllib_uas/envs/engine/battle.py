"""The vectorized battle engine: struct-of-arrays over [n_envs, n_units], stepped in game loops.

One `step` issues the agents' SMAC actions as SC2 orders and simulates `step_mul` (8) game loops
for every env at once, with normal-speed unit stats converted to per-loop values (spec/smac.md §0).
Each loop: enemy AI -> movement toward goals -> soft separation -> pathing -> weapons fire ->
damage (shields, armor, 0.5 minimum, splash) -> heals -> regeneration -> deaths.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from rllib_uas.envs.engine import ai
from rllib_uas.envs.engine.ai import AMOVE, ATTACK, FOLLOW, FOLLOW_DISTANCE, HEAL, IDLE, MOVE
from rllib_uas.envs.engine.combat import apply_hits
from rllib_uas.envs.engine.maps import get_map
from rllib_uas.envs.engine.pathing import geodesic_for_terrain, steer
from rllib_uas.envs.engine.tables import SPLASH_LINE, SPLASH_SUICIDE, UnitTables, build_tables

SHIELD_REGEN_DELAY = 160      # loops (10 s normal) without damage before shields regenerate
SHIELD_REGEN_PER_LOOP = 0.125  # 2 per normal second
LINE_SPLASH_HALF_WIDTH = 1.4   # Colossus beam: 2.8 wide ...
LINE_SPLASH_HALF_DEPTH = 0.15  # ... by 0.3 deep, centred on the target
AI_PERIOD = 2                  # loops between enemy target scans (SC2 also scans periodically)
SEPARATION_PERIOD = 2          # loops between soft-collision passes (a cost/fidelity trade-off)
RANGE_EPS = 1e-4               # range checks tolerate float error
APPROACH_MARGIN = 0.05         # units chasing a target stop this far inside their range
# move N, S, E, W as SMAC actions 2..5
MOVE_DIRS = np.array([[0, 1], [0, -1], [1, 0], [-1, 0]], dtype=np.float32)


class BattleEngine:
    """Battles of one map in `n_envs` independent envs, stepped together."""

    def __init__(self, map_name: str, n_envs: int = 1, seed: Optional[int] = None,
                 step_mul: int = 8, move_amount: float = 2.0):
        self.spec = get_map(map_name)
        self.tables: UnitTables = build_tables(self.spec)
        self.n_envs, self.step_mul, self.move_amount = int(n_envs), int(step_mul), float(move_amount)
        self.n_agents, self.n_enemies = self.tables.n_agents, self.tables.n_enemies
        self.n_units = self.n_agents + self.n_enemies
        self.n_actions = 6 + self.n_enemies
        self.map_x, self.map_y = self.tables.grid.shape
        self.rng = np.random.default_rng(seed)
        self._precompute()
        E, U = self.n_envs, self.n_units
        f = lambda: np.zeros((E, U), dtype=np.float32)  # noqa: E731
        self.x, self.y, self.hp, self.sh, self.energy, self.cd = f(), f(), f(), f(), f(), f()
        self.gx, self.gy, self.since_damage = f(), f(), f()
        self.alive = np.zeros((E, U), dtype=bool)
        self.order = np.zeros((E, U), dtype=np.int8)
        self.tgt = np.full((E, U), -1, dtype=np.int64)
        self.loop_count = np.zeros(E, dtype=np.int64)
        self.reset()

    # ------------------------------------------------------------------ setup
    def _precompute(self) -> None:
        t, n_a = self.tables, self.n_agents
        self._radius_pair = t.radius[n_a:, None] + t.radius[None, :n_a]        # [n_e, n_a]
        self._enemy_can_hit = t.can_hit[n_a:, :n_a]
        unit_scan = np.inf if self.spec.enemy_order["kind"] == "attack_units" else 1.0
        self._enemy_scan = (t.scan[n_a:, None] * unit_scan).astype(np.float32)  # [n_e, 1]
        self._enemy_reach = t.reach[n_a:][None, :]
        self._no_weapon_penalty = np.where(t.has_weapon[:n_a], 0.0, 1000.0).astype(np.float32)
        self._enemy_dealer = t.has_weapon[n_a:] & ~t.is_healer[n_a:]
        self._enemy_healer = t.is_healer[n_a:]
        self._enemy_healer_idx = np.flatnonzero(self._enemy_healer)
        self._enemy_bio_ground = t.is_bio_ground[n_a:]
        self._enemy_heal_scan = (np.maximum(t.reach[n_a:], 5.0) + 1.0)[:, None]
        # air units fly; small units walk under a Colossus: only these collide on the ground
        self._ground_idx = np.flatnonzero(~t.is_air & ~t.ignores_pathing)
        r = t.radius[self._ground_idx]
        self._radius_sum_g = r[:, None] + r[None, :]
        self._radius_sum2 = np.where(np.eye(r.size, dtype=bool), -1.0, self._radius_sum_g ** 2).astype(np.float32)
        # rooted units (speed 0) are not pushed; a mobile unit against one takes the full push
        mobile = (t.speed[self._ground_idx] > 0).astype(np.float32)
        share = np.where(mobile[None, :] > 0, 0.5, 1.0)
        self._push_share_g = (share * mobile[:, None]).astype(np.float32)          # [i pushed, j]
        self._has_splash = bool((t.splash != 0).any())
        self._has_healers = bool(t.is_healer.any())
        self._has_regen = bool((t.hp_regen > 0).any())
        self._has_shields = bool((t.sh_max > 0).any())
        self._has_energy = bool((t.energy_max > 0).any())
        self._pathing_units = ~t.ignores_pathing
        self._unit_idx = np.arange(self.n_units)
        self._rows = np.arange(self.n_envs)[:, None]
        self._enemy_cols = np.arange(self.n_enemies)[None, :]
        self._geo = geodesic_for_terrain(self.spec.terrain)

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

    # ------------------------------------------------------------------ orders
    def issue_actions(self, actions: np.ndarray) -> None:
        """Turn SMAC actions [E, n_agents] into SC2 orders (queue_command=False: they replace)."""
        t, n_a = self.tables, self.n_agents
        a = np.asarray(actions, dtype=np.int64)
        alive = self.alive[:, :n_a]
        order, tgt = self.order[:, :n_a], self.tgt[:, :n_a]
        x, y = self.x[:, :n_a], self.y[:, :n_a]
        stop = alive & (a == 1)
        move = alive & (a >= 2) & (a <= 5)
        attack = alive & (a >= 6)
        d = MOVE_DIRS[np.clip(a - 2, 0, 3)] * self.move_amount                  # [E, n_a, 2]
        self.gx[:, :n_a] = np.where(move, x + d[..., 0], self.gx[:, :n_a])
        self.gy[:, :n_a] = np.where(move, y + d[..., 1], self.gy[:, :n_a])
        j = a - 6
        heals = attack & (t.is_healer[:n_a] & self.spec.map_type.medivac_rules)
        target = np.where(heals, j, j + n_a)
        tc = np.clip(target, 0, self.n_units - 1)
        can = np.where(heals, True, t.can_hit[np.arange(n_a)[None, :], tc])  # a rejected order idles the unit
        new_order = np.where(stop, IDLE, np.where(move, MOVE, order))
        new_order = np.where(attack, np.where(heals, HEAL, np.where(can, ATTACK, IDLE)), new_order)
        self.order[:, :n_a] = new_order
        self.tgt[:, :n_a] = np.where(attack & can, target, np.where(stop | move, -1, tgt))

    # ------------------------------------------------------------------ simulation
    def step(self, actions: np.ndarray) -> None:
        self.issue_actions(actions)
        for _ in range(self.step_mul):
            self._loop()

    def _loop(self) -> None:
        t = self.tables
        alive, order = self.alive, self.order
        np.maximum(self.cd - 1.0, 0.0, out=self.cd)

        # targets that died: allies go idle, enemies re-acquire
        has_tgt = self.tgt >= 0
        tc = np.where(has_tgt, self.tgt, 0)
        tgt_alive = alive[self._rows, tc] & has_tgt
        dead_tgt = has_tgt & ~tgt_alive
        if dead_tgt.any():
            ally_cols = self._unit_idx < self.n_agents
            order[dead_tgt & ally_cols] = IDLE
            self.tgt[dead_tgt] = -1
        if self.loop_count[0] % AI_PERIOD == 0:
            ai.enemy_decide(self)
        has_tgt = (self.tgt >= 0) & alive
        tc = np.where(has_tgt, self.tgt, 0)

        # goals: the target unit (stop at reach) or the order point
        x, y = self.x, self.y
        tx, ty = x[self._rows, tc], y[self._rows, tc]
        gx, gy = np.where(has_tgt, tx, self.gx), np.where(has_tgt, ty, self.gy)
        dx, dy = gx - x, gy - y
        dist = np.hypot(dx, dy)
        edge = dist - t.radius - t.radius[tc]
        in_reach = has_tgt & (edge <= t.reach + RANGE_EPS)
        # close to slightly inside range: stopping exactly on the boundary never converges in floats
        stop_at = np.where(has_tgt, t.reach + t.radius + t.radius[tc] - APPROACH_MARGIN,
                           np.where(order == FOLLOW, FOLLOW_DISTANCE, 0.0))
        wants = alive & ((order == MOVE) | (order == FOLLOW) | (order == AMOVE) | has_tgt) & ~in_reach
        step = np.where(wants, np.minimum(t.speed, np.maximum(dist - stop_at, 0.0)), 0.0)
        if self._geo is not None:
            walking = wants & self._pathing_units
            if walking.any():
                dx, dy = dx.copy(), dy.copy()
                dx[walking], dy[walking] = steer(self._geo, x[walking], y[walking], gx[walking], gy[walking])
        inv = step / np.maximum(np.hypot(dx, dy), 1e-6)
        nx, ny = x + dx * inv, y + dy * inv
        arrived = (order == MOVE) & (dist <= t.speed)
        order[arrived] = IDLE

        if self.loop_count[0] % SEPARATION_PERIOD == 0:
            nx, ny = self._separate(nx, ny)
        self._apply_pathing(nx, ny)

        # weapons
        fire = in_reach & (self.cd <= 0) & t.has_weapon & alive & ((order == ATTACK) | (order == AMOVE))
        if fire.any():
            self._fire(fire, tc)
            self._resolve_deaths()  # before heals and regen: a unit at 0 HP is dead, not healable
        if self._has_healers:
            self._heal(has_tgt, tc, in_reach)
        self._regen()
        self.loop_count += 1

    def _resolve_deaths(self) -> None:
        died = self.alive & (self.hp <= 0)
        if died.any():
            self.alive &= ~died
            self.hp[died] = 0.0
            self.sh[died] = 0.0
            self.order[died] = IDLE
            self.tgt[died] = -1

    def _separate(self, nx: np.ndarray, ny: np.ndarray):
        """Soft push-apart of overlapping alive ground units (SC2 units do not stack).

        Only a squared-distance test runs over all pairs; the push is computed for overlapping pairs.
        """
        g = self._ground_idx
        dead = ~self.alive[:, g]
        gx, gy = nx[:, g], ny[:, g]
        gx[dead] = np.nan  # dead units never collide (NaN fails every distance test)
        ddx = gx[:, None, :] - gx[:, :, None]                                      # [E, i, j] = x_j - x_i
        ddy = gy[:, None, :] - gy[:, :, None]
        d2 = ddx * ddx + ddy * ddy
        close = d2 < self._radius_sum2
        if not close.any():
            return nx, ny
        e, i, j = np.nonzero(close)
        d = np.sqrt(d2[e, i, j])
        w = (self._radius_sum_g[i, j] - d) * self._push_share_g[i, j] / np.maximum(d, 1e-3)
        flat = e * g.size + i
        size = nx.shape[0] * g.size
        px = np.bincount(flat, w * ddx[e, i, j], size).reshape(-1, g.size)
        py = np.bincount(flat, w * ddy[e, i, j], size).reshape(-1, g.size)
        nx, ny = nx.copy(), ny.copy()
        nx[:, g] -= px.astype(nx.dtype)
        ny[:, g] -= py.astype(ny.dtype)
        return nx, ny

    def _apply_pathing(self, nx: np.ndarray, ny: np.ndarray) -> None:
        """Accept each move if its cell is walkable; else slide along one axis; else stay."""
        grid, X, Y = self.tables.grid, self.map_x, self.map_y
        lim = np.float32(1e-3)
        nx = np.clip(nx, 0, X - lim)
        ny = np.clip(ny, 0, Y - lim)
        walk = lambda a, b: grid[a.astype(np.int64), b.astype(np.int64)]  # noqa: E731
        ok = walk(nx, ny) | ~self._pathing_units
        if not ok.all():
            ok_x = walk(nx, self.y) & ~ok
            ok_y = walk(self.x, ny) & ~ok & ~ok_x
            nx = np.where(ok | ok_x, nx, self.x)
            ny = np.where(ok | ok_y, ny, self.y)
        self.x[...] = np.where(self.alive, nx, self.x)
        self.y[...] = np.where(self.alive, ny, self.y)

    def _fire(self, fire: np.ndarray, tc: np.ndarray) -> None:
        t = self.tables
        e_idx, a_idx = np.nonzero(fire)
        tgt = tc[e_idx, a_idx]
        jitter = self.rng.integers(-1, 3, size=e_idx.size)                      # SC2: -1..+2 loops
        self.cd[e_idx, a_idx] = t.cd_loops[a_idx] + jitter
        ev_e, ev_a, ev_t = [e_idx], [a_idx], [tgt]
        splash = t.splash[a_idx] if self._has_splash else None
        if splash is not None and (splash != 0).any():
            line = splash == SPLASH_LINE
            sui = splash == SPLASH_SUICIDE
            if line.any():
                le, la, lt = e_idx[line], a_idx[line], tgt[line]
                # beam perpendicular to shooter->target, centred on the target
                ux, uy = self.x[le, lt] - self.x[le, la], self.y[le, lt] - self.y[le, la]
                n = np.maximum(np.hypot(ux, uy), 1e-6)
                ux, uy = (ux / n)[:, None], (uy / n)[:, None]
                rx, ry = self.x[le] - self.x[le, lt][:, None], self.y[le] - self.y[le, lt][:, None]
                along, across = rx * ux + ry * uy, np.abs(rx * -uy + ry * ux)
                r = t.radius[None, :]
                hit = (np.abs(along) <= LINE_SPLASH_HALF_DEPTH + r) & (across <= LINE_SPLASH_HALF_WIDTH + r)
                hit &= self.alive[le] & t.can_hit[la] & (self._unit_idx[None, :] != lt[:, None])
                k, u = np.nonzero(hit)
                ev_e.append(le[k]); ev_a.append(la[k]); ev_t.append(u)  # noqa: E702
            if sui.any():
                se, sa = e_idx[sui], a_idx[sui]
                d = np.hypot(self.x[se] - self.x[se, sa][:, None], self.y[se] - self.y[se, sa][:, None])
                hit = (d <= t.splash_radius[sa][:, None] + t.radius[None, :]) & self.alive[se] & t.can_hit[sa]
                hit &= self._unit_idx[None, :] != tgt[sui][:, None]  # the main target is already an event
                k, u = np.nonzero(hit)
                ev_e.append(se[k]); ev_a.append(sa[k]); ev_t.append(u)  # noqa: E702
                self.hp[se, sa] = 0.0                                   # the baneling bursts
        ev_e, ev_a, ev_t = np.concatenate(ev_e), np.concatenate(ev_a), np.concatenate(ev_t)
        apply_hits(self.hp, self.sh, self.since_damage, t.armor, ev_e, ev_a, ev_t,
                   t.hit_damage[ev_a, ev_t], t.hits[ev_a])

    def _heal(self, has_tgt: np.ndarray, tc: np.ndarray, in_reach: np.ndarray) -> None:
        t = self.tables
        healing = (self.order == HEAL) & in_reach & self.alive & t.is_healer & (self.energy > 0)
        if not healing.any():
            return
        e_idx, h_idx = np.nonzero(healing)
        tg = tc[e_idx, h_idx]
        ok = t.is_bio_ground[tg]
        e_idx, h_idx, tg = e_idx[ok], h_idx[ok], tg[ok]
        missing = t.hp_max[tg] - self.hp[e_idx, tg]
        cost = t.energy_per_hp[h_idx]
        amount = np.minimum(np.minimum(t.heal_per_loop[h_idx], missing), self.energy[e_idx, h_idx] / cost)
        amount = np.maximum(amount, 0.0)
        np.add.at(self.hp, (e_idx, tg), amount)
        self.energy[e_idx, h_idx] -= amount * cost
        np.minimum(self.hp, t.hp_max, out=self.hp)

    def _regen(self) -> None:
        t, alive = self.tables, self.alive
        if self._has_shields:
            self.since_damage += 1.0
            regen = alive & (self.since_damage >= SHIELD_REGEN_DELAY)
            self.sh[...] = np.where(regen, np.minimum(self.sh + SHIELD_REGEN_PER_LOOP, t.sh_max), self.sh)
        if self._has_regen:
            self.hp[...] = np.where(alive & (self.hp > 0), np.minimum(self.hp + t.hp_regen, t.hp_max), self.hp)
        if self._has_energy:
            self.energy[...] = np.where(alive, np.minimum(self.energy + t.energy_regen, t.energy_max), self.energy)
