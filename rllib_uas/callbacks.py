"""Battle metrics for RLlib: win rate, team return, dead allies/enemies, episode length.

They appear as `env_runners/win_rate` etc. in training results, and under `evaluation/env_runners/`
for the greedy evaluation runners.
"""

from __future__ import annotations

from typing import Any, Mapping

from ray.rllib.callbacks.callbacks import RLlibCallback
from ray.rllib.utils.annotations import override

WINDOW = 100  # episodes in the moving window, like pymarl's test_nepisode-sized windows


def _last_info(episode) -> Mapping[str, Any]:
    infos = episode.get_infos(-1)
    if isinstance(infos, Mapping) and "battle_won" not in infos and infos:
        # a MultiAgentEpisode: {agent_id: info}; every agent carries the same battle info
        infos = next(iter(infos.values()))
    return infos if isinstance(infos, Mapping) else {}


def _whole_episode(episode, env_runner) -> tuple:
    """(return, length) of the whole battle. Sampling by timesteps hands this callback the last
    chunk only; the runner keeps the earlier chunks of the same episode for its own metrics."""
    earlier = getattr(env_runner, "_ongoing_episodes_for_metrics", {}).get(episode.id_, [])
    team_return = episode.get_return() + sum(c.get_return() for c in earlier)
    length = episode.env_t if hasattr(episode, "env_t") else episode.t  # counted from the reset
    return team_return, length


class SMACMetricsCallback(RLlibCallback):
    @override(RLlibCallback)
    def on_episode_end(self, *, episode, metrics_logger=None, env_runner=None, **kwargs) -> None:
        if metrics_logger is None:
            return
        info = _last_info(episode)
        if "battle_won" not in info:
            return
        team_return, length = _whole_episode(episode, env_runner)
        if hasattr(episode, "agent_episodes"):  # per-agent env: every agent got the team reward
            team_return /= max(len(episode.agent_episodes), 1)
        metrics_logger.log_value("win_rate", float(info["battle_won"]), reduce="mean", window=WINDOW)
        metrics_logger.log_value("dead_allies_mean", float(info["dead_allies"]), reduce="mean", window=WINDOW)
        metrics_logger.log_value("dead_enemies_mean", float(info["dead_enemies"]), reduce="mean", window=WINDOW)
        metrics_logger.log_value("team_return_mean", float(team_return), reduce="mean", window=WINDOW)
        metrics_logger.log_value("battle_length_mean", float(length), reduce="mean", window=WINDOW)
