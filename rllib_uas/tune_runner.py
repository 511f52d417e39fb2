"""Running parsed experiments through Ray Tune: stops, checkpoints, resume, W&B, a summary table."""

from __future__ import annotations

import math
import os
import signal
from pathlib import Path
from typing import Any, Dict, List, Optional

from ray.tune import Callback

from rllib_uas.experiment import Experiment
from rllib_uas.result_path import metric_at

OUR_ALGORITHMS = ("UMAPPO", "UQMIX")


def configure_wandb_env(storage_path: str) -> str:
    """W&B runs offline unless an API key is configured; must happen before ray.init (workers inherit)."""
    has_key = (
        bool(os.environ.get("WANDB_API_KEY"))
        or Path("~/.netrc").expanduser().exists()
        and "api.wandb.ai" in Path("~/.netrc").expanduser().read_text(errors="ignore")
    )
    if not has_key:
        os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("WANDB_DIR", storage_path)
    os.environ.setdefault("WANDB_SILENT", "true")
    return os.environ.get("WANDB_MODE", "online")


def metric_for(exp: Experiment) -> str:
    """SMAC's win rate where the env reports battles, the mean episode return elsewhere."""
    from rllib_uas.envs.registry import ENV_NAMES

    smac = exp.algo_class.__name__ in OUR_ALGORITHMS and getattr(exp.config, "env", None) in ENV_NAMES
    return "env_runners/win_rate" if smac else "env_runners/episode_return_mean"


def scheduler_for(spec: Optional[Dict[str, Any]], metric: str):
    if not spec:
        return None
    from ray.tune.schedulers import ASHAScheduler

    spec = dict(spec)
    kind = spec.pop("type", "asha")
    if kind != "asha":
        raise ValueError(f"scheduler type {kind!r} is not supported; use 'asha'")
    return ASHAScheduler(metric=metric, mode="max", **spec)


EXIT_INTERRUPTED = 130  # the shell's code for a run ended by SIGINT


class InterruptSeen(Callback):
    """Notes a Ctrl-C during `Tuner.fit`. Tune catches the first SIGINT itself, ends the run gracefully
    and returns normally; its handler is installed before the callbacks' `setup`, so this wraps it."""

    def __init__(self):
        self.seen = False

    def setup(self, **info) -> None:
        try:
            tune_handler = signal.getsignal(signal.SIGINT)
        except ValueError:
            return

        def note_then_tune(sig, frame):
            self.seen = True
            if callable(tune_handler):
                tune_handler(sig, frame)

        try:
            signal.signal(signal.SIGINT, note_then_tune)
        except ValueError:  # not the main thread: Tune's handler stays, the flag is not set
            pass


def run_experiments(
    experiments: List[Experiment],
    *,
    storage_path: str,
    stop_timesteps: Optional[int] = None,
    stop_iters: Optional[int] = None,
    checkpoint_freq: Optional[int] = None,
    resume: bool = False,
    ray_address: Optional[str] = None,
    num_cpus: Optional[int] = None,
    wandb_project: Optional[str] = None,
    verbose: int = 0,
) -> int:
    import ray
    from ray import tune

    from rllib_uas.envs.registry import register_class_path, register_envs
    from rllib_uas.fit_resources import fit_trial
    from rllib_uas.local_ray import ray_for_run
    from rllib_uas.progress import ProgressLine

    storage_path = str(Path(storage_path).expanduser().resolve())
    if wandb_project:
        mode = configure_wandb_env(storage_path)
        print(f"W&B: project {wandb_project!r}, mode {mode}")
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    # Tune's experiment state (which checkpoint each trial reached) is saved every second instead of
    # every >= 10 s, so a killed driver resumes from its last checkpoint, not from scratch
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "1")
    # an own local Ray unless an address is given; stopped without Ray's exit-hook waits (local_ray.py)
    with ray_for_run(
        ray_address,
        num_cpus=num_cpus,
        include_dashboard=False,
        log_to_driver=verbose > 0,
        logging_level="WARNING" if verbose == 0 else "INFO",
    ) as own_ray:
        if own_ray and experiments:  # a cluster may autoscale: only our own Ray's resources are what a trial gets
            seen = ray.cluster_resources()
            for exp in experiments:
                notice = fit_trial(exp, cpus=seen.get("CPU", 0.0), gpus=seen.get("GPU", 0.0))
                if notice:
                    exp.notices.append(notice)
        register_envs()
        for exp in experiments:  # RLlib's env runners do not import a 'module.Class' env themselves
            register_class_path(exp.config.env)
        failures: List[str] = []  # each failed trial's error line
        for exp in experiments:
            for notice in exp.notices:
                print(f"notice: {notice}")
            stop = dict(exp.stop)
            if stop_timesteps is not None:
                stop["num_env_steps_sampled_lifetime"] = stop_timesteps
            if stop_iters is not None:
                stop["training_iteration"] = stop_iters
            cost = _search_cost(exp, stop)
            if cost:
                print(cost)
            metric = metric_for(exp)
            interrupted = InterruptSeen()
            callbacks: list = [ProgressLine(stop=stop, searched=exp.searched_keys), interrupted]
            if wandb_project:
                from ray.air.integrations.wandb import WandbLoggerCallback

                callbacks.append(
                    WandbLoggerCallback(
                        project=wandb_project,
                        group=exp.name,
                        log_config=False,
                        excludes=["config", "perf", "fault_tolerance", "timers"],
                    )
                )
            run_config = tune.RunConfig(
                name=exp.name,
                storage_path=storage_path,
                stop=stop,
                callbacks=callbacks,
                verbose=verbose,
                checkpoint_config=tune.CheckpointConfig(
                    checkpoint_frequency=checkpoint_freq if checkpoint_freq is not None else exp.checkpoint_frequency,
                    checkpoint_at_end=exp.checkpoint_at_end,
                    num_to_keep=exp.num_to_keep,
                ),
                failure_config=tune.FailureConfig(max_failures=0),
            )
            exp_path = os.path.join(storage_path, exp.name)
            if resume:
                if not tune.Tuner.can_restore(exp_path):
                    raise FileNotFoundError(f"nothing to resume at {exp_path}: run without --resume first")
                tuner = tune.Tuner.restore(
                    exp_path,
                    trainable=exp.algo_class,
                    resume_unfinished=True,
                    resume_errored=True,
                    param_space=exp.config,
                )
            else:
                tuner = tune.Tuner(
                    exp.algo_class,
                    param_space=exp.config,
                    run_config=run_config,
                    tune_config=tune.TuneConfig(
                        num_samples=exp.num_samples, scheduler=scheduler_for(exp.scheduler, metric)
                    ),
                )
            results = tuner.fit()
            failures += print_summary(exp, results, metric)
            if interrupted.seen:
                # Tune ends the loop on the first Ctrl-C and saves the experiment's state: say how to go on
                print(f"interrupted; resume with: rllib train file {exp.source} --resume")
                return EXIT_INTERRUPTED
        if wandb_project and os.environ.get("WANDB_MODE") == "offline":
            runs = Path(os.environ.get("WANDB_DIR", storage_path)) / "wandb"
            print(f"W&B runs were written offline under {runs}; upload them with: wandb sync {runs}/offline-run-*")
        if not failures:
            return 0
        # a loss that stopped being finite is the run's input (its learning rate, its env's numbers), and
        # its line says what to change: the CLI's code for bad input; anything else failed the run
        from rllib_uas.algorithms.team_learner import NON_FINITE_LOSS

        return 2 if all(NON_FINITE_LOSS in line for line in failures) else 1


