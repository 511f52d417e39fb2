"""Damage resolution: shields first, then armor per hit with SC2's 0.5 minimum (spec/smac.md §7).

Hits are sparse events (env, attacker, target, per-hit damage, number of hits). Hits on the same
target within one game loop are applied in attacker order, so shield overflow is exact.
"""
from __future__ import annotations

import numpy as np

MIN_DAMAGE = 0.5  # SC2: a hit always does at least 0.5 damage after armor


def _hp_part(overflow: np.ndarray, shield_part: np.ndarray, armor: np.ndarray) -> np.ndarray:
    """HP damage of one hit: armor applies to what passed the shield; 0.5 floor if no shield took it."""
    after_armor = overflow - armor
    floor = np.where(shield_part > 0, 0.0, MIN_DAMAGE)
    return np.where(overflow > 0, np.maximum(after_armor, floor), 0.0)


def hit_damage_split(per_hit: np.ndarray, hits: np.ndarray, shield: np.ndarray, armor: np.ndarray):
    """(shield damage, hp damage) of `hits` (1 or 2) hits of `per_hit` raw damage each."""
    sp1 = np.minimum(per_hit, shield)
    hp1 = _hp_part(per_hit - sp1, sp1, armor)
    second = hits >= 2
    sp2 = np.where(second, np.minimum(per_hit, shield - sp1), 0.0)
    hp2 = np.where(second, _hp_part(per_hit - sp2, sp2, armor), 0.0)
    return sp1 + sp2, hp1 + hp2


def apply_hits(hp: np.ndarray, sh: np.ndarray, since_damage: np.ndarray, armor: np.ndarray,
               env: np.ndarray, attacker: np.ndarray, target: np.ndarray,
               per_hit: np.ndarray, hits: np.ndarray) -> None:
    """Apply hit events in place to hp/sh [E, U]; resets the shield-regen timer of hit units."""
    if env.size == 0:
        return
    U = hp.shape[1]
    flat = env * U + target
    order = np.lexsort((attacker, flat))
    flat, per_hit, hits = flat[order], per_hit[order].astype(np.float64), hits[order]
    raw = per_hit * hits
    before = np.cumsum(raw) - raw                      # raw damage of all earlier events
    first = np.r_[True, flat[1:] != flat[:-1]]
    group_first = np.maximum.accumulate(np.where(first, np.arange(flat.size), 0))
    before = before - before[group_first]              # ... on the same target only
    shield_left = np.maximum(sh.ravel()[flat] - before, 0.0)
    sh_dmg, hp_dmg = hit_damage_split(per_hit, hits, shield_left, armor[flat % U])
    size = hp.size
    sh -= np.bincount(flat, sh_dmg, size).reshape(sh.shape).astype(sh.dtype)
    hp -= np.bincount(flat, hp_dmg, size).reshape(hp.shape).astype(hp.dtype)
    np.maximum(sh, 0, out=sh)
    np.maximum(hp, 0, out=hp)
    since_damage.ravel()[flat] = 0
