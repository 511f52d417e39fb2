"""Hand-computed SC2 mechanics: damage, shields, armor, heals, splash, regen.

The stats are SC2's normal-speed values (docs/smac.md, "Time")."""

import numpy as np
import pytest

from rllib_uas.envs.engine.ai import IDLE
from rllib_uas.envs.engine.battle import BattleEngine
from rllib_uas.envs.engine.combat import apply_hits, hit_damage_split
from rllib_uas.envs.engine.maps import get_map
from rllib_uas.envs.engine.tables import build_tables


def idle_duel(map_name, placements):
    """An engine whose units all stand far apart and idle, except the given (unit -> (x, y))."""
    eng = BattleEngine(map_name, n_envs=1, seed=0)
    eng.order[:] = IDLE  # enemies hold still: no auto-acquire, no retaliation
    for u in range(eng.n_units):
        eng.x[0, u] = 1.0 + (u % 30) if u < eng.n_agents else 1.0 + (u % 30)
        eng.y[0, u] = 8.5 if u < eng.n_agents else 23.5
    for u, (x, y) in placements.items():
        eng.x[0, u], eng.y[0, u] = x, y
    return eng


def noop_except(eng, **acts):
    a = np.ones((1, eng.n_agents), dtype=np.int64)  # stop
    for i, v in acts.items():
        a[0, int(i[1:])] = v
    return a


def test_per_hit_damage_table_with_bonus_and_targets():
    t = build_tables(get_map("MMM"))
    marauder, marine, medivac = 0, 2, 9
    e_marine, e_marauder, e_medivac = 10, 17, 19
    assert t.hit_damage[marine, e_marauder] == 6
    assert t.hit_damage[marauder, e_marauder] == 20  # 10 + 10 vs armored
    assert t.hit_damage[marauder, e_marine] == 10  # marine is light, no bonus
    assert t.hit_damage[marine, e_medivac] == 6  # marines shoot air
    assert not t.can_hit[marauder, e_medivac]  # marauders are ground-only
    assert not t.can_hit[medivac].any()  # medivacs have no weapon
    t = build_tables(get_map("1c3s5z"))
    colossus, stalker, zealot, e_zealot, e_stalker = 0, 1, 4, 9 + 8, 9 + 1
    assert t.hit_damage[colossus, e_zealot] == 15  # 10 + 5 vs light, x2 hits
    assert t.hits[colossus] == 2 and t.hits[zealot] == 2
    assert t.hit_damage[stalker, e_stalker] == 18 and t.hit_damage[stalker, e_zealot] == 13


def test_shield_absorbs_then_armor_applies_to_overflow_with_half_minimum():
    # stalker (13) on a full zealot: all on shields (shield armor 0)
    sh, hp = hit_damage_split(np.array([13.0]), np.array([1]), np.array([50.0]), np.array([1.0]))
    assert (sh[0], hp[0]) == (13.0, 0.0)
    # 5 shield left: 5 to shields, the 8 overflow minus armor 1 = 7 to HP
    sh, hp = hit_damage_split(np.array([13.0]), np.array([1]), np.array([5.0]), np.array([1.0]))
    assert (sh[0], hp[0]) == (5.0, 7.0)
    # zealot 8x2 on a stalker with 3 shield left: hit 1 = 3 shield + (5-1) hp, hit 2 = 8-1 hp
    sh, hp = hit_damage_split(np.array([8.0]), np.array([2]), np.array([3.0]), np.array([1.0]))
    assert (sh[0], hp[0]) == (3.0, 11.0)
    # 1 damage vs armor 2 still does 0.5
    sh, hp = hit_damage_split(np.array([1.0]), np.array([1]), np.array([0.0]), np.array([2.0]))
    assert (sh[0], hp[0]) == (0.0, 0.5)


def test_hits_on_one_target_in_one_loop_share_the_shield_in_order():
    hp, sh, since = np.array([[100.0]]), np.array([[20.0]]), np.array([[99.0]])
    # two stalker shots of 13 on a zealot with 20 shield: 13 shield; then 7 shield + (6 - 1) hp
    apply_hits(
        hp,
        sh,
        since,
        np.array([1.0]),
        np.array([0, 0]),
        np.array([1, 2]),
        np.array([0, 0]),
        np.array([13.0, 13.0]),
        np.array([1, 1]),
    )
    assert sh[0, 0] == 0.0 and hp[0, 0] == 95.0 and since[0, 0] == 0


def test_stalker_shot_on_zealot_in_the_engine():
    # 2s3z: agents 0-1 stalkers, 2-4 zealots; enemies 5-6 stalkers, 7-9 zealots
    eng = idle_duel("2s3z", {0: (10.0, 16.0), 7: (14.0, 16.0)})
    eng.step(noop_except(eng, a0=6 + 2))  # attack enemy 2 = unit 7 (a zealot)
    assert eng.sh[0, 7] == pytest.approx(50 - 13)  # one shot per 29.9-loop cooldown
    assert eng.hp[0, 7] == pytest.approx(100)
    period = 1.87 * 16  # 29.92 loops; fired on loop 1, then 7 loops passed
    assert period - 1 - 7 - 1e-4 <= eng.cd[0, 0] <= period + 2 - 7 + 1e-4  # SC2 jitter -1..+2 loops


