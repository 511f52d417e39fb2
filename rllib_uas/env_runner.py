"""The team EnvRunner: RLlib's SingleAgentEnvRunner with unbiased whole-episode sampling.

Stock `sample(num_episodes=k)` resets every sub-env at each call, stops at the first k episodes to
finish and throws the running ones away: short battles are over-represented and time-outs almost
never appear (`docs/sampling.md` has the measurements). It also reseeds the env with the configured
seed at every call. Here `sample(num_episodes=k)` plays ceil(k / num_envs) *rounds*: every sub-env
is reset and plays exactly one episode per round, as PyMARL2's parallel runner and its test runs do.
A sub-env whose episode ended is held (not stepped, not reset) until the round is over; an env
without `hold()` (not a `TeamVectorEnv`) falls back to RLlib's sampling, with a warning.

`sample(num_timesteps=...)` samples as RLlib does: unfinished episodes continue across calls as
chunks with the same `id_` (U-QMIX stitches them, `algorithms/u_qmix/stitching.py`). With the team
env and connectors it runs `rllib_uas.column_sampling`'s loop, which returns the same episodes
without RLlib's per-env work at every step; otherwise RLlib's own. The env is seeded
once, at the runner's first reset; later resets continue its random stream.
"""

from __future__ import annotations

import logging
import math
from typing import List, Optional

import numpy as np
from ray.rllib.core.columns import Columns
from ray.rllib.env.env_runner import ENV_STEP_FAILURE
from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner
from ray.rllib.env.single_agent_episode import SingleAgentEpisode
from ray.rllib.utils.annotations import override
from ray.rllib.utils.metrics import (
    ENV_TO_MODULE_CONNECTOR,
    MODULE_TO_ENV_CONNECTOR,
    RLMODULE_INFERENCE_TIMER,
    WEIGHTS_SEQ_NO,
)
from ray.rllib.utils.spaces.space_utils import unbatch

from rllib_uas.column_sampling import column_sampling_refusal, sample_by_columns

logger = logging.getLogger(__name__)


