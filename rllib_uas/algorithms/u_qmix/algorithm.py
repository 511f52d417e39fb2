"""U-QMIX: its config (PyMARL2's tuned QMIX defaults, docs/method.md) and its training loop (sample by
timesteps, stitch whole episodes, replay them, update, sync weights), in one file as RLlib keeps PPO's.

Baselines by flags, on the same module and learner:
- U-QMIX:             uas=True,  cgi_coeff=0.1 (lambda_I), mixer="qmix"
- U-QMIX without CGI: uas=True,  cgi_coeff=0.0
- QMIX:               uas=False, cgi_coeff=0.0
- VDN:                mixer="vdn"
- parameter_sharing="group" on any of them: one agent network per action group

The episode buffer lives on the driver (the Algorithm) and is saved in checkpoints unless
`checkpoint_buffer=False`: RLlib's new-stack Algorithm state does not include replay buffers, so
get_state/set_state add it. At start the buffer's largest possible size is checked against the
memory Ray sees (`check_buffer_fits`).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple, Type

import tree
from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig, NotProvided
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch
from ray.rllib.utils.annotations import override
from ray.rllib.utils.metrics import (
    ENV_RUNNER_RESULTS,
    ENV_RUNNER_SAMPLING_TIMER,
    LEARNER_RESULTS,
    LEARNER_UPDATE_TIMER,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
    SYNCH_WORKER_WEIGHTS_TIMER,
    TIMERS,
)

from rllib_uas.algorithms.runner_start import RunnerStartErrors
from rllib_uas.algorithms.team_config import TeamConfigMixin, set_provided
from rllib_uas.algorithms.u_qmix.episode_buffer import EpisodeBuffer, stored_bytes_per_step
from rllib_uas.algorithms.u_qmix.learner import NUM_EPISODES_SAMPLED_LIFETIME
from rllib_uas.algorithms.u_qmix.stitching import EpisodeStitcher
from rllib_uas.settings import QMIX_SETTINGS, apply_defaults
from rllib_uas.team_obs import STORED_OBS_KEYS

EPISODE_BUFFER = "episode_buffer"


class UQMIXConfig(TeamConfigMixin, AlgorithmConfig):
    """AlgorithmConfig with PyMARL2's tuned QMIX defaults, the settings both team algorithms share (`uas`,
    `cgi_coeff` = lambda_I, `use_agent_id`, `use_last_action`, `use_group_id`, `parameter_sharing`,
    `fc_hidden`, `gru_hidden`: `TeamConfigMixin`) and U-QMIX's own (`rllib_uas.settings.QMIX_SETTINGS`):
    the mixer, the TD target, the replay schedule and buffer, epsilon."""

    ALGORITHM = "qmix"

    def __init__(self, algo_class: Optional[Type] = None):
        super().__init__(algo_class=algo_class or UQMIX)
        # PyMARL2's tuned QMIX
        self.lr = 1e-3
        self.gamma = 0.99
        self.grad_clip = 10.0
        self.grad_clip_by = "global_norm"
        apply_defaults(self, QMIX_SETTINGS)
        # sampled by timesteps, rollout_fragment_length steps per sub-env and call (PyMARL2's batch_size_run
        # 8 is num_envs_per_env_runner); unfinished battles continue in the next call and are stitched
        # into whole episodes (docs/sampling.md)
        self.batch_mode = "truncate_episodes"
        self.rollout_fragment_length = 8

    @override(AlgorithmConfig)
    def training(
        self,
        *,
        mixer: Any = NotProvided,
        mixing_embed_dim: Any = NotProvided,
        hypernet_embed: Any = NotProvided,
        double_q: Any = NotProvided,
        td_lambda: Any = NotProvided,
        optimizer: Any = NotProvided,
        batch_size_episodes: Any = NotProvided,
        buffer_size_episodes: Any = NotProvided,
        buffer_size_mb: Any = NotProvided,
        checkpoint_buffer: Any = NotProvided,
        episodes_per_iteration: Any = NotProvided,
        updates_per_iteration: Any = NotProvided,
        learning_starts_episodes: Any = NotProvided,
        target_update_interval_episodes: Any = NotProvided,
        target_update_tau: Any = NotProvided,
        epsilon_start: Any = NotProvided,
        epsilon_finish: Any = NotProvided,
        epsilon_anneal_steps: Any = NotProvided,
        **kwargs,
    ) -> "UQMIXConfig":
        """U-QMIX's own settings; the shared ones (uas, cgi_coeff, ...) and RLlib's go on to the bases."""
        set_provided(
            self,
            mixer=mixer,
            mixing_embed_dim=mixing_embed_dim,
            hypernet_embed=hypernet_embed,
            double_q=double_q,
            td_lambda=td_lambda,
            optimizer=optimizer,
            batch_size_episodes=batch_size_episodes,
            buffer_size_episodes=buffer_size_episodes,
            buffer_size_mb=buffer_size_mb,
            checkpoint_buffer=checkpoint_buffer,
            episodes_per_iteration=episodes_per_iteration,
            updates_per_iteration=updates_per_iteration,
            learning_starts_episodes=learning_starts_episodes,
            target_update_interval_episodes=target_update_interval_episodes,
            target_update_tau=target_update_tau,
            epsilon_start=epsilon_start,
            epsilon_finish=epsilon_finish,
            epsilon_anneal_steps=epsilon_anneal_steps,
        )
        return super().training(**kwargs)

    @override(AlgorithmConfig)
    def get_default_rl_module_spec(self) -> RLModuleSpec:
        from rllib_uas.modules.team_q import TeamQModule

        return RLModuleSpec(module_class=TeamQModule, model_config=self.model_config_for_module)

    @override(AlgorithmConfig)
    def get_default_learner_class(self):
        from rllib_uas.algorithms.u_qmix.learner import UQMIXTorchLearner

        return UQMIXTorchLearner


def train_batch(sample: Dict[str, Any]) -> MultiAgentBatch:
    """A padded replay sample (`EpisodeBuffer.sample`) as the learner's batch, in the module's one layout:
    the team observation under `Columns.OBS` as when acting, the rest (actions, rewards, terminated,
    filled) beside it."""
    rows = {
        Columns.OBS: {k: sample[k] for k in STORED_OBS_KEYS if k in sample},
        **{k: v for k, v in sample.items() if k not in STORED_OBS_KEYS},
    }
    return MultiAgentBatch({DEFAULT_MODULE_ID: SampleBatch(rows)}, env_steps=int(sample["filled"].sum()))


def _available_memory() -> Optional[float]:
    """Bytes of memory Ray sees on the cluster (its 'memory' resource), or None without Ray."""
    import ray

    return ray.available_resources().get("memory") if ray.is_initialized() else None


def episode_limit(config) -> Optional[int]:
    """The longest episode of the configured SMAC map (embedded backend), or None when unknown."""
    env_config = config.env_config if isinstance(config.env_config, dict) else {}
    if config.env not in ("smac_team", None) or env_config.get("backend", "embedded") != "embedded":
        return None
    from rllib_uas.envs.engine import get_battle_spec

    return get_battle_spec(env_config.get("map_name", "3m")).limit


def check_buffer_fits(config, observation_space, memory: Optional[float]) -> None:
    """Refuse a replay buffer whose largest possible size exceeds the memory Ray sees."""
    limit = episode_limit(config)
    if memory is None or limit is None:
        return
    per_step = stored_bytes_per_step(observation_space)
    worst = config.buffer_size_episodes * (limit + 1) * per_step
    if config.buffer_size_mb is not None:
        worst = min(worst, config.buffer_size_mb * 2**20)
    if worst > memory:
        fit = int(memory * 0.5 / 2**20)
        raise ValueError(
            f"U-QMIX's replay buffer can grow to {worst / 2**30:.1f} GiB ({config.buffer_size_episodes} episodes x "
            f"up to {limit} steps x {per_step:,} bytes per step), more than the {memory / 2**30:.1f} GiB of memory "
            f"Ray sees; set buffer_size_mb (for example {fit}) or lower buffer_size_episodes"
        )


class UQMIX(RunnerStartErrors, Algorithm):
    @classmethod
    @override(Algorithm)
    def get_default_config(cls) -> UQMIXConfig:
        return UQMIXConfig()

    @override(Algorithm)
    def setup(self, config) -> None:
        super().setup(config)
        cfg = self.config
        self.episode_buffer = EpisodeBuffer(cfg.buffer_size_episodes, seed=cfg.seed, capacity_mb=cfg.buffer_size_mb)
        if self.spaces and DEFAULT_MODULE_ID in self.spaces:  # the spaces Algorithm.setup collected
            check_buffer_fits(cfg, self.spaces[DEFAULT_MODULE_ID][0], _available_memory())
        self.stitcher = EpisodeStitcher()
        self._episodes_sampled = 0
        self._env_steps_sampled = 0
        self._updates_owed = 0.0

    def _sample_episodes(self) -> Tuple[List[Dict[str, Any]], int]:
        """Sample by timesteps until `episodes_per_iteration` more episodes have finished.

        Every simulated step is kept and counted: battles still running stay in the runners (and
        their chunks in the stitcher) for the next call.
        """
        cfg = self.config
        local = self.env_runner_group.num_remote_workers() <= 0
        steps_per_env = cfg.rollout_fragment_length
        finished: List[Dict[str, Any]] = []
        steps = 0
        while len(finished) < cfg.episodes_per_iteration:
            sampled = self.env_runner_group.foreach_env_runner(
                lambda r: (r.sample(num_timesteps=steps_per_env * r.num_envs, explore=True), r.get_metrics()),
                local_env_runner=local,
            )
            self.metrics.aggregate([s[1] for s in sampled], key=ENV_RUNNER_RESULTS)
            done, n = self.stitcher.add(tree.flatten([s[0] for s in sampled]))
            finished += done
            steps += n
            if not sampled:
                break
        return finished, steps

    @override(Algorithm)
    def training_step(self) -> None:
        cfg = self.config
        with self.metrics.log_time((TIMERS, ENV_RUNNER_SAMPLING_TIMER)):
            episodes, steps = self._sample_episodes()
        self.episode_buffer.add(episodes)
        self._episodes_sampled += len(episodes)
        self._env_steps_sampled += steps
        self.metrics.log_value(NUM_ENV_STEPS_SAMPLED_LIFETIME, steps, reduce="lifetime_sum")
        self.metrics.log_value(NUM_EPISODES_SAMPLED_LIFETIME, len(episodes), reduce="lifetime_sum")
        self.metrics.log_value("episode_buffer_size", len(self.episode_buffer), window=1)
        self.metrics.log_value("episode_buffer_mb", self.episode_buffer.nbytes / 2**20, window=1)
        self.metrics.log_value("num_episodes_dropped_lifetime", self.stitcher.num_dropped_episodes, window=1)

        if len(self.episode_buffer) < max(cfg.learning_starts_episodes, 1):
            return
        # PyMARL2's replay ratio: updates_per_iteration updates per episodes_per_iteration new episodes
        self._updates_owed += cfg.updates_per_iteration * len(episodes) / cfg.episodes_per_iteration
        num_updates, self._updates_owed = int(self._updates_owed), self._updates_owed % 1.0
        if num_updates == 0:
            return
        with self.metrics.log_time((TIMERS, LEARNER_UPDATE_TIMER)):
            for _ in range(num_updates):
                results = self.learner_group.update(
                    batch=train_batch(self.episode_buffer.sample(cfg.batch_size_episodes)),
                    timesteps={
                        NUM_ENV_STEPS_SAMPLED_LIFETIME: self._env_steps_sampled,
                        NUM_EPISODES_SAMPLED_LIFETIME: self._episodes_sampled,
                    },
                )
                self.metrics.aggregate(results, key=LEARNER_RESULTS)
        with self.metrics.log_time((TIMERS, SYNCH_WORKER_WEIGHTS_TIMER)):
            self.env_runner_group.sync_weights(from_worker_or_learner_group=self.learner_group, inference_only=True)

    # ------------------------------------------------------------------ checkpoints with the buffer
    @override(Algorithm)
    def get_state(self, components=None, *, not_components=None, **kwargs):
        state = super().get_state(components, not_components=not_components, **kwargs)
        if self._check_component(EPISODE_BUFFER, components, not_components):
            # the counters always (a resumed run goes on counting); the episodes unless turned off
            counters = {
                "episodes_sampled": self._episodes_sampled,
                "env_steps_sampled": self._env_steps_sampled,
                "updates_owed": self._updates_owed,
            }
            buffer = self.episode_buffer.get_state() if self.config.checkpoint_buffer else {}
            state[EPISODE_BUFFER] = {**buffer, **counters}
        return state

    @override(Algorithm)
    def set_state(self, state) -> None:
        super().set_state(state)
        if EPISODE_BUFFER in state:
            buf = dict(state[EPISODE_BUFFER])
            self._episodes_sampled = buf.pop("episodes_sampled", 0)
            self._env_steps_sampled = buf.pop("env_steps_sampled", 0)
            self._updates_owed = buf.pop("updates_owed", 0.0)
            if "episodes" in buf:  # saved with checkpoint_buffer=False: the buffer refills
                self.episode_buffer.set_state(buf)
