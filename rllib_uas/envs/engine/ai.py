"""The built-in enemy AI: SC2 attack-move unit behaviour (spec/smac.md §8).

Damage dealers auto-acquire allies within their scan distance (plus any ally attacking them:
retaliation), preferring units with weapons, then the nearest. A target is kept while it is in
weapon range or attacking back; otherwise the unit re-evaluates every loop. Enemy healers heal
the most damaged biological teammate in range, or follow their army.
"""
from __future__ import annotations

import numpy as np

IDLE, MOVE, ATTACK, HEAL, AMOVE, FOLLOW = 0, 1, 2, 3, 4, 5
FOLLOW_DISTANCE = 1.5
_FAR = np.float32(1e9)


def enemy_decide(eng) -> None:
    """Update the orders/targets of the enemy units of every env, in place."""
    t, n_a = eng.tables, eng.n_agents
    x, y, alive, order, tgt = eng.x, eng.y, eng.alive, eng.order, eng.tgt
    ex, ey, ax, ay = x[:, n_a:], y[:, n_a:], x[:, :n_a], y[:, :n_a]
    dist = np.hypot(ax[:, None, :] - ex[:, :, None], ay[:, None, :] - ey[:, :, None])  # [E, n_e, n_a]
    edge = dist - eng._radius_pair                                                     # surface distance
    enemy_ids = np.arange(n_a, n_a + eng.n_enemies)
    attacking_me = (order[:, None, :n_a] == ATTACK) & (tgt[:, None, :n_a] == enemy_ids[None, :, None])
    cand = alive[:, None, :n_a] & eng._enemy_can_hit & ((edge <= eng._enemy_scan) | attacking_me)
    score = np.where(cand, dist + eng._no_weapon_penalty, np.inf)
    best = score.argmin(axis=2)                                                        # [E, n_e]
    rows, cols = eng._rows, eng._enemy_cols
    has_best = cand[rows, cols, best]

    cur = tgt[:, n_a:]
    cur_c = np.clip(cur, 0, n_a - 1)
    valid = (cur >= 0) & (cur < n_a) & cand[rows, cols, cur_c]
    in_reach = edge[rows, cols, cur_c] <= eng._enemy_reach
    retaliating = attacking_me[rows, cols, cur_c]
    better_armed = t.has_weapon[best] & ~t.has_weapon[cur_c]
    keep = valid & (in_reach | retaliating) & ~(better_armed & has_best)
    dealers = eng._enemy_dealer & (order[:, n_a:] == AMOVE)
    new = np.where(keep, cur, np.where(has_best, best, -1))
    tgt[:, n_a:] = np.where(dealers, new, cur)

    if eng._enemy_healer_idx.size:
        _enemy_healers(eng, ex, ey)


def _enemy_healers(eng, ex, ey) -> None:
    t, n_a = eng.tables, eng.n_agents
    h = eng._enemy_healer_idx                                                          # local enemy ids
    alive_e = eng.alive[:, n_a:]
    if not alive_e[:, h].any():
        return
    hp_e = eng.hp[:, n_a:]
    d = np.hypot(ex[:, None, :] - ex[:, h, None], ey[:, None, :] - ey[:, h, None])     # [E, H, n_e]
    damaged = alive_e & eng._enemy_bio_ground & (hp_e < t.hp_max[n_a:])
    able = alive_e[:, h] & (eng.energy[:, n_a + h] > 0)
    cand = damaged[:, None, :] & (d <= eng._enemy_heal_scan[h]) & able[:, :, None]
    frac = np.where(cand, (hp_e / t.hp_max[n_a:])[:, None, :], np.inf)
    best = frac.argmin(axis=2)
    has = np.isfinite(frac.min(axis=2))                                                # [E, H]
    army = alive_e & eng._enemy_dealer[None, :]
    any_army = army.any(1, keepdims=True)
    cnt = np.maximum(army.sum(1, keepdims=True), 1)
    cx = np.where(any_army, (ex * army).sum(1, keepdims=True) / cnt, eng.gx[:, n_a + h])
    cy = np.where(any_army, (ey * army).sum(1, keepdims=True) / cnt, eng.gy[:, n_a + h])
    cols = n_a + h
    eng.order[:, cols] = np.where(has, HEAL, FOLLOW)
    eng.tgt[:, cols] = np.where(has, best + n_a, -1)
    eng.gx[:, cols] = np.where(has, eng.gx[:, cols], cx)
    eng.gy[:, cols] = np.where(has, eng.gy[:, cols], cy)