def _search_cost(exp: Experiment, stop: Dict[str, Any]) -> Optional[str]:
    """The estimate of `search_cost` for this experiment on the Ray it runs on."""
    import ray

    from rllib_uas.fit_resources import first_variant, trial_resources
    from rllib_uas.search_cost import search_cost

    need = trial_resources(exp.algo_class, first_variant(exp.config)).get("CPU", 1.0)
    return search_cost(
        exp.algo_class.__name__,
        exp.num_trials,
        stop,
        cpus_per_trial=need,
        cpus=ray.available_resources().get("CPU", need),
        early_stopping=bool(exp.scheduler),
    )


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


RUNNER_START_HINT = (
    "an env runner failed to start and RLlib dropped its error: rerun with -v to see it in the Ray "
    "workers' logs, or with num_env_runners=0 to raise it in the trial"
)


def print_summary(exp: Experiment, results, metric: str) -> List[str]:
    """A table of trials (searched params, env steps, metric) and the best checkpoint; returns the failed
    trials' error lines."""
    rows, errors, per_trial = [], [], []
    searched = sorted(exp.searched_keys)
    for r in results:
        if r.error:
            # the error's last line is the exception itself (its first is Ray's "The actor died ...")
            text = str(r.error)
            lines = [ln.strip() for ln in text.splitlines() if ln.strip()] or [type(r.error).__name__]
            line = lines[-1][:300]
            if line.startswith("IndexError") and "get_spaces" in text:
                # RLlib dropped an env runner that failed to start (our algorithms name its error:
                # algorithms/runner_start.py; RLlib's own do not)
                line += f" ({RUNNER_START_HINT})"
            errors.append(line)
            print(f"trial {r.path} failed: {line}")
            continue
        m = r.metrics or {}
        value = metric_at(m, metric)
        raw = {k: _lookup(r.config or {}, k) for k in searched}
        per_trial.append((raw, float(value)))
        params = [_short(raw[k]) for k in searched]
        ckpt = r.checkpoint.path if r.checkpoint else "-"
        rows.append(
            params + [f"{int(m.get('num_env_steps_sampled_lifetime', 0)):,}", f"{float(value):.3f}", ckpt, float(value)]
        )
    header = searched + ["env steps", metric, "checkpoint"]
    if rows:
        widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
        from rllib_uas.search_summary import SEED_KEYS, format_table, group_by_value

        print(f"\nSummary of {exp.name}:")
        print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
        # best first by the number itself; trials without a finite result last
        for row in sorted(rows, key=lambda r: (not math.isfinite(r[-1]), -r[-1] if math.isfinite(r[-1]) else 0)):
            print("  ".join(c.ljust(w) for c, w in zip(row[:-1], widths)))
        by = [k for k in searched if k not in SEED_KEYS]
        if by and len(per_trial) > len({tuple(t[0][k] for k in by) for t in per_trial}):  # seeds to pool
            print(f"\nPer searched value, over seeds ({exp.name}):")
            for line in format_table(group_by_value(per_trial, by), metric):
                print(line)
        best = results.get_best_result(metric=metric, mode="max", filter_nan_and_inf=False)
        if best is not None and best.checkpoint:
            print(f"best checkpoint ({metric}): {best.checkpoint.path}")
    return errors


def _lookup(config: Dict[str, Any], dotted: str):
    node: Any = config
    for part in dotted.split("."):
        node = node.get(part, "?") if isinstance(node, dict) else getattr(node, part, "?")
    return node
