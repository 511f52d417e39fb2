"""The compiled env step: SMAC actions become SC2 orders, then `step_mul` game loops, for every env.

Each game loop, per env: dead targets dropped -> enemy AI (every AI_PERIOD loops) -> movement toward
goals -> soft separation (every SEPARATION_PERIOD loops) -> pathing -> weapons fire -> damage
(shields, armor, 0.5 minimum, splash) -> deaths -> heals -> regeneration. Game loops run outside and
envs inside, so the shared random stream (cooldown jitter) is drawn in the same order for any batch.

`step_envs` receives the per-map constants packed (`PackedTables`, built by `BattleEngine`) and the
unit arrays; the phases read them as a `SimTables` and a `SimState` (views [E, U], updated in
place). Arithmetic is float32 or float64 exactly where NumPy's
promotion made it so in the reference engine (see jit.py): the golden trajectories check it.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from rllib_uas.envs.engine.actions import MOVE_DIRS, MOVE_NORTH, MOVE_WEST, N_ACTIONS_NO_ATTACK, STOP
from rllib_uas.envs.engine.ai import AMOVE, ATTACK, FOLLOW, FOLLOW_DISTANCE, HEAL, IDLE, MOVE, enemy_decide
from rllib_uas.envs.engine.combat import resolve_hits
from rllib_uas.envs.engine.jit import F32, hypot32, inline, lowest_bit, njit, stream_next_uint32
from rllib_uas.envs.engine.pathing import steer
from rllib_uas.envs.engine.tables import SPLASH_LINE, SPLASH_SUICIDE

SHIELD_REGEN_DELAY = 160  # loops (10 s normal) without damage before shields regenerate
SHIELD_REGEN_PER_LOOP = F32(0.125)  # 2 per normal second
LINE_SPLASH_HALF_WIDTH = F32(1.4)  # Colossus beam: 2.8 wide ...
LINE_SPLASH_HALF_DEPTH = F32(0.15)  # ... by 0.3 deep, centred on the target
AI_PERIOD = 2  # loops between enemy target scans (SC2 also scans periodically)
SEPARATION_PERIOD = 2  # loops between soft-collision passes (a cost/fidelity trade-off)
RANGE_EPS = F32(1e-4)  # range checks tolerate float error
APPROACH_MARGIN = F32(0.05)  # units chasing a target stop this far inside their range
EDGE_LIMIT = F32(1e-3)  # positions stay this far inside the map's far edges
ENV_BLOCK = 64  # envs per block of the kernel's phases (see step_envs)
# move N, S, E, W as SMAC actions 2..5


# Per-unit tables travel to the kernel packed in a few arrays: every array argument of a compiled
# call from Python is unboxed on each call, which at one env cost more than the step itself.
# Rows of UNIT_F32 / UNIT_BOOL / STATE_F32:
UNIT_F32 = (
    "radius",
    "speed",
    "reach",
    "cd_loops",
    "hits",
    "splash_radius",
    "armor",
    "hp_max",
    "sh_max",
    "heal_per_loop",
    "energy_per_hp",
    "energy_max",
    "energy_regen",
    "hp_regen",
    "enemy_scan",
    "no_weapon_penalty",
    "enemy_heal_scan",
)
UNIT_BOOL = ("has_weapon", "is_healer", "is_bio_ground", "pathing_units", "enemy_dealer")
STATE_F32 = ("x", "y", "hp", "sh", "energy", "cd", "gx", "gy", "since_damage")


class SimConsts(NamedTuple):
    """Per-map scalars."""

    n_agents: int
    n_enemies: int
    medivac_rules: bool
    max_radius_sum: float  # largest radius sum of two ground units: the separation sweep window
    has_geo: bool
    geo_size_y: int
    has_splash: bool
    has_healers: bool
    has_regen: bool
    has_shields: bool
    has_energy: bool


class PackedTables(NamedTuple):
    """Per-map constants as the compiled step receives them (built by BattleEngine).

    The unit arrays have a leading table axis T: one table shared by every env (T = 1, SMAC's fixed
    maps), or one per env (T = E, scenarios whose teams are drawn at each reset, SMACv2). Ground
    units and enemy healers vary per table, so their arrays are padded and `counts` says how many
    entries each table uses."""

    consts: SimConsts
    unit_f32: np.ndarray  # [T, len(UNIT_F32), U] f32
    unit_bool: np.ndarray  # [T, len(UNIT_BOOL), U] bool
    splash: np.ndarray  # [T, U] int64 SPLASH_*
    hit_damage: np.ndarray  # [T, U, U] f32 per-hit damage of attacker on target
    can_hit: np.ndarray  # [T, U, U] bool
    pair_g: np.ndarray  # [T, 3, G, G] f32: radius sum, radius sum squared (-1 on the diagonal), push share
    ground_idx: np.ndarray  # [T, G] int64 units that collide on the ground (first counts[t, 0] used)
    enemy_healer_idx: np.ndarray  # [T, H] int64 local enemy ids of healers (first counts[t, 1] used)
    counts: np.ndarray  # [T, 2] int64: ground units, enemy healers
    grid: np.ndarray  # [X, Y] bool walkable
    geo_dist: np.ndarray  # [N + 1, N + 1] f32 geodesic cell distances (1x1 dummy without pathfinding)
    geo_nbr: np.ndarray  # [N, 8] int64


class SimTables(NamedTuple):
    """The kernels' view of the tables: [U] arrays per unit index (allies first). enemy_scan,
    enemy_heal_scan and enemy_dealer are read at enemy indices, no_weapon_penalty at ally indices."""

    c: SimConsts
    radius: np.ndarray
    speed: np.ndarray  # distance per loop
    reach: np.ndarray  # weapon or heal range (centre distance adds both radii)
    cd_loops: np.ndarray
    hits: np.ndarray
    splash_radius: np.ndarray
    armor: np.ndarray
    hp_max: np.ndarray
    sh_max: np.ndarray
    heal_per_loop: np.ndarray
    energy_per_hp: np.ndarray
    energy_max: np.ndarray
    energy_regen: np.ndarray  # per loop
    hp_regen: np.ndarray  # per loop
    enemy_scan: np.ndarray  # auto-acquire distance
    no_weapon_penalty: np.ndarray  # added to the distance of allies without a weapon
    enemy_heal_scan: np.ndarray
    has_weapon: np.ndarray
    is_healer: np.ndarray
    is_bio_ground: np.ndarray
    pathing_units: np.ndarray  # walk on the grid (not air, not cliff walkers)
    enemy_dealer: np.ndarray  # has a weapon and is not a healer
    splash: np.ndarray
    hit_damage: np.ndarray
    can_hit: np.ndarray
    radius_sum_g: np.ndarray  # [G, G]
    radius_sum2_g: np.ndarray
    push_share_g: np.ndarray  # share of the push unit i takes from j
    ground_idx: np.ndarray
    enemy_healer_idx: np.ndarray
    grid: np.ndarray
    geo_dist: np.ndarray
    geo_nbr: np.ndarray


class SimState(NamedTuple):
    """The kernels' view of the batch's unit arrays [E, U] (f32 unless noted), updated in place."""

    x: np.ndarray
    y: np.ndarray
    hp: np.ndarray
    sh: np.ndarray
    energy: np.ndarray
    cd: np.ndarray
    gx: np.ndarray
    gy: np.ndarray
    since_damage: np.ndarray
    alive: np.ndarray  # bool
    order: np.ndarray  # int8
    tgt: np.ndarray  # int64, -1 for none
    loop_count: np.ndarray  # [E] int64


@inline
def _view_tables(pk, ti):
    """The kernels' [U] view of table `ti`."""
    c, f, b = pk.consts, pk.unit_f32[ti], pk.unit_bool[ti]
    n_g, n_h = pk.counts[ti, 0], pk.counts[ti, 1]
    return SimTables(
        c,
        f[0],
        f[1],
        f[2],
        f[3],
        f[4],
        f[5],
        f[6],
        f[7],
        f[8],
        f[9],
        f[10],
        f[11],
        f[12],
        f[13],
        f[14],
        f[15],
        f[16],
        b[0],
        b[1],
        b[2],
        b[3],
        b[4],
        pk.splash[ti],
        pk.hit_damage[ti],
        pk.can_hit[ti],
        pk.pair_g[ti, 0, :n_g, :n_g],
        pk.pair_g[ti, 1, :n_g, :n_g],
        pk.pair_g[ti, 2, :n_g, :n_g],
        pk.ground_idx[ti, :n_g],
        pk.enemy_healer_idx[ti, :n_h],
        pk.grid,
        pk.geo_dist,
        pk.geo_nbr,
    )


