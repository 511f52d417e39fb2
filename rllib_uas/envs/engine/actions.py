"""SMAC's action layout, and which agents heal with it: the one definition the engine, the SMAC API,
the sc2 backend, the scripted policies, the UAS tables and the CLI use.

    0 no-op (dead agents only) | 1 stop | 2-5 move north, south, east, west | 6 + j target j

Target j is enemy j, except for an agent that heals: its 6 + j heals ally j. SMAC's rule for that is
"a Medivac on an MMM-type map" (`map_type == "MMM"` and the unit type is the Medivac); the engine's
maps carry it as the map type's `medivac_rules` and the unit's `is_healer`.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

NOOP, STOP, MOVE_NORTH, MOVE_SOUTH, MOVE_EAST, MOVE_WEST = range(6)
N_ACTIONS_NO_ATTACK = 6  # SMAC's n_actions_no_attack: target actions start here
N_ACTIONS_MOVE = 4
# unit vectors of moves 2..5 (north, south, east, west), indexed by action - MOVE_NORTH
MOVE_DIRS = np.array([[0, 1], [0, -1], [1, 0], [-1, 0]], dtype=np.float32)
SC2_MEDIVAC = 54  # SC2's unit type id of the Medivac
MEDIVAC_MAP_TYPES = ("MMM", "terran_gen")  # where SMAC (MMM) and SMACv2 (terran_gen) let a Medivac heal


def n_actions(n_enemies: int, n_agents: int = 0, heal_slots: bool = False) -> int:
    """6 + n_enemies; SMACv2's terran teams with more allies than enemies get 6 + n_agents, so a Medivac
    has a heal slot for every ally (`heal_slots`)."""
    return N_ACTIONS_NO_ATTACK + (max(n_enemies, n_agents) if heal_slots else n_enemies)


def target_action(j: int) -> int:
    """The action that targets entity j (enemy j, or ally j for a healer)."""
    return N_ACTIONS_NO_ATTACK + j


def healing_agents(is_healer: Sequence[bool], medivac_rules: bool) -> np.ndarray:
    """[n] bool: the agents whose 6 + j heals ally j, from the engine's unit and map data."""
    return np.asarray(is_healer, dtype=bool) & bool(medivac_rules)


def smac_healing_agents(env: Any) -> np.ndarray:
    """[n_agents] bool for any SMAC-API env (ours, oxwhirl/smac's or oxwhirl/smacv2's): SMAC's own rule, read
    from the env's public attributes (SMACv2: after each reset, as the teams change). Real SMAC gives its
    agents custom unit ids and names the Medivac's `medivac_id`; the embedded engine reports SC2's id."""
    if getattr(env, "map_type", "") not in MEDIVAC_MAP_TYPES:
        return np.zeros(env.n_agents, dtype=bool)
    ids = {getattr(env, "medivac_id", SC2_MEDIVAC), SC2_MEDIVAC}
    return np.array([env.get_unit_by_id(i).unit_type in ids for i in range(env.n_agents)], dtype=bool)