def test_marauder_bonus_vs_armored_in_the_engine():
    # MMM: agents 0-1 marauders; enemies 10-16 marines, 17-18 marauders, 19 medivac
    eng = idle_duel("MMM", {0: (10.0, 16.0), 17: (15.0, 16.0)})
    eng.step(noop_except(eng, a0=6 + 7))  # enemy 7 = unit 17, an armored marauder
    assert eng.hp[0, 17] == pytest.approx(125 - (20 - 1))


def test_medivac_heal_rate_and_energy_cost():
    # MMM: agent 2 is a marine, agent 9 the medivac; heal 9 HP/s normal = 4.5 per 8-loop step,
    # costing 1 energy per 3 HP, while energy regenerates 0.5625/s = 0.28125 per step
    eng = idle_duel("MMM", {2: (10.0, 16.0), 9: (11.0, 16.0)})
    eng.hp[0, 2] = 20.0
    eng.step(noop_except(eng, a9=6 + 2))
    assert eng.hp[0, 2] == pytest.approx(24.5, abs=1e-4)
    assert eng.energy[0, 9] == pytest.approx(50 - 1.5 + 0.28125, abs=1e-4)


def test_medivac_heal_is_limited_by_energy():
    eng = idle_duel("MMM", {2: (10.0, 16.0), 9: (11.0, 16.0)})
    eng.hp[0, 2], eng.energy[0, 9] = 20.0, 0.0
    eng.step(noop_except(eng, a9=6 + 2))
    # no energy on loop 1; loops 2-8 spend what regenerated in loops 1-7, at 3 HP per energy
    assert eng.hp[0, 2] == pytest.approx(20.0 + 3 * 7 * 0.5625 / 16, abs=1e-4)


def test_baneling_splash_hits_enemies_in_radius_only():
    # bane_vs_bane: agents 0-3 banelings, 4-23 zerglings; enemies 24-43 zerglings, 44-47 banelings
    eng = idle_duel(
        "bane_vs_bane",
        {0: (16.0, 16.0), 24: (16.5, 16.0), 25: (18.0, 16.0), 44: (15.0, 16.0), 26: (19.0, 16.0), 4: (16.0, 17.0)},
    )
    eng.step(noop_except(eng, a0=6 + 0))  # attack enemy zergling 0
    assert not eng.alive[0, 0]  # the baneling burst
    assert not eng.alive[0, 24] and not eng.alive[0, 25]  # 16 + 19 (light) = 35 kills a zergling
    assert eng.hp[0, 44] == pytest.approx(30 - 16 + 0.2734 / 16 * 8 * 0, abs=0.2)  # banelings aren't light
    assert eng.hp[0, 26] == pytest.approx(35)  # 3 away: outside 2.2 + radius
    assert eng.hp[0, 4] == pytest.approx(35)  # no friendly fire


def test_shields_regenerate_after_ten_seconds_without_damage():
    eng = idle_duel("2s3z", {})
    eng.sh[0, 7], eng.since_damage[0, 7] = 10.0, 0.0
    for _ in range(20):  # 160 loops: the delay only
        eng.step(noop_except(eng))
    assert eng.sh[0, 7] == pytest.approx(10.0 + 0.125, abs=1e-4)
    eng.step(noop_except(eng))  # 8 more loops at 2/s = 1 shield
    assert eng.sh[0, 7] == pytest.approx(11.125, abs=1e-4)


def test_units_move_at_normal_speed_per_step():
    eng = idle_duel("MMM", {2: (10.0, 16.0), 9: (12.0, 16.0)})
    eng.step(noop_except(eng, a2=4, a9=4))  # move east
    assert eng.x[0, 2] - 10.0 == pytest.approx(2.25 / 16 * 8, abs=1e-4)  # marine 1.125 / step
    assert eng.x[0, 9] - 12.0 == pytest.approx(2.75 / 16 * 8, abs=1e-4)  # medivac 1.375 / step


def test_idle_allies_never_fire_back():
    eng = idle_duel("3m", {0: (10.0, 16.0), 3: (14.0, 16.0)})
    eng.hp[0, 3] = 45.0
    eng.order[0, 3] = 2  # enemy marine attacks agent 0
    eng.tgt[0, 3] = 0
    eng.step(noop_except(eng))
    assert eng.hp[0, 0] < 45 and eng.hp[0, 3] == 45


def test_a_unit_killed_in_a_loop_is_not_healed_in_that_loop():
    # MMM: agent 2 is a marine, agent 9 the medivac healing it; enemy marine 10 shoots it dead
    eng = idle_duel("MMM", {2: (10.0, 16.0), 9: (11.0, 16.0), 10: (14.0, 16.0)})
    eng.hp[0, 2] = 1.0
    eng.order[0, 10], eng.tgt[0, 10], eng.cd[0, 10] = 2, 2, 0.0  # ATTACK unit 2, weapon ready
    eng.step(noop_except(eng, a9=6 + 2))
    assert not eng.alive[0, 2] and eng.hp[0, 2] == 0.0  # dead stays at 0 HP: the reward counts it
