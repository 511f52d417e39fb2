"""Does a variant learn with its *default* settings? Greedy win rate vs simulated env steps.

Trains one (variant, map, seed) cell in-process with the config's defaults (only the map and seed
set), and every `--eval-every` env steps evaluates the greedy policy over `--eval-episodes`
episodes (full rounds of one episode per env). Rows are appended to
`<out>/<map>__<variant>__seed<k>.csv` as they come, so a killed run keeps what it measured.

    python benchmarks/learning_check.py --variant QMIX --map 3m --seed 0 --steps 200000
    python benchmarks/learning_check.py --summary benchmarks/results/learning_check   # the tables
    python benchmarks/learning_check.py --summary benchmarks/results/{learning_check,pymarl2_qmix}  # together
"""

from __future__ import annotations

import argparse
import csv
import os
import time
from pathlib import Path

os.environ.setdefault("RAY_DEDUP_LOGS", "0")


FIELDS = [
    "env_steps",
    "wall_s",
    "train_win_rate",
    "train_return",
    "eval_win_rate",
    "eval_episodes",
    "eval_return",
    "eval_battle_length",
]


def make_config(variant: str, map_name: str, seed: int, eval_episodes: int, continuing_episode: bool = True):
    from rllib_uas.variants import VARIANTS

    return (
        VARIANTS[variant]
        .config()
        .environment(env_config={"map_name": map_name, "continuing_episode": continuing_episode})
        .env_runners(num_env_runners=0)
        .evaluation(
            evaluation_num_env_runners=0, evaluation_duration=eval_episodes, evaluation_interval=10**9
        )  # a separate eval runner, run by hand
        .debugging(seed=seed)
    )


def summarize(*folders: Path) -> None:
    """A markdown row per CSV of the folders: when the greedy win rate first reached 0.9, how it held
    after, and the evaluations of the second half of the run (from half its env steps on); then the
    seeds of each (map, variant) together, and how the variants of a map compare (`compare`)."""
    print(
        "| map | variant | seed | env steps | first eval >= 0.9 at | evals >= 0.9 from then | lowest from then "
        "| last eval | second half: mean eval | second half: evals >= 0.9 |\n|---|---|---|---|---|---|---|---|---|---|"
    )
    halves: dict = {}  # (map, variant) -> each seed's second-half evaluations
    held: list = []  # per run: the first evaluation from which every one is >= 0.9 ("stays there")
    for path in sorted((p for folder in folders for p in folder.glob("*.csv")), key=_seed_order):
        map_name, slug, seed = path.stem.split("__")
        variant = slug.replace("_", " ")
        rows = [(int(r["env_steps"]), float(r["eval_win_rate"])) for r in csv.DictReader(path.open())]
        first = next((i for i, (_, w) in enumerate(rows) if w >= 0.9), None)
        after = [w for _, w in rows[first:]] if first is not None else []
        late = [w for t, w in rows if t >= rows[-1][0] / 2]
        halves.setdefault((map_name, variant), {})[int(seed[4:])] = late
        tail = next((i for i in range(len(rows)) if all(w >= 0.9 for _, w in rows[i:])), None)
        held.append((map_name, variant, seed[4:], None if tail is None else rows[tail][0]))
        print(
            f"| {map_name} | {variant} | {seed[4:]} | {rows[-1][0]:,} | "
            f"{f'{rows[first][0]:,}' if after else 'never'} | {sum(w >= 0.9 for w in after)} of {len(after)} | "
            f"{min(after) if after else float('nan'):.2f} | {rows[-1][1]:.2f} | {sum(late) / len(late):.2f} | "
            f"{sum(w >= 0.9 for w in late)} of {len(late)} |"
        )
    for (map_name, variant), by_seed in halves.items():
        lates = list(by_seed.values())
        if len(lates) > 1:  # the seeds together: the mean of their second-half means
            means = [sum(late) / len(late) for late in lates]
            n, hits = sum(map(len, lates)), sum(w >= 0.9 for late in lates for w in late)
            print(
                f"| {map_name} | {variant} | all {len(lates)} | | | | | | {sum(means) / len(means):.2f} | "
                f"{hits} of {n} |"
            )
    print("\n| map | variant | seed | every evaluation >= 0.9 from |\n|---|---|---|---|")
    for map_name, variant, seed, start in held:
        print(f"| {map_name} | {variant} | {seed} | {'never' if start is None else f'{start:,}'} |")
    compare(halves)


