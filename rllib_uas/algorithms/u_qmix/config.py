"""U-QMIX's configuration: an AlgorithmConfig with PyMARL2's tuned QMIX defaults (docs/method.md).

Baselines by flags, on the same module and learner:
- U-QMIX:             uas=True,  cgi_coeff=0.1 (lambda_I), mixer="qmix"
- U-QMIX without CGI: uas=True,  cgi_coeff=0.0
- QMIX:               uas=False, cgi_coeff=0.0
- VDN:                mixer="vdn"
- parameter_sharing="group" on any of them: one agent network per action group
"""
from __future__ import annotations

from typing import Optional, Type

from ray.rllib.algorithms.algorithm_config import AlgorithmConfig, NotProvided
from ray.rllib.core.rl_module.rl_module import RLModuleSpec

from rllib_uas.algorithms.checks import check_qmix_settings
from rllib_uas.algorithms.team_config import TeamConnectorsMixin
from rllib_uas.callbacks import SMACMetricsCallback
from rllib_uas.env_runner import TeamEnvRunner, validate_unbiased_sampling

_FIELDS = ("uas", "cgi_coeff", "mixer", "mixing_embed_dim", "hypernet_embed", "fc_hidden", "gru_hidden",
           "use_agent_id", "use_last_action", "use_group_id", "parameter_sharing", "double_q", "td_lambda", "optimizer",
           "batch_size_episodes", "buffer_size_episodes", "episodes_per_iteration", "updates_per_iteration",
           "learning_starts_episodes", "target_update_interval_episodes", "target_update_tau",
           "epsilon_start", "epsilon_finish", "epsilon_anneal_steps", "buffer_size_mb", "checkpoint_buffer")


class UQMIXConfig(TeamConnectorsMixin, AlgorithmConfig):
    """Typed U-QMIX settings; see the module docstring for the baselines."""

    def __init__(self, algo_class: Optional[Type] = None):
        from rllib_uas.algorithms.u_qmix.algorithm import UQMIX

        super().__init__(algo_class=algo_class or UQMIX)
        # PyMARL2's tuned QMIX
        self.lr = 1e-3
        self.gamma = 0.99
        self.grad_clip = 10.0
        self.grad_clip_by = "global_norm"
        self.optimizer = "adam"
        self.batch_size_episodes = 128
        self.buffer_size_episodes = 5000
        self.buffer_size_mb = None       # a cap in MB as well (oldest episodes go first); None: episodes only
        self.checkpoint_buffer = True    # False: checkpoints hold weights and counters, not the replay buffer
        self.episodes_per_iteration = 8
        self.updates_per_iteration = 1
        self.learning_starts_episodes = 128
        self.target_update_interval_episodes = 200
        self.target_update_tau = None
        self.epsilon_start = 1.0
        self.epsilon_finish = 0.05
        self.epsilon_anneal_steps = 100_000
        self.td_lambda = 0.6
        self.double_q = True
        self.mixer = "qmix"
        self.mixing_embed_dim = 32
        self.hypernet_embed = 64
        self.fc_hidden = 64
        self.gru_hidden = 64
        self.use_agent_id = True
        self.use_last_action = True
        self.use_group_id = False
        self.parameter_sharing = "global"   # "group": one agent network per action group
        # UAS / CGI
        self.uas = True
        self.cgi_coeff = 0.1
        # the team view, vectorized in each env runner (PyMARL2's batch_size_run 8). Sampled by
        # timesteps, rollout_fragment_length steps per sub-env and call; unfinished battles continue
        # in the next call and are stitched into whole episodes (docs/sampling.md)
        self.env = "smac_team"
        self.env_config = {"map_name": "3m"}
        self.num_envs_per_env_runner = 8
        self.gym_env_vectorize_mode = "vector_entry_point"
        self.env_runner_cls = TeamEnvRunner
        self.batch_mode = "truncate_episodes"
        self.rollout_fragment_length = 8
        self.callbacks_class = SMACMetricsCallback
        self.evaluation_config = {"explore": False}
        self.evaluation_duration = 32
        self.evaluation_duration_unit = "episodes"

    def training(self, **kwargs) -> "UQMIXConfig":
        ours = {k: kwargs.pop(k) for k in list(kwargs) if k in _FIELDS}
        super().training(**kwargs)
        for k, v in ours.items():
            if v is not NotProvided:
                setattr(self, k, v)
        return self

    def get_default_rl_module_spec(self) -> RLModuleSpec:
        from rllib_uas.modules.team_q import TeamQModule

        return RLModuleSpec(module_class=TeamQModule, model_config=dict(
            fc_hidden=self.fc_hidden, gru_hidden=self.gru_hidden, use_agent_id=self.use_agent_id,
            use_last_action=self.use_last_action, use_group_id=self.use_group_id,
            parameter_sharing=self.parameter_sharing, cgi=self.cgi_coeff > 0,
            mixer=self.mixer, mixing_embed_dim=self.mixing_embed_dim, hypernet_embed=self.hypernet_embed,
            epsilon_start=self.epsilon_start, epsilon_finish=self.epsilon_finish,
            epsilon_anneal_steps=self.epsilon_anneal_steps, max_seq_len=400))

    def get_default_learner_class(self):
        from rllib_uas.algorithms.u_qmix.learner import UQMIXTorchLearner

        return UQMIXTorchLearner

    def validate(self) -> None:
        check_qmix_settings(self)
        validate_unbiased_sampling(self)
        if self.env in ("smac_team", None) and isinstance(self.env_config, dict):
            have = self.env_config.get("uas", self.uas)
            if have != self.uas:
                raise ValueError(f"env_config uas={have!r} contradicts the algorithm's uas={self.uas!r}; "
                                 "remove it from env_config")
            self.env_config["uas"] = self.uas
        from rllib_uas.envs.registry import register_envs

        register_envs()
        super().validate()
