"""What both team algorithms' configs share: our common settings, the team view's env, sampling and
evaluation defaults, their checks, and the team view's connector pipelines.

Settings: `TeamConfigMixin` declares the settings of `rllib_uas.settings.TEAM_SETTINGS` once for both
configs (defaults in `__init__`, typed keywords in `training()`, checks in `validate()`), the way
RLlib's configs chain `training()` through their bases: U-MAPPO's and U-QMIX's own `training()` take
their own keywords and pass the rest here, and from here to RLlib's.

Connectors: RLlib builds the pipelines in `AlgorithmConfig.build_env_to_module_connector`,
`build_module_to_env_connector` and `build_learner_connector`; here, when the defaults are on and
the user gave no connector of their own, RLlib's per-item default pieces are swapped for the team
pieces of `rllib_uas.connectors` (same batches, a fraction of the time). Pieces an algorithm's
learner adds around them (PPO's bootstrap step, our GAE) stay. With a custom connector, RLlib's
pipelines are kept as they are: a user's piece may expect RLlib's per-item batch format.
"""

from __future__ import annotations

from typing import Any

from ray.rllib.algorithms.algorithm_config import AlgorithmConfig, NotProvided
from ray.rllib.connectors.connector_v2 import ConnectorV2
from ray.rllib.utils.annotations import override

from rllib_uas.callbacks import SMACMetricsCallback
from rllib_uas.connectors import TeamActionsToEnv, TeamEpisodesToModule, TeamEpisodesToTrainBatch
from rllib_uas.env_runner import TeamEnvRunner, validate_unbiased_sampling
from rllib_uas.settings import CHECKS, TEAM_SETTINGS, apply_defaults, module_config
from rllib_uas.team_obs import check_gym_team_env

ENV_TO_MODULE_DEFAULTS = (
    "AddObservationsFromEpisodesToBatch",
    "AddTimeDimToBatchAndZeroPad",
    "AddStatesFromEpisodesToBatch",
    "BatchIndividualItems",
    "NumpyToTensor",
)
LEARNER_DEFAULTS = (
    "AddObservationsFromEpisodesToBatch",
    "AddColumnsFromEpisodesToTrainBatch",
    "AddTimeDimToBatchAndZeroPad",
    "AddStatesFromEpisodesToBatch",
    "BatchIndividualItems",
    "NumpyToTensor",
)
MODULE_TO_ENV_DEFAULTS = (
    "RemoveSingleTsTimeRankFromBatch",
    "GetActions",
    "TensorToNumpy",
    "UnBatchToIndividualItems",
    "NormalizeAndClipActions",
    "ListifyDataForVectorEnv",
)


def _has_vector_entry_point(env) -> bool:
    """True for the SMAC team env and for gymnasium ids registered with a vector entry point."""
    if env == "smac_team":
        return True
    if not isinstance(env, str):
        return False
    import gymnasium

    spec = gymnasium.envs.registry.get(env)
    return spec is not None and spec.vector_entry_point is not None


def _swap(pipeline: ConnectorV2, defaults, piece: ConnectorV2) -> ConnectorV2:
    for name in defaults:
        pipeline.remove(name)
    pipeline.append(piece)
    return pipeline