class TeamEnvRunner(SingleAgentEnvRunner):
    """Episodes by rounds of one episode per sub-env; timesteps as RLlib samples them."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._fresh_after_rounds = False  # rounds left the sub-envs mid-round
        self._warned_no_hold = False

    @override(SingleAgentEnvRunner)
    def _sample(
        self,
        *,
        num_timesteps: Optional[int] = None,
        num_episodes: Optional[int] = None,
        explore: bool,
        random_actions: bool = False,
        force_reset: bool = False,
    ) -> List[SingleAgentEpisode]:
        if num_episodes is None:
            if self._fresh_after_rounds:
                # the rounds left the sub-envs mid-round: start timestep sampling from fresh battles
                force_reset, self._fresh_after_rounds = True, False
            if column_sampling_refusal(self, random_actions) is None:
                chunks = sample_by_columns(self, num_timesteps, explore, force_reset)
            else:
                chunks = super()._sample(
                    num_timesteps=num_timesteps, explore=explore, random_actions=random_actions, force_reset=force_reset
                )
            # RLlib moves this count (exploration schedules read it) only when the Algorithm syncs at
            # the end of an iteration; several calls per iteration must not replay the same `t`s
            self.num_env_steps_sampled_lifetime += sum(len(c) for c in chunks) * (self.config.num_env_runners or 1)
            return chunks
        if not hasattr(self.env.unwrapped, "hold"):
            if not self._warned_no_hold:
                logger.warning(
                    "%s has no hold(): evaluation rounds need it to keep a finished sub-env idle; "
                    "falling back to RLlib's first-%d-to-finish episodes (biased towards short ones)",
                    type(self.env.unwrapped).__name__,
                    num_episodes,
                )
                self._warned_no_hold = True
            return super()._sample(num_episodes=num_episodes, explore=explore, random_actions=random_actions)
        episodes: List[SingleAgentEpisode] = []
        for _ in range(math.ceil(num_episodes / self.num_envs)):
            episodes += self._sample_round(explore, random_actions)
        self._fresh_after_rounds = True
        return episodes

    def _sample_round(self, explore: bool, random_actions: bool) -> List[SingleAgentEpisode]:
        """Reset every sub-env and play each for exactly one episode; returns the finished episodes."""
        # Seeds only on the runner's first reset (RLlib passes the seed while _needs_initial_reset).
        self._reset_envs_and_episodes(explore)
        hold = self.env.unwrapped.hold
        finished = np.zeros(self.num_envs, dtype=bool)
        done_episodes: List[SingleAgentEpisode] = []
        ts = 0
        while not finished.all():
            if random_actions:
                to_env = {Columns.ACTIONS: self.env.action_space.sample()}
            else:
                to_module, self._cached_to_module = self._cached_to_module, None
                with self.metrics.log_time(RLMODULE_INFERENCE_TIMER):
                    if explore:
                        runners = self.config.num_env_runners or 1
                        t = (self.num_env_steps_sampled_lifetime // runners + ts) * runners
                        to_env = self.module.forward_exploration(to_module, t=t)
                    else:
                        to_env = self.module.forward_inference(to_module)
                to_env = self._module_to_env(
                    rl_module=self.module,
                    batch=to_env,
                    episodes=self._ongoing_episodes,
                    explore=explore,
                    shared_data=self._shared_data,
                    metrics=self.metrics,
                    metrics_prefix_key=(MODULE_TO_ENV_CONNECTOR,),
                )
            actions = to_env.pop(Columns.ACTIONS)
            actions_for_env = to_env.pop(Columns.ACTIONS_FOR_ENV, actions)
            results = self._try_env_step(actions_for_env)
            if results == ENV_STEP_FAILURE:  # the env was recreated: replay the whole round
                return self._sample_round(explore, random_actions)
            observations, rewards, terminateds, truncateds, infos = results
            observations, actions = unbatch(observations), unbatch(actions)
            for i in np.flatnonzero(~finished):
                extra = {k: v[i] for k, v in to_env.items()}
                extra[WEIGHTS_SEQ_NO] = self._weights_seq_no
                self._ongoing_episodes[i].add_env_step(
                    observation=observations[i],
                    action=actions[i],
                    reward=rewards[i],
                    infos=infos[i],
                    terminated=terminateds[i],
                    truncated=truncateds[i],
                    extra_model_outputs=extra,
                )
                ts += 1
            if self.module is not None:
                self._cached_to_module = self._env_to_module(
                    episodes=self._ongoing_episodes,
                    batch={},
                    explore=explore,
                    rl_module=self.module,
                    shared_data=self._shared_data,
                    metrics=self.metrics,
                    metrics_prefix_key=(ENV_TO_MODULE_CONNECTOR,),
                    **{
                        Columns.OBS: observations,
                        Columns.ACTIONS: actions,
                        Columns.REWARDS: rewards,
                        Columns.INFOS: infos,
                        Columns.TERMINATEDS: terminateds,
                        Columns.TRUNCATEDS: truncateds,
                    },
                )
            for i in np.flatnonzero(~finished):
                self._make_on_episode_callback("on_episode_step", i, self._ongoing_episodes)
                if self._ongoing_episodes[i].is_done:
                    self._make_on_episode_callback("on_episode_end", i, self._ongoing_episodes)
                    done_episodes.append(self._ongoing_episodes[i])
                    finished[i] = True
            if finished.any():
                hold(finished)
        if self.episodes_to_numpy:  # only now: numpy episodes no longer go through the connectors
            done_episodes = [e.to_numpy() for e in done_episodes]
        self._done_episodes_for_metrics.extend(done_episodes)
        self._log_env_steps(metric=self._metrics_num_env_steps_sampled, num_steps=ts)
        self._increase_sampled_metrics(ts, len(done_episodes))
        return done_episodes


def validate_unbiased_sampling(config) -> None:
    """Reject settings under which collected or evaluated episodes would be length-biased (the battles
    per runner are checked with the other settings, `rllib_uas.settings.check_sampling_settings`)."""
    cls = config.env_runner_cls
    if cls is not None and not (isinstance(cls, type) and issubclass(cls, TeamEnvRunner)):
        raise ValueError(
            f"env_runner_cls={cls!r} is not a rllib_uas.env_runner.TeamEnvRunner: RLlib's stock runner "
            "keeps the first episodes to finish (length-biased). Subclass TeamEnvRunner or leave "
            "env_runner_cls unset"
        )
    if config.evaluation_interval and config.evaluation_duration_unit != "episodes":
        raise ValueError(
            f"evaluation_duration_unit={config.evaluation_duration_unit!r}: evaluating a fixed number "
            "of timesteps counts only the battles that happen to finish (short ones); set "
            "evaluation_duration_unit='episodes'"
        )
    if config.evaluation_interval and config.evaluation_duration == "auto":
        raise ValueError(
            "evaluation_duration='auto' evaluates by timesteps (length-biased); set "
            "evaluation_duration to a number of episodes, e.g. 32"
        )
