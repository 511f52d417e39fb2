"""Summarize benchmarks/overlap_learning.yaml: does U-MAPPO learn as well per env step with
overlap_sampling (each batch one update stale) as without?

Reads every trial of the experiment folder (Tune's params.json and result.json) and prints, per arm,
the seeds, the greedy win rate at the last evaluation and the area under the greedy win-rate curve
(trapezoid over env steps from the first evaluation, over that span) as IQM [95% interval], the env
steps at which each seed's training win rate first reached 0.95 (the quick start's stop), and
P(overlap > sequential) for both scores. The statistics are the study's (rllib_uas.study.stats:
rliable, stratified bootstrap, fixed random state).

    python benchmarks/overlap_learning.py <storage-path>/overlap-learning
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Dict, List

import numpy as np

from rllib_uas.study import stats
from rllib_uas.study.report import interval_text

STEPS = "num_env_steps_sampled_lifetime"
STOP_WIN_RATE = 0.95


def load_trial(folder: Path) -> Dict:
    """One trial: its arm, seed, greedy evaluations (steps, win rate) and first step at a 0.95
    training win rate. Read from result.json: Tune's progress.csv keeps only the first result's
    columns, which lack the evaluation's, and RLlib repeats an evaluation's metrics in the results
    after it, so only the iterations that evaluated (every `evaluation_interval`) count."""
    params = json.loads((folder / "params.json").read_text())
    rows = []
    for line in (folder / "result.json").read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # the line a running trial is writing
            break
    every = params["evaluation_interval"]
    evals = [
        (r[STEPS], r["evaluation"]["env_runners"]["win_rate"]) for r in rows if r["training_iteration"] % every == 0
    ]
    reached = [r[STEPS] for r in rows if r["env_runners"].get("win_rate", 0.0) >= STOP_WIN_RATE]
    return dict(
        arm="overlap" if params["overlap_sampling"] else "sequential",
        seed=int(params["seed"]),
        steps=np.array([s for s, _ in evals], float),  # [E]
        win_rate=np.array([w for _, w in evals], float),  # [E]
        total=rows[-1][STEPS] if rows else 0,
        reached=reached[0] if reached else None,
    )


def runs_of(trials: List[Dict]) -> Dict[str, List[stats.Run]]:
    """The trials as the study's runs (AUC over the span from the first evaluation to the last)."""
    out: Dict[str, List[stats.Run]] = {}
    for t in trials:
        span = t["steps"] - t["steps"][0]
        run = stats.Run("3m1m_vs_4m", t["arm"], t["seed"], span, t["win_rate"], int(span[-1]), commit="")
        out.setdefault(t["arm"], []).append(run)
    return out


def _fail(message: str) -> None:
    print(f"overlap_learning.py: error: {message}", file=sys.stderr)
    sys.exit(2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("experiment", type=Path, help="the experiment's folder (<storage-path>/overlap-learning)")
    args = ap.parse_args()
    folders = sorted(p.parent for p in args.experiment.glob("*/params.json"))
    if not folders:
        _fail(f"no trials under {args.experiment} (run benchmarks/overlap_learning.yaml first)")
    trials = sorted((load_trial(f) for f in folders), key=lambda t: (t["arm"], t["seed"]))
    unfinished = [t for t in trials if t["total"] < 150_000]
    if unfinished:
        names = ", ".join(f"{t['arm']} seed {t['seed']}" for t in unfinished)
        _fail(f"trials not finished yet: {names} (rerun the YAML with --resume)")
    runs = runs_of(trials)
    final = stats.iqm_interval({arm: [r.final for r in rs] for arm, rs in runs.items()})
    auc = stats.iqm_interval({arm: [r.auc for r in rs] for arm, rs in runs.items()})
    print(
        "| arm | seeds | final greedy win rate, IQM [95% CI] | AUC, IQM [95% CI] "
        "| env steps to training win rate 0.95, by seed |\n|---|---|---|---|---|"
    )
    for arm in ("sequential", "overlap"):
        reached = ", ".join(
            f"{t['reached']:,.0f}" if t["reached"] is not None else "not reached" for t in trials if t["arm"] == arm
        )
        seeds = ",".join(str(r.seed) for r in runs[arm])
        print(f"| {arm} | {seeds} | {interval_text(final[arm])} | {interval_text(auc[arm])} | {reached} |")
    a, b = stats.shared_seeds(runs["overlap"], runs["sequential"])
    for name, score in (("final", lambda r: r.final), ("AUC", lambda r: r.auc)):
        p = stats.probability_of_improvement([score(r) for r in a], [score(r) for r in b])
        print(f"\nP(overlap > sequential), {name}: {interval_text(p)}")
    print("\nper seed (greedy win rate at each evaluation):")
    for t in trials:
        curve = " ".join(f"{w:.2f}" for w in t["win_rate"])
        print(f"  {t['arm']:>10} seed {t['seed']}: {curve}")


if __name__ == "__main__":
    main()
