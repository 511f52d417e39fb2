"""Static per-map unit tables: every stat as an array over the map's units (allies first).

Converting once to per-game-loop units here keeps the hot loop free of unit conversions
(docs/smac.md, "Time": per-loop distance = speed/16, cooldown loops = period*16).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from rllib_uas.envs.engine.maps import Layout, MapSpec, load_terrain, map_layout
from rllib_uas.envs.engine.units import LOOPS_PER_SECOND, UnitType

SPLASH_NONE, SPLASH_LINE, SPLASH_SUICIDE = 0, 1, 2
_SPLASH_CODE = {"none": SPLASH_NONE, "line": SPLASH_LINE, "suicide": SPLASH_SUICIDE}
MIN_SCAN_RANGE = 5.0  # SC2 auto-acquire scan distance floor (SMAClite's min_scan_range)


@dataclass
class UnitTables:
    spec: MapSpec
    layout: Layout
    n_agents: int
    n_enemies: int
    units: tuple  # UnitType per unit index
    is_enemy: np.ndarray
    hp_max: np.ndarray
    sh_max: np.ndarray
    armor: np.ndarray
    radius: np.ndarray
    speed: np.ndarray  # distance per loop
    is_air: np.ndarray
    ignores_pathing: np.ndarray
    has_weapon: np.ndarray
    cd_loops: np.ndarray
    reach: np.ndarray  # weapon or heal range (centre distance adds both radii)
    scan: np.ndarray  # enemy auto-acquire distance
    hits: np.ndarray
    splash: np.ndarray
    splash_radius: np.ndarray
    hit_damage: np.ndarray  # [U, U] per-hit damage of attacker a on target t incl. bonus, 0 if it cannot hit
    can_hit: np.ndarray  # [U, U]
    is_healer: np.ndarray
    heal_per_loop: np.ndarray
    energy_per_hp: np.ndarray
    energy_start: np.ndarray
    energy_max: np.ndarray
    energy_regen: np.ndarray  # per loop
    hp_regen: np.ndarray  # per loop
    is_bio_ground: np.ndarray
    max_cd_obs: np.ndarray
    sc2_id: np.ndarray
    type_onehot_idx: np.ndarray  # index in the map type's one-hot, -1 when no one-hot
    is_medivac: np.ndarray
    spawn: np.ndarray  # [U, 2]
    grid: np.ndarray  # [map_x, map_y] bool


def gather_tables(kinds: UnitTables, src: np.ndarray, n_agents: int, layout: Layout) -> UnitTables:
    """The tables of a battle whose unit u is unit `src[u]` of `kinds` (allies first, `n_agents` of them):
    per-unit arrays gathered by `src`, unit-pair arrays by (src, src); the spawn points are `layout`'s."""
    U2 = kinds.n_agents + kinds.n_enemies
    out = {}
    for f in fields(UnitTables):
        v = getattr(kinds, f.name)
        if f.name in ("spec", "grid"):
            out[f.name] = v
        elif isinstance(v, np.ndarray) and v.ndim == 2 and v.shape == (U2, U2):
            out[f.name] = v[np.ix_(src, src)]
        elif isinstance(v, np.ndarray) and v.shape[:1] == (U2,):
            out[f.name] = v[src]
    out.update(
        layout=layout,
        n_agents=n_agents,
        n_enemies=len(src) - n_agents,
        units=tuple(kinds.units[i] for i in src),
        spawn=np.concatenate([layout.ally_pos, layout.enemy_pos]).astype(np.float32),
    )
    return UnitTables(**out)


def _per_hit(att: UnitType, tgt: UnitType) -> float:
    w = att.weapon
    return w.damage + sum(v for a, v in w.bonus.items() if a in tgt.attributes)


def build_tables(spec: MapSpec) -> UnitTables:
    """The tables of a fixed map (its one layout)."""
    return tables_for(spec, map_layout(spec.name))


