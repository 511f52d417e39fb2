"""SMAC's built-in heuristic (`heuristic_ai=True`) against oxwhirl/smac's get_agent_action_heuristic."""

import numpy as np
import pytest
from test_engine_mechanics import idle_duel

from rllib_uas.envs.smac_api import StarCraft2Env
from rllib_uas.envs.smac_heuristic import SmacHeuristic

# MMM: agents 0-1 marauders, 2-8 marines, 9 the medivac; enemies 10-16 marines, 17-18 marauders, 19 a medivac
MARAUDER, MARINE, MEDIVAC = 0, 2, 9
E_MARINE, E_MARINE_2, E_MEDIVAC = 10, 11, 19
N_A = 10


def attack(enemy_unit):
    return 6 + enemy_unit - N_A


def kill(eng, u):
    eng.hp[0, u], eng.alive[0, u] = 0.0, False


def no_avail(eng):
    return np.zeros((eng.n_agents, eng.n_actions), dtype=np.int32)


def test_a_target_is_kept_until_it_dies_even_when_another_comes_nearer():
    eng = idle_duel("MMM", {MARINE: (10.0, 16.0), E_MARINE: (14.0, 16.0)})
    h = SmacHeuristic(eng, heuristic_rest=False)
    assert h.actions(no_avail(eng))[MARINE] == attack(E_MARINE)
    eng.x[0, E_MARINE_2], eng.y[0, E_MARINE_2] = 11.0, 16.0  # now the nearest
    assert h.actions(no_avail(eng))[MARINE] == attack(E_MARINE)
    kill(eng, E_MARINE)
    assert h.actions(no_avail(eng))[MARINE] == attack(E_MARINE_2)


def test_marauders_skip_the_enemy_medivac_and_marines_do_not():
    eng = idle_duel(
        "MMM", {MARAUDER: (10.0, 16.0), MARINE: (10.0, 16.5), E_MEDIVAC: (11.0, 16.0), E_MARINE: (15.0, 16.0)}
    )
    acts = SmacHeuristic(eng, heuristic_rest=False).actions(no_avail(eng))
    assert acts[MARAUDER] == attack(E_MARINE)
    assert acts[MARINE] == attack(E_MEDIVAC)


def test_the_medivac_heals_only_damaged_allies_and_keeps_one_until_it_is_full():
    eng = idle_duel("MMM", {MEDIVAC: (10.0, 16.0), 2: (10.5, 16.0), 3: (13.0, 16.0), 4: (11.0, 16.0)})
    h = SmacHeuristic(eng, heuristic_rest=False)
    assert h.actions(no_avail(eng))[MEDIVAC] == 0  # nobody hurt: no order, action 0
    eng.hp[0, 3] = 20.0
    assert h.actions(no_avail(eng))[MEDIVAC] == 6 + 3  # the only damaged ally, not the nearest ally
    eng.hp[0, 2] = 30.0  # a nearer one is hurt: the target stays
    assert h.actions(no_avail(eng))[MEDIVAC] == 6 + 3
    eng.hp[0, 3] = eng.tables.hp_max[3]  # back to full: the nearest damaged one
    assert h.actions(no_avail(eng))[MEDIVAC] == 6 + 2
    kill(eng, 2)
    eng.hp[0, 4] = 10.0
    assert h.actions(no_avail(eng))[MEDIVAC] == 6 + 4  # dead allies are never healed


def test_the_medivac_never_heals_another_medivac():
    eng = idle_duel("MMM2", {})
    medivacs = np.flatnonzero(eng.tables.is_medivac[: eng.n_agents])
    h = SmacHeuristic(eng, heuristic_rest=False)
    for m in medivacs:
        eng.hp[0, m] = 1.0
    assert (h.actions(no_avail(eng))[medivacs] == 0).all()


@pytest.mark.parametrize("dx, dy, move", [(5.0, 1.0, 4), (-5.0, 1.0, 5), (1.0, 5.0, 2), (1.0, -5.0, 3)])
def test_heuristic_rest_steps_towards_a_target_it_cannot_attack_yet(dx, dy, move):
    eng = idle_duel("MMM", {MARINE: (15.0, 16.0), E_MARINE: (15.0 + dx, 16.0 + dy)})
    for u in range(N_A, eng.n_units):
        if u != E_MARINE:
            kill(eng, u)
    avail = no_avail(eng)
    assert SmacHeuristic(eng, heuristic_rest=True).actions(avail)[MARINE] == move
    avail[MARINE, attack(E_MARINE)] = 1
    assert SmacHeuristic(eng, heuristic_rest=True).actions(avail)[MARINE] == attack(E_MARINE)


def test_dead_agents_get_a_target_too_as_in_smac():
    eng = idle_duel("MMM", {})
    kill(eng, MARINE)
    assert SmacHeuristic(eng, heuristic_rest=False).actions(no_avail(eng))[MARINE] >= 6


def test_the_env_writes_the_actions_back_and_records_the_callers_as_last_actions():
    env = StarCraft2Env(map_name="3m", seed=0, heuristic_ai=True)
    env.reset()
    sent = np.array([1, 1, 1])
    env.step(sent)
    assert (sent >= 6).all()  # the heuristic's attacks, written back
    assert (env.last_action.argmax(-1) == 1).all()  # SMAC records the caller's actions
    assert (env.get_state_dict()["last_action"].argmax(-1) == 1).all()
    as_tuple = (1, 1, 1)
    env.step(as_tuple)  # an immutable sequence is left as it is
    assert as_tuple == (1, 1, 1)


def test_targets_are_forgotten_at_reset():
    env = StarCraft2Env(map_name="3m", seed=0, heuristic_ai=True)
    env.reset()
    env.step([0, 0, 0])
    assert any(t is not None for t in env._heuristic.targets)
    env.reset()
    assert all(t is None for t in env._heuristic.targets)
