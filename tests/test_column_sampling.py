"""Timestep sampling by columns returns what RLlib's loop returns, and is used only where it may be.

tests/test_connectors.py compares the team runner (our pieces, this loop) with RLlib's defaults and
loop episode for episode. Here: that the team runner does take this loop, that a seeded run gives
the same chunks, metrics and callbacks as RLlib's loop on the same runner code (exploring and
greedy, across fragment boundaries, episodes ending mid-call), and when it steps aside.
"""

import numpy as np
import pytest
import torch
import tree
from ray.rllib.callbacks.callbacks import RLlibCallback

import rllib_uas.env_runner as env_runner_module
from rllib_uas import column_sampling
from rllib_uas.algorithms.u_mappo import UMAPPOConfig
from rllib_uas.algorithms.u_qmix import UQMIXConfig
from rllib_uas.callbacks import SMACMetricsCallback
from rllib_uas.env_runner import TeamEnvRunner
from rllib_uas.envs.registry import register_envs

MAP = "3m1m_vs_4m"  # two action groups and a healer; battles of 20-60 steps end inside each call


class EpisodeLog(SMACMetricsCallback):
    """Records each episode callback: (which, env index, episode id, its length then)."""

    log = []

    def on_episode_start(self, *, episode, env_index, **kwargs):
        EpisodeLog.log.append(("start", env_index, episode.id_, len(episode)))

    def on_episode_end(self, *, episode, env_index, **kwargs):
        EpisodeLog.log.append(("end", env_index, episode.id_, len(episode)))
        super().on_episode_end(episode=episode, env_index=env_index, **kwargs)


class StepCallback(RLlibCallback):
    def on_episode_step(self, **kwargs):
        pass


def _runner(cls, callbacks=EpisodeLog):
    register_envs()
    cfg = (
        cls()
        .environment(env_config={"map_name": MAP})
        .env_runners(num_env_runners=0, num_envs_per_env_runner=4)
        .callbacks(callbacks)
        .debugging(seed=5)
    )
    return TeamEnvRunner(config=cfg)


def _play(cls, columns: bool, explore: bool, monkeypatch):
    """Three fragments of one runner (RLlib keeps a runner to exploring or to greedy acting: switching
    mid-episode leaves the extra outputs uneven); the chunks, metrics and callback log."""
    if not columns:
        monkeypatch.setattr(env_runner_module, "column_sampling_refusal", lambda runner, random_actions: "off")
    used = []
    real = column_sampling.sample_by_columns
    monkeypatch.setattr(env_runner_module, "sample_by_columns", lambda *a, **k: used.append(1) or real(*a, **k))
    runner = _runner(cls)
    EpisodeLog.log = []
    torch.manual_seed(0)
    chunks = [runner.sample(num_timesteps=n, explore=explore) for n in (150, 150, 90)]
    metrics = runner.get_metrics()
    runner.stop()
    assert bool(used) == columns
    return chunks, metrics, [(w, i, n) for w, i, _, n in EpisodeLog.log], EpisodeLog.log


def _same(a, b, where):
    fa, fb = dict(tree.flatten_with_path(a)), dict(tree.flatten_with_path(b))
    assert fa.keys() == fb.keys(), where
    for k in fa:
        x, y = np.asarray(fa[k]), np.asarray(fb[k])
        assert x.dtype == y.dtype and x.shape == y.shape, (where, k, x.dtype, y.dtype, x.shape, y.shape)
        np.testing.assert_array_equal(x, y, err_msg=f"{where} {k}")


@pytest.mark.parametrize("cls, explore", [(UMAPPOConfig, True), (UQMIXConfig, True), (UMAPPOConfig, False)])
def test_columns_sample_what_rllibs_loop_samples(cls, explore, monkeypatch):
    fast, fast_metrics, fast_log, fast_raw = _play(cls, True, explore, monkeypatch)
    monkeypatch.undo()
    slow, slow_metrics, slow_log, _ = _play(cls, False, explore, monkeypatch)
    assert [len(c) for c in fast] == [len(c) for c in slow]
    ids = {}
    for call, (xs, ys) in enumerate(zip(fast, slow)):
        for i, (x, y) in enumerate(zip(xs, ys)):
            where = f"call {call} chunk {i}"
            # the same battle keeps one id across its chunks in both runs
            assert ids.setdefault(x.id_, y.id_) == y.id_, where
            assert (x.t_started, x.t, x.is_terminated, x.is_truncated, x.is_numpy) == (
                y.t_started,
                y.t,
                y.is_terminated,
                y.is_truncated,
                y.is_numpy,
            ), where
            for name in ("observations", "infos", "actions", "rewards"):
                bx, by = getattr(x, name), getattr(y, name)
                assert (bx.lookback, bx.finalized) == (by.lookback, by.finalized), (where, name)
                _same(bx.data, by.data, f"{where} {name}")
            assert x.extra_model_outputs.keys() == y.extra_model_outputs.keys(), where
            for k, bx in x.extra_model_outputs.items():
                by = y.extra_model_outputs[k]
                assert (bx.lookback, bx.finalized) == (by.lookback, by.finalized), (where, k)
                _same(bx.data, by.data, f"{where} {k}")
            assert x.get_duration_s() >= 0
    assert sum(x.is_done for c in fast for x in c) >= 4  # battles ended inside the calls
    # the same callbacks on the same envs, with the episodes as long; ended episodes are whole
    assert fast_log == slow_log and any(w == "end" for w, _, _ in fast_log)
    keys = ("win_rate", "team_return_mean", "battle_length_mean", "episode_len_mean", "episode_return_mean")
    keys += ("num_env_steps_sampled_lifetime", "num_episodes_lifetime", "episode_len_max", "episode_return_min")
    for key in keys:
        assert fast_metrics[key].peek() == pytest.approx(slow_metrics[key].peek()), key
    # on_episode_end saw the finished episode, numpy, under the id its chunks had
    ended = {i for w, _, i, _ in fast_raw if w == "end"}
    assert ended <= {x.id_ for c in fast for x in c}


def test_the_loop_steps_aside_where_it_cannot_keep_rllibs_semantics(monkeypatch):
    runner = _runner(UMAPPOConfig)
    assert column_sampling.column_sampling_refusal(runner, False) is None
    assert column_sampling.column_sampling_refusal(runner, True) == "random actions"
    runner.episodes_to_numpy = False
    assert column_sampling.column_sampling_refusal(runner, False) == "episodes_to_numpy is off"
    runner.stop()
    runner = _runner(UMAPPOConfig, callbacks=StepCallback)
    assert column_sampling.column_sampling_refusal(runner, False) == "a callback needs on_episode_step"
    calls = []
    monkeypatch.setattr(env_runner_module, "sample_by_columns", lambda *a, **k: calls.append(1))
    assert runner.sample(num_timesteps=40, explore=True) and not calls  # RLlib's loop sampled
    runner.stop()
