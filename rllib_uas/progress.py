"""One compact line per training iteration instead of RLlib's raw result dicts."""

from __future__ import annotations

import math
import sys
import time
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

from ray.tune import Callback

from rllib_uas.result_path import metric_at


def _clock(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


def format_progress(
    trial_name: str,
    result: Mapping[str, Any],
    steps_per_s: float,
    *,
    elapsed_s: Optional[float] = None,
    stop: Optional[Mapping[str, Any]] = None,
    warmup: Optional[Tuple[int, int]] = None,
) -> str:
    """One line: iteration, env steps, win rate, return, loss (or U-QMIX's buffer warm-up), CGI loss,
    greedy evaluation (only on iterations that evaluated), speed, elapsed time, and the share of the
    stop target reached with an estimate of the time left."""
    learner = metric_at(result, "learners/default_policy", {}) or {}
    loss = learner.get("total_loss", learner.get("td_loss", learner.get("policy_loss", float("nan"))))
    ret = metric_at(result, "env_runners/episode_return_mean")
    steps = int(metric_at(result, "num_env_steps_sampled_lifetime", 0))
    parts = [
        f"{trial_name}",
        f"iter {int(metric_at(result, 'training_iteration', 0)):>4}",
        f"steps {steps:>9,}",
        f"win {float(metric_at(result, 'env_runners/win_rate')):.2f}",
        f"return {float(metric_at(result, 'env_runners/team_return_mean', ret)):.2f}",
    ]
    warming = warmup is not None and not math.isfinite(float(loss))
    if warming:
        parts.append(f"warm-up {warmup[0]}/{warmup[1]} episodes")  # no update yet: no loss to show
    else:
        parts.append(f"loss {float(loss):.4f}")
    if "cgi_loss" in learner and not warming:
        parts.append(f"cgi {float(learner['cgi_loss']):.4f}")
    eval_win = metric_at(result, "evaluation/env_runners/win_rate", None)
    if eval_win is not None and math.isfinite(float(eval_win)):  # only iterations that evaluated
        parts.append(f"eval win {float(eval_win):.2f}")
    parts.append(f"{steps_per_s:,.0f} steps/s")
    if elapsed_s is not None:
        parts.append(f"elapsed {_clock(elapsed_s)}")
        share = _stop_share(result, stop or {})
        if share is not None and share > 0:
            parts.append(f"{min(share, 1.0):.0%} of stop, eta {_clock(elapsed_s * (1 - min(share, 1.0)) / share)}")
    return " | ".join(parts)


def _stop_share(result: Mapping[str, Any], stop: Mapping[str, Any]) -> Optional[float]:
    """How far the run is towards its step or iteration stop (the nearer of the two); None without one."""
    shares = [
        float(metric_at(result, key, 0)) / float(stop[key])
        for key in ("num_env_steps_sampled_lifetime", "training_iteration")
        if isinstance(stop.get(key), (int, float)) and stop[key] > 0
    ]
    return max(shares) if shares else None


def trial_label(trial: Any, searched: Sequence[str]) -> str:
    """A trial named by its searched values (`cgi_coeff=0.5 seed=1`), or by Tune's name without a search."""
    if not searched:
        return str(trial)
    values = []
    for key in searched:
        node: Any = getattr(trial, "config", {}) or {}
        for part in key.split("."):
            node = node.get(part, "?") if isinstance(node, Mapping) else "?"
        values.append(f"{key.split('.')[-1]}={node:.4g}" if isinstance(node, float) else f"{key.split('.')[-1]}={node}")
    return " ".join(values)


class ProgressLine(Callback):
    def __init__(self, stream=sys.stdout, stop: Optional[Mapping[str, Any]] = None, searched: Sequence[str] = ()):
        self.stream, self.stop, self.searched = stream, dict(stop or {}), list(searched)
        self._last: Dict[str, tuple] = {}
        self._start: Dict[str, float] = {}

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        now, steps = time.time(), float(metric_at(result, "num_env_steps_sampled_lifetime", 0))
        t0, s0 = self._last.get(trial.trial_id, (now - float(metric_at(result, "time_this_iter_s", 1.0)), 0.0))
        self._last[trial.trial_id] = (now, steps)
        start = self._start.setdefault(trial.trial_id, t0)
        rate = (steps - s0) / max(now - t0, 1e-9)
        cfg = getattr(trial, "config", {}) or {}
        warmup = None
        if "episode_buffer_size" in result and isinstance(cfg.get("learning_starts_episodes"), int):
            warmup = (int(result["episode_buffer_size"]), max(cfg["learning_starts_episodes"], 1))
        print(
            format_progress(
                trial_label(trial, self.searched), result, rate, elapsed_s=now - start, stop=self.stop, warmup=warmup
            ),
            file=self.stream,
            flush=True,
        )
