"""Damage resolution: shields first, then armor per hit with SC2's 0.5 minimum (docs/smac.md).

Hits are events (attacker, target, per-hit damage, number of hits). Hits on the same target within
one game loop are applied in attacker order, so shield overflow is exact. The damage arithmetic is
float64 and the result is rounded once to the float32 of the unit state.
"""

from __future__ import annotations

import numpy as np

from rllib_uas.envs.engine.jit import F32, inline, njit

MIN_DAMAGE = 0.5  # SC2: a hit always does at least 0.5 damage after armor


@njit
def _hp_part(overflow, shield_part, armor):
    """HP damage of one hit: armor applies to what passed the shield; 0.5 floor if no shield took it."""
    if overflow > 0:
        floor = 0.0 if shield_part > 0 else MIN_DAMAGE
        return max(overflow - armor, floor)
    return 0.0


@njit
def hit_split(per_hit, hits, shield, armor):
    """(shield damage, hp damage) of `hits` (1 or 2) hits of `per_hit` raw damage on `shield` left."""
    sp1 = min(per_hit, shield)
    hp1 = _hp_part(per_hit - sp1, sp1, armor)
    if hits >= 2:
        sp2 = min(per_hit, shield - sp1)
        return sp1 + sp2, hp1 + _hp_part(per_hit - sp2, sp2, armor)
    return sp1, hp1


@njit
def _sort_events(key, n, order):
    """order[:n] = indices of key[:n] ascending (keys are unique, so any correct sort gives this order):
    insertion sort for the usual few, Shell sort past 24 (np.argsort would compile numba's quicksort,
    about 3 s of every fresh checkout's first run)."""
    for i in range(n):
        order[i] = i
    gap = 1
    while gap * 3 + 1 < n and n > 24:
        gap = gap * 3 + 1  # Knuth's gaps 1, 4, 13, 40, ...
    while gap >= 1:
        for i in range(gap, n):
            k, j = order[i], i - gap
            while j >= 0 and key[order[j]] > key[k]:
                order[j + gap] = order[j]
                j -= gap
            order[j + gap] = k
        gap //= 3


@inline
def resolve_hits(hp, sh, since_damage, armor, attacker, target, per_hit, hits, n, key, order):
    """Apply the first `n` hit events to one env's hp/sh [U] rows in place; reset hit units' regen timer.

    `key` and `order` are [>= n] int64 scratch arrays.
    """
    U = hp.shape[0]
    for k in range(n):
        key[k] = target[k] * U + attacker[k]
    _sort_events(key, n, order)
    i = 0
    while i < n:
        t = target[order[i]]
        shield0 = np.float64(sh[t])
        before = sh_dmg = hp_dmg = 0.0  # raw damage of the earlier hits on t, damage dealt
        while i < n and target[order[i]] == t:
            k = order[i]
            raw = np.float64(per_hit[k])
            a, b = hit_split(raw, hits[k], max(shield0 - before, 0.0), armor[t])
            sh_dmg += a
            hp_dmg += b
            before += raw * hits[k]
            i += 1
        s = sh[t] - F32(sh_dmg)
        h = hp[t] - F32(hp_dmg)
        sh[t] = s if s > 0 else 0
        hp[t] = h if h > 0 else 0
        since_damage[t] = 0


@njit
def _apply_hits(hp, sh, since_damage, armor, env, attacker, target, per_hit, hits):
    n = env.size
    key = np.empty(n, np.int64)
    order = np.empty(n, np.int64)
    att = np.empty(n, np.int64)
    tgt = np.empty(n, np.int64)
    ph = np.empty(n, np.float64)
    nh = np.empty(n, np.float64)
    for e in range(hp.shape[0]):
        m = 0
        for k in range(n):
            if env[k] == e:
                att[m], tgt[m], ph[m], nh[m] = attacker[k], target[k], per_hit[k], hits[k]
                m += 1
        if m:
            resolve_hits(hp[e], sh[e], since_damage[e], armor, att, tgt, ph, nh, m, key, order)


def apply_hits(
    hp: np.ndarray,
    sh: np.ndarray,
    since_damage: np.ndarray,
    armor: np.ndarray,
    env: np.ndarray,
    attacker: np.ndarray,
    target: np.ndarray,
    per_hit: np.ndarray,
    hits: np.ndarray,
) -> None:
    """Apply hit events given per env (any order) in place to hp/sh [E, U]: the engine's resolution."""
    _apply_hits(
        hp,
        sh,
        since_damage,
        np.asarray(armor, np.float64),
        np.asarray(env, np.int64),
        np.asarray(attacker, np.int64),
        np.asarray(target, np.int64),
        np.asarray(per_hit, np.float64),
        np.asarray(hits, np.float64),
    )


@njit
def _split_many(per_hit, hits, shield, armor, sh_out, hp_out):
    for k in range(per_hit.size):
        sh_out[k], hp_out[k] = hit_split(per_hit[k], hits[k], shield[k], armor[k])


def hit_damage_split(per_hit: np.ndarray, hits: np.ndarray, shield: np.ndarray, armor: np.ndarray):
    """(shield damage, hp damage) arrays for hits given elementwise: `hit_split` over arrays."""
    per_hit, hits, shield, armor = (np.asarray(a, np.float64).ravel() for a in (per_hit, hits, shield, armor))
    sh_out, hp_out = np.empty_like(per_hit), np.empty_like(per_hit)
    _split_many(per_hit, hits, shield, armor, sh_out, hp_out)
    return sh_out, hp_out