# How the kernels are written, for speed: every phase runs over a block of envs, reading table
# fields and state arrays into locals once and indexing [e, u] directly. Array references held
# across complex control flow cost an atomic reference-count pair each per use site, so per-env
# row views or table-field reads inside the env loop made a game loop several times slower.


@inline
def issue_orders(tb, st, actions, active, move_amount):
    """Turn SMAC actions [E, n_agents] into SC2 orders (queue_command=False: they replace)."""
    x, y, gx, gy, alive, order, tgt = st.x, st.y, st.gx, st.gy, st.alive, st.order, st.tgt
    is_healer, can_hit, n_a, medivac_rules = tb.is_healer, tb.can_hit, tb.c.n_agents, tb.c.medivac_rules
    last = x.shape[1] - 1
    for e in range(x.shape[0]):
        if not active[e]:
            continue
        for i in range(n_a):
            a = actions[e, i]
            if not alive[e, i]:
                continue
            if a == STOP:
                order[e, i], tgt[e, i] = IDLE, -1
            elif MOVE_NORTH <= a <= MOVE_WEST:
                gx[e, i] = x[e, i] + MOVE_DIRS[a - MOVE_NORTH, 0] * move_amount
                gy[e, i] = y[e, i] + MOVE_DIRS[a - MOVE_NORTH, 1] * move_amount
                order[e, i], tgt[e, i] = MOVE, -1
            elif a >= N_ACTIONS_NO_ATTACK:
                j = a - N_ACTIONS_NO_ATTACK
                if is_healer[i] and medivac_rules:  # actions.healing_agents, per unit
                    order[e, i], tgt[e, i] = HEAL, j
                elif can_hit[i, min(j + n_a, last)]:
                    order[e, i], tgt[e, i] = ATTACK, j + n_a
                else:
                    order[e, i] = IDLE  # a rejected order idles the unit and keeps its old target


