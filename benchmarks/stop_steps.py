"""Env steps until a tuned example's stop, per seed, for this checkout and for others side by side:
how much a change alters learning per env step (wall time is the throughput benchmark's job).

    python benchmarks/stop_steps.py tuned_examples/quickstart.yaml --seeds 0-3 --baseline /path/to/old/checkout

Each (seed, checkout) trains in its own process, in-process RLlib (no Tune), with the example's
config and stop criteria, `seed` set, and `--learner-cpus` torch threads for the update (the
trajectory depends on the thread count: floats sum in another order). The checkouts' runs are
interleaved per seed. Prints a markdown table: iterations and env steps to the stop, and the
stopping metric's value.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]

WORKER = r"""
import json, sys
import rllib_uas
from rllib_uas.local_ray import start_own_ray
from rllib_uas.experiment import load_experiments
from rllib_uas.result_path import metric_at

path, seed, cpus = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
exp = load_experiments(path)[0]
config = exp.config.copy(copy_frozen=False).debugging(seed=seed).learners(num_cpus_per_learner=cpus)
start_own_ray(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")


def value(result, key):
    v = metric_at(result, key, None)
    return v if isinstance(v, (int, float)) else None


algo = config.build_algo()
iterations = 0
while True:
    result = algo.train()
    iterations += 1
    met = [k for k, want in exp.stop.items() if value(result, k) is not None and value(result, k) >= want]
    if met:
        break
print("STOP " + json.dumps({
    "iterations": iterations,
    "env_steps": int(result["num_env_steps_sampled_lifetime"]),
    "met": met,
    "package": rllib_uas.__file__,
    "values": {k: value(result, k) for k in exp.stop},
}), flush=True)
algo.stop()
"""


def seeds_of(text: str) -> list:
    if "-" in text:
        a, b = text.split("-")
        return list(range(int(a), int(b) + 1))
    return [int(s) for s in text.split(",")]


def run_one(checkout: Path, example: Path, seed: int, cpus: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    res = subprocess.run(
        [sys.executable, "-c", WORKER, str(example), str(seed), str(cpus)],
        env=env,
        cwd=checkout,  # `python -c` puts the working directory first on sys.path
        capture_output=True,
        text=True,
    )
    line = next((x for x in res.stdout.splitlines() if x.startswith("STOP ")), None)
    if res.returncode != 0 or line is None:
        tail = (res.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise SystemExit(f"stop_steps: {checkout} seed {seed} failed: {tail}")
    out = json.loads(line[5:])
    if not Path(out.pop("package")).resolve().is_relative_to(checkout):
        raise SystemExit(
            f"stop_steps: the run for {checkout} imported another rllib_uas; is it installed non-editable?"
        )
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("example", help="a tuned example YAML (its first experiment)")
    p.add_argument("--seeds", default="0-3")
    p.add_argument("--baseline", action="append", default=[], help="another checkout to run side by side")
    p.add_argument("--learner-cpus", type=int, default=1)
    args = p.parse_args()
    example = Path(args.example).resolve()
    if not example.is_file():
        print(f"stop_steps: no such file {example}; pass a tuned example, e.g. tuned_examples/quickstart.yaml")
        return 2
    checkouts = [HERE] + [Path(b).resolve() for b in args.baseline]
    for c in checkouts[1:]:
        if not (c / "rllib_uas" / "__init__.py").is_file():
            print(f"stop_steps: {c} holds no rllib_uas checkout; pass a git worktree of the commit to compare")
            return 2
    seeds = seeds_of(args.seeds)
    rows = {c: [] for c in checkouts}
    for seed in seeds:
        for c in checkouts:
            out = run_one(c, example, seed, args.learner_cpus)
            rows[c].append(out)
            print(f"# {c.name} seed {seed}: {json.dumps(out)}", flush=True)
    print(f"\n| checkout | {' | '.join(f'seed {s}' for s in seeds)} | mean env steps |")
    print("|---|" + "---|" * (len(seeds) + 1))
    for c in checkouts:
        cells = [f"{r['env_steps']:,} ({r['iterations']} it)" for r in rows[c]]
        mean = statistics.mean(r["env_steps"] for r in rows[c])
        print(f"| {c} | {' | '.join(cells)} | {mean:,.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
