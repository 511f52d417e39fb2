"""U-MAPPO's configuration: RLlib's PPOConfig with MAPPO's SMAC defaults and the UAS/CGI switches.

Baselines by flags, on the same module and learner:
- U-MAPPO:            uas=True,  cgi_coeff=0.1 (lambda_I)
- U-MAPPO without CGI: uas=True,  cgi_coeff=0.0
- MAPPO:              uas=False, cgi_coeff=0.0 (SMAC's native action space, global sharing)
- parameter_sharing="group" on any of them: one agent network per action group
"""
from __future__ import annotations

from typing import Any, Optional, Tuple, Type

from ray.rllib.algorithms.algorithm_config import NotProvided
from ray.rllib.algorithms.ppo import PPO, PPOConfig
from ray.rllib.core.rl_module.rl_module import RLModuleSpec

from rllib_uas.algorithms.checks import check_mappo_settings
from rllib_uas.algorithms.team_config import TeamConnectorsMixin
from rllib_uas.callbacks import SMACMetricsCallback
from rllib_uas.env_runner import TeamEnvRunner, validate_unbiased_sampling
from rllib_uas.modules.team_ppo import TeamPPOModule


class UMAPPOConfig(TeamConnectorsMixin, PPOConfig):
    """PPOConfig + `uas`, `cgi_coeff` (lambda_I), `use_agent_id`, `use_last_action`, `use_group_id`,
    `parameter_sharing` ("global": one agent network; "group": one per action group),
    `state_type` ("EP" env state / "AS" MAPPO's agent-specific, per-agent values), `value_norm`,
    `fc_hidden`, `gru_hidden`, `critic_hidden`, `max_seq_len`, and MAPPO's details: `value_loss`
    ("huber" / "mse"), `huber_delta`, `orthogonal_init`, `adam_eps`, `separate_optimizers`,
    `recurrent_critic`."""

    def __init__(self, algo_class: Optional[Type] = None):
        super().__init__(algo_class=algo_class or UMAPPO)
        # MAPPO's SMAC settings (docs/method.md); RLlib's PPO defaults differ
        self.lr = 5e-4
        self.gamma = 0.99
        self.lambda_ = 0.95
        self.clip_param = 0.2
        self.vf_clip_param = 0.2         # clip of the (normalized) value change, MAPPO style
        self.vf_loss_coeff = 1.0
        self.entropy_coeff = 0.01
        self.use_kl_loss = False
        self.kl_coeff = 0.0
        self.grad_clip = 10.0
        self.grad_clip_by = "global_norm"
        self.num_epochs = 5
        self.train_batch_size_per_learner = 3200
        self.minibatch_size = 3200       # one minibatch, as MAPPO on SMAC
        # ours
        self.uas = True
        self.cgi_coeff = 0.1
        self.use_agent_id = True
        self.use_last_action = True
        self.use_group_id = False
        self.parameter_sharing = "global"
        self.state_type = "EP"
        self.value_norm = True
        self.fc_hidden = 64
        self.gru_hidden = 64
        self.critic_hidden: Tuple[int, ...] = (64, 64)
        self.max_seq_len = 20
        # MAPPO's optimization details (marlbenchmark/on-policy, SMAC scripts)
        self.value_loss = "huber"        # Huber(delta) on normalized values; "mse": 0.5 * err^2
        self.huber_delta = 10.0
        self.orthogonal_init = True      # orthogonal weights, gain 0.01 on the policy output
        self.adam_eps = 1e-5
        self.separate_optimizers = True  # actor and critic: their own Adam, each clipped to grad_clip
        self.recurrent_critic = False    # True: fc -> GRU critic as rMAPPO's (docs/algorithms.md)
        # the team view, vectorized inside each env runner
        self.env = "smac_team"
        self.env_config = {"map_name": "3m"}
        self.num_envs_per_env_runner = 8
        self.gym_env_vectorize_mode = "vector_entry_point"
        self.env_runner_cls = TeamEnvRunner   # unbiased evaluation rounds; training samples timesteps as PPO
        self.callbacks_class = SMACMetricsCallback
        # evaluation runners act greedily (argmax of the masked policy)
        self.evaluation_config = {"explore": False}
        self.evaluation_duration = 32
        self.evaluation_duration_unit = "episodes"

    def training(self, *, uas: Any = NotProvided, cgi_coeff: Any = NotProvided, use_agent_id: Any = NotProvided,
                 use_last_action: Any = NotProvided, use_group_id: Any = NotProvided,
                 parameter_sharing: Any = NotProvided, state_type: Any = NotProvided,
                 value_norm: Any = NotProvided, fc_hidden: Any = NotProvided, gru_hidden: Any = NotProvided,
                 critic_hidden: Any = NotProvided, max_seq_len: Any = NotProvided, value_loss: Any = NotProvided,
                 huber_delta: Any = NotProvided, orthogonal_init: Any = NotProvided, adam_eps: Any = NotProvided,
                 separate_optimizers: Any = NotProvided, recurrent_critic: Any = NotProvided,
                 **kwargs) -> "UMAPPOConfig":
        super().training(**kwargs)
        for name, value in dict(uas=uas, cgi_coeff=cgi_coeff, use_agent_id=use_agent_id,
                                use_last_action=use_last_action, use_group_id=use_group_id,
                                parameter_sharing=parameter_sharing, state_type=state_type,
                                value_norm=value_norm, fc_hidden=fc_hidden, gru_hidden=gru_hidden,
                                critic_hidden=critic_hidden, max_seq_len=max_seq_len, value_loss=value_loss,
                                huber_delta=huber_delta, orthogonal_init=orthogonal_init, adam_eps=adam_eps,
                                separate_optimizers=separate_optimizers, recurrent_critic=recurrent_critic).items():
            if value is not NotProvided:
                setattr(self, name, value)
        return self

    @property
    def model_config_for_module(self) -> dict:
        return dict(fc_hidden=self.fc_hidden, gru_hidden=self.gru_hidden, critic_hidden=tuple(self.critic_hidden),
                    max_seq_len=self.max_seq_len, use_agent_id=self.use_agent_id,
                    use_last_action=self.use_last_action, use_group_id=self.use_group_id,
                    parameter_sharing=self.parameter_sharing, cgi=self.cgi_coeff > 0, state_type=self.state_type,
                    value_norm=self.value_norm, recurrent_critic=self.recurrent_critic,
                    orthogonal_init=self.orthogonal_init)

    def get_default_rl_module_spec(self) -> RLModuleSpec:
        return RLModuleSpec(module_class=TeamPPOModule, model_config=self.model_config_for_module)

    def get_default_learner_class(self):
        from rllib_uas.algorithms.u_mappo.learner import UMAPPOTorchLearner

        return UMAPPOTorchLearner

    def validate(self) -> None:
        check_mappo_settings(self)
        validate_unbiased_sampling(self)
        if self.env in ("smac_team", None) and isinstance(self.env_config, dict):
            # the env's action space and observations follow the algorithm's switches
            for key, want in (("uas", self.uas), ("agent_state", self.state_type == "AS")):
                have = self.env_config.get(key, want)
                if have != want:
                    raise ValueError(f"env_config {key}={have!r} contradicts the algorithm's setting ({want!r}); "
                                     f"remove it from env_config")
                self.env_config[key] = want
        from rllib_uas.envs.registry import register_envs

        register_envs()
        super().validate()


class UMAPPO(PPO):
    """RLlib's PPO with the U-MAPPO module and learner (see UMAPPOConfig)."""

    @classmethod
    def get_default_config(cls) -> UMAPPOConfig:
        return UMAPPOConfig()