@inline
def _cooldowns_and_dead_targets(tb, st, active):
    """Weapon cooldowns tick; units whose target died drop it (allies go idle, enemies re-acquire)."""
    cd, alive, order, tgt, n_a = st.cd, st.alive, st.order, st.tgt, tb.c.n_agents
    for e in range(cd.shape[0]):
        if not active[e]:
            continue
        for u in range(cd.shape[1]):
            c = cd[e, u] - F32(1.0)
            cd[e, u] = c if c > 0 else F32(0.0)
            t = tgt[e, u]
            if t >= 0 and not alive[e, t]:
                if u < n_a:
                    order[e, u] = IDLE
                tgt[e, u] = -1


@inline
def _move(tb, st, active, tc, in_reach, nx, ny):
    """Goals, reach and the intended new positions nx, ny [E, U] (float64, before collisions)."""
    x, y, gx, gy, alive, order, tgt = st.x, st.y, st.gx, st.gy, st.alive, st.order, st.tgt
    radius, reach_, speed, walks = tb.radius, tb.reach, tb.speed, tb.pathing_units
    has_geo, geo_dist, geo_nbr, geo_y = tb.c.has_geo, tb.geo_dist, tb.geo_nbr, tb.c.geo_size_y
    for e in range(x.shape[0]):
        if not active[e]:
            continue
        for u in range(x.shape[1]):
            if not alive[e, u]:  # the dead neither move nor reach anything
                tc[e, u], in_reach[e, u], nx[e, u], ny[e, u] = 0, False, x[e, u], y[e, u]
                continue
            t = tgt[e, u]
            has = t >= 0
            c = t if has else 0
            tc[e, u] = c
            goal_x = x[e, c] if has else gx[e, u]
            goal_y = y[e, c] if has else gy[e, u]
            dx, dy = goal_x - x[e, u], goal_y - y[e, u]
            dist = hypot32(dx, dy)
            edge = dist - radius[u] - radius[c]
            reach = has and edge <= reach_[u] + RANGE_EPS
            in_reach[e, u] = reach
            # close to slightly inside range: stopping exactly on the boundary never converges in floats
            if has:
                stop_at = np.float64(reach_[u] + radius[u] + radius[c] - APPROACH_MARGIN)
            else:
                stop_at = FOLLOW_DISTANCE if order[e, u] == FOLLOW else 0.0
            o = order[e, u]
            wants = (o == MOVE or o == FOLLOW or o == AMOVE or has) and not reach
            step = min(np.float64(speed[u]), max(dist - stop_at, 0.0)) if wants else 0.0
            if wants and has_geo and walks[u]:
                dx, dy = steer(geo_dist, geo_nbr, geo_y, x[e, u], y[e, u], goal_x, goal_y, dx, dy)
            inv = step / np.float64(max(hypot32(dx, dy), F32(1e-6)))
            nx[e, u] = x[e, u] + dx * inv
            ny[e, u] = y[e, u] + dy * inv
            if o == MOVE and dist <= speed[u]:
                order[e, u] = IDLE


