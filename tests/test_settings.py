"""Our settings have one home (`rllib_uas.settings`): the configs, their `training()` keywords and the
modules' defaults all follow it."""

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
