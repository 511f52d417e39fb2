"""How forgiving is a map? The scripted focus-fire policy's win rate when each agent's action is
replaced, with probability epsilon, by a uniformly random available one (epsilon-greedy's noise).

A map on which a few random actions turn won battles into losses makes QMIX's epsilon-greedy
training win rate, and its greedy evaluations, swing (BENCHMARKS.md, issue 10).

    python benchmarks/noisy_focus_fire.py --maps 3m,8m --eps 0,0.05,0.1 --episodes 200
"""

from __future__ import annotations

import argparse

import numpy as np

from rllib_uas.envs.scripted import focus_fire_policy, random_policy, run_episode
from rllib_uas.envs.smac_api import StarCraft2Env


def noisy(eps: float):
    def policy(env, rng):
        return [r if rng.random() < eps else f for f, r in zip(focus_fire_policy(env, rng), random_policy(env, rng))]

    return policy


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--maps", default="3m,8m")
    ap.add_argument("--eps", default="0,0.05,0.1")
    ap.add_argument("--episodes", type=int, default=200)
    args = ap.parse_args()
    eps_list = [float(e) for e in args.eps.split(",")]
    print("| map | " + " | ".join(f"win rate, epsilon {e:g}" for e in eps_list) + " |")
    print("|---|" + "---|" * len(eps_list))
    for m in args.maps.split(","):
        rates = []
        for eps in eps_list:
            env, rng = StarCraft2Env(map_name=m, seed=0), np.random.default_rng(0)
            rates.append(np.mean([run_episode(env, noisy(eps), rng)["battle_won"] for _ in range(args.episodes)]))
            env.close()
        print(f"| {m} | " + " | ".join(f"{r:.2f}" for r in rates) + " |", flush=True)


if __name__ == "__main__":
    main()