@inline
def _separate(tb, st, active, nx, ny, sweep_order, sc):
    """Soft push-apart of overlapping alive ground units (SC2 units do not stack), on nx, ny in place.

    A sort-and-sweep on x finds the pairs within the window of the largest radius sum; a pair that
    overlaps sets its bit in both units' partner masks. Each unit then sums the pushes of its partners
    in index order (the masks' set bits, lowest first), so the result does not depend on the culling.
    A push is computed only for an overlapping pair, from each side (about 3 in 10 of the window's
    pairs on MMM2): j pushes i by (rsum - d) * share / d along j -> i, from the positions before any push.
    `sweep_order` [E, G] keeps each env's x order between passes: units move little, so an insertion
    sort restores it in about linear time.
    """
    g_idx, rsum, rsum2, share = tb.ground_idx, tb.radius_sum_g, tb.radius_sum2_g, tb.push_share_g
    keys, ys, members, gx, gy = sc.keys, sc.ys, sc.members, sc.ground_x, sc.ground_y
    partners = sc.partners
    alive, G = st.alive, g_idx.size
    window = tb.c.max_radius_sum * 1.001 + 1e-6
    for e in range(alive.shape[0]):
        if not active[e]:
            continue
        m, dead = 0, G
        for p in range(G):  # alive units in last pass's order, dead ones at the end
            i = sweep_order[e, p]
            if alive[e, g_idx[i]]:
                key, yi, b = nx[e, g_idx[i]], ny[e, g_idx[i]], m - 1
                gx[i], gy[i] = key, yi  # by ground index: the positions every push is computed from
                while b >= 0 and keys[b] > key:
                    keys[b + 1], ys[b + 1], members[b + 1] = keys[b], ys[b], members[b]
                    b -= 1
                keys[b + 1], ys[b + 1], members[b + 1] = key, yi, i
                m += 1
            else:
                dead -= 1
                members[dead] = i
        for p in range(G):  # a loop, not a slice copy: see spawn._place_all
            sweep_order[e, p] = members[p]
        if m < 2:
            continue
        for p in range(m):  # keys, ys: the sorted units' nx, ny
            xp, yp, i = keys[p], ys[p], members[p]
            for q in range(p + 1, m):
                if keys[q] - xp > window:
                    break
                # no branch on the overlap (a coin toss to the branch predictor): its bit is set or not
                j = members[q]
                ddx, ddy = keys[q] - xp, ys[q] - yp
                hit = np.uint64(ddx * ddx + ddy * ddy < rsum2[i, j])
                partners[i, j >> 6] |= hit << np.uint64(j & 63)
                partners[j, i >> 6] |= hit << np.uint64(i & 63)
        for i in range(G):
            px = py = 0.0
            for w in range(partners.shape[1]):
                bits = partners[i, w]
                partners[i, w] = 0  # cleared for the next env
                while bits:
                    j = 64 * w + lowest_bit(bits)
                    bits &= bits - np.uint64(1)
                    # from j to i's push direction: i - j = -(j - i) exactly, so both sides of a pair
                    # see the same distance
                    ddx, ddy = gx[j] - gx[i], gy[j] - gy[i]
                    d = np.sqrt(ddx * ddx + ddy * ddy)
                    w_i = (rsum[i, j] - d) * share[i, j] / max(d, 1e-3)  # i is pushed away from j
                    px += w_i * ddx
                    py += w_i * ddy
            nx[e, g_idx[i]] -= px  # safe in place: every push was computed from gx, gy
            ny[e, g_idx[i]] -= py  # (px is +0.0 without partners: subtracting it changes nothing)