def compare(halves: dict) -> None:
    """Per map: each variant's second-half means over its seeds as an IQM with a 95% stratified-bootstrap
    interval, and for each pair of variants P(A > B) with its interval (rliable, as the study), over the
    seeds both have (as the study compares its variants; rliable pairs equal numbers of runs)."""
    from rllib_uas.study.stats import iqm_interval, probability_of_improvement

    means = {  # (map, variant) -> {seed: mean of its second half}
        key: {seed: sum(late) / len(late) for seed, late in by_seed.items()}
        for key, by_seed in halves.items()
        if len(by_seed) > 1
    }
    if not means:
        return
    print("\n| map | variant | seeds | second half: IQM of the seeds' means [95% CI] |\n|---|---|---|---|")
    for (map_name, variant), m in means.items():
        iqm, low, high = iqm_interval({variant: list(m.values())})[variant]
        print(f"| {map_name} | {variant} | {len(m)} | {iqm:.2f} [{low:.2f}, {high:.2f}] |")
    shared = {  # pairs of a map's variants with at least 2 seeds in common -> those seeds
        (a, b): sorted(means[a].keys() & means[b].keys())
        for a in means
        for b in means
        if a[0] == b[0] and a[1] < b[1] and len(means[a].keys() & means[b].keys()) > 1
    }
    if shared:
        print("\n| map | A | B | seeds in common | P(A > B) [95% CI] |\n|---|---|---|---|---|")
    for (a, b), seeds in shared.items():
        p, low, high = probability_of_improvement([means[a][s] for s in seeds], [means[b][s] for s in seeds])
        print(f"| {a[0]} | {a[1]} | {b[1]} | {len(seeds)} | {p:.2f} [{low:.2f}, {high:.2f}] |")


def _seed_order(path: Path) -> tuple:
    """Map, variant, then seeds in numeric order (seed10 after seed9)."""
    map_name, variant, seed = path.stem.split("__")
    return map_name, variant, int(seed[4:])


def main() -> None:
    from rllib_uas.variants import VARIANTS  # here: the CSV format above is read without RLlib (pymarl2_qmix.py)

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--summary", metavar="DIR", nargs="+", help="print the tables of the CSVs in the DIRs together and exit"
    )
    ap.add_argument("--variant", choices=list(VARIANTS))
    ap.add_argument("--map", default="3m")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=200_000)
    ap.add_argument("--eval-every", type=int, default=10_000)
    ap.add_argument("--eval-episodes", type=int, default=64)
    ap.add_argument(
        "--terminal-time-limit",
        dest="continuing_episode",
        action="store_false",
        help="env_config continuing_episode false: the time limit ends the episode (PyMARL2's reading of SMAC)",
    )
    ap.add_argument("--out", default="benchmarks/results/learning_check")
    args = ap.parse_args()
    if args.summary:
        empty = [d for d in args.summary if not any(Path(d).glob("*.csv"))]
        if empty:  # a mistyped folder would print an empty table
            ap.error(f"no learning-check CSVs in {', '.join(empty)}: pass folders written by --out")
        return summarize(*map(Path, args.summary))
    if args.variant is None:
        ap.error("--variant is required (or --summary DIR)")
    from rllib_uas.local_ray import start_own_ray

    start_own_ray(num_cpus=1, include_dashboard=False, log_to_driver=False)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    slug = VARIANTS[args.variant].slug + ("" if args.continuing_episode else "_terminal_time_limit")
    path = out / f"{args.map}__{slug}__seed{args.seed}.csv"
    algo = make_config(args.variant, args.map, args.seed, args.eval_episodes, args.continuing_episode).build_algo()
    t0, next_eval = time.perf_counter(), 0
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, FIELDS)
        w.writeheader()
        while True:
            r = algo.train()
            steps = int(r["num_env_steps_sampled_lifetime"])
            if steps < next_eval and steps < args.steps:
                continue
            ev = algo.evaluate()["env_runners"]
            er = r["env_runners"]
            w.writerow(
                dict(
                    env_steps=steps,
                    wall_s=round(time.perf_counter() - t0, 1),
                    train_win_rate=er.get("win_rate"),
                    train_return=er.get("team_return_mean"),
                    eval_win_rate=ev.get("win_rate"),
                    eval_episodes=ev.get("num_episodes"),
                    eval_return=ev.get("team_return_mean"),
                    eval_battle_length=ev.get("battle_length_mean"),
                )
            )
            f.flush()
            next_eval += args.eval_every
            if steps >= args.steps:
                break
    algo.stop()
    print(path)


if __name__ == "__main__":
    main()
