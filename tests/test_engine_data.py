"""Map registry, shapes and max_reward against SMAC's reference sizes and max_reward values; data-file validation."""

from pathlib import Path

import numpy as np
import pytest

import rllib_uas.envs.engine.units
from rllib_uas.envs.engine import UnitDataError, UnknownMapError, available_maps, load_map_file, load_unit_file
from rllib_uas.envs.engine.maps import map_layout
from rllib_uas.envs.smac_api import StarCraft2Env

# map: (n_agents, n_enemies, n_actions, obs_shape, state_shape) as SMAC reports them (docs/smac.md)
SPEC_SHAPES = {
    "3m": (3, 3, 9, 30, 48),
    "8m": (8, 8, 14, 80, 168),
    "25m": (25, 25, 31, 250, 950),
    "5m_vs_6m": (5, 6, 12, 55, 98),
    "8m_vs_9m": (8, 9, 15, 85, 179),
    "10m_vs_11m": (10, 11, 17, 105, 243),
    "27m_vs_30m": (27, 30, 36, 285, 1170),
    "MMM": (10, 10, 16, 160, 290),
    "MMM2": (10, 12, 18, 176, 322),
    "2s3z": (5, 5, 11, 80, 120),
    "3s5z": (8, 8, 14, 128, 216),
    "3s5z_vs_3s6z": (8, 9, 15, 136, 230),
    "3s_vs_3z": (3, 3, 9, 36, 54),
    "3s_vs_4z": (3, 4, 10, 42, 61),
    "3s_vs_5z": (3, 5, 11, 48, 68),
    "1c3s5z": (9, 9, 15, 162, 270),
    "2m_vs_1z": (2, 1, 7, 16, 26),
    "corridor": (6, 24, 30, 156, 282),
    "6h_vs_8z": (6, 8, 14, 78, 140),
    "2s_vs_1sc": (2, 1, 7, 17, 27),
    "so_many_baneling": (7, 32, 38, 202, 397),
    "bane_vs_bane": (24, 24, 30, 336, 984),
    "2c_vs_64zg": (2, 64, 70, 332, 342),
}
# SMAC's max_reward per map
SPEC_MAX_REWARD = {
    "3m": 365,
    "10m_vs_11m": 805,
    "27m_vs_30m": 1850,
    "MMM": 1015,
    "MMM2": 1205,
    "2s3z": 1020,
    "3s5z": 1510,
    "3s5z_vs_3s6z": 1670,
    "1c3s5z": 1870,
    "3s_vs_5z": 1000,
    "6h_vs_8z": 1480,
    "corridor": 1280,
    "so_many_baneling": 1480,
    "bane_vs_bane": 1260,
    "2c_vs_64zg": 3080,
}
SPEC_LIMITS = {"3m": 60, "8m": 120, "MMM2": 180, "corridor": 400, "so_many_baneling": 100, "2s_vs_1sc": 300}


def test_all_smac_maps_and_method_maps_are_registered():
    maps = set(available_maps())
    assert set(SPEC_SHAPES) <= maps
    assert {"6m2m_vs_15m", "12m4m_vs_30m"} <= maps


@pytest.mark.parametrize("name", sorted(SPEC_SHAPES))
def test_env_info_matches_spec(name):
    env = StarCraft2Env(map_name=name)
    info = env.get_env_info()
    n_a, n_e, n_act, obs, state = SPEC_SHAPES[name]
    assert (info["n_agents"], env.n_enemies, info["n_actions"], info["obs_shape"], info["state_shape"]) == (
        n_a,
        n_e,
        n_act,
        obs,
        state,
    )
    o, s = env.reset()
    assert len(o) == n_a and all(v.shape == (obs,) and v.dtype == np.float32 for v in o)
    assert s.shape == (state,) and s.dtype == np.float32
    assert np.array(env.get_avail_actions()).shape == (n_a, n_act)


@pytest.mark.parametrize("name", sorted(SPEC_MAX_REWARD))
def test_max_reward_matches_spec(name):
    assert StarCraft2Env(map_name=name).max_reward == SPEC_MAX_REWARD[name]


def test_episode_limits_and_races():
    for name, limit in SPEC_LIMITS.items():
        assert StarCraft2Env(map_name=name).episode_limit == limit
    env = StarCraft2Env(map_name="2s3z")
    assert (env.shield_bits_ally, env.shield_bits_enemy, env.unit_type_bits) == (1, 1, 2)