@inline
def _apply_pathing(tb, st, active, nx, ny):
    """Accept each move if its cell is walkable; else slide along one axis; else stay."""
    grid, walks = tb.grid, tb.pathing_units
    hi_x = np.float64(F32(grid.shape[0]) - EDGE_LIMIT)
    hi_y = np.float64(F32(grid.shape[1]) - EDGE_LIMIT)
    x, y, alive = st.x, st.y, st.alive
    for e in range(x.shape[0]):
        if not active[e]:
            continue
        for u in range(x.shape[1]):
            if not alive[e, u]:
                continue
            px = min(max(nx[e, u], 0.0), hi_x)
            py = min(max(ny[e, u], 0.0), hi_y)
            if walks[u] and not grid[np.int64(px), np.int64(py)]:
                ok_x = grid[np.int64(px), np.int64(y[e, u])]
                ok_y = not ok_x and grid[np.int64(x[e, u]), np.int64(py)]
                px = px if ok_x else np.float64(x[e, u])
                py = py if ok_y else np.float64(y[e, u])
            x[e, u], y[e, u] = px, py


@inline
def _fire(tb, st, active, tc, in_reach, next_uint32, rng_state, streams, sc):
    """Weapons fire: cooldowns, hit events with splash, damage, then deaths (envs in order, so the
    cooldown jitter is drawn from the shared stream in the same order for any batch). With `streams`
    [B] (one random stream per env of the block, see step_envs_per_env) each env draws from its own;
    empty, all draw from the shared stream `next_uint32(rng_state)`."""
    x, y, hp, sh, cd, since = st.x, st.y, st.hp, st.sh, st.cd, st.since_damage
    alive, order, tgt = st.alive, st.order, st.tgt
    has_weapon, cd_loops, splash, splash_radius = tb.has_weapon, tb.cd_loops, tb.splash, tb.splash_radius
    radius, can_hit, hit_damage, hits, armor = tb.radius, tb.can_hit, tb.hit_damage, tb.hits, tb.armor
    has_splash = tb.c.has_splash
    ev_a, ev_t, ev_damage, ev_hits, ev_key, ev_order = (
        sc.ev_attacker,
        sc.ev_target,
        sc.ev_damage,
        sc.ev_hits,
        sc.ev_key,
        sc.ev_order,
    )
    U = x.shape[1]
    own_streams = streams.shape[0] > 0
    for e in range(x.shape[0]):
        if not active[e]:
            continue
        n = 0
        for u in range(U):
            o = order[e, u]
            if in_reach[e, u] and cd[e, u] <= 0 and has_weapon[u] and alive[e, u] and (o == ATTACK or o == AMOVE):
                # SC2: -1..+2 loops of jitter; NumPy's integers(-1, 3) is the top 2 bits of one uint32 draw
                bits = stream_next_uint32(streams, e) if own_streams else next_uint32(rng_state)
                cd[e, u] = cd_loops[u] + ((np.int64(bits) >> 30) - 1)
                ev_a[n], ev_t[n] = u, tc[e, u]
                n += 1
        if n == 0:
            continue
        n_main = n
        if has_splash:
            for k in range(n_main):
                a, t = ev_a[k], ev_t[k]
                if splash[a] == SPLASH_LINE:  # beam perpendicular to shooter->target, centred on the target
                    ux, uy = x[e, t] - x[e, a], y[e, t] - y[e, a]
                    norm = max(hypot32(ux, uy), F32(1e-6))
                    ux, uy = ux / norm, uy / norm
                    for v in range(U):
                        rx, ry = x[e, v] - x[e, t], y[e, v] - y[e, t]
                        along, across = rx * ux + ry * uy, abs(rx * -uy + ry * ux)
                        if (
                            abs(along) <= LINE_SPLASH_HALF_DEPTH + radius[v]
                            and across <= LINE_SPLASH_HALF_WIDTH + radius[v]
                            and alive[e, v]
                            and can_hit[a, v]
                            and v != t
                        ):
                            ev_a[n], ev_t[n] = a, v
                            n += 1
            for k in range(n_main):
                a, t = ev_a[k], ev_t[k]
                if splash[a] == SPLASH_SUICIDE:
                    for v in range(U):
                        d = hypot32(x[e, v] - x[e, a], y[e, v] - y[e, a])
                        if d <= splash_radius[a] + radius[v] and alive[e, v] and can_hit[a, v] and v != t:
                            ev_a[n], ev_t[n] = a, v
                            n += 1
                    hp[e, a] = 0.0  # the baneling bursts
        for k in range(n):
            ev_damage[k] = hit_damage[ev_a[k], ev_t[k]]
            ev_hits[k] = hits[ev_a[k]]
        resolve_hits(hp[e], sh[e], since[e], armor, ev_a, ev_t, ev_damage, ev_hits, n, ev_key, ev_order)
        for u in range(U):  # deaths before heals and regen: a unit at 0 HP is dead, not healable
            if alive[e, u] and hp[e, u] <= 0:
                alive[e, u] = False
                hp[e, u] = sh[e, u] = 0.0
                order[e, u], tgt[e, u] = IDLE, -1


