"""The embedded, batched, SMAC-compatible battle engine (compiled with numba; docs/engine.md)."""

from rllib_uas.envs.engine.maps import UnknownMapError, available_maps, get_map, load_map_file
from rllib_uas.envs.engine.units import UnitDataError, load_unit_file

__all__ = ["UnknownMapError", "UnitDataError", "available_maps", "get_map", "load_map_file", "load_unit_file"]
