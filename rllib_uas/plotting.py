"""Learning curves from Tune run directories: mean and band (min..max) over seeds, per run."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

X_KEY = "num_env_steps_sampled_lifetime"


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
        node = rec
        for part in metric.split("/"):
            node = node.get(part) if isinstance(node, dict) else None
        if node is None or rec.get(X_KEY) is None:
            continue
        xs.append(float(rec[X_KEY]))
        ys.append(float(node))
    return np.asarray(xs), np.asarray(ys)


def _param(trial: Path, key: str) -> str:
    params = trial / "params.json"
    if not params.exists():
        return "?"
    node = json.loads(params.read_text())
    for part in key.split("."):
        node = node.get(part, "?") if isinstance(node, dict) else "?"
    return str(node)


def collect(run_dirs: Sequence[str], metric: str, group_by: Optional[str] = None) -> Dict[str, list]:
    """{label: [(x, y) per trial]}: one label per run dir, or per value of `group_by` inside them."""
    groups: Dict[str, list] = {}
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
    if not groups:
        raise ValueError(f"no results with metric {metric!r} in {list(run_dirs)}")
    return groups


def plot_runs(run_dirs: Sequence[str], out: str, metric: str = "env_runners/win_rate",
              group_by: Optional[str] = None) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = collect(run_dirs, metric, group_by)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, curves in sorted(groups.items()):
        grid = np.linspace(0, min(c[0].max() for c in curves), 100)
        ys = np.stack([np.interp(grid, x, y) for x, y in curves])
        mean = ys.mean(0)
        ax.plot(grid, mean, label=f"{label} ({len(curves)} seed{'s' if len(curves) > 1 else ''})")
        if len(curves) > 1:
            ax.fill_between(grid, ys.min(0), ys.max(0), alpha=0.2)
    ax.set(xlabel="env steps", ylabel=metric)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out_path = Path(out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=110)
    plt.close(fig)
    return out_path
