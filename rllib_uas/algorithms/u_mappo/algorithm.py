"""U-MAPPO: RLlib's PPO and PPOConfig with MAPPO's SMAC defaults and the UAS/CGI switches, in one
file as RLlib keeps PPO's.

Baselines by flags, on the same module and learner:
- U-MAPPO:            uas=True,  cgi_coeff=0.1 (lambda_I)
- U-MAPPO without CGI: uas=True,  cgi_coeff=0.0
- MAPPO:              uas=False, cgi_coeff=0.0 (SMAC's native action space, global sharing)
- parameter_sharing="group" on any of them: one agent network per action group
"""

from __future__ import annotations

from typing import Any, Optional, Type

from ray.rllib.algorithms.algorithm_config import NotProvided
from ray.rllib.algorithms.ppo import PPO, PPOConfig
from ray.rllib.core import COMPONENT_LEARNER, COMPONENT_RL_MODULE
from ray.rllib.core.learner.learner import ALL_MODULES
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.utils.annotations import override
from ray.rllib.utils.metrics import (
    ENV_RUNNER_RESULTS,
    ENV_RUNNER_SAMPLING_TIMER,
    LEARNER_RESULTS,
    LEARNER_UPDATE_TIMER,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
    NUM_MODULE_STEPS_TRAINED_LIFETIME,
    SYNCH_WORKER_WEIGHTS_TIMER,
    TIMERS,
)

from rllib_uas.algorithms import overlapped_sampling as overlapped
from rllib_uas.algorithms.runner_start import RunnerStartErrors
from rllib_uas.algorithms.team_config import TeamConfigMixin, set_provided
from rllib_uas.modules.team_ppo import TeamPPOModule
from rllib_uas.settings import MAPPO_SETTINGS, apply_defaults


class UMAPPOConfig(TeamConfigMixin, PPOConfig):
    """PPOConfig with MAPPO's SMAC defaults, the settings both team algorithms share (`uas`, `cgi_coeff`
    = lambda_I, `use_agent_id`, `use_last_action`, `use_group_id`, `parameter_sharing`, `fc_hidden`,
    `gru_hidden`: `TeamConfigMixin`) and U-MAPPO's own (`rllib_uas.settings.MAPPO_SETTINGS`):
    `state_type` ("EP" env state / "AS" MAPPO's agent-specific, per-agent values), `value_norm`,
    `critic_hidden`, `recurrent_critic`, `max_seq_len`, and MAPPO's details: `value_loss` ("huber" /
    "mse"), `huber_delta`, `orthogonal_init`, `adam_eps`, `separate_optimizers`; and `overlap_sampling`
    (remote runners sample the next batch during the update: `algorithms/overlapped_sampling.py`)."""

    ALGORITHM = "mappo"

    def __init__(self, algo_class: Optional[Type] = None):
        super().__init__(algo_class=algo_class or UMAPPO)
        # MAPPO's SMAC settings (docs/method.md); RLlib's PPO defaults differ
        self.lr = 5e-4
        self.gamma = 0.99
        self.lambda_ = 0.95
        self.clip_param = 0.2
        self.vf_clip_param = 0.2  # clip of the (normalized) value change, MAPPO style
        self.vf_loss_coeff = 1.0
        self.entropy_coeff = 0.01
        self.use_kl_loss = False
        self.kl_coeff = 0.0
        self.grad_clip = 10.0
        self.grad_clip_by = "global_norm"
        self.num_epochs = 5
        self.train_batch_size_per_learner = 3200
        self.minibatch_size = 3200  # one minibatch, as MAPPO on SMAC
        apply_defaults(self, MAPPO_SETTINGS)

    @override(PPOConfig)
    def training(
        self,
        *,
        state_type: Any = NotProvided,
        value_norm: Any = NotProvided,
        critic_hidden: Any = NotProvided,
        recurrent_critic: Any = NotProvided,
        max_seq_len: Any = NotProvided,
        value_loss: Any = NotProvided,
        huber_delta: Any = NotProvided,
        orthogonal_init: Any = NotProvided,
        adam_eps: Any = NotProvided,
        separate_optimizers: Any = NotProvided,
        overlap_sampling: Any = NotProvided,
        **kwargs,
    ) -> "UMAPPOConfig":
        """U-MAPPO's own settings; the shared ones (uas, cgi_coeff, ...) and PPO's go on to the bases."""
        set_provided(
            self,
            state_type=state_type,
            value_norm=value_norm,
            critic_hidden=critic_hidden,
            recurrent_critic=recurrent_critic,
            max_seq_len=max_seq_len,
            value_loss=value_loss,
            huber_delta=huber_delta,
            orthogonal_init=orthogonal_init,
            adam_eps=adam_eps,
            separate_optimizers=separate_optimizers,
            overlap_sampling=overlap_sampling,
        )
        return super().training(**kwargs)

    @override(PPOConfig)
    def get_default_rl_module_spec(self) -> RLModuleSpec:
        return RLModuleSpec(module_class=TeamPPOModule, model_config=self.model_config_for_module)

    @override(PPOConfig)
    def get_default_learner_class(self):
        from rllib_uas.algorithms.u_mappo.learner import UMAPPOTorchLearner

        return UMAPPOTorchLearner

    def env_switches(self) -> dict:
        return {**super().env_switches(), "agent_state": self.state_type == "AS"}

    @override(PPOConfig)
    def validate(self) -> None:
        super().validate()
        # overlapped sampling syncs the runners itself, while they are idle (RLlib's sync would block)
        self._dont_auto_sync_env_runner_states = bool(self.overlap_sampling)


