"""Learning curves from Tune run directories: mean and band (min..max) over seeds, per run or value.

The figure says what it shows: its title names the variants (from each trial's settings) and maps,
the axes are labelled in words, and `greedy=True` draws the greedy evaluation's win rate (dashed)
beside the training curve where the runs evaluated.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from rllib_uas.result_path import metric_at

X_KEY = "num_env_steps_sampled_lifetime"
X_LABEL = "environment steps (every simulated step)"
GREEDY_METRIC = "evaluation/env_runners/win_rate"
METRIC_LABELS = {
    "env_runners/win_rate": "win rate (training episodes)",
    GREEDY_METRIC: "win rate (greedy evaluation)",
    "env_runners/team_return_mean": "team return per episode",
    "env_runners/episode_return_mean": "episode return",
    "env_runners/dead_allies_mean": "allies dead per episode",
    "env_runners/dead_enemies_mean": "enemies dead per episode",
    "env_runners/battle_length_mean": "battle length (env steps)",
}
ALGORITHMS = {"UMAPPO": "mappo", "UQMIX": "qmix"}  # Tune trainable name -> Variant.algorithm


def metric_label(metric: str) -> str:
    return METRIC_LABELS.get(metric, metric)


def _trial_dirs(run_dir: Path) -> List[Path]:
    if (run_dir / "result.json").exists():
        return [run_dir]
    return sorted(p.parent for p in run_dir.rglob("result.json"))


def _read_curve(trial: Path, metric: str) -> Tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for line in (trial / "result.json").read_text().splitlines():
        if not line.strip():
            continue
        rec = json.loads(line)
        node = metric_at(rec, metric, None)
        if node is None or rec.get(X_KEY) is None:
            continue
        xs.append(float(rec[X_KEY]))
        ys.append(float(node))
    return np.asarray(xs), np.asarray(ys)


def _params(trial: Path) -> dict:
    path = trial / "params.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _param(trial: Path, key: str) -> str:
    node = _params(trial)
    for part in key.split("."):
        node = node.get(part, "?") if isinstance(node, dict) else "?"
    return str(node)


def describe_trial(trial: Path) -> Tuple[str, str]:
    """(variant name, map name) of a trial from its directory name and settings; '?' where unknown."""
    from rllib_uas.variants import variant_of

    params = _params(trial)
    trainable = trial.name.split("_")[0]
    algorithm = ALGORITHMS.get(trainable)
    name = variant_of(algorithm, params) if algorithm else trainable
    env_config = params.get("env_config") if isinstance(params.get("env_config"), dict) else {}
    return name, str(env_config.get("map_name", "?"))


def collect(run_dirs: Sequence[str], metric: str, group_by: Optional[str] = None) -> Dict[str, list]:
    """{label: [(x, y) per trial]}: one label per run dir, or per value of `group_by` inside them."""
    return _collect(run_dirs, metric, group_by)[0]


def _collect(run_dirs: Sequence[str], metric: str, group_by: Optional[str]):
    groups: Dict[str, list] = {}
    described = set()
    for rd in run_dirs:
        path = Path(rd)
        if not path.exists():
            raise FileNotFoundError(f"run directory {path} does not exist")
        trials = _trial_dirs(path)
        if not trials:
            raise FileNotFoundError(f"no Tune trial (result.json) under {path}")
        for t in trials:
            label = f"{path.name} {group_by}={_param(t, group_by)}" if group_by else path.name
            x, y = _read_curve(t, metric)
            if x.size:
                groups.setdefault(label, []).append((x, y))
                described.add(describe_trial(t))
    if not groups:
        raise ValueError(f"no results with metric {metric!r} in {list(run_dirs)}")
    if group_by and all(label.endswith(f" {group_by}=?") for label in groups):  # a typo would give one '?' curve
        raise ValueError(
            f"--group-by {group_by!r}: no trial's config has it; give a config key such as cgi_coeff, lr or "
            "seed, with dots for nested ones (env_config.map_name)"
        )
    return groups, described


def title_for(described) -> str:
    """'U-MAPPO, MAPPO on MMM2' from the trials' (variant, map) pairs."""
    variants = sorted({v for v, _ in described})
    maps = sorted({m for _, m in described})
    return f"{', '.join(variants)} on {', '.join(maps)}"


def _band(ax, curves, label: str, style: str, colour=None):
    grid = np.linspace(0, min(c[0].max() for c in curves), 100)
    ys = np.stack([np.interp(grid, x, y) for x, y in curves])
    (line,) = ax.plot(grid, ys.mean(0), style, label=label, color=colour)
    if len(curves) > 1:
        ax.fill_between(grid, ys.min(0), ys.max(0), alpha=0.2, color=line.get_color())
    return line.get_color()


def plot_runs(
    run_dirs: Sequence[str],
    out: str,
    metric: str = "env_runners/win_rate",
    group_by: Optional[str] = None,
    greedy: bool = False,
) -> Path:
    """Mean and min..max band over seeds per run (or per value of `group_by`); with `greedy`, the
    greedy evaluation's win rate as dashed lines of the same colours, where the runs evaluated."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups, described = _collect(run_dirs, metric, group_by)
    greedy_groups: Dict[str, list] = {}
    if greedy:
        try:
            greedy_groups = _collect(run_dirs, GREEDY_METRIC, group_by)[0]
        except ValueError:
            raise ValueError(
                f"--greedy: no greedy evaluation results ({GREEDY_METRIC}) in {list(run_dirs)}; "
                "train with evaluation_interval set to record them"
            ) from None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, curves in sorted(groups.items()):
        seeds = f"{len(curves)} seed{'s' if len(curves) > 1 else ''}"
        colour = _band(ax, curves, f"{label} ({seeds})", "-")
        if label in greedy_groups:
            _band(ax, greedy_groups[label], f"{label}, greedy evaluation", "--", colour)
    ylabel = metric_label(metric) + (" / greedy evaluation (dashed)" if greedy_groups else "")
    ax.set(xlabel=X_LABEL, ylabel=ylabel, title=title_for(described))
    if "win_rate" in metric:
        ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out_path = Path(out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=110)
    plt.close(fig)
    return out_path
