"""Battle outcomes over >= 100 episodes: the engine must reward good micro and punish none."""

import numpy as np
import pytest

from rllib_uas.envs.scripted import focus_fire_policy, random_policy, run_episode, stop_policy
from rllib_uas.envs.smac_api import StarCraft2Env

EPISODES = 100


def win_rate(map_name, policy, seed=0):
    env = StarCraft2Env(map_name=map_name, seed=seed)
    rng = np.random.default_rng(seed)
    return np.mean([run_episode(env, policy, rng)["battle_won"] for _ in range(EPISODES)])


@pytest.mark.slow
def test_focus_fire_wins_most_3m_battles():
    assert win_rate("3m", focus_fire_policy) >= 0.8


@pytest.mark.slow
@pytest.mark.parametrize("map_name", ["3m", "MMM2"])
@pytest.mark.parametrize("policy", [stop_policy, random_policy], ids=["stop", "random"])
def test_passive_and_random_policies_lose_nearly_all(map_name, policy):
    assert win_rate(map_name, policy) <= 0.05
