"""One compact line per training iteration instead of RLlib's raw result dicts."""
from __future__ import annotations

import math
import sys
import time
from typing import Any, Dict, Mapping

from ray.tune import Callback


def _get(result: Mapping[str, Any], path: str, default=float("nan")):
    node: Any = result
    for part in path.split("/"):
        if not isinstance(node, Mapping) or part not in node:
            return default
        node = node[part]
    return node


def format_progress(trial_name: str, result: Mapping[str, Any], steps_per_s: float) -> str:
    learner = _get(result, "learners/default_policy", {}) or {}
    loss = learner.get("total_loss", learner.get("td_loss", learner.get("policy_loss", float("nan"))))
    ret = _get(result, "env_runners/episode_return_mean")
    parts = [f"{trial_name}", f"iter {int(_get(result, 'training_iteration', 0)):>4}",
             f"steps {int(_get(result, 'num_env_steps_sampled_lifetime', 0)):>9,}",
             f"win {float(_get(result, 'env_runners/win_rate')):.2f}",
             f"return {float(_get(result, 'env_runners/team_return_mean', ret)):.2f}",
             f"loss {float(loss):.4f}"]
    if "cgi_loss" in learner:
        parts.append(f"cgi {float(learner['cgi_loss']):.4f}")
    eval_win = _get(result, "evaluation/env_runners/win_rate", None)
    if eval_win is not None and math.isfinite(float(eval_win)):  # only iterations that evaluated
        parts.append(f"eval win {float(eval_win):.2f}")
    parts.append(f"{steps_per_s:,.0f} steps/s")
    return " | ".join(parts)


class ProgressLine(Callback):
    def __init__(self, stream=sys.stdout):
        self.stream = stream
        self._last: Dict[str, tuple] = {}

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        now, steps = time.time(), float(_get(result, "num_env_steps_sampled_lifetime", 0))
        t0, s0 = self._last.get(trial.trial_id, (now - float(_get(result, "time_this_iter_s", 1.0)), 0.0))
        self._last[trial.trial_id] = (now, steps)
        rate = (steps - s0) / max(now - t0, 1e-9)
        print(format_progress(str(trial), result, rate), file=self.stream, flush=True)
