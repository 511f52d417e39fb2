"""Training throughput and win rate vs env steps: U-MAPPO, U-MAPPO w/o CGI, MAPPO, U-QMIX, U-QMIX
w/o CGI and QMIX.

Each run trains in-process (num_env_runners=0) for a fixed env-step budget and logs (env steps,
training win rate, team return, wall time) to CSV; a PNG plots all curves.

    python benchmarks/train_curves.py --maps MMM2,6m2m_vs_15m --steps 150000 --out benchmarks/results
"""

from __future__ import annotations

import argparse
import csv
import os
import time
from pathlib import Path

os.environ.setdefault("RAY_DEDUP_LOGS", "0")

from rllib_uas.variants import VARIANTS  # noqa: E402

CURVE_VARIANTS = ("U-MAPPO", "U-MAPPO w/o CGI", "MAPPO", "U-QMIX", "U-QMIX w/o CGI", "QMIX")


def make_config(map_name: str, variant: str, seed: int):
    v = VARIANTS[variant]
    config = v.config().environment(env_config={"map_name": map_name}).debugging(seed=seed)
    if v.algorithm == "qmix":
        return config.env_runners(num_env_runners=0, num_envs_per_env_runner=8).training(
            batch_size_episodes=64,
            learning_starts_episodes=64,
            episodes_per_iteration=8,
            updates_per_iteration=2,
            epsilon_anneal_steps=50_000,
            buffer_size_episodes=2000,
        )
    return config.env_runners(num_env_runners=0, num_envs_per_env_runner=16).training(
        train_batch_size_per_learner=3200, minibatch_size=3200, num_epochs=5
    )


def run(map_name: str, variant: str, steps: int, out: Path, seed: int = 0) -> Path:
    algo = make_config(map_name, variant, seed).build_algo()
    path = out / f"{map_name}__{VARIANTS[variant].slug}__seed{seed}.csv"
    t0 = time.perf_counter()
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["env_steps", "win_rate", "team_return", "wall_s"])
        done = 0
        while done < steps:
            r = algo.train()
            done = int(r["num_env_steps_sampled_lifetime"])
            er = r["env_runners"]
            w.writerow(
                [
                    done,
                    er.get("win_rate", float("nan")),
                    er.get("team_return_mean", float("nan")),
                    round(time.perf_counter() - t0, 2),
                ]
            )
            f.flush()
    algo.stop()
    return path


def plot(out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    files = sorted(out.glob("*.csv"))
    maps = sorted({p.name.split("__")[0] for p in files})
    metrics = (("win_rate", "training win rate"), ("team_return", "team return (scaled, max 20)"))
    fig, axes = plt.subplots(len(metrics), len(maps), figsize=(6 * len(maps), 7), squeeze=False)
    for col, m in enumerate(maps):
        for row, (key, label) in enumerate(metrics):
            ax = axes[row][col]
            for p in files:
                if p.name.split("__")[0] != m:
                    continue
                df = pd.read_csv(p)
                name = p.name.split("__")[1].replace("_", " ")
                ax.plot(
                    df.env_steps, df[key].rolling(5, min_periods=1).mean(), "--" if "QMIX" in name else "-", label=name
                )
            ax.set(title=m, xlabel="env steps", ylabel=label)
            if key == "win_rate":
                ax.set_ylim(-0.02, 1.02)
            ax.grid(alpha=0.3)
        axes[0][col].legend(fontsize=8)
    fig.tight_layout()
    png = out / "win_rate_vs_steps.png"
    fig.savefig(png, dpi=100)
    return png


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--maps", default="MMM2,6m2m_vs_15m")
    ap.add_argument("--variants", default=",".join(CURVE_VARIANTS))
    ap.add_argument("--steps", type=int, default=150_000)
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args()
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(
        "| map | variant | env steps | wall s | env steps/s | final win rate | final return |\n"
        "|---|---|---|---|---|---|---|"
    )
    for m in args.maps.split(","):
        for v in args.variants.split(","):
            rows = list(csv.DictReader(run(m, v, args.steps, out).open()))
            last = rows[-1]
            print(
                f"| {m} | {v} | {last['env_steps']} | {last['wall_s']} | "
                f"{int(last['env_steps']) / float(last['wall_s']):,.0f} | {float(last['win_rate']):.2f} | "
                f"{float(last['team_return']):.2f} |",
                flush=True,
            )
    print("plot:", plot(out))


def replot() -> None:
    """Redraw the PNG from existing CSVs: python -c 'import benchmarks.train_curves as t; t.replot()'."""
    print(plot(Path("benchmarks/results")))


if __name__ == "__main__":
    main()
