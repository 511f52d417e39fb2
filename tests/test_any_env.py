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


class ToyTeamEnv(PettingZooTeamEnv):
    """The toy battle as an env class that takes RLlib's env_config, named by its 'module.Class' path."""

    def __init__(self, env_config):
        super().__init__(ToyBattle(), semantics=SEMANTICS)


def test_an_env_named_by_its_class_path_is_made_as_rllib_makes_an_env_class(ray_session):
    """RLlib 2.60's env runners make a string env only from Tune's registry or as a gymnasium id: a
    'module.Class' path (which `rllib train` accepts) failed with gymnasium's NameNotFound. Validating
    a team config registers it with Tune, made as `Class(env_config)`; ids and known names are left
    alone."""
    from ray.tune.registry import ENV_CREATOR, _global_registry

    from rllib_uas.envs.registry import register_class_path

    path = f"{__name__}.ToyTeamEnv"
    config = configs()["U-MAPPO"].environment(env=path).env_runners(num_env_runners=0)
    algo = config.build_algo()
    try:
        episodes = algo.env_runner.sample(num_timesteps=20)
        assert sum(len(e) for e in episodes) >= 20
        assert isinstance(_global_registry.get(ENV_CREATOR, path)({}), ToyTeamEnv)
    finally:
        algo.stop()
    assert not register_class_path(path)  # already known to Tune
    assert not register_class_path("CartPole-v1")  # a gymnasium id
    assert not register_class_path("no_such_module.Env") and not register_class_path("smac_team")


def _broken_env(env_config):
    raise ValueError("no battle here: check env_config")


@pytest.mark.parametrize("algorithm", ["U-MAPPO", "U-QMIX"])
def test_an_env_runner_that_fails_to_start_is_named_by_its_error(ray_session, algorithm):
    """With RLlib's default fault tolerance a remote env runner's failure to start was logged and
    dropped, and setup failed with `IndexError: list index out of range` in `get_spaces`; the
    algorithm now raises the runner's own error."""
    register_env("broken_team", _broken_env)
    config = configs()[algorithm].environment(env="broken_team").env_runners(num_env_runners=1)
    with pytest.raises(RuntimeError, match=r"env runner failed to start: ValueError: no battle here: check env_config"):
        config.build_algo()
