"""U-QMIX replay-buffer memory per map: MB per 1,000 episodes, compact storage against float32.

Fills the buffer with episodes of uniformly random available actions (epsilon 1, no learning) and
reports the stored bytes per episode (compact: bool masks, int8 groups, int16 actions, last
actions derived) against the same episodes as float32/int64 arrays (the layout before), plus the
bound `check_buffer_fits` uses (every episode at the map's limit).

    python benchmarks/buffer_memory.py --maps 3m,3m1m_vs_4m,MMM,MMM2,6m2m_vs_15m --episodes 200
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("RAY_DEDUP_LOGS", "0")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--maps", default="3m,3m1m_vs_4m,MMM,MMM2,6m2m_vs_15m")
    ap.add_argument("--episodes", type=int, default=200)
    args = ap.parse_args()
    from rllib_uas.algorithms.u_qmix import UQMIXConfig
    from rllib_uas.algorithms.u_qmix.algorithm import episode_limit
    from rllib_uas.algorithms.u_qmix.episode_buffer import episode_nbytes, expand, stored_bytes_per_step
    from rllib_uas.envs.team import TeamEnv
    from rllib_uas.local_ray import start_own_ray

    start_own_ray(num_cpus=2, include_dashboard=False, log_to_driver=False)
    print(
        "| map | mean episode length | MB / 1,000 episodes (compact) | MB / 1,000 episodes (float32, before) "
        "| ratio | MB / 1,000 episodes at the limit (compact) |\n|---|---|---|---|---|---|"
    )
    for m in args.maps.split(","):
        config = (
            UQMIXConfig()
            .environment(env_config={"map_name": m})
            .env_runners(num_env_runners=0)
            .training(
                epsilon_start=1.0,
                epsilon_finish=1.0,
                learning_starts_episodes=10**6,
                buffer_size_episodes=max(200, 2 * args.episodes),
            )
            .debugging(seed=0)
        )
        algo = config.build_algo()
        while len(algo.episode_buffer) < args.episodes:
            algo.train()
        eps = algo.episode_buffer.episodes
        algo.stop()
        compact_b = sum(episode_nbytes(e) for e in eps) / len(eps)
        plain_b = sum(episode_nbytes(expand(e)) for e in eps) / len(eps)
        length = sum(len(e["rewards"]) for e in eps) / len(eps)
        worst = (episode_limit(config) + 1) * stored_bytes_per_step(TeamEnv({"map_name": m}).observation_space)
        mb = 1000 / 2**20
        print(
            f"| {m} | {length:.1f} | {compact_b * mb:,.1f} | {plain_b * mb:,.1f} | {plain_b / compact_b:.2f} "
            f"| {worst * mb:,.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
