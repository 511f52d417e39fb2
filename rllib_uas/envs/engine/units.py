"""Unit types as data: loading and validating `units.yaml`-style files.

Stats are SC2's normal-speed values (docs/smac.md, "Time")."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Mapping, Tuple

import yaml

DATA_DIR = Path(__file__).parent / "data"
LOOPS_PER_SECOND = 16.0  # SC2 game loops per *normal* game second (spec §0)
ATTRIBUTES = ("light", "armored", "biological", "mechanical", "massive", "structure")
SPLASH_KINDS = ("none", "line", "suicide")


class UnitDataError(ValueError):
    """A unit or map data file is malformed; the message names the file and the field."""


@dataclass(frozen=True)
class Weapon:
    damage: float
    hits: int
    bonus: Mapping[str, float]
    cooldown: float  # seconds, normal speed
    range: float
    targets_ground: bool
    targets_air: bool
    splash: str
    splash_radius: float = 0.0

    @property
    def cooldown_loops(self) -> float:
        return self.cooldown * LOOPS_PER_SECOND


@dataclass(frozen=True)
class UnitType:
    name: str
    sc2_id: int
    health: float
    shield: float
    armor: float
    attributes: Tuple[str, ...]
    weapon: Weapon | None
    heal_rate: float  # HP per normal second, 0 = no heal
    heal_range: float
    heal_energy_per_hp: float
    energy_start: float
    energy_max: float
    energy_regen: float
    speed: float
    # optional and read by nothing: SMAC v1 observes every unit within 9 whatever its type (docs/smac.md);
    # kept as the unit's SC2 sight range for scenarios with per-type ranges
    sight: float | None
    radius: float
    air: bool
    cliff_walker: bool
    hp_regen: float
    max_cooldown_obs: float
    source: str = field(default="", compare=False)

    @property
    def is_healer(self) -> bool:
        return self.heal_rate > 0


def _get(record: Mapping[str, Any], key: str, where: str, kind: type | tuple, *, optional=False):
    if key not in record:
        if optional:
            return None
        raise UnitDataError(f"{where}: missing field '{key}'")
    value = record[key]
    if value is None and optional:
        return None
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise UnitDataError(f"{where}: field '{key}' must be {getattr(kind, '__name__', kind)}, got {value!r}")
    return value


def _parse_weapon(raw: Any, where: str) -> Weapon | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise UnitDataError(f"{where}: field 'weapon' must be a mapping or null, got {raw!r}")
    w = f"{where}.weapon"
    targets = _get(raw, "targets", w, list)
    for t in targets:
        if t not in ("ground", "air"):
            raise UnitDataError(f"{w}: field 'targets' entries must be ground/air, got {t!r}")
    bonus = _get(raw, "bonus", w, dict)
    for attr, val in bonus.items():
        if attr not in ATTRIBUTES or not isinstance(val, (int, float)):
            raise UnitDataError(
                f"{w}: field 'bonus' must map attributes {ATTRIBUTES} to numbers, got {attr!r}: {val!r}"
            )
    splash = _get(raw, "splash", w, str)
    if splash not in SPLASH_KINDS:
        raise UnitDataError(f"{w}: field 'splash' must be one of {SPLASH_KINDS}, got {splash!r}")
    weapon = Weapon(
        damage=_get(raw, "damage", w, float),
        hits=_get(raw, "hits", w, int),
        bonus={k: float(v) for k, v in bonus.items()},
        cooldown=_get(raw, "cooldown", w, float),
        range=_get(raw, "range", w, float),
        targets_ground="ground" in targets,
        targets_air="air" in targets,
        splash=splash,
        splash_radius=float(raw.get("splash_radius", 0.0)),
    )
    if weapon.hits not in (1, 2):
        raise UnitDataError(f"{w}: field 'hits' must be 1 or 2, got {weapon.hits}")
    if weapon.cooldown <= 0 or weapon.damage < 0 or weapon.range < 0:
        raise UnitDataError(f"{w}: fields 'cooldown' must be > 0 and 'damage', 'range' >= 0")
    if splash == "suicide" and weapon.splash_radius <= 0:
        raise UnitDataError(f"{w}: field 'splash_radius' must be > 0 for suicide splash")
    return weapon


def parse_unit(name: str, raw: Any, source: str) -> UnitType:
    where = f"{source}: unit '{name}'"
    if not isinstance(raw, dict):
        raise UnitDataError(f"{where}: must be a mapping of fields, got {type(raw).__name__}")
    attrs = tuple(_get(raw, "attributes", where, list))
    for a in attrs:
        if a not in ATTRIBUTES:
            raise UnitDataError(f"{where}: field 'attributes' has unknown attribute {a!r}; known: {ATTRIBUTES}")
    heal = _get(raw, "heal", where, dict, optional=True) or {}
    energy = _get(raw, "energy", where, dict, optional=True) or {}
    unit = UnitType(
        name=name,
        sc2_id=_get(raw, "sc2_id", where, int),
        health=_get(raw, "health", where, float),
        shield=_get(raw, "shield", where, float),
        armor=_get(raw, "armor", where, float),
        attributes=attrs,
        weapon=_parse_weapon(raw.get("weapon"), where),
        heal_rate=float(heal.get("rate", 0.0)),
        heal_range=float(heal.get("range", 0.0)),
        heal_energy_per_hp=float(heal.get("energy_per_hp", 0.0)),
        energy_start=float(energy.get("start", 0.0)),
        energy_max=float(energy.get("max", 0.0)),
        energy_regen=float(energy.get("regen", 0.0)),
        speed=_get(raw, "speed", where, float),
        sight=_get(raw, "sight", where, float, optional=True),
        radius=_get(raw, "radius", where, float),
        air=_get(raw, "air", where, bool),
        cliff_walker=_get(raw, "cliff_walker", where, bool),
        hp_regen=_get(raw, "hp_regen", where, float),
        max_cooldown_obs=_get(raw, "max_cooldown_obs", where, float),
        source=source,
    )
    if unit.health <= 0:
        raise UnitDataError(f"{where}: field 'health' must be > 0, got {unit.health}")
    if unit.radius <= 0:
        raise UnitDataError(f"{where}: field 'radius' must be > 0, got {unit.radius}")
    return unit


_UNITS: Dict[str, UnitType] = {}


def read_data_file(path: str | os.PathLike, what: str) -> Any:
    """Parsed YAML of a unit/map data file, or a UnitDataError naming the file."""
    path = Path(path)
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise UnitDataError(f"{path}: not valid YAML: {err}") from None
    except OSError as err:
        raise UnitDataError(f"{path}: cannot read {what} file: {err.strerror}") from None


def load_unit_file(path: str | os.PathLike) -> Dict[str, UnitType]:
    """Load (or add) unit types from a YAML file; later files override earlier names."""
    path = Path(path)
    raw = read_data_file(path, "unit")
    if not isinstance(raw, dict):
        raise UnitDataError(f"{path}: must be a mapping of unit name -> fields")
    parsed = {name: parse_unit(str(name), rec, str(path)) for name, rec in raw.items()}
    _UNITS.update(parsed)
    return parsed


def unit_types() -> Dict[str, UnitType]:
    if not _UNITS:
        load_unit_file(DATA_DIR / "units.yaml")
        for extra in filter(None, os.environ.get("RLLIB_UAS_UNIT_FILES", "").split(os.pathsep)):
            load_unit_file(extra)
    return _UNITS


def get_unit_type(name: str) -> UnitType:
    units = unit_types()
    if name not in units:
        raise UnitDataError(f"unknown unit type {name!r}; known: {sorted(units)}")
    return units[name]
