"""Our settings have one home (`rllib_uas.settings`): the configs, their `training()` keywords and the
modules' defaults all follow it."""

import numpy as np
import pytest

from rllib_uas.algorithms.team_config import TeamConfigMixin
from rllib_uas.algorithms.u_mappo import UMAPPOConfig
from rllib_uas.algorithms.u_qmix import UQMIXConfig
from rllib_uas.modules.team_ppo import DEFAULT_MODEL_CONFIG as PPO_MODULE_DEFAULTS
from rllib_uas.modules.team_q import DEFAULT_MODEL_CONFIG as Q_MODULE_DEFAULTS
from rllib_uas.settings import ALGORITHM_SETTINGS, TEAM_SETTINGS

CONFIGS = [(UMAPPOConfig, "mappo", PPO_MODULE_DEFAULTS), (UQMIXConfig, "qmix", Q_MODULE_DEFAULTS)]


@pytest.mark.parametrize("cls, algorithm, module_defaults", CONFIGS)
def test_every_setting_has_its_default_and_a_training_keyword(cls, algorithm, module_defaults):
    assert issubclass(cls, TeamConfigMixin) and cls.ALGORITHM == algorithm
    settings = {**TEAM_SETTINGS, **ALGORITHM_SETTINGS[algorithm]}
    config = cls()
    for name, default in settings.items():
        assert getattr(config, name) == default, name
        marker = object()
        config.training(**{name: marker})  # RLlib's training() would raise on a stray keyword
        assert getattr(config, name) is marker, name
    # the module's defaults are what the default config hands it, plus one torch thread
    assert {**cls().model_config_for_module, "torch_num_threads": 1} == module_defaults


def test_a_shared_setting_reaches_both_algorithms_from_one_place():
    """The shared settings are declared once, in the mixin both configs inherit, not per config."""
    for cls, _, _ in CONFIGS:
        assert "training" in vars(cls)  # each config's own keywords ...
        for name in TEAM_SETTINGS:
            assert name not in cls.training.__code__.co_varnames  # ... and none of the shared ones
    assert UMAPPOConfig().training(fc_hidden=32, lr=1e-3).fc_hidden == 32
    assert UQMIXConfig().training(gru_hidden=16, mixer="vdn").gru_hidden == 16


RLLIB_RANGES = [  # RLlib's settings whose ranges its own validate() leaves unchecked
    (UMAPPOConfig, "num_epochs", -3, "num_epochs must be a positive integer, got -3"),  # was an UnboundLocalError
    (UMAPPOConfig, "rollout_fragment_length", 0, "rollout_fragment_length must be a positive integer"),  # hung
    (UMAPPOConfig, "train_batch_size_per_learner", 0, "train_batch_size_per_learner must be a positive integer"),
    (UMAPPOConfig, "minibatch_size", 0, "minibatch_size must be a positive integer"),
    (UMAPPOConfig, "clip_param", 0.0, "clip_param must be a finite number > 0, got 0.0"),
    (UMAPPOConfig, "vf_clip_param", -1.0, "vf_clip_param must be a finite number >= 0 (0 or None: no value clipping)"),
    (UMAPPOConfig, "vf_loss_coeff", -1.0, "vf_loss_coeff must be a finite number >= 0"),
    (UMAPPOConfig, "lambda_", 1.5, "lambda_ must lie in [0, 1], got 1.5"),
    (UMAPPOConfig, "critic_hidden", 64, "critic_hidden must be a list of positive layer sizes"),
    (UMAPPOConfig, "critic_hidden", [64, 0], "critic_hidden must be a list of positive layer sizes"),
    (UMAPPOConfig, "critic_hidden", [], "critic_hidden must be a list of positive layer sizes"),
    (UMAPPOConfig, "lr", -1e-3, "lr must be a finite number >= 0, got -0.001"),
    (UMAPPOConfig, "gamma", 1.01, "gamma must lie in [0, 1]"),
    (UMAPPOConfig, "grad_clip", 0.0, "grad_clip must be a finite number > 0 (or None: no clipping)"),
    (UMAPPOConfig, "num_env_runners", -1, "num_env_runners must be an integer >= 0"),
    (UMAPPOConfig, "evaluation_interval", -1, "evaluation_interval must be an integer >= 0"),
    (UMAPPOConfig, "num_cpus_per_learner", -1, "num_cpus_per_learner must be a finite number >= 0 (or 'auto')"),
    (UQMIXConfig, "lr", float("nan"), "lr must be a finite number >= 0"),
    (UQMIXConfig, "gamma", -0.1, "gamma must lie in [0, 1]"),
    (UQMIXConfig, "epsilon_anneal_steps", -5, "epsilon_anneal_steps must be an integer >= 0"),
    (UQMIXConfig, "learning_starts_episodes", 2.5, "learning_starts_episodes must be an integer >= 0"),
    (UQMIXConfig, "mixing_embed_dim", 0, "mixing_embed_dim must be a positive integer"),
    (UQMIXConfig, "hypernet_embed", -1, "hypernet_embed must be a positive integer"),
]


@pytest.mark.parametrize("cls, name, value, message", RLLIB_RANGES)
def test_rllib_settings_out_of_range_are_refused(cls, name, value, message):
    config = cls().environment(env_config={"map_name": "3m1m_vs_4m"})
    setattr(config, name, value)
    with pytest.raises(ValueError) as err:
        config.validate()
    assert message in str(err.value)


@pytest.mark.parametrize(
    "cls, values",
    [
        (
            UMAPPOConfig,
            dict(lr=0.0, gamma=1.0, lambda_=0.0, vf_clip_param=None, grad_clip=None, evaluation_interval=0,
                 num_cpus_per_learner=0, minibatch_size=None, rollout_fragment_length="auto"),
        ),
        (UMAPPOConfig, dict(lr=[[0, 1e-3], [1000, 1e-4]], vf_clip_param=0.0, num_cpus_per_learner=0.5)),
        (UQMIXConfig, dict(epsilon_anneal_steps=0, learning_starts_episodes=0, gamma=0.0, grad_clip=None)),
        (UQMIXConfig, dict(seed=np.int64(3), num_env_runners=np.int64(0), mixing_embed_dim=np.int32(16))),  # numpy
        (UMAPPOConfig, dict(gamma=np.float32(0.99), clip_param=np.float32(0.2))),  # (RLlib takes lr as a float only)
    ],
)  # fmt: skip
def test_rllib_settings_at_their_bounds_are_accepted(cls, values):
    config = cls().environment(env_config={"map_name": "3m1m_vs_4m"})
    for name, value in values.items():
        setattr(config, name, value)
    config.validate()