@inline
def _heal(tb, st, active, tc, in_reach, amount):
    """Heals of the healers in reach; amounts come from the HP before any of this loop's heals."""
    hp, energy, alive, order = st.hp, st.energy, st.alive, st.order
    is_healer, is_bio, heal_per_loop, hp_max, per_hp = (
        tb.is_healer,
        tb.is_bio_ground,
        tb.heal_per_loop,
        tb.hp_max,
        tb.energy_per_hp,
    )
    U = hp.shape[1]
    for e in range(hp.shape[0]):
        if not active[e]:
            continue
        any_heal = False
        for u in range(U):
            amount[u] = -1.0
            t = tc[e, u]
            # alive[e, t]: in_reach was computed before this loop's fire, which may have killed the target
            if (
                order[e, u] == HEAL
                and in_reach[e, u]
                and alive[e, u]
                and is_healer[u]
                and energy[e, u] > 0
                and is_bio[t]
                and alive[e, t]
            ):
                a = min(min(heal_per_loop[u], hp_max[t] - hp[e, t]), energy[e, u] / per_hp[u])
                amount[u] = max(a, F32(0.0))
                any_heal = True
        if not any_heal:
            continue
        for u in range(U):
            if amount[u] >= 0:
                t = tc[e, u]
                hp[e, t] = hp[e, t] + amount[u]
                energy[e, u] -= amount[u] * per_hp[u]
        for u in range(U):
            if amount[u] >= 0:
                t = tc[e, u]
                hp[e, t] = min(hp[e, t], hp_max[t])


@inline
def _regen(tb, st, active):
    hp, sh, energy, since, alive = st.hp, st.sh, st.energy, st.since_damage, st.alive
    sh_max, hp_regen, hp_max, energy_regen, energy_max = (
        tb.sh_max,
        tb.hp_regen,
        tb.hp_max,
        tb.energy_regen,
        tb.energy_max,
    )
    shields, regen, mana = tb.c.has_shields, tb.c.has_regen, tb.c.has_energy
    # each unit's new value is computed and then selected, not guarded by a branch: the loops over
    # units then have no data-dependent branch (the map's flags are the same for every unit)
    for e in range(hp.shape[0]):
        if not active[e]:
            continue
        if shields:
            for u in range(hp.shape[1]):
                wait = since[e, u] + F32(1.0)
                since[e, u] = wait
                up = min(sh[e, u] + SHIELD_REGEN_PER_LOOP, sh_max[u])
                sh[e, u] = up if alive[e, u] and wait >= SHIELD_REGEN_DELAY else sh[e, u]
        if regen:
            for u in range(hp.shape[1]):
                up = min(hp[e, u] + hp_regen[u], hp_max[u])
                hp[e, u] = up if alive[e, u] and hp[e, u] > 0 else hp[e, u]
        if mana:
            for u in range(hp.shape[1]):
                up = min(energy[e, u] + energy_regen[u], energy_max[u])
                energy[e, u] = up if alive[e, u] else energy[e, u]


