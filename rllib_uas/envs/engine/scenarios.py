"""SMACv2 scenarios as data: teams and start positions drawn at every reset (docs/smac.md, "SMACv2").

A `Scenario` is what SMACv2's `capability_config` describes: `n_units` allies and `n_enemies` enemies
whose types come from a weighted draw (a team is never made of exception types only; the enemies
copy the ally team, plus extra draws when they outnumber it) and whose start positions follow
`surrounded_and_reflect`. The built-in ones (`protoss_5_vs_5` ... `zerg_20_vs_23`) are in
`data/scenarios.yaml`; `scenario_from_capability_config` builds one from a SMACv2 config.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Dict, List, Mapping, Tuple

import numpy as np

from rllib_uas.envs.engine.maps import (
    Layout,
    MapSpec,
    UnknownMapError,
    get_map,
    get_map_type,
    load_terrain,
    smac_agent_order,
)
from rllib_uas.envs.engine.units import DATA_DIR, UnitDataError, get_unit_type, read_data_file
from rllib_uas.value_types import is_finite_number, is_integer

POSITION_KINDS = ("surrounded_and_reflect", "surrounded", "reflect_position")
TEAM_KINDS = ("weighted_teams",)
CAPABILITY_KEYS = ("n_units", "n_enemies", "team_gen", "start_positions")
REFUSED_CAPABILITIES = {
    "attack": "stochastic attack is not reproduced by the embedded engine; remove 'attack'",
    "health": "stochastic health is not reproduced by the embedded engine; remove 'health'",
    "enemy_mask": "enemy masks are not reproduced by the embedded engine; remove 'enemy_mask'",
}
SURROUND_OFFSET = 2.0  # SMACv2: enemies head for points 2 cells off the centre on each diagonal


class CapabilityConfigError(ValueError):
    """A SMACv2 capability config or scenario name is unusable; the message names the field."""


@dataclass(frozen=True)
class Scenario:
    name: str
    map_name: str  # SMACv2's map (10gen_terran, ...)
    spec: MapSpec  # the battle's fixed facts; its allies/enemies only size the teams
    unit_types: Tuple[str, ...]
    weights: Tuple[float, ...]
    exceptions: Tuple[str, ...]
    n_units: int
    n_enemies: int
    positions: str  # one of POSITION_KINDS
    p_reflect: float  # surrounded_and_reflect: reflect when a uniform draw is <= p
    map_x: int
    map_y: int

    @property
    def n_agents(self) -> int:
        return self.n_units

    @property
    def can_heal(self) -> bool:
        """Whether a drawn team may hold an agent that heals (a Medivac under the terran rules): the union
        action space then has a second group."""
        return self.spec.map_type.medivac_rules and any(get_unit_type(t).is_healer for t in self.unit_types)

    def capability_config(self) -> Dict[str, Any]:
        """SMACv2's capability_config for this scenario (what StarCraftCapabilityEnvWrapper takes)."""
        return {
            "n_units": self.n_units,
            "n_enemies": self.n_enemies,
            "team_gen": {
                "dist_type": "weighted_teams",
                "unit_types": list(self.unit_types),
                "weights": list(self.weights),
                "exception_unit_types": list(self.exceptions),
                "observe": True,
            },
            "start_positions": {
                "dist_type": self.positions,
                "p": self.p_reflect,
                "map_x": self.map_x,
                "map_y": self.map_y,
            },
        }

    # ------------------------------------------------------------------ team generation
    def _team(self, rng: np.random.Generator, n: int) -> List[str]:
        """SMACv2's WeightedTeamsDistribution._gen_team: i.i.d. weighted types, redrawn while the team
        is made of exception types only."""
        while True:
            idx = rng.choice(len(self.unit_types), size=n, p=np.asarray(self.weights))
            team = [self.unit_types[i] for i in idx]
            if not all(t in self.exceptions for t in team):
                return team

    def draw_teams(self, rng: np.random.Generator) -> Tuple[List[str], List[str]]:
        """(ally team, enemy team) in creation order: the enemies copy the allies, plus extra draws."""
        team = self._team(rng, self.n_units)
        enemies = list(team)
        if self.n_enemies > self.n_units:
            enemies += self._team(rng, self.n_enemies - self.n_units)
        return team, enemies[: self.n_enemies]

    # ------------------------------------------------------------------ start positions
    def draw_positions(self, rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
        """(ally points [n_units, 2], enemy points [n_enemies, 2]) before SC2 spreads overlapping units."""
        if self.positions == "surrounded_and_reflect":
            surrounded = rng.random() > self.p_reflect
        else:
            surrounded = self.positions == "surrounded"
        return self._surrounded(rng) if surrounded else self._reflect(rng)

    def _reflect(self, rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
        """Allies uniform in the left part, enemies mirrored at x' = map_x - x; extra enemies uniform
        in the right half."""
        mx, my, n, m = self.map_x, self.map_y, self.n_units, self.n_enemies
        allies = rng.uniform(low=(0.0, 0.0), high=(mx / 2 - 1, my), size=(n, 2))
        enemies = np.zeros((m, 2))
        k = min(n, m)
        enemies[:k, 0] = mx - allies[:k, 0]
        enemies[:k, 1] = allies[:k, 1]
        if m > n:
            enemies[n:] = rng.uniform(low=(mx / 2, 0.0), high=(mx, my), size=(m - n, 2))
        return allies, enemies

    def _surrounded(self, rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
        """Allies at the centre; enemies in 1-4 groups, each at a uniform point between a map corner and
        a point 2 cells off the centre on that corner's diagonal."""
        mx, my = self.map_x, self.map_y
        centre = np.array([mx / 2, my / 2])
        o = SURROUND_OFFSET
        near = np.array(
            [[mx / 2 - o, my / 2 - o], [mx / 2 - o, my / 2 + o], [mx / 2 + o, my / 2 + o], [mx / 2 + o, my / 2 - o]]
        )
        corner = np.array([[0.0, 0.0], [0.0, my], [mx, my], [mx, 0.0]])
        allies = np.tile(centre, (self.n_units, 1))
        n_groups = int(rng.integers(1, 5))
        members = rng.multinomial(self.n_enemies, np.ones(n_groups) / n_groups)
        t = rng.uniform(size=(n_groups,))
        diagonals = rng.choice(4, size=(n_groups,), replace=False)
        enemies = np.repeat(near[diagonals] * t[:, None] + corner[diagonals] * (1 - t[:, None]), members, axis=0)
        return allies, enemies

    # ------------------------------------------------------------------ one battle
    def draw(self, rng: np.random.Generator) -> Layout:
        """One battle's units and spawn points in SMAC order (agents sorted by type, x, y)."""
        team, enemy_team = self.draw_teams(rng)
        a_pts, e_pts = self.draw_positions(rng)
        return self.layout(team, enemy_team, a_pts, e_pts)

    def layout(self, team, enemy_team, a_pts, e_pts) -> Layout:
        from rllib_uas.envs.engine.spawn import place_units  # compiled: imported only to build a layout

        grid = load_terrain(self.spec.terrain)
        taken: List[Tuple[float, float, float, bool]] = []
        a_units = [get_unit_type(n) for n in team]
        e_units = [get_unit_type(n) for n in enemy_team]
        a_pos = place_units(a_units, a_pts, grid, taken)
        e_pos = place_units(e_units, e_pts, grid, taken)
        order = smac_agent_order(a_units, a_pos)
        return Layout(tuple(a_units[i] for i in order), a_pos[order], tuple(e_units), e_pos)


# ---------------------------------------------------------------------------- building
def _field(raw: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in raw:
        raise CapabilityConfigError(f"{where}: missing field '{key}'")
    return raw[key]


def _positive_int(value: Any, where: str) -> int:
    if not is_integer(value) or value < 1:
        raise CapabilityConfigError(f"{where} must be a positive integer, got {value!r}")
    return int(value)


def _build(
    name: str,
    race: Mapping[str, Any],
    capability: Mapping[str, Any],
    common: Mapping[str, Any],
    where: str,
    check_fits: bool = True,
) -> Scenario:
    if not isinstance(capability, Mapping):
        raise CapabilityConfigError(f"{where} must be a mapping, got {type(capability).__name__}")
    for key, why in REFUSED_CAPABILITIES.items():
        if key in capability:
            raise CapabilityConfigError(f"{where}.{key}: {why}")
    unknown = set(capability) - set(CAPABILITY_KEYS)
    if unknown:
        raise CapabilityConfigError(f"{where}: unknown field(s) {sorted(unknown)}; valid: {list(CAPABILITY_KEYS)}")
    n_units = _positive_int(_field(capability, "n_units", where), f"{where}.n_units")
    n_enemies = _positive_int(_field(capability, "n_enemies", where), f"{where}.n_enemies")
    tg = _field(capability, "team_gen", where)
    w = f"{where}.team_gen"
    if not isinstance(tg, Mapping):
        raise CapabilityConfigError(f"{w} must be a mapping, got {type(tg).__name__}")
    if tg.get("dist_type", "weighted_teams") not in TEAM_KINDS:
        raise CapabilityConfigError(f"{w}.dist_type {tg.get('dist_type')!r} is not supported; use one of {TEAM_KINDS}")
    if not tg.get("observe", True):
        raise CapabilityConfigError(f"{w}.observe: hidden teammate types are not reproduced; set observe: true")
    map_type = get_map_type(race["map_type"])
    types = tuple(str(t) for t in _field(tg, "unit_types", w))
    for t in types:
        if t not in map_type.ally_types:
            raise CapabilityConfigError(
                f"{w}.unit_types: unknown unit type {t!r} for {race['map_name']}; known: {list(map_type.ally_types)}"
            )
    weights = _field(tg, "weights", w)
    if (
        not isinstance(weights, (list, tuple))
        or len(weights) != len(types)
        or not all(is_finite_number(x) and x >= 0 for x in weights)
    ):
        raise CapabilityConfigError(f"{w}.weights must be {len(types)} non-negative numbers, got {weights!r}")
    if abs(sum(weights) - 1.0) > 1e-6:
        raise CapabilityConfigError(f"{w}.weights must sum to 1, got {list(weights)} (sum {sum(weights):g})")
    exceptions = tuple(str(t) for t in tg.get("exception_unit_types") or ())
    for t in exceptions:
        if t not in types:
            raise CapabilityConfigError(f"{w}.exception_unit_types: {t!r} is not one of unit_types {list(types)}")
    if all(t in exceptions for t, x in zip(types, weights) if x > 0):
        raise CapabilityConfigError(
            f"{w}: every type with a positive weight is an exception type; no team can be drawn"
        )
    sp = _field(capability, "start_positions", where)
    w = f"{where}.start_positions"
    if not isinstance(sp, Mapping) or sp.get("dist_type") not in POSITION_KINDS:
        raise CapabilityConfigError(f"{w}.dist_type must be one of {POSITION_KINDS}, got {sp!r}")
    p = float(sp.get("p", 0.5))
    if not 0.0 <= p <= 1.0:
        raise CapabilityConfigError(f"{w}.p must lie in [0, 1], got {p}")
    grid = load_terrain(common["terrain"])
    map_x, map_y = int(sp.get("map_x", grid.shape[0])), int(sp.get("map_y", grid.shape[1]))
    if (map_x, map_y) != grid.shape:
        raise CapabilityConfigError(f"{w}: map_x, map_y {(map_x, map_y)} differ from {common['terrain']} {grid.shape}")
    spec = MapSpec(
        name=name,
        limit=int(common["limit"]),
        a_race=race["race"],
        b_race=race["race"],
        map_type=map_type,
        terrain=common["terrain"],
        allies=((types[0], n_units, (8.0, 16.0)),),
        enemies=((types[0], n_enemies, (24.0, 16.0)),),
        enemy_order={"kind": "attack_units"},
        source=str(DATA_DIR / "scenarios.yaml"),
    )
    scenario = Scenario(
        name=name,
        map_name=race["map_name"],
        spec=spec,
        unit_types=types,
        weights=tuple(float(x) for x in weights),
        exceptions=exceptions,
        n_units=n_units,
        n_enemies=n_enemies,
        positions=sp["dist_type"],
        p_reflect=p,
        map_x=map_x,
        map_y=map_y,
    )
    if check_fits:  # the built-in sizes are tested to fit (tests/test_smacv2.py); a user's are checked here
        _check_fits(scenario, where)
    return scenario


def _check_fits(s: Scenario, where: str) -> None:
    """The largest type of each side must fit around its spawn points (all allies share the centre when
    surrounded): SC2 would fail to create the units."""
    big = max(s.unit_types, key=lambda n: get_unit_type(n).radius)
    a_pts = np.tile([s.map_x / 2, s.map_y / 2], (s.n_units, 1))
    e_pts = np.tile([s.map_x - 1.0, s.map_y / 2], (s.n_enemies, 1))
    try:
        s.layout([big] * s.n_units, [big] * s.n_enemies, a_pts, e_pts)
    except UnitDataError:
        raise CapabilityConfigError(
            f"{where}: n_units {s.n_units} / n_enemies {s.n_enemies} are more units than {s.spec.terrain} holds"
        ) from None


@lru_cache(maxsize=1)
def _data() -> Dict[str, Any]:
    return read_data_file(DATA_DIR / "scenarios.yaml", "scenario")


@lru_cache(maxsize=None)
def _builtin() -> Dict[str, Scenario]:
    d = _data()
    out = {}
    for race_name, race in d["races"].items():
        for n, m in d["sizes"]:
            name = f"{race_name}_{n}_vs_{m}"
            cap = {
                "n_units": n,
                "n_enemies": m,
                "team_gen": {"dist_type": "weighted_teams", **race["team_gen"]},
                "start_positions": dict(d["start_positions"]),
            }
            out[name] = _build(name, race, cap, d, f"scenario {name}", check_fits=False)
    return out


def available_scenarios() -> List[str]:
    return list(_builtin())  # by race, then size (the data order)


def is_scenario(name: str) -> bool:
    return name in _builtin()


def get_scenario(name: str) -> Scenario:
    scenarios = _builtin()
    if name not in scenarios:
        raise CapabilityConfigError(f"unknown SMACv2 scenario {name!r}. Available: {', '.join(sorted(scenarios))}")
    return scenarios[name]


def get_battle_spec(name: str) -> MapSpec:
    """The battle facts (limit, races, map type, terrain, team sizes) of a SMAC map or a SMACv2 scenario."""
    if is_scenario(name):
        return get_scenario(name).spec
    try:
        return get_map(name)
    except UnknownMapError as err:
        raise UnknownMapError(f"{err} SMACv2 scenarios: {', '.join(available_scenarios())}.") from None


def smacv2_map_names() -> List[str]:
    return sorted(r["map_name"] for r in _data()["races"].values())


def scenario_from_capability_config(map_name: str, capability_config: Mapping[str, Any]) -> Scenario:
    """A scenario from SMACv2's keyword pair (map_name='10gen_terran', capability_config={...})."""
    races = {r["map_name"]: (k, r) for k, r in _data()["races"].items()}
    if map_name not in races:
        raise CapabilityConfigError(f"map_name {map_name!r} is not a SMACv2 map; use one of {sorted(races)}")
    race_name, race = races[map_name]
    n, m = capability_config.get("n_units"), capability_config.get("n_enemies")
    return _build(f"{race_name}_{n}_vs_{m}", race, capability_config, _data(), "capability_config")


def smacv2_shoot_ranges(names, min_attack_range: float) -> np.ndarray:
    """SMACv2's unit_shoot_range with use_unit_ranges: max(type range, min_attack_range) per unit."""
    table = _data()["shoot_range"]
    missing = sorted({n for n in names if n not in table})
    if missing:
        raise CapabilityConfigError(f"use_unit_ranges: SMACv2 has no shoot range for {missing}; known: {sorted(table)}")
    return np.array([max(float(table[n]), float(min_attack_range)) for n in names], dtype=np.float32)


__all__ = [
    "CapabilityConfigError",
    "Scenario",
    "available_scenarios",
    "get_battle_spec",
    "get_scenario",
    "is_scenario",
    "scenario_from_capability_config",
    "smacv2_map_names",
]
