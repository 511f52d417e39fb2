"""Property tests of the engine: random valid play on every shipped map, random seeds and random resets.

What must hold after every step (the ranges are the ones docs/engine.md documents): finite obs, state and
reward; health, shields and energy within [0, max]; obs within [-1, 1]; state within [-1, 1] except the
allies' cooldown column, which SMAC does not clip (weapon_cooldown / unit_max_cooldown); an alive agent
always has stop, a dead one only no-op; reward >= 0 under reward_only_positive; no episode outlives its
limit; the same seed plays the same episode. Malformed actions are a ValueError naming agent and action.

The examples are derandomized so CI is stable; `HYPOTHESIS_PROFILE=fuzz pytest tests/test_engine_fuzz.py`
draws many more, at random.
"""

import os

import numpy as np
import pytest
from golden_trajectories import SHIPPED_MAPS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rllib_uas.envs.engine.features import FeatureFlags
from rllib_uas.envs.engine.rules import RewardConfig
from rllib_uas.envs.engine.vec_smac import VectorizedSMAC
from rllib_uas.envs.smac_api import StarCraft2Env

settings.register_profile(
    "ci", max_examples=6, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("fuzz", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

STEPS, N_ENVS = 40, 3
HEAD_START = 10  # env 1 starts this many steps before the limit: a time-out in every example


def play(map_name: str, seed: int, reset_p: float, only_positive: bool, timestep_obs: bool):
    """Random valid play; checks every invariant after every step; returns what the step produced."""
    flags = FeatureFlags(obs_last_action=True, obs_timestep_number=timestep_obs, state_timestep_number=timestep_obs)
    vec = VectorizedSMAC(
        map_name, n_envs=N_ENVS, seed=seed, flags=flags, reward=RewardConfig(reward_only_positive=only_positive)
    )
    eng, t = vec.engine, vec.engine.tables
    n_a, limit = vec.n_agents, vec.episode_limit
    vec.reset()
    vec.episode_steps[1] = max(limit - HEAD_START, 0)
    rng = np.random.default_rng(seed)
    # the allies' cooldown column of the state is weapon_cooldown / unit_max_cooldown, unclipped
    cd_bound = float(np.max((t.cd_loops[:n_a] + 2.0) / np.maximum(t.max_cd_obs[:n_a], 1e-6), initial=1.0))
    trace, env1_ended = [], False
    for _ in range(STEPS):
        avail = vec.avail_actions()
        alive = eng.alive[:, :n_a]
        assert (avail[alive][:, 1] == 1).all(), "an alive agent without stop"
        dead = avail[~alive]
        assert (dead[:, 0] == 1).all() and (dead[:, 1:] == 0).all(), "a dead agent with more than no-op"
        a = (rng.random(avail.shape) * avail).argmax(-1)
        res = vec.step(a)
        obs, state = vec.observations(), vec.states()
        assert np.isfinite(obs).all() and np.isfinite(state).all() and np.isfinite(res.reward).all()
        assert obs.min() >= -1.0 and obs.max() <= 1.0, (obs.min(), obs.max())
        ally = state[:, : n_a * vec.features.st_al].reshape(N_ENVS, n_a, vec.features.st_al)
        rest = np.concatenate(
            [np.delete(ally, 1, axis=2).reshape(N_ENVS, -1), state[:, n_a * vec.features.st_al :]], axis=1
        )
        assert rest.min() >= -1.0 and rest.max() <= 1.0, (rest.min(), rest.max())
        assert ally[..., 1].min() >= 0.0 and ally[..., 1].max() <= cd_bound, (ally[..., 1].max(), cd_bound)
        assert (eng.hp >= 0).all() and (eng.hp <= t.hp_max).all()
        assert (eng.sh >= 0).all() and (eng.sh <= t.sh_max).all()
        assert (eng.energy >= 0).all() and (eng.energy <= t.energy_max + 1e-4).all()
        if only_positive:
            assert (res.reward >= 0).all()
        assert (vec.episode_steps <= limit).all()
        assert (res.terminated[vec.episode_steps >= limit]).all(), "an episode outlived its limit"
        assert not (res.timeout & ~res.terminated).any()
        trace.append((a, obs, state, res.reward))
        env1_ended |= bool(res.terminated[1])
        again = res.terminated | (rng.random(N_ENVS) < reset_p)
        if again.any():
            vec.reset(again)
    assert env1_ended or reset_p > 0, "env 1 ran past its limit"
    return trace


@pytest.mark.parametrize("map_name", SHIPPED_MAPS)
@given(
    seed=st.integers(0, 2**31 - 1),
    reset_p=st.sampled_from([0.0, 0.05, 0.3]),
    only_positive=st.booleans(),
    timestep_obs=st.booleans(),
)
def test_random_play_keeps_every_invariant(map_name, seed, reset_p, only_positive, timestep_obs):
    first = play(map_name, seed, reset_p, only_positive, timestep_obs)
    second = play(map_name, seed, reset_p, only_positive, timestep_obs)
    for (a1, o1, s1, r1), (a2, o2, s2, r2) in zip(first, second):  # same seed, same episode
        assert np.array_equal(a1, a2) and np.array_equal(o1, o2) and np.array_equal(s1, s2)
        assert np.array_equal(r1, r2)


# ---------------------------------------------------------------------------------------- malformed actions
def _bad_rows(n_agents: int, n_actions: int, agent: int):
    """(label, action row, the text the error must contain) with one bad entry at `agent`."""

    def row(v, dtype=np.int64):
        r = np.ones(n_agents, dtype=dtype)
        r[agent] = v
        return r

    return [
        ("fraction", row(1.5, np.float64), f"agent {agent}: action 1.5"),
        ("nan", row(np.nan, np.float64), f"agent {agent}: action nan"),
        ("inf", row(np.inf, np.float64), f"agent {agent}: action inf"),
        ("negative", row(-1), f"agent {agent}: action -1"),
        ("out of range", row(n_actions), f"agent {agent}: action {n_actions}"),
        ("unavailable", row(0), f"agent {agent}: action 0 is not available"),
    ]


@pytest.mark.parametrize("map_name", SHIPPED_MAPS)
@given(data=st.data())
def test_malformed_actions_name_agent_and_action_in_both_apis(map_name, data):
    env = StarCraft2Env(map_name=map_name, seed=0)
    env.reset()
    agent = data.draw(st.integers(0, env.n_agents - 1))
    for _label, bad, text in _bad_rows(env.n_agents, env.n_actions, agent):
        with pytest.raises(ValueError, match=text.replace(".", r"\.")):
            env.step(bad.tolist())
        vec = VectorizedSMAC(map_name, n_envs=2, seed=0)
        vec.reset()
        batch = np.ones((2, env.n_agents), dtype=bad.dtype)
        batch[1] = bad
        with pytest.raises(ValueError, match=f"env 1, {text}".replace(".", r"\.")):
            vec.step(batch)


@pytest.mark.parametrize(
    "bad, text",
    [
        ([1, 1], "one action per agent"),
        ([[1, 1, 1]], "one action per agent"),
        (None, "sequence of 3 actions"),
        (["a", "b", "c"], "must be integers"),
        ([None, 1, 1], "must be integers"),
    ],
)
def test_malformed_action_containers_are_refused_with_one_line(bad, text):
    env = StarCraft2Env(map_name="3m", seed=0)
    env.reset()
    with pytest.raises(ValueError, match=text):
        env.step(bad)


def test_a_wrong_shape_or_type_is_refused_by_the_vectorized_api():
    vec = VectorizedSMAC("3m", n_envs=2, seed=0)
    vec.reset()
    with pytest.raises(ValueError, match=r"shape \(n_envs=2, n_agents=3\)"):
        vec.step(np.ones((3,), dtype=np.int64))
    with pytest.raises(ValueError, match="must be integers"):
        vec.step(np.full((2, 3), "1"))
    with pytest.raises(ValueError, match="must be integers"):
        vec.step(np.ones((2, 3), dtype=bool))
