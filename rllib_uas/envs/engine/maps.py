"""Maps as data: the registry, terrain (pathing grids) and spawn layout (SMAC's map registry; docs/smac.md)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, List, Mapping, Tuple

import numpy as np

from rllib_uas.envs.engine.units import DATA_DIR, UnitDataError, UnitType, get_unit_type, read_data_file

RACES = ("T", "P", "Z")
ORDER_KINDS = ("attack_move", "attack_move_random", "attack_units", "none")


class UnknownMapError(KeyError):
    """The map name is not registered; the message lists the available maps."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


@dataclass(frozen=True)
class MapType:
    name: str
    ally_types: Tuple[str, ...]
    enemy_types: Tuple[str, ...]
    medivac_rules: bool


@dataclass(frozen=True)
class MapSpec:
    name: str
    limit: int
    a_race: str
    b_race: str
    map_type: MapType
    terrain: str
    allies: Tuple[Tuple[str, int, Tuple[float, float]], ...]
    enemies: Tuple[Tuple[str, int, Tuple[float, float]], ...]
    enemy_order: Mapping[str, Any]
    source: str

    @property
    def n_agents(self) -> int:
        return sum(c for _, c, _ in self.allies)

    @property
    def n_enemies(self) -> int:
        return sum(c for _, c, _ in self.enemies)

    @property
    def unit_type_bits(self) -> int:
        return len(self.map_type.ally_types)


# ---------------------------------------------------------------------------- terrain
def _parse_pathing_text(text: str, source: str) -> Dict[str, np.ndarray]:
    """Parse the ASCII pathing layers: '## maps: a, b' headers, rows top (y=31) to bottom."""
    grids: Dict[str, np.ndarray] = {}
    names: List[str] = []
    rows: List[str] = []

    def flush():
        if names:
            if not rows:
                raise UnitDataError(f"{source}: terrain {names} has no rows")
            width = len(rows[0])
            if any(len(r) != width for r in rows):
                raise UnitDataError(f"{source}: terrain {names} has rows of different widths")
            walk = np.array([[c == "2" for c in r] for r in rows], dtype=bool)  # [y_top..y0, x]
            grid = walk[::-1].T.copy()  # indexed [x, y] like SMAC's pathing_grid
            for n in names:
                grids[n] = grid

    for line in text.splitlines():
        if line.startswith("## maps:"):
            flush()
            names = [n.strip() for n in line[len("## maps:") :].split(",") if n.strip()]
            rows = []
        elif line.startswith("#") or not line.strip():
            continue
        elif names:
            rows.append(line.split()[0])
    flush()
    return grids


@lru_cache(maxsize=None)
def _builtin_terrains() -> Dict[str, np.ndarray]:
    return _parse_pathing_text((DATA_DIR / "pathing.txt").read_text(), str(DATA_DIR / "pathing.txt"))


def load_terrain(terrain: str) -> np.ndarray:
    """A bool walkability grid indexed [x, y], by SMAC map name or pathing-file path."""
    builtin = _builtin_terrains()
    if terrain in builtin:
        return builtin[terrain]
    path = Path(terrain)
    if path.is_file():
        grids = _parse_pathing_text(path.read_text(), str(path))
        if not grids:
            raise UnitDataError(f"{path}: no '## maps:' section found in terrain file")
        return next(iter(grids.values()))
    raise UnitDataError(f"unknown terrain {terrain!r}: name a SMAC map ({sorted(builtin)}) or a pathing file")


# ---------------------------------------------------------------------------- registry
_MAP_TYPES: Dict[str, MapType] = {}
_MAPS: Dict[str, MapSpec] = {}


