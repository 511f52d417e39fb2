"""The embedded, batched, SMAC-compatible battle engine (compiled with numba; docs/engine.md)."""

from rllib_uas.envs.engine.maps import UnknownMapError, available_maps, get_map, load_map_file
from rllib_uas.envs.engine.scenarios import available_scenarios, get_battle_spec, get_scenario, is_scenario
from rllib_uas.envs.engine.units import UnitDataError, load_unit_file

__all__ = [
    "UnknownMapError",
    "UnitDataError",
    "available_maps",
    "available_scenarios",
    "get_battle_spec",
    "get_map",
    "get_scenario",
    "is_scenario",
    "load_map_file",
    "load_unit_file",
]