class Scratch(NamedTuple):
    """Work arrays of one kernel call: per env of a block [B, U], or for one env at a time."""

    tc: np.ndarray  # [B, U] int64 target (0 where none)
    in_reach: np.ndarray  # [B, U] bool
    nx: np.ndarray  # [B, U] f64 intended positions
    ny: np.ndarray
    amount: np.ndarray  # [U] f32 heal amounts
    keys: np.ndarray  # [G] f64 separation sweep keys (x) ...
    ys: np.ndarray  # ... and the same units' y
    members: np.ndarray  # [G] int64
    ground_x: np.ndarray  # [G] f64 the ground units' nx, ny by ground index, before the pushes
    ground_y: np.ndarray
    partners: np.ndarray  # [G, ceil(G / 64)] uint64 bit j: i and j overlap; zero between envs
    ev_attacker: np.ndarray  # [U + U*U] hit events
    ev_target: np.ndarray
    ev_damage: np.ndarray
    ev_hits: np.ndarray
    ev_key: np.ndarray
    ev_order: np.ndarray


@inline
def _make_scratch(B, U, G):
    n_ev = U + U * U
    return Scratch(
        np.zeros((B, U), np.int64),
        np.zeros((B, U), np.bool_),
        np.zeros((B, U)),
        np.zeros((B, U)),
        np.zeros(U, np.float32),
        np.zeros(G),
        np.zeros(G),
        np.zeros(G, np.int64),
        np.zeros(G),
        np.zeros(G),
        np.zeros((G, (G + 63) // 64), np.uint64),
        np.zeros(n_ev, np.int64),
        np.zeros(n_ev, np.int64),
        np.zeros(n_ev),
        np.zeros(n_ev),
        np.zeros(n_ev, np.int64),
        np.zeros(n_ev, np.int64),
    )


@inline
def _block(f, alive, order, tgt, loop_count, e0, e1):
    """The kernels' SimState view of envs e0:e1."""
    return SimState(
        f[0][e0:e1], f[1][e0:e1], f[2][e0:e1], f[3][e0:e1], f[4][e0:e1], f[5][e0:e1], f[6][e0:e1],
        f[7][e0:e1], f[8][e0:e1], alive[e0:e1], order[e0:e1], tgt[e0:e1], loop_count[e0:e1],
    )  # fmt: skip


@njit
def step_envs(
    pk,
    state_f32,
    alive,
    order,
    tgt,
    loop_count,
    sweep_order,
    actions,
    active,
    step_mul,
    move_amount,
    next_uint32,
    rng_state,
):
    """Issue actions [E, n_agents] and simulate `step_mul` game loops of the envs where `active` [E].

    `state_f32` [len(STATE_F32), E, U] holds the float unit arrays, `sweep_order` [E, G] the separation
    pass's x order of the ground units (any permutation is valid); `next_uint32(rng_state)` is the
    engine Generator's bit generator, so the kernel draws from the same stream as NumPy would.
    """
    f = state_f32
    E = alive.shape[0]
    # Envs go through the phases in blocks, so a block's arrays stay in cache from phase to phase
    # (faster than passing the whole batch through each phase at 256 envs). Blocks run in env
    # order inside each game loop, so the cooldown jitter is still drawn in env order. With a
    # table per env (drawn teams), a block is one env and reads its own table.
    per_env = pk.unit_f32.shape[0] > 1
    B = 1 if per_env else min(E, ENV_BLOCK)
    G = max(pk.ground_idx.shape[1], 1)
    sc = _make_scratch(B, alive.shape[1], G)
    ai_now, sep_now = np.zeros(B, np.bool_), np.zeros(B, np.bool_)
    no_streams = np.zeros(0, np.uint64)
    shared = _view_tables(pk, 0)  # the one table of a fixed map, viewed once
    for e0 in range(0, E, B):
        e1 = min(e0 + B, E)
        tb = _view_tables(pk, e0) if per_env else shared
        blk = _block(f, alive, order, tgt, loop_count, e0, e1)
        issue_orders(tb, blk, actions[e0:e1], active[e0:e1], F32(move_amount))
    for _ in range(step_mul):
        for e0 in range(0, E, B):
            e1 = min(e0 + B, E)
            tb = _view_tables(pk, e0) if per_env else shared
            blk = _block(f, alive, order, tgt, loop_count, e0, e1)
            sweep = sweep_order[e0:e1, : tb.ground_idx.size]
            act = active[e0:e1]
            # the phases written out in each kernel: inlining them through one shared inline helper
            # made numba's compile 7.5 s longer (nested inlining), for no speed
            separating = tb.ground_idx.size > 1
            for k in range(act.shape[0]):
                # the AI and separation periods follow each env's own loop count
                ai_now[k] = act[k] and blk.loop_count[k] % AI_PERIOD == 0
                sep_now[k] = act[k] and blk.loop_count[k] % SEPARATION_PERIOD == 0 and separating
            _cooldowns_and_dead_targets(tb, blk, act)
            enemy_decide(tb, blk, ai_now)
            _move(tb, blk, act, sc.tc, sc.in_reach, sc.nx, sc.ny)
            _separate(tb, blk, sep_now, sc.nx, sc.ny, sweep, sc)
            _apply_pathing(tb, blk, act, sc.nx, sc.ny)
            _fire(tb, blk, act, sc.tc, sc.in_reach, next_uint32, rng_state, no_streams, sc)
            if tb.c.has_healers:
                _heal(tb, blk, act, sc.tc, sc.in_reach, sc.amount)
            _regen(tb, blk, act)
            for k in range(act.shape[0]):
                blk.loop_count[k] += act[k]


@njit
def _no_shared_stream(state):
    """Stands in for the shared stream in step_envs_per_env, where `_fire` never calls it."""
    return np.uint32(0)


@njit
def step_envs_per_env(
    pk,
    state_f32,
    alive,
    order,
    tgt,
    loop_count,
    sweep_order,
    actions,
    active,
    step_mul,
    move_amount,
    streams,
    e_lo,
    e_hi,
):
    """`step_envs` for envs e_lo:e_hi, with one random stream per env (`streams` [E] uint64, see
    stream_next_uint32). No draw depends on another env, so each block of envs runs all `step_mul`
    game loops at once, and disjoint env ranges can be stepped by concurrent calls (the kernel
    releases the GIL; BattleEngine's `threads`). The result is the same for any split into ranges."""
    f = state_f32
    per_env = pk.unit_f32.shape[0] > 1
    B = 1 if per_env else ENV_BLOCK
    G = max(pk.ground_idx.shape[1], 1)
    sc = _make_scratch(B, alive.shape[1], G)
    ai_now, sep_now = np.zeros(B, np.bool_), np.zeros(B, np.bool_)
    shared = _view_tables(pk, 0)
    for e0 in range(e_lo, e_hi, B):
        e1 = min(e0 + B, e_hi)
        tb = _view_tables(pk, e0) if per_env else shared
        blk = _block(f, alive, order, tgt, loop_count, e0, e1)
        act = active[e0:e1]
        issue_orders(tb, blk, actions[e0:e1], act, F32(move_amount))
        sweep = sweep_order[e0:e1, : tb.ground_idx.size]
        block_streams = streams[e0:e1]
        for _ in range(step_mul):
            # the phases written out in each kernel: inlining them through one shared inline helper
            # made numba's compile 7.5 s longer (nested inlining), for no speed
            separating = tb.ground_idx.size > 1
            for k in range(act.shape[0]):
                # the AI and separation periods follow each env's own loop count
                ai_now[k] = act[k] and blk.loop_count[k] % AI_PERIOD == 0
                sep_now[k] = act[k] and blk.loop_count[k] % SEPARATION_PERIOD == 0 and separating
            _cooldowns_and_dead_targets(tb, blk, act)
            enemy_decide(tb, blk, ai_now)
            _move(tb, blk, act, sc.tc, sc.in_reach, sc.nx, sc.ny)
            _separate(tb, blk, sep_now, sc.nx, sc.ny, sweep, sc)
            _apply_pathing(tb, blk, act, sc.nx, sc.ny)
            _fire(tb, blk, act, sc.tc, sc.in_reach, _no_shared_stream, 0, block_streams, sc)
            if tb.c.has_healers:
                _heal(tb, blk, act, sc.tc, sc.in_reach, sc.amount)
            _regen(tb, blk, act)
            for k in range(act.shape[0]):
                blk.loop_count[k] += act[k]
