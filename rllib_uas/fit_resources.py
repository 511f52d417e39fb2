"""Does one trial fit the machine? If not, fit its runner counts to it, or refuse before Tune waits forever.

A trial asks Ray for the driver's CPUs (its main process, or its local learner), one bundle per env
runner and per evaluation runner, and the learners' CPUs and GPUs (RLlib's `default_resource_request`).
Tune queues a trial that can never be placed and waits without end; this check runs first, on the
resources of the Ray instance the CLI started itself.
"""

from __future__ import annotations

import math
from typing import Any, Dict, Optional

from rllib_uas.experiment import Experiment, ExperimentError


def first_variant(config: Any) -> Any:
    """A copy of the config with every search replaced by its first (grid) or a sampled (domain) value."""
    cfg = config.copy(copy_frozen=False)
    for key, value in list(vars(cfg).items()):
        if isinstance(value, dict) and "grid_search" in value:
            setattr(cfg, key, value["grid_search"][0])
        elif hasattr(value, "sample") and type(value).__module__.startswith("ray.tune"):
            setattr(cfg, key, value.sample())
    return cfg


def trial_resources(algo_class: Any, config: Any) -> Dict[str, float]:
    """Total resources one trial of `config` asks for, e.g. {"CPU": 3.0}."""
    return dict(algo_class.default_resource_request(config).required_resources)


def fit_trial(exp: Experiment, cpus: float, gpus: float) -> Optional[str]:
    """Lower exp's runner counts until one trial fits `cpus`; returns a one-line notice when it changed
    them, None when it fits as it is. Raises ExperimentError (what to set) when it cannot fit."""
    where = f"{exp.source}: experiment '{exp.name}'"
    cfg = first_variant(exp.config)
    need = trial_resources(exp.algo_class, cfg)
    if need.get("GPU", 0.0) > gpus:
        raise ExperimentError(
            f"{where}: a trial needs {need['GPU']:g} GPUs and Ray sees {gpus:g}; set "
            "num_gpus_per_learner: 0 (the learner then runs on CPUs)"
        )
    if need.get("CPU", 0.0) <= cpus:
        return None
    runners, evaluators = cfg.num_env_runners, cfg.evaluation_num_env_runners
    cfg.evaluation(evaluation_num_env_runners=0)
    cfg.env_runners(num_env_runners=0)
    base = trial_resources(exp.algo_class, cfg).get("CPU", 0.0)
    if base > cpus:
        raise ExperimentError(
            f"{where}: a trial needs {base:g} CPUs even without env runners (the driver or its learners: "
            f"num_cpus_for_main_process, num_learners x num_cpus_per_learner) and Ray sees {cpus:g}; lower "
            "num_cpus_per_learner, or give Ray more CPUs with --num-cpus"
        )
    per_runner = max(float(exp.config.num_cpus_per_env_runner), 1e-9)
    fit_runners = min(runners, int(math.floor((cpus - base) / per_runner + 1e-9)))
    exp.config.evaluation(evaluation_num_env_runners=0)
    exp.config.env_runners(num_env_runners=fit_runners)
    return (
        f"{where}: a trial needs {need['CPU']:g} CPUs and Ray sees {cpus:g}; running with "
        f"num_env_runners={fit_runners} (was {runners}) and evaluation_num_env_runners=0 (was {evaluators}), "
        "so sampling and evaluation share the trial's process; set --num-cpus or these keys to choose"
    )
