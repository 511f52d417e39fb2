"""What both team algorithms' configs share: the team view's connector pipelines.

RLlib builds the pipelines in `AlgorithmConfig.build_env_to_module_connector`,
`build_module_to_env_connector` and `build_learner_connector`; here, when the defaults are on and
the user gave no connector of their own, RLlib's per-item default pieces are swapped for the team
pieces of `rllib_uas.connectors` (same batches, a fraction of the time). Pieces an algorithm's
learner adds around them (PPO's bootstrap step, our GAE) stay. With a custom connector, RLlib's
pipelines are kept as they are: a user's piece may expect RLlib's per-item batch format.
"""
from __future__ import annotations

from ray.rllib.connectors.connector_v2 import ConnectorV2

from rllib_uas.connectors import TeamActionsToEnv, TeamEpisodesToModule, TeamEpisodesToTrainBatch

ENV_TO_MODULE_DEFAULTS = ("AddObservationsFromEpisodesToBatch", "AddTimeDimToBatchAndZeroPad",
                          "AddStatesFromEpisodesToBatch", "BatchIndividualItems", "NumpyToTensor")
LEARNER_DEFAULTS = ("AddObservationsFromEpisodesToBatch", "AddColumnsFromEpisodesToTrainBatch",
                    "AddTimeDimToBatchAndZeroPad", "AddStatesFromEpisodesToBatch", "BatchIndividualItems",
                    "NumpyToTensor")
MODULE_TO_ENV_DEFAULTS = ("RemoveSingleTsTimeRankFromBatch", "GetActions", "TensorToNumpy",
                          "UnBatchToIndividualItems", "NormalizeAndClipActions", "ListifyDataForVectorEnv")


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


class TeamConnectorsMixin:
    """Mix into an AlgorithmConfig (before it in the bases) whose env is a team view.

    `team_connectors=False` (a config attribute, also from YAML) keeps RLlib's default pieces."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.team_connectors = True     # an instance attribute, so `update_from_dict` and YAML accept it

    def validate(self) -> None:
        # the configs default to the SMAC team env's own batched vector env; any other env (a
        # PettingZooTeamEnv, a user's gym env) has no vector entry point and is vectorized by gymnasium
        if str(self.gym_env_vectorize_mode).lower().endswith("vector_entry_point") \
                and not _has_vector_entry_point(self.env):
            self.gym_env_vectorize_mode = "sync"
        if getattr(self, "uas", True) is False and self.env not in ("smac_team", None):
            raise ValueError(f"uas=False needs an env with a native action space to fall back to, which only SMAC's "
                             f"team env (smac_team) has; {self.env!r} acts in its unified space. Set uas=True "
                             "(cgi_coeff=0.0 for the ablation without CGI)")
        super().validate()

    def _team_pipelines(self, custom) -> bool:
        return bool(self.team_connectors) and custom is None and not self.is_multi_agent

    def build_env_to_module_connector(self, env=None, spaces=None, device=None) -> ConnectorV2:
        pipeline = super().build_env_to_module_connector(env=env, spaces=spaces, device=device)
        if (self.add_default_connectors_to_env_to_module_pipeline
                and self._team_pipelines(self._env_to_module_connector)):
            return _swap(pipeline, ENV_TO_MODULE_DEFAULTS, TeamEpisodesToModule())
        return pipeline

    def build_module_to_env_connector(self, env=None, spaces=None) -> ConnectorV2:
        pipeline = super().build_module_to_env_connector(env=env, spaces=spaces)
        if (self.add_default_connectors_to_module_to_env_pipeline
                and self._team_pipelines(self._module_to_env_connector)):
            return _swap(pipeline, MODULE_TO_ENV_DEFAULTS, TeamActionsToEnv())
        return pipeline

    def build_learner_connector(self, input_observation_space, input_action_space, device=None) -> ConnectorV2:
        pipeline = super().build_learner_connector(input_observation_space, input_action_space, device=device)
        if (self.add_default_connectors_to_learner_pipeline and self._team_pipelines(self._learner_connector)
                and self.episodes_to_numpy):
            return _swap(pipeline, LEARNER_DEFAULTS, TeamEpisodesToTrainBatch())
        return pipeline
