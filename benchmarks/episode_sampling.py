"""Which episodes does each sampling path collect? Mean length, time-out share, steps kept.

Uniformly random available actions on one map; for each path at least `--episodes` episodes:
- `rounds`: every env plays one episode per round (PyMARL2's parallel runner; the reference);
- `stock first-k`: RLlib's `sample(num_episodes=k)`, k = envs (what U-QMIX used before);
- `U-QMIX stitched`: U-QMIX's timestep sampling with chunks stitched (epsilon 1, no learning);
- `eval rounds`: `TeamEnvRunner.sample(num_episodes=...)`, the evaluation path.

    python benchmarks/episode_sampling.py --map 3m1m_vs_4m --envs 8,32 --episodes 400
"""

from __future__ import annotations

import argparse
import os

import numpy as np

os.environ.setdefault("RAY_DEDUP_LOGS", "0")


def config(map_name: str, envs: int):
    from rllib_uas.algorithms.u_qmix import UQMIXConfig

    return (
        UQMIXConfig()
        .environment(env_config={"map_name": map_name})
        .env_runners(num_env_runners=0, num_envs_per_env_runner=envs)
        .training(epsilon_start=1.0, epsilon_finish=1.0, buffer_size_episodes=100_000, learning_starts_episodes=100_000)
        .debugging(seed=0)
    )


def runner_episodes(runner_cls, cfg, n: int, k: int):
    runner = runner_cls(config=cfg)
    lengths, timeouts, simulated = [], [], 0
    while len(lengths) < n:
        eps = runner.sample(num_episodes=k, explore=True)
        lengths += [len(e) for e in eps]
        timeouts += [bool(e.is_truncated) for e in eps]
    simulated = int(runner.get_metrics()["num_env_steps_sampled_lifetime"].peek())
    runner.stop()
    return np.array(lengths), np.array(timeouts), simulated


def stitched_episodes(cfg, n: int):
    algo = cfg.build_algo()
    while len(algo.episode_buffer) < n:
        result = algo.train()
    eps = algo.episode_buffer.episodes  # compact storage: rewards float32, terminated bool
    lengths = np.array([len(e["rewards"]) for e in eps])
    timeouts = np.array([e["terminated"][-1] == 0 for e in eps])
    simulated = int(result["env_runners"]["num_env_steps_sampled_lifetime"])
    algo.stop()
    return lengths, timeouts, simulated


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--map", default="3m1m_vs_4m")
    ap.add_argument("--envs", default="8,32")
    ap.add_argument("--episodes", type=int, default=400)
    args = ap.parse_args()
    from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner

    from rllib_uas.env_runner import TeamEnvRunner
    from rllib_uas.envs.registry import register_envs
    from rllib_uas.envs.rounds import random_rounds
    from rllib_uas.local_ray import start_own_ray

    start_own_ray(num_cpus=2, include_dashboard=False, log_to_driver=False)
    register_envs()
    print(f"map {args.map}, uniformly random available actions, >= {args.episodes} episodes per row\n")
    print("| envs | path | episodes | mean length | time-out share | steps in kept episodes / simulated |")
    print("|---|---|---|---|---|---|")
    for envs in map(int, args.envs.split(",")):
        cfg = config(args.map, envs)
        rows = {
            "rounds (reference)": random_rounds(args.map, args.episodes, envs, seed=1) + (None,),
            f"stock first-{envs}": runner_episodes(SingleAgentEnvRunner, cfg, args.episodes, envs),
            "U-QMIX stitched": stitched_episodes(cfg, args.episodes),
            "eval rounds": runner_episodes(TeamEnvRunner, cfg, args.episodes, envs),
        }
        for name, (lengths, timeouts, simulated) in rows.items():
            kept = "-" if simulated is None else f"{lengths.sum() / simulated:.3f}"
            se = lengths.std() / len(lengths) ** 0.5
            print(
                f"| {envs} | {name} | {len(lengths)} | {lengths.mean():.1f} +- {se:.1f} "
                f"| {timeouts.mean():.3f} | {kept} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
