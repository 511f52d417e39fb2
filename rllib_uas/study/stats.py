"""The study's statistics, from the finished cells' CSVs, with rliable (Agarwal et al., 2021).

Per run (one seed of one variant on one map), for each of two curves: the final value (the
evaluation at the budget) and the area under the curve (trapezoid over env steps, divided by the
budget: the curve's mean over the budget). The curves are the greedy win rate (AUC 1.0: every
evaluation won from step 0) and the greedy team return, SMAC's scaled reward, whose most is 20 for a
battle won without letting shields regenerate. Return counts damage and kills, so it still ranks
runs on a map where none wins. Per variant: the interquartile mean (IQM) over
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
# the curves a run has: greedy win rate, greedy team return (SMAC's scaled reward, at most 20)
METRICS = ("win", "return")
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
    returns: Optional[np.ndarray] = None  # [E] greedy team return
    # the final evaluation's battles, means over its episodes: enemies killed, allies dead, length
    final_battles: Optional[Dict[str, float]] = None

    def curve(self, metric: str = "win") -> np.ndarray:
        """[E] the run's curve of `metric` (one of METRICS)."""
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}; metrics: {', '.join(METRICS)}")
        curve = self.win_rate if metric == "win" else self.returns
        if curve is None:
            raise ValueError(f"run {self.map_name} {self.variant} seed {self.seed} has no {metric} curve")
        return curve

    def final_of(self, metric: str = "win") -> float:
        return float(self.curve(metric)[-1])

    def auc_of(self, metric: str = "win") -> float:
        x = np.minimum(self.steps, self.budget)
        return float(_trapezoid(self.curve(metric), x) / self.budget)

    @property
    def final(self) -> float:
        return self.final_of("win")

    @property
    def auc(self) -> float:
        return self.auc_of("win")

    def on_grid(self, grid: np.ndarray, metric: str = "win") -> np.ndarray:
        """The curve at the given env steps (linear between evaluations)."""
        return np.interp(grid, self.steps, self.curve(metric))


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
        ret = np.array([float(r["eval_return"]) for r in rows])
        budget, commit = int(entry["budget"]), entry["commit"]
        runs.append(Run(cell.map_name, cell.variant, cell.seed, steps, win, budget, commit, ret, _battles(rows[-1])))
    return runs


# the final evaluation's battle columns of a curve CSV, and what the page calls them
BATTLE_FIELDS = {"killed": "eval_dead_enemies", "lost": "eval_dead_allies", "length": "eval_battle_length"}


def _battles(row: Dict[str, str]) -> Optional[Dict[str, float]]:
    """One evaluation row's battle means; None where the CSV left them empty."""
    values = {k: row.get(field) or "" for k, field in BATTLE_FIELDS.items()}
    if not all(values.values()):
        return None
    return {k: float(v) for k, v in values.items()}


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


# rliable's two metrics, the same operations without scipy's per-call argument handling, which took
# about 1 ms of each of the bootstrap's 2,000 calls (the results page's test went from 24 s to 90 s
# when the return tables doubled the calls). tests/test_study.py holds both equal to rliable's, bit
# for bit, on random scores with ties.
def aggregate_iqm(scores: np.ndarray) -> float:
    """rliable.metrics.aggregate_iqm: scipy's trim_mean(scores, 0.25, axis=None), its partition and slice."""
    a = np.ravel(scores)
    low = int(0.25 * a.shape[0])
    high = a.shape[0] - low
    return np.mean(np.partition(a, (low, high - 1))[low:high])


def improvement_probability(scores_x: np.ndarray, scores_y: np.ndarray) -> float:
    """rliable.metrics.probability_of_improvement for one task ([runs, 1] each): the Mann-Whitney U
    of X over Y (ties count half) divided by the number of pairs; 0.5 for identical score columns."""
    x, y = scores_x[:, 0], scores_y[:, 0]
    if np.array_equal(x, y):
        return np.mean([0.5])
    u = np.count_nonzero(x[:, None] > y[None, :]) + 0.5 * np.count_nonzero(x[:, None] == y[None, :])
    return np.mean([u / (x.shape[0] * y.shape[0])])


def iqm_interval(scores: Dict[str, np.ndarray]) -> Dict[str, Tuple[float, float, float]]:
    """{variant: (IQM, low, high)} of per-run scores [runs]."""
    out = {}
    for k, v in scores.items():  # each variant its own draws: its interval is the same in every table
        point, interval = _bootstrap(
            {k: np.asarray(v, float)[:, None]},  # [runs, 1 task]
            lambda x: np.array([aggregate_iqm(x)]),
        )
        out[k] = (float(point[k][0]), float(interval[k][0, 0]), float(interval[k][1, 0]))
    return out


def probability_of_improvement(x: Sequence[float], y: Sequence[float]) -> Tuple[float, float, float]:
    """P(X > Y) (ties count half) over runs, with its 95% interval."""
    pair = {"x>y": (np.asarray(x, float)[:, None], np.asarray(y, float)[:, None])}
    point, interval = _bootstrap(pair, improvement_probability)
    low, high = np.ravel(interval["x>y"])
    return float(point["x>y"]), float(low), float(high)


def mean_band(runs: Sequence[Run], grid: np.ndarray, metric: str = "win") -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, low, high) [len(grid)] of the runs' `metric` curves, 95% bootstrap band per point."""
    curves = np.stack([r.on_grid(grid, metric) for r in runs])  # [runs, points]
    if len(runs) < 2:
        return curves[0], curves[0], curves[0]
    point, interval = _bootstrap({"c": curves}, lambda s: s.mean(axis=0))
    return point["c"], interval["c"][0], interval["c"][1]


def shared_seeds(a: Sequence[Run], b: Sequence[Run]) -> Tuple[List[Run], List[Run]]:
    """The runs of two variants on the seeds both have: comparisons use the same seeds."""
    common = {r.seed for r in a} & {r.seed for r in b}
    return [r for r in a if r.seed in common], [r for r in b if r.seed in common]


def variant_table(
    runs: Sequence[Run], map_name: str, order: Optional[Sequence[str]] = None, metric: str = "win"
) -> List[Dict]:
    """One row per variant on the map: seeds, budget, final and AUC of `metric` as IQM [95% CI]."""
    groups = by_variant(runs, map_name)
    names = [v for v in (order or []) if v in groups] + [v for v in groups if v not in (order or [])]
    if not names:
        return []
    final = iqm_interval({v: [r.final_of(metric) for r in groups[v]] for v in names})
    auc = iqm_interval({v: [r.auc_of(metric) for r in groups[v]] for v in names})
    return [
        dict(variant=v, seeds=[r.seed for r in groups[v]], budget=groups[v][0].budget, final=final[v], auc=auc[v])
        for v in names
    ]