def _groups(raw: Any, where: str) -> Tuple[Tuple[str, int, Tuple[float, float]], ...]:
    if not isinstance(raw, list) or not raw:
        raise UnitDataError(f"{where}: must be a non-empty list of {{unit, count, pos}}")
    out = []
    for i, g in enumerate(raw):
        w = f"{where}[{i}]"
        if not isinstance(g, dict) or set(g) != {"unit", "count", "pos"}:
            raise UnitDataError(f"{w}: must have exactly the fields unit, count, pos; got {g!r}")
        try:
            get_unit_type(g["unit"])
        except UnitDataError as err:
            raise UnitDataError(f"{w}: field 'unit': {err}") from None
        if not isinstance(g["count"], int) or g["count"] < 1:
            raise UnitDataError(f"{w}: field 'count' must be a positive integer, got {g['count']!r}")
        pos = g["pos"]
        if not (isinstance(pos, list) and len(pos) == 2 and all(isinstance(v, (int, float)) for v in pos)):
            raise UnitDataError(f"{w}: field 'pos' must be [x, y], got {pos!r}")
        out.append((g["unit"], g["count"], (float(pos[0]), float(pos[1]))))
    return tuple(out)


def _parse_map(name: str, raw: Any, source: str) -> MapSpec:
    where = f"{source}: map '{name}'"
    if not isinstance(raw, dict):
        raise UnitDataError(f"{where}: must be a mapping of fields")
    required = ("limit", "a_race", "b_race", "map_type", "terrain", "allies", "enemies", "enemy_order")
    for key in required:
        if key not in raw:
            raise UnitDataError(f"{where}: missing field '{key}'")
    unknown = set(raw) - set(required)
    if unknown:
        raise UnitDataError(f"{where}: unknown field(s) {sorted(unknown)}; valid: {list(required)}")
    if not isinstance(raw["limit"], int) or raw["limit"] < 1:
        raise UnitDataError(f"{where}: field 'limit' must be a positive integer")
    for key in ("a_race", "b_race"):
        if raw[key] not in RACES:
            raise UnitDataError(f"{where}: field '{key}' must be one of {RACES}, got {raw[key]!r}")
    if raw["map_type"] not in _MAP_TYPES:
        raise UnitDataError(f"{where}: field 'map_type' {raw['map_type']!r} unknown; known: {sorted(_MAP_TYPES)}")
    order = raw["enemy_order"]
    if not isinstance(order, dict) or order.get("kind") not in ORDER_KINDS:
        raise UnitDataError(f"{where}: field 'enemy_order' needs kind in {ORDER_KINDS}, got {order!r}")
    if order["kind"] == "attack_move" and not isinstance(order.get("point"), list):
        raise UnitDataError(f"{where}: field 'enemy_order' of kind attack_move needs point: [x, y]")
    if order["kind"] == "attack_move_random" and not isinstance(order.get("between"), list):
        raise UnitDataError(f"{where}: field 'enemy_order' of kind attack_move_random needs between: [[x,y],[x,y]]")
    spec = MapSpec(
        name=name,
        limit=raw["limit"],
        a_race=raw["a_race"],
        b_race=raw["b_race"],
        map_type=_MAP_TYPES[raw["map_type"]],
        terrain=str(raw["terrain"]),
        allies=_groups(raw["allies"], f"{where}: field 'allies'"),
        enemies=_groups(raw["enemies"], f"{where}: field 'enemies'"),
        enemy_order=dict(order),
        source=source,
    )
    try:
        load_terrain(spec.terrain)
    except UnitDataError as err:
        raise UnitDataError(f"{where}: field 'terrain': {err}") from None
    for side, groups, allowed in (
        ("allies", spec.allies, spec.map_type.ally_types),
        ("enemies", spec.enemies, spec.map_type.enemy_types),
    ):
        for unit, _, _ in groups:
            if allowed and unit not in allowed:
                raise UnitDataError(
                    f"{where}: field '{side}' has unit {unit!r} outside map_type "
                    f"{spec.map_type.name!r} types {list(allowed)}"
                )
    return spec


