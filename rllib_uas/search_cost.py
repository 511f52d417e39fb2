"""What a search will cost, said before it starts: trials x env steps at the measured training speed.

The speeds are one trial's end-to-end env steps per second on MMM2 (10 agents), measured on the
project's reference machine (2 cores) and recorded in BENCHMARKS.md:
`python benchmarks/train_throughput.py --rows u_mappo,u_qmix --iters 5` on 2026-12-02. Smaller maps
train faster, larger ones slower; trials side by side are taken to share the cores evenly. The figure is a scale
for deciding, not a promise; each trial's progress line gives its own time left once it runs.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Optional

MEASURED_ENV_STEPS_PER_S = {"UMAPPO": 678.0, "UQMIX": 119.0}  # by algorithm class name
MEASURED_CORES = 2  # the trial had both cores (the learner updates on 2 threads)
STEPS_KEY = "num_env_steps_sampled_lifetime"


def _duration(seconds: float) -> str:
    hours, minutes = divmod(int(round(seconds / 60.0)), 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{max(minutes, 1)} min"


def search_cost(
    algo_name: str,
    num_trials: int,
    stop: Mapping[str, Any],
    cpus_per_trial: float,
    cpus: float,
    early_stopping: bool = False,
) -> Optional[str]:
    """One line for a search of `num_trials` trials, or None when there is nothing to estimate (a
    single trial, no env-step stop, or an algorithm without a measured speed)."""
    speed = MEASURED_ENV_STEPS_PER_S.get(algo_name)
    steps = stop.get(STEPS_KEY)
    if num_trials < 2 or speed is None or not isinstance(steps, (int, float)) or steps <= 0:
        return None
    at_once = max(1, min(num_trials, int(math.floor(cpus / max(cpus_per_trial, 1e-9) + 1e-9))))
    waves = math.ceil(num_trials / at_once)
    # trials running side by side share the cores: each gets cpus / at_once of the measured 2
    speed *= min(1.0, cpus / at_once / MEASURED_CORES)
    bound = "at most " if early_stopping else ""
    return (
        f"search: {num_trials} trials x {bound}{int(steps):,} env steps = {bound}{int(num_trials * steps):,} "
        f"env steps; {at_once} trial{'s' if at_once > 1 else ''} at a time on {cpus:g} CPUs "
        f"({cpus_per_trial:g} per trial), each at about {speed:,.0f} env steps/s (measured: "
        f"{MEASURED_ENV_STEPS_PER_S[algo_name]:,.0f} for one {algo_name} trial on MMM2 with 2 cores, "
        f"BENCHMARKS.md): {bound}about {_duration(waves * steps / speed)}"
    )
