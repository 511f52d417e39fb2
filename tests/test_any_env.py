"""UAS for any masked discrete env: a two-group toy PettingZoo env, turned into a team env with its
semantics table, trains U-MAPPO and U-QMIX (CGI on) for a few iterations and evaluates."""

import numpy as np
import pytest
from ray.tune.registry import register_env
from toy_team_env import SEMANTICS, ToyBattle

from rllib_uas.algorithms.u_mappo import UMAPPOConfig
from rllib_uas.algorithms.u_qmix import UQMIXConfig
from rllib_uas.envs.pettingzoo import PettingZooTeamEnv


def make_toy(env_config):
    return PettingZooTeamEnv(ToyBattle(), semantics=SEMANTICS)


def configs():
    mappo = (
        UMAPPOConfig()
        .environment(env="toy_team", env_config={})
        .training(train_batch_size_per_learner=200, minibatch_size=200, num_epochs=2)
    )
    qmix = (
        UQMIXConfig()
        .environment(env="toy_team", env_config={})
        .training(batch_size_episodes=8, learning_starts_episodes=4, episodes_per_iteration=4, buffer_size_episodes=50)
    )
    return {"U-MAPPO": mappo, "U-QMIX": qmix}


def test_the_toy_env_has_two_groups_and_a_real_mask():
    env = make_toy({})
    obs, _ = env.reset(seed=0)
    assert env.uas.n_groups == 2
    assert obs["action_mask"].shape == (3, env.uas.size)
    assert env.observation_space.contains(obs)


@pytest.mark.parametrize("algorithm", ["U-MAPPO", "U-QMIX"])
def test_a_two_group_pettingzoo_env_trains_and_evaluates(ray_session, algorithm):
    register_env("toy_team", make_toy)
    cfg = (
        configs()[algorithm]
        .env_runners(num_env_runners=0, num_envs_per_env_runner=2)
        .evaluation(evaluation_interval=2, evaluation_duration=4, evaluation_num_env_runners=0)
        .debugging(seed=0)
    )
    algo = cfg.build_algo()
    try:
        for _ in range(2):
            result = algo.train()
        learner = result["learners"]["default_policy"]
        assert np.isfinite(float(learner["total_loss"])) and float(learner["cgi_loss"]) > 0  # two groups: CGI acts
        assert result["num_env_steps_sampled_lifetime"] > 0
        assert np.isfinite(result["evaluation"]["env_runners"]["episode_return_mean"])
    finally:
        algo.stop()


@pytest.mark.parametrize("algorithm", ["U-MAPPO", "U-QMIX"])
def test_uas_off_is_refused_where_there_is_no_native_space(algorithm):
    cfg = configs()[algorithm].training(uas=False, cgi_coeff=0.0)
    with pytest.raises(ValueError, match="uas=False needs an env with a native action space"):
        cfg.validate()
