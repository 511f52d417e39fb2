"""The engine's per-env random streams and threads (BattleEngine(streams="per_env", threads=k)).

The default shared stream is pinned by the golden trajectories (test_engine_golden.py); here: the
per-env mode plays the same battles on any number of threads, its envs draw from distinct streams,
a seed replays it, and bad settings are refused with what to set.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from rllib_uas.envs.backend import check_engine_keys, make_backend
from rllib_uas.envs.engine.jit import seed_streams, stream_next_uint32
from rllib_uas.envs.engine.simulate import ENV_BLOCK
from rllib_uas.envs.engine.vec_smac import VectorizedSMAC

CPUS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def play(vec: VectorizedSMAC, steps: int, same_actions: bool = False, seed: int = 1) -> list:
    """Random valid play with resets; per step (obs, reward, terminated, hp) copies. With `same_actions`
    every env gets the actions drawn for env 0's mask pattern (identical while the battles agree)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(steps):
        avail = vec.avail_actions()
        draw = rng.random(avail.shape[1:]) if same_actions else rng.random(avail.shape)
        res = vec.step((draw * avail).argmax(-1))
        out.append((vec.observations().copy(), res.reward.copy(), res.terminated.copy(), vec.engine.hp.copy()))
        if res.terminated.any():
            vec.reset(res.terminated)
    return out


def same(a: list, b: list) -> bool:
    return all(all(np.array_equal(x, y) for x, y in zip(sa, sb)) for sa, sb in zip(a, b))


@pytest.mark.skipif(CPUS < 2, reason="needs 2 CPUs")
@pytest.mark.parametrize("map_name", ["MMM2", "terran_5_vs_5"])
def test_per_env_streams_play_the_same_battles_on_one_and_two_threads(map_name):
    # MMM2: heals, several unit types, 2 * ENV_BLOCK + 8 envs: on one thread two whole blocks and a
    # partial one, on two threads a whole block and a partial one each;
    # terran_5_vs_5 (SMACv2): teams drawn at every reset, each env its own table and block
    E = 2 * ENV_BLOCK + 8
    one = VectorizedSMAC(map_name, n_envs=E, seed=3, engine_streams="per_env", engine_threads=1)
    two = VectorizedSMAC(map_name, n_envs=E, seed=3, engine_streams="per_env", engine_threads=2)
    assert two.engine.env_ranges(min_per_thread=1) == [0, E // 2, E]
    assert two.engine.env_ranges(min_per_thread=E) == [0, E]  # too few envs to hand E / 2 to a thread
    two.engine.env_ranges = lambda min_per_thread: [0, E // 2, E]  # split even where it does not pay
    a, b = play(one, 120), play(two, 120)
    assert sum(s[2].sum() for s in a) > 10  # battles ended and were reset on the way
    assert same(a, b)


def test_per_env_streams_are_distinct_and_replayed_by_a_seed():
    # every env plays the same actions from the same spawn: only their random streams tell them apart
    vec = VectorizedSMAC("3m", n_envs=ENV_BLOCK + 4, seed=5, engine_streams="per_env")
    first = play(vec, 25, same_actions=True)
    hp = np.stack([s[3] for s in first])  # [T, E, U]
    assert not np.array_equal(hp[:, 0], hp[:, ENV_BLOCK])  # envs of different blocks differ
    assert not np.array_equal(hp[:, 0], hp[:, 1])  # and envs of one block
    vec.seed(5)
    vec.reset()
    assert same(first, play(vec, 25, same_actions=True))


def test_shared_and_per_env_modes_play_different_battles_of_the_same_kind():
    shared = play(VectorizedSMAC("3m", n_envs=16, seed=0), 60)
    per_env = play(VectorizedSMAC("3m", n_envs=16, seed=0, engine_streams="per_env"), 60)
    assert not same(shared, per_env)
    # the first step has fired no shot yet: it is the same in both modes
    assert np.array_equal(shared[0][0], per_env[0][0])


def test_stream_draws_match_splitmix64_by_hand():
    # SplitMix64 reference values for state 0 (Vigna's splitmix64.c): 0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4
    s = np.zeros(1, np.uint64)
    assert stream_next_uint32(s, 0) == 0xE220A839
    assert stream_next_uint32(s, 0) == 0x6E789E6A
    a, b = seed_streams(np.uint64(7), 0, 4), seed_streams(np.uint64(7), 2, 2)
    assert np.array_equal(a[2:], b) and len(set(a.tolist())) == 4  # env e's state depends on (base, e)


@pytest.mark.parametrize(
    "cfg, message",
    [
        ({"engine_threads": 2}, "engine_threads=2 needs engine_streams='per_env'"),
        ({"engine_streams": "per_env", "engine_threads": 0}, "engine_threads must be a positive integer, got 0"),
        ({"engine_streams": "per_env", "engine_threads": 2.5}, "engine_threads must be a positive integer"),
        ({"engine_streams": "per_env", "engine_threads": 10_000}, "exceeds the"),
        ({"engine_streams": "own"}, "engine_streams must be one of ('shared', 'per_env')"),
        ({"backend": "sc2", "engine_streams": "per_env"}, "only the embedded engine has them"),
    ],
)
def test_bad_engine_settings_say_what_to_set(cfg, message):
    with pytest.raises(ValueError, match=None) as err:
        check_engine_keys(cfg)
    assert message in str(err.value)
    if cfg.get("backend") != "sc2":
        with pytest.raises(ValueError):
            make_backend({"map_name": "3m", **cfg}, n_envs=2)


def test_env_config_reaches_the_engine():
    vec = make_backend({"map_name": "3m", "engine_streams": "per_env", "engine_threads": 1}, n_envs=4, seed=0)
    assert vec.engine.streams == "per_env" and vec.engine.threads == 1
    assert make_backend({"map_name": "3m"}, n_envs=2).engine.streams == "shared"