def test_agents_sorted_by_type_then_position_and_enemies_in_creation_order():
    lay = map_layout("MMM")
    assert [u.name for u in lay.ally_units] == ["marauder"] * 2 + ["marine"] * 7 + ["medivac"]
    assert [u.name for u in lay.enemy_units] == ["marine"] * 7 + ["marauder"] * 2 + ["medivac"]
    marines = lay.ally_pos[2:9]
    assert all(tuple(marines[i]) <= tuple(marines[i + 1]) for i in range(6))
    lay = map_layout("bane_vs_bane")
    assert [u.name for u in lay.enemy_units] == ["zergling"] * 20 + ["baneling"] * 4


def test_spawn_blob_has_no_overlap_and_first_unit_on_the_point():
    lay = map_layout("27m_vs_30m")
    pos, r = lay.enemy_pos, 0.375
    assert tuple(pos[0]) == (23.0, 16.0)
    d = np.hypot(*(pos[:, None, :] - pos[None, :, :]).transpose(2, 0, 1))
    assert (d[~np.eye(len(pos), dtype=bool)] >= 2 * r - 1e-6).all()
    assert np.abs(pos - [23, 16]).max() < 4  # a tight blob


def test_unknown_map_lists_available_maps():
    with pytest.raises(UnknownMapError) as err:
        StarCraft2Env(map_name="4m_vs_nothing")
    msg = str(err.value)
    assert "4m_vs_nothing" in msg and "MMM2" in msg and "3m" in msg and "load_map_file" in msg


def test_unknown_constructor_argument_is_named():
    with pytest.raises(TypeError, match="obs_lastaction"):
        StarCraft2Env(map_name="3m", obs_lastaction=True)


def test_user_map_from_yaml(tmp_path):
    f = tmp_path / "mymaps.yaml"
    f.write_text("""
maps:
  4m_vs_3zg:
    limit: 80
    a_race: T
    b_race: Z
    map_type: marines
    terrain: 3m
    allies: [{unit: marine, count: 4, pos: [9, 16]}]
    enemies: [{unit: zergling, count: 3, pos: [23, 16]}]
    enemy_order: {kind: attack_move, point: [9, 16]}
""")
    assert "4m_vs_3zg" in load_map_file(f)
    env = StarCraft2Env(map_name="4m_vs_3zg", seed=0)
    info = env.get_env_info()
    assert (info["n_agents"], info["n_actions"], info["episode_limit"]) == (4, 9, 80)
    assert env.max_reward == 3 * 10 + 200 + 3 * 35
    env.reset()
    env.step([1] * 4)


@pytest.mark.parametrize(
    "body, field",
    [
        ("maps:\n  bad:\n    limit: 10\n", "missing field 'a_race'"),
        (
            "maps:\n  bad: {limit: 10, a_race: X, b_race: T, map_type: marines, terrain: 3m, allies: [], enemies: [], "
            "enemy_order: {kind: none}}\n",
            "field 'a_race'",
        ),
        (
            "maps:\n  bad: {limit: 10, a_race: T, b_race: T, map_type: marines, terrain: 3m, "
            "allies: [{unit: tank, count: 1, pos: [9, 16]}], enemies: [{unit: marine, count: 1, pos: [20, 16]}], "
            "enemy_order: {kind: none}}\n",
            "unknown unit type 'tank'",
        ),
        ("maps: [1, 2\n", "not valid YAML"),
    ],
)
def test_malformed_map_file_names_file_and_field(tmp_path, body, field):
    f = tmp_path / "broken_maps.yaml"
    f.write_text(body)
    with pytest.raises(UnitDataError) as err:
        load_map_file(f)
    assert "broken_maps.yaml" in str(err.value) and field in str(err.value)


def test_malformed_unit_file_names_file_and_field(tmp_path):
    f = tmp_path / "units_bad.yaml"
    good = (Path(rllib_uas.envs.engine.units.DATA_DIR) / "units.yaml").read_text()
    marine = good[good.index("marine:") : good.index("marauder:")]
    f.write_text(marine.replace("marine:", "tank:").replace("health: 45", "health: lots"))
    with pytest.raises(UnitDataError) as err:
        load_unit_file(f)
    assert "units_bad.yaml" in str(err.value) and "'health'" in str(err.value)


def test_a_unit_without_the_fields_nothing_reads_loads(tmp_path, monkeypatch):
    """`sight` is optional: SMAC v1 observes every unit within 9, whatever its type."""
    units = rllib_uas.envs.engine.units
    monkeypatch.setattr(units, "_UNITS", dict(units.unit_types()))  # the shipped units, restored after
    f = tmp_path / "units_min.yaml"
    good = (Path(rllib_uas.envs.engine.units.DATA_DIR) / "units.yaml").read_text()
    marine = good[good.index("marine:") : good.index("marauder:")]
    f.write_text("\n".join(ln for ln in marine.replace("marine:", "ghost:").splitlines() if "sight:" not in ln))
    ghost = load_unit_file(f)["ghost"]
    assert ghost.sight is None and ghost.health == 45