def load_map_file(path: str | os.PathLike) -> Dict[str, MapSpec]:
    """Register the maps (and map types) of a YAML file; returns the maps it defined."""
    path = Path(path)
    if path.resolve() != (DATA_DIR / "maps.yaml").resolve():
        _ensure_loaded()  # a user's file may use the built-in map types (marines, MMM, ...)
    raw = read_data_file(path, "map")
    if not isinstance(raw, dict) or "maps" not in raw:
        raise UnitDataError(f"{path}: must be a mapping with a 'maps:' section")
    for tname, traw in (raw.get("map_types") or {}).items():
        w = f"{path}: map_type '{tname}'"
        if not isinstance(traw, dict) or set(traw) != {"ally_types", "enemy_types", "medivac_rules"}:
            raise UnitDataError(f"{w}: must have exactly ally_types, enemy_types, medivac_rules")
        for u in list(traw["ally_types"]) + list(traw["enemy_types"]):
            get_unit_type(u)
        _MAP_TYPES[str(tname)] = MapType(
            str(tname), tuple(traw["ally_types"]), tuple(traw["enemy_types"]), bool(traw["medivac_rules"])
        )
    if not isinstance(raw["maps"], dict):
        raise UnitDataError(f"{path}: field 'maps' must be a mapping of map name -> fields")
    parsed = {str(n): _parse_map(str(n), m, str(path)) for n, m in raw["maps"].items()}
    _MAPS.update(parsed)
    return parsed


def _ensure_loaded() -> None:
    if not _MAPS:
        load_map_file(DATA_DIR / "maps.yaml")
        for extra in filter(None, os.environ.get("RLLIB_UAS_MAP_FILES", "").split(os.pathsep)):
            load_map_file(extra)


def available_maps() -> List[str]:
    _ensure_loaded()
    return sorted(_MAPS)


def get_map_type(name: str) -> MapType:
    _ensure_loaded()
    if name not in _MAP_TYPES:
        raise UnitDataError(f"unknown map type {name!r}; known: {sorted(_MAP_TYPES)}")
    return _MAP_TYPES[name]


def get_map(name: str) -> MapSpec:
    _ensure_loaded()
    if name not in _MAPS:
        raise UnknownMapError(
            f"unknown map {name!r}. Available maps: {', '.join(sorted(_MAPS))}. "
            "Add one with a YAML file (see rllib_uas/envs/engine/data/maps.yaml) passed to "
            "rllib_uas.envs.engine.maps.load_map_file or listed in RLLIB_UAS_MAP_FILES."
        )
    return _MAPS[name]


# ---------------------------------------------------------------------------- spawn layout
@dataclass(frozen=True)
class Layout:
    """Units of a map in SMAC order: agents sorted by (type, x, y), enemies in creation order."""

    ally_units: Tuple[UnitType, ...]
    ally_pos: np.ndarray  # [n_agents, 2]
    enemy_units: Tuple[UnitType, ...]
    enemy_pos: np.ndarray  # [n_enemies, 2]


def _place(groups, grid: np.ndarray, taken: List[Tuple[float, float, float, bool]]):
    """A map's groups {unit, count, pos}: the first unit on the point, each next one nearby."""
    from rllib_uas.envs.engine.spawn import place_units  # compiled: imported only to build a layout

    units = [get_unit_type(name) for name, count, _ in groups for _ in range(count)]
    points = [pos for _, count, pos in groups for _ in range(count)]
    return units, place_units(units, points, grid, taken)


def smac_agent_order(units, pos: np.ndarray) -> List[int]:
    """SMAC sorts agents by (unit_type, x, y); the *_RL ids are alphabetical by unit name."""
    rank = {n: i for i, n in enumerate(sorted({u.name for u in units}))}
    return sorted(range(len(units)), key=lambda i: (rank[units[i].name], pos[i, 0], pos[i, 1]))


@lru_cache(maxsize=None)
def map_layout(name: str) -> Layout:
    spec = get_map(name)
    grid = load_terrain(spec.terrain)
    taken: List[Tuple[float, float, float, bool]] = []
    a_units, a_pos = _place(spec.allies, grid, taken)
    e_units, e_pos = _place(spec.enemies, grid, taken)
    order = smac_agent_order(a_units, a_pos)
    return Layout(tuple(a_units[i] for i in order), a_pos[order], tuple(e_units), e_pos)