class TeamConfigMixin:
    """Mix into an AlgorithmConfig (before it in the bases) whose env is a team view.

    Subclasses set `ALGORITHM` ("mappo" / "qmix": the key of their module settings in
    `rllib_uas.settings`). `team_connectors=False` (a config attribute, also from YAML) keeps RLlib's
    default connector pieces."""

    ALGORITHM = ""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        apply_defaults(self, TEAM_SETTINGS)
        self.team_connectors = True  # an instance attribute, so `update_from_dict` and YAML accept it
        # the team view, vectorized inside each env runner by its own batched vector env
        self.env = "smac_team"
        self.env_config = {"map_name": "3m"}
        self.num_envs_per_env_runner = 8
        self.gym_env_vectorize_mode = "vector_entry_point"
        self.env_runner_cls = TeamEnvRunner  # unbiased episodes and evaluation rounds (docs/sampling.md)
        self.callbacks_class = SMACMetricsCallback
        # evaluation runners act greedily (argmax of the masked policy or Q-values), over whole rounds
        self.evaluation_config = {"explore": False}
        self.evaluation_duration = 32
        self.evaluation_duration_unit = "episodes"

    @override(AlgorithmConfig)
    def training(
        self,
        *,
        uas: Any = NotProvided,
        cgi_coeff: Any = NotProvided,
        use_agent_id: Any = NotProvided,
        use_last_action: Any = NotProvided,
        use_group_id: Any = NotProvided,
        parameter_sharing: Any = NotProvided,
        fc_hidden: Any = NotProvided,
        gru_hidden: Any = NotProvided,
        **kwargs,
    ):
        """The settings both algorithms share (`rllib_uas.settings.TEAM_SETTINGS`); the rest goes on to
        RLlib's `training()`."""
        set_provided(
            self,
            uas=uas,
            cgi_coeff=cgi_coeff,
            use_agent_id=use_agent_id,
            use_last_action=use_last_action,
            use_group_id=use_group_id,
            parameter_sharing=parameter_sharing,
            fc_hidden=fc_hidden,
            gru_hidden=gru_hidden,
        )
        return super().training(**kwargs)

    @property
    def model_config_for_module(self) -> dict:
        """The module's model config, from this config's settings (`rllib_uas.settings.module_config`)."""
        return module_config(self.ALGORITHM, self)

    def env_switches(self) -> dict:
        """The SMAC team env's env_config keys that follow the algorithm's settings."""
        return {"uas": self.uas}

    @override(AlgorithmConfig)
    def validate(self) -> None:
        """Our settings (`rllib_uas.settings`, by `ALGORITHM`), sampling, the env_config sync, then
        RLlib's own checks."""
        CHECKS[self.ALGORITHM](self)
        validate_unbiased_sampling(self)
        if self.env in ("smac_team", None) and isinstance(self.env_config, dict):
            # the env's action space and observations follow the algorithm's switches
            for key, want in self.env_switches().items():
                have = self.env_config.get(key, want)
                if have != want:
                    raise ValueError(
                        f"env_config {key}={have!r} contradicts the algorithm's setting ({want!r}); "
                        "remove it from env_config"
                    )
                self.env_config[key] = want
        from rllib_uas.envs.registry import register_class_path, register_envs

        register_envs()
        register_class_path(self.env)
        check_gym_team_env(self.env, self.env_config if isinstance(self.env_config, dict) else None)
        # the configs default to the SMAC team env's own batched vector env; any other env (a
        # PettingZooTeamEnv, a user's gym env) has no vector entry point and is vectorized by gymnasium
        if str(self.gym_env_vectorize_mode).lower().endswith("vector_entry_point") and not _has_vector_entry_point(
            self.env
        ):
            self.gym_env_vectorize_mode = "sync"
        if self.uas is False and self.env not in ("smac_team", None):
            raise ValueError(
                f"uas=False needs an env with a native action space to fall back to, which only SMAC's "
                f"team env (smac_team) has; {self.env!r} acts in its unified space. Set uas=True "
                "(cgi_coeff=0.0 for the ablation without CGI)"
            )
        super().validate()

    def _team_pipelines(self, custom) -> bool:
        return bool(self.team_connectors) and custom is None and not self.is_multi_agent

    @override(AlgorithmConfig)
    def build_env_to_module_connector(self, env=None, spaces=None, device=None) -> ConnectorV2:
        pipeline = super().build_env_to_module_connector(env=env, spaces=spaces, device=device)
        if self.add_default_connectors_to_env_to_module_pipeline and self._team_pipelines(
            self._env_to_module_connector
        ):
            return _swap(pipeline, ENV_TO_MODULE_DEFAULTS, TeamEpisodesToModule())
        return pipeline

    @override(AlgorithmConfig)
    def build_module_to_env_connector(self, env=None, spaces=None) -> ConnectorV2:
        pipeline = super().build_module_to_env_connector(env=env, spaces=spaces)
        if self.add_default_connectors_to_module_to_env_pipeline and self._team_pipelines(
            self._module_to_env_connector
        ):
            return _swap(pipeline, MODULE_TO_ENV_DEFAULTS, TeamActionsToEnv())
        return pipeline

    @override(AlgorithmConfig)
    def build_learner_connector(self, input_observation_space, input_action_space, device=None) -> ConnectorV2:
        pipeline = super().build_learner_connector(input_observation_space, input_action_space, device=device)
        if (
            self.add_default_connectors_to_learner_pipeline
            and self._team_pipelines(self._learner_connector)
            and self.episodes_to_numpy
        ):
            return _swap(pipeline, LEARNER_DEFAULTS, TeamEpisodesToTrainBatch())
        return pipeline


def set_provided(config: Any, **values: Any) -> None:
    """Set the keyword arguments a `training()` call was given (RLlib's NotProvided means untouched)."""
    for name, value in values.items():
        if value is not NotProvided:
            setattr(config, name, value)
