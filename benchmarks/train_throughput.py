"""End-to-end training throughput (env steps/s sampled and trained) on this machine.

In-process sampling (num_env_runners=0) so both cores serve one run; each configuration warms up
(U-QMIX: until its buffer holds `learning_starts_episodes`, so the timed iterations learn) plus 2
iterations, then is timed over `--iters` iterations.

    python benchmarks/train_throughput.py [--map MMM2] [--iters 6]
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("RAY_DEDUP_LOGS", "0")


def mappo(map_name: str, envs: int, batch: int):
    from rllib_uas.algorithms.u_mappo import UMAPPOConfig

    return (UMAPPOConfig().environment(env_config={"map_name": map_name})
            .env_runners(num_env_runners=0, num_envs_per_env_runner=envs)
            .training(train_batch_size_per_learner=batch, minibatch_size=batch, num_epochs=5))


def qmix(map_name: str, envs: int, batch: int):
    from rllib_uas.algorithms.u_qmix import UQMIXConfig

    return (UQMIXConfig().environment(env_config={"map_name": map_name})
            .env_runners(num_env_runners=0, num_envs_per_env_runner=envs)
            .training(batch_size_episodes=batch, learning_starts_episodes=batch, episodes_per_iteration=envs,
                      buffer_size_episodes=1000))


def measure(config, iters: int) -> float:
    algo = config.build_algo()
    try:
        while len(getattr(algo, "episode_buffer", ())) < getattr(config, "learning_starts_episodes", 0):
            algo.train()
        for _ in range(2):
            algo.train()
        start = algo.train()["num_env_steps_sampled_lifetime"]
        t0 = time.perf_counter()
        for _ in range(iters):
            end = algo.train()["num_env_steps_sampled_lifetime"]
        return (end - start) / (time.perf_counter() - t0)
    finally:
        algo.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--map", default="MMM2")
    ap.add_argument("--iters", type=int, default=6)
    args = ap.parse_args()
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    print("| algorithm | map | envs per runner | batch | env steps/s end to end |\n|---|---|---|---|---|")
    for envs, batch in ((16, 3200), (64, 6400)):
        sps = measure(mappo(args.map, envs, batch), args.iters)
        print(f"| U-MAPPO | {args.map} | {envs} | {batch} steps, 5 epochs | {sps:,.0f} |", flush=True)
    for envs, batch in ((8, 32), (8, 128)):
        sps = measure(qmix(args.map, envs, batch), args.iters)
        print(f"| U-QMIX | {args.map} | {envs} | {batch} episodes, 1 update / {envs} episodes | {sps:,.0f} |",
              flush=True)


if __name__ == "__main__":
    main()
