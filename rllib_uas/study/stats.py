"""The study's statistics, from the finished cells' CSVs, with rliable (Agarwal et al., 2021).

Per run (one seed of one variant on one map): the final greedy win rate (the evaluation at the
budget) and the area under the win-rate curve (trapezoid over env steps, divided by the budget, so
1.0 means winning every evaluation from step 0). Per variant: the interquartile mean (IQM) over
seeds with a 95% stratified-bootstrap interval; per pair of variants: the probability of
improvement P(X > Y) with its interval. All bootstrap draws use a fixed random state, so the page
regenerates identically from the same CSVs.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from rllib_uas.study.grid import parse_cell
from rllib_uas.study.run import read_manifest

REPS = 2000
SEED = 0
_trapezoid = getattr(np, "trapezoid", None) or np.trapz  # numpy < 2 names it trapz


@dataclass
class Run:
    map_name: str
    variant: str
    seed: int
    steps: np.ndarray  # [E] env steps at each evaluation
    win_rate: np.ndarray  # [E] greedy win rate
    budget: int
    commit: str

    @property
    def final(self) -> float:
        return float(self.win_rate[-1])

    @property
    def auc(self) -> float:
        x = np.minimum(self.steps, self.budget)
        return float(_trapezoid(self.win_rate, x) / self.budget)

    def on_grid(self, grid: np.ndarray) -> np.ndarray:
        """The curve at the given env steps (linear between evaluations)."""
        return np.interp(grid, self.steps, self.win_rate)


def load_runs(out: Path) -> List[Run]:
    """Every finished cell (a CSV with a manifest line); partial files are never read."""
    manifest = read_manifest(out)
    runs = []
    for path in sorted(out.glob("*.csv")):
        cell = parse_cell(path.stem)
        entry = manifest.get(path.stem)
        if cell is None or entry is None:
            continue
        rows = list(csv.DictReader(path.open()))
        steps = np.array([int(r["env_steps"]) for r in rows])
        win = np.array([float(r["eval_win_rate"]) for r in rows])
        runs.append(Run(cell.map_name, cell.variant, cell.seed, steps, win, int(entry["budget"]), entry["commit"]))
    return runs


def by_variant(runs: Sequence[Run], map_name: str) -> Dict[str, List[Run]]:
    out: Dict[str, List[Run]] = {}
    for r in sorted(runs, key=lambda r: r.seed):
        if r.map_name == map_name:
            out.setdefault(r.variant, []).append(r)
    return out


def _bootstrap(score_dict, func):
    """rliable's stratified bootstrap (percentile 95% intervals), reproducible: rliable 1.2 draws its
    resampling indices from numpy's global RNG (not the random state it hands arch), so each
    estimate seeds that RNG and restores it afterwards."""
    from rliable.library import StratifiedBootstrap

    point, interval = {}, {}
    saved = np.random.get_state()
    try:
        for key, scores in score_dict.items():
            args = scores if isinstance(scores, tuple) else (scores,)
            point[key] = func(*args)
            np.random.seed(SEED)
            bs = StratifiedBootstrap(*args, seed=np.random.default_rng(SEED))
            interval[key] = bs.conf_int(func, reps=REPS, size=0.95, method="percentile")
    finally:
        np.random.set_state(saved)
    return point, interval


def iqm_interval(scores: Dict[str, np.ndarray]) -> Dict[str, Tuple[float, float, float]]:
    """{variant: (IQM, low, high)} of per-run scores [runs]."""
    from rliable import metrics

    out = {}
    for k, v in scores.items():  # each variant its own draws: its interval is the same in every table
        point, interval = _bootstrap(
            {k: np.asarray(v, float)[:, None]},  # [runs, 1 task]
            lambda x: np.array([metrics.aggregate_iqm(x)]),
        )
        out[k] = (float(point[k][0]), float(interval[k][0, 0]), float(interval[k][1, 0]))
    return out


def probability_of_improvement(x: Sequence[float], y: Sequence[float]) -> Tuple[float, float, float]:
    """P(X > Y) (ties count half) over runs, with its 95% interval."""
    from rliable import metrics

    pair = {"x>y": (np.asarray(x, float)[:, None], np.asarray(y, float)[:, None])}
    point, interval = _bootstrap(pair, metrics.probability_of_improvement)
    low, high = np.ravel(interval["x>y"])
    return float(point["x>y"]), float(low), float(high)


def mean_band(runs: Sequence[Run], grid: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, low, high) [len(grid)] of the win-rate curves, 95% bootstrap band per point."""
    curves = np.stack([r.on_grid(grid) for r in runs])  # [runs, points]
    if len(runs) < 2:
        return curves[0], curves[0], curves[0]
    point, interval = _bootstrap({"c": curves}, lambda s: s.mean(axis=0))
    return point["c"], interval["c"][0], interval["c"][1]


def shared_seeds(a: Sequence[Run], b: Sequence[Run]) -> Tuple[List[Run], List[Run]]:
    """The runs of two variants on the seeds both have: comparisons use the same seeds."""
    common = {r.seed for r in a} & {r.seed for r in b}
    return [r for r in a if r.seed in common], [r for r in b if r.seed in common]


def variant_table(runs: Sequence[Run], map_name: str, order: Optional[Sequence[str]] = None) -> List[Dict]:
    """One row per variant on the map: seeds, budget, final and AUC as IQM [95% CI]."""
    groups = by_variant(runs, map_name)
    names = [v for v in (order or []) if v in groups] + [v for v in groups if v not in (order or [])]
    if not names:
        return []
    final = iqm_interval({v: [r.final for r in groups[v]] for v in names})
    auc = iqm_interval({v: [r.auc for r in groups[v]] for v in names})
    return [
        dict(variant=v, seeds=[r.seed for r in groups[v]], budget=groups[v][0].budget, final=final[v], auc=auc[v])
        for v in names
    ]
