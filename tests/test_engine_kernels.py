"""The compiled engine's contracts beyond the golden trajectories: its random stream, its feature
caching and the arrays it hands out."""

import numpy as np
import pytest

from rllib_uas.envs.engine.ai import IDLE
from rllib_uas.envs.engine.battle import BattleEngine
from rllib_uas.envs.engine.vec_smac import VectorizedSMAC


def test_each_shot_draws_one_cooldown_jitter_from_the_engines_generator():
    # 2s3z: agent 0 is a stalker; it fires once on enemy zealot 7 within the step
    eng = BattleEngine("2s3z", n_envs=1, seed=5)
    eng.order[:] = IDLE
    eng.x[0], eng.y[0] = np.arange(eng.n_units, dtype=np.float32), 8.5
    eng.y[0, eng.n_agents :] = 23.5
    eng.x[0, 0], eng.y[0, 0], eng.x[0, 7], eng.y[0, 7] = 10.0, 16.0, 14.0, 16.0
    actions = np.ones((1, eng.n_agents), dtype=np.int64)
    actions[0, 0] = 6 + 2
    reference = np.random.default_rng(5)
    jitter = reference.integers(-1, 3)  # what NumPy's engine drew for this shot
    eng.step(actions)
    assert eng.sh[0, 7] == pytest.approx(50 - 13)
    assert eng.cd[0, 0] == pytest.approx(1.87 * 16 + jitter - 7, abs=1e-4)  # fired on loop 1 of 8
    # the kernel drew from the engine's own Generator, exactly one draw: both streams continue alike
    assert eng.rng.bit_generator.state == reference.bit_generator.state
    assert eng.rng.random() == reference.random()


def test_returned_arrays_are_never_written_again():
    vec = VectorizedSMAC("3m", n_envs=3, seed=0)
    vec.reset()
    obs, state, avail = vec.observations(), vec.states(), vec.avail_actions()
    kept = obs.copy(), state.copy(), avail.copy()
    vec.step(np.ones((3, 3), dtype=np.int64) * 4)  # everyone moves east
    vec.reset(np.array([True, False, False]))
    assert all(np.array_equal(a, b) for a, b in zip((obs, state, avail), kept))
    assert not np.array_equal(vec.states()[1], kept[1][1])  # env 1 moved: new values, new array


def test_an_array_nobody_holds_is_reused_and_one_with_a_live_view_is_not():
    vec = VectorizedSMAC("3m", n_envs=3, seed=0)
    vec.reset()
    first = id(vec.observations())  # dropped at once: no reference, no view
    vec.step(np.ones((3, 3), dtype=np.int64) * 4)
    obs = vec.observations()
    assert id(obs) == first  # recomputed in place
    row, kept = obs[1], obs[1].copy()  # a view keeps the whole array alive
    del obs
    vec.step(np.ones((3, 3), dtype=np.int64) * 4)
    assert id(vec.observations()) != first
    assert np.array_equal(row, kept)  # the view's values were not written
    assert not np.array_equal(vec.observations()[1], kept)  # env 1 moved on


def test_a_partial_reset_recomputes_only_the_reset_rows():
    vec = VectorizedSMAC("3m", n_envs=3, seed=0)
    vec.reset()
    vec.step(np.ones((3, 3), dtype=np.int64) * 4)
    after_step = vec.observations().copy(), vec.states().copy()
    vec.reset(np.array([False, True, False]))
    obs, state = vec.observations(), vec.states()
    fresh = VectorizedSMAC("3m", n_envs=1, seed=0)
    fresh.reset()
    assert np.array_equal(obs[[0, 2]], after_step[0][[0, 2]]) and np.array_equal(state[[0, 2]], after_step[1][[0, 2]])
    assert np.array_equal(obs[1], fresh.observations()[0]) and np.array_equal(state[1], fresh.states()[0])


def test_an_edited_unit_array_shows_after_invalidate():
    vec = VectorizedSMAC("3m", n_envs=2, seed=0)
    vec.reset()
    before = vec.observations()[1].copy()
    vec.engine.hp[1, 1] = 20.0  # tests and tools edit units directly
    assert np.array_equal(vec.observations()[1], before)  # cached until told
    vec._invalidate()
    own_health = vec.observations()[1, 1, -1]  # 3m: own health is the last obs column
    assert own_health == pytest.approx(20.0 / 45.0)


def test_raw_actions_out_of_range_are_refused_before_the_kernel_reads_them():
    vec = VectorizedSMAC("3m", n_envs=1, seed=0)
    vec.reset()
    with pytest.raises(ValueError, match="lie in 0..8"):
        vec.step(np.array([[1, 1, 9]]), validate=False)
    vec.step(np.array([[1, 1, 7]]), validate=False)  # in range, unavailable: a raw order, accepted


@pytest.mark.parametrize("n", [0, 1, 2, 24, 25, 57, 300])
def test_hit_events_are_ordered_by_their_unique_keys_at_every_count(n):
    # Shell sort past 24 events (27m_vs_30m volleys, splash): the same order as np.argsort of unique keys
    from rllib_uas.envs.engine.combat import _sort_events

    rng = np.random.default_rng(n)
    key = rng.permutation(10 * n + 5)[: n + 3].astype(np.int64)  # scratch longer than n, as in the kernel
    order = np.full(n + 3, -1, np.int64)
    _sort_events(key, n, order)
    np.testing.assert_array_equal(order[:n], np.argsort(key[:n]))
    assert (order[n:] == -1).all()


def test_maps_whose_open_ground_is_a_full_rectangle_skip_the_geodesic_and_lose_no_detour():
    # the shortcut must agree with the all-pairs computation on every shipped terrain, both ways
    from rllib_uas.envs.engine import available_maps, get_map
    from rllib_uas.envs.engine.maps import load_terrain
    from rllib_uas.envs.engine.pathing import _dijkstra_geodesic, build_geodesic, is_full_rectangle

    rectangles = 0
    for terrain in sorted({get_map(m).terrain for m in available_maps()}):
        grid = load_terrain(terrain)
        full = _dijkstra_geodesic(grid)
        if is_full_rectangle(grid):
            rectangles += 1
            assert full is None and build_geodesic(grid) is None, terrain
        else:
            assert (build_geodesic(grid) is None) == (full is None), terrain
    assert rectangles >= 10
    grid = np.ones((6, 6), bool)
    grid[2, 1:5] = False  # a wall inside the box: not a rectangle of open ground
    assert not is_full_rectangle(grid) and build_geodesic(grid) is not None


def test_a_fixed_map_battle_does_not_import_scipy_sparse():
    # numba imports the scipy package itself (a version check); its sparse graphs cost about 20 MiB
    import subprocess
    import sys

    code = (
        "import sys; from rllib_uas.envs.engine.vec_smac import VectorizedSMAC; VectorizedSMAC('MMM2', n_envs=2)"
        ".reset(); print('scipy.sparse' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.stdout.strip() == "False", out.stderr[-2000:]
