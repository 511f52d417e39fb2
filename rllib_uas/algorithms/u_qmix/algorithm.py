"""U-QMIX's training loop: sample whole episodes, replay them, update, sync weights.

The episode buffer lives on the driver (the Algorithm) and is saved in checkpoints: RLlib's
new-stack Algorithm state does not include replay buffers, so get_state/set_state add it.
"""
from __future__ import annotations

import tree
from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch
from ray.rllib.utils.metrics import (ENV_RUNNER_RESULTS, ENV_RUNNER_SAMPLING_TIMER, LEARNER_RESULTS,
                                     LEARNER_UPDATE_TIMER, NUM_ENV_STEPS_SAMPLED_LIFETIME, SYNCH_WORKER_WEIGHTS_TIMER,
                                     TIMERS)

from rllib_uas.algorithms.u_qmix.config import UQMIXConfig
from rllib_uas.algorithms.u_qmix.episode_buffer import EpisodeBuffer
from rllib_uas.algorithms.u_qmix.learner import NUM_EPISODES_SAMPLED_LIFETIME

EPISODE_BUFFER = "episode_buffer"


class UQMIX(Algorithm):
    @classmethod
    def get_default_config(cls) -> UQMIXConfig:
        return UQMIXConfig()

    def setup(self, config) -> None:
        super().setup(config)
        self.episode_buffer = EpisodeBuffer(self.config.buffer_size_episodes, seed=self.config.seed)
        self._episodes_sampled = 0
        self._env_steps_sampled = 0

    def _sample_episodes(self):
        runners = self.env_runner_group.num_remote_workers()
        per_runner = max(1, -(-self.config.episodes_per_iteration // max(runners, 1)))
        sampled = self.env_runner_group.foreach_env_runner(
            lambda r: (r.sample(num_episodes=per_runner), r.get_metrics()),
            local_env_runner=runners <= 0)
        return tree.flatten([s[0] for s in sampled]), [s[1] for s in sampled]

    def training_step(self) -> None:
        with self.metrics.log_time((TIMERS, ENV_RUNNER_SAMPLING_TIMER)):
            episodes, runner_metrics = self._sample_episodes()
        self.metrics.aggregate(runner_metrics, key=ENV_RUNNER_RESULTS)
        self.episode_buffer.add(episodes)
        self._episodes_sampled += len(episodes)
        self._env_steps_sampled += sum(len(e) for e in episodes)
        self.metrics.log_value(NUM_ENV_STEPS_SAMPLED_LIFETIME, sum(len(e) for e in episodes), reduce="lifetime_sum")
        self.metrics.log_value("episode_buffer_size", len(self.episode_buffer), window=1)

        cfg = self.config
        if len(self.episode_buffer) >= max(cfg.learning_starts_episodes, 1):
            with self.metrics.log_time((TIMERS, LEARNER_UPDATE_TIMER)):
                for _ in range(cfg.updates_per_iteration):
                    sample = self.episode_buffer.sample(cfg.batch_size_episodes)
                    steps = int(sample["filled"].sum())
                    batch = MultiAgentBatch({"default_policy": SampleBatch(sample)}, env_steps=steps)
                    results = self.learner_group.update(
                        batch=batch,
                        timesteps={NUM_ENV_STEPS_SAMPLED_LIFETIME: self._env_steps_sampled,
                                   NUM_EPISODES_SAMPLED_LIFETIME: self._episodes_sampled})
                    self.metrics.aggregate(results, key=LEARNER_RESULTS)
            with self.metrics.log_time((TIMERS, SYNCH_WORKER_WEIGHTS_TIMER)):
                self.env_runner_group.sync_weights(from_worker_or_learner_group=self.learner_group,
                                                   inference_only=True)

    # ------------------------------------------------------------------ checkpoints with the buffer
    def get_state(self, components=None, *, not_components=None, **kwargs):
        state = super().get_state(components, not_components=not_components, **kwargs)
        if self._check_component(EPISODE_BUFFER, components, not_components):
            state[EPISODE_BUFFER] = {**self.episode_buffer.get_state(), "episodes_sampled": self._episodes_sampled,
                                     "env_steps_sampled": self._env_steps_sampled}
        return state

    def set_state(self, state) -> None:
        super().set_state(state)
        if EPISODE_BUFFER in state:
            buf = dict(state[EPISODE_BUFFER])
            self._episodes_sampled = buf.pop("episodes_sampled", 0)
            self._env_steps_sampled = buf.pop("env_steps_sampled", 0)
            self.episode_buffer.set_state(buf)