class UMAPPO(RunnerStartErrors, PPO):
    """RLlib's PPO with the U-MAPPO module and learner (see UMAPPOConfig); with `overlap_sampling`,
    the runners collect the next batch during each update."""

    @classmethod
    @override(PPO)
    def get_default_config(cls) -> UMAPPOConfig:
        return UMAPPOConfig()

    @override(PPO)
    def training_step(self) -> None:
        if not self.config.overlap_sampling:
            return super().training_step()
        group = self.env_runner_group
        with self.metrics.log_time((TIMERS, ENV_RUNNER_SAMPLING_TIMER)):  # the wait, not the sampling
            if not overlapped.in_flight(group):  # the first iteration, or after a restore
                overlapped.start(group)
            batch = overlapped.collect(group, timeout_s=self.config.sample_timeout_s)
            self.metrics.aggregate(batch.metrics, key=ENV_RUNNER_RESULTS)
        if not batch.episodes:  # every runner failed or timed out: nothing to learn from (as PPO)
            overlapped.start(group)
            return
        sampled = self.metrics.peek((ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME), default=0)
        with self.metrics.log_time((TIMERS, SYNCH_WORKER_WEIGHTS_TIMER)):
            weights = self.learner_group.get_state(
                components=COMPONENT_LEARNER + "/" + COMPONENT_RL_MODULE, inference_only=True
            )[COMPONENT_LEARNER]
            group.sync_env_runner_states(
                config=self.config,
                connector_states=batch.connector_states,
                rl_module_state=weights,
                env_runner_indices_to_update=batch.runner_ids,
                env_steps_sampled=sampled,
                env_to_module=self.env_to_module_connector,
                module_to_env=self.module_to_env_connector,
            )
        overlapped.start(group)  # queued behind the weights on each runner
        with self.metrics.log_time((TIMERS, LEARNER_UPDATE_TIMER)):
            learner_results = self.learner_group.update(
                episodes=batch.episodes,
                timesteps={
                    NUM_ENV_STEPS_SAMPLED_LIFETIME: sampled,
                    NUM_MODULE_STEPS_TRAINED_LIFETIME: self.metrics.peek(
                        (LEARNER_RESULTS, ALL_MODULES, NUM_MODULE_STEPS_TRAINED_LIFETIME), default=0
                    ),
                },
                num_epochs=self.config.num_epochs,
                minibatch_size=self.config.minibatch_size,
                shuffle_batch_per_epoch=self.config.shuffle_batch_per_epoch,
            )
            self.metrics.aggregate(learner_results, key=LEARNER_RESULTS)

    @override(PPO)
    def set_state(self, state) -> None:
        # a batch still in flight was played by the weights being replaced
        if self.config.overlap_sampling and self.env_runner_group is not None:
            overlapped.discard(self.env_runner_group)
        super().set_state(state)