def tables_for(spec: MapSpec, layout: Layout) -> UnitTables:
    """The tables of the units of `layout` (one battle's teams and spawn points) on `spec`'s map."""
    units = layout.ally_units + layout.enemy_units
    n_a, U = len(layout.ally_units), len(units)
    is_enemy = np.arange(U) >= n_a
    f = lambda fn: np.array([fn(u) for u in units], dtype=np.float32)  # noqa: E731
    has_weapon = np.array([u.weapon is not None for u in units])
    # per type pair, then per unit pair (teams repeat a few types): who can hit whom, for how much
    kinds = list({u.name: u for u in units}.values())
    kind_of = np.array([[k.name for k in kinds].index(u.name) for u in units])
    kind_can = np.zeros((len(kinds), len(kinds)), dtype=bool)
    kind_dmg = np.zeros((len(kinds), len(kinds)), dtype=np.float32)
    for a, ua in enumerate(kinds):
        for t, ut in enumerate(kinds):
            if ua.weapon is not None and (ua.weapon.targets_air if ut.air else ua.weapon.targets_ground):
                kind_can[a, t], kind_dmg[a, t] = True, _per_hit(ua, ut)
    can_hit = kind_can[np.ix_(kind_of, kind_of)] & (is_enemy[:, None] != is_enemy[None, :])
    hit_damage = np.where(can_hit, kind_dmg[np.ix_(kind_of, kind_of)], np.float32(0)).astype(np.float32)
    ally_types, enemy_types = spec.map_type.ally_types, spec.map_type.enemy_types
    onehot = np.array(
        [
            (ally_types.index(u.name) if u.name in ally_types else -1)
            if i < n_a
            else (enemy_types.index(u.name) if u.name in enemy_types else (len(enemy_types) - 1 if enemy_types else -1))
            for i, u in enumerate(units)
        ],
        dtype=np.int64,
    )
    reach = f(lambda u: u.weapon.range if u.weapon else u.heal_range)
    speed = f(lambda u: u.speed / LOOPS_PER_SECOND)
    return UnitTables(
        spec=spec,
        layout=layout,
        n_agents=n_a,
        n_enemies=U - n_a,
        units=units,
        is_enemy=is_enemy,
        hp_max=f(lambda u: u.health),
        sh_max=f(lambda u: u.shield),
        armor=f(lambda u: u.armor),
        radius=f(lambda u: u.radius),
        speed=speed,
        is_air=np.array([u.air for u in units]),
        ignores_pathing=np.array([u.air or u.cliff_walker for u in units]),
        has_weapon=has_weapon,
        cd_loops=f(lambda u: u.weapon.cooldown_loops if u.weapon else 0.0),
        reach=reach,
        scan=np.where(speed > 0, np.maximum(reach, MIN_SCAN_RANGE), reach).astype(np.float32),
        hits=f(lambda u: u.weapon.hits if u.weapon else 0),
        splash=np.array([_SPLASH_CODE[u.weapon.splash] if u.weapon else 0 for u in units], dtype=np.int64),
        splash_radius=f(lambda u: u.weapon.splash_radius if u.weapon else 0.0),
        hit_damage=hit_damage,
        can_hit=can_hit,
        is_healer=np.array([u.is_healer for u in units]),
        heal_per_loop=f(lambda u: u.heal_rate / LOOPS_PER_SECOND),
        energy_per_hp=f(lambda u: u.heal_energy_per_hp),
        energy_start=f(lambda u: u.energy_start),
        energy_max=f(lambda u: u.energy_max),
        energy_regen=f(lambda u: u.energy_regen / LOOPS_PER_SECOND),
        hp_regen=f(lambda u: u.hp_regen / LOOPS_PER_SECOND),
        is_bio_ground=np.array(["biological" in u.attributes and not u.air for u in units]),
        max_cd_obs=f(lambda u: u.max_cooldown_obs),
        sc2_id=np.array([u.sc2_id for u in units], dtype=np.int64),
        type_onehot_idx=onehot,
        is_medivac=np.array([u.name == "medivac" for u in units]),
        spawn=np.concatenate([layout.ally_pos, layout.enemy_pos]).astype(np.float32),
        grid=load_terrain(spec.terrain),
    )
