"""The built-in enemy AI: SC2 attack-move unit behaviour (docs/smac.md, "The enemy").

Damage dealers auto-acquire allies within their scan distance (plus any ally attacking them:
retaliation), preferring units with weapons, then the nearest. A target is kept while it is in
weapon range or attacking back; otherwise the unit re-evaluates every scan. Enemy healers heal
the most damaged biological teammate in range, or follow their army.
"""

from __future__ import annotations

import numpy as np

from rllib_uas.envs.engine.jit import INF32, hypot32, inline, pairwise_sum

IDLE, MOVE, ATTACK, HEAL, AMOVE, FOLLOW = 0, 1, 2, 3, 4, 5
FOLLOW_DISTANCE = 1.5


# Written like simulate.py's phases (one pass over a block of envs, [e, u] indexing, no helper calls with
# array arguments in the loops): see the note there on what that saves.


@inline
def enemy_decide(tb, st, now):
    """Update the orders/targets of the enemy units of the envs where `now` [E], in place."""
    x, y, alive, order, tgt = st.x, st.y, st.alive, st.order, st.tgt
    n_a, n_e = tb.c.n_agents, tb.c.n_enemies
    radius, can_hit, scan, reach = tb.radius, tb.can_hit, tb.enemy_scan, tb.reach
    dealer, penalty, has_weapon = tb.enemy_dealer, tb.no_weapon_penalty, tb.has_weapon
    for e in range(x.shape[0]):
        if not now[e]:
            continue
        for k in range(n_e):
            u = n_a + k
            if not (dealer[u] and order[e, u] == AMOVE):
                continue
            xu, yu, ru, scan_u = x[e, u], y[e, u], radius[u], scan[u]
            # keep the current target while it is a candidate in weapon range or attacking back, unless
            # an armed candidate exists and the target is unarmed
            cur = tgt[e, u]
            held = False
            if 0 <= cur < n_a and alive[e, cur] and can_hit[u, cur]:
                edge = hypot32(x[e, cur] - xu, y[e, cur] - yu) - (ru + radius[cur])
                retaliating = order[e, cur] == ATTACK and tgt[e, cur] == u
                held = (edge <= scan_u or retaliating) and (edge <= reach[u] or retaliating)
            if held and has_weapon[cur]:
                continue  # kept whatever the best candidate is: skip the scan
            # candidates: alive allies it can hit within scan distance, or attacking it (retaliation)
            best, best_score, has_best = 0, INF32, False
            for a in range(n_a):
                if not (alive[e, a] and can_hit[u, a]):
                    continue
                dist = hypot32(x[e, a] - xu, y[e, a] - yu)
                if dist - (ru + radius[a]) <= scan_u or (order[e, a] == ATTACK and tgt[e, a] == u):
                    score = dist + penalty[a]
                    if score < best_score:
                        best, best_score, has_best = a, score, True
            if not (held and not (has_weapon[best] and has_best)):
                tgt[e, u] = best if has_best else -1
    if tb.enemy_healer_idx.size:
        _enemy_healers(tb, st, now)


@inline
def _enemy_healers(tb, st, now):
    """Heal the most damaged bio teammate in reach, else follow the army's centre."""
    x, y, hp, energy, alive, order, tgt, gx, gy = st.x, st.y, st.hp, st.energy, st.alive, st.order, st.tgt, st.gx, st.gy
    n_a, n_e = tb.c.n_agents, tb.c.n_enemies
    healers, dealer, bio, hp_max, heal_scan = (
        tb.enemy_healer_idx,
        tb.enemy_dealer,
        tb.is_bio_ground,
        tb.hp_max,
        tb.enemy_heal_scan,
    )
    army_x, army_y = np.empty(n_e, np.float32), np.empty(n_e, np.float32)
    for e in range(x.shape[0]):
        if not now[e]:
            continue
        any_healer = False
        for h in healers:
            any_healer |= alive[e, n_a + h]
        if not any_healer:
            continue
        cnt = 0
        for k in range(n_e):
            in_army = alive[e, n_a + k] and dealer[n_a + k]
            army_x[k] = x[e, n_a + k] * np.float32(in_army)
            army_y[k] = y[e, n_a + k] * np.float32(in_army)
            cnt += in_army
        cx = np.float64(pairwise_sum(army_x)) / max(cnt, 1)  # NumPy's pairwise float32 sum, as the reference
        cy = np.float64(pairwise_sum(army_y)) / max(cnt, 1)
        for h in healers:
            u = n_a + h
            able = alive[e, u] and energy[e, u] > 0
            best, best_frac = 0, INF32
            for k in range(n_e):
                v = n_a + k
                damaged = alive[e, v] and bio[v] and hp[e, v] < hp_max[v]
                if damaged and able and hypot32(x[e, v] - x[e, u], y[e, v] - y[e, u]) <= heal_scan[u]:
                    frac = hp[e, v] / hp_max[v]
                    if frac < best_frac:
                        best, best_frac = k, frac
            if best_frac < INF32:
                order[e, u], tgt[e, u] = HEAL, n_a + best
            else:
                order[e, u], tgt[e, u] = FOLLOW, -1
                if cnt:
                    gx[e, u], gy[e, u] = cx, cy
