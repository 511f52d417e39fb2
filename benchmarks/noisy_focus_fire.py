"""How forgiving is a map? The scripted focus-fire policy's win rate when each agent's action is
replaced, with probability epsilon, by a uniformly random available one (epsilon-greedy's noise).

A map on which a few random actions turn won battles into losses makes QMIX's epsilon-greedy
training win rate, and its greedy evaluations, swing (BENCHMARKS.md, issue 10). The second table is
the margin of the won battles: how many allies are left alive, and with how much of their health.

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
    margins = []
    for m in args.maps.split(","):
        rates, won_by = [], []
        for eps in eps_list:
            env, rng = StarCraft2Env(map_name=m, seed=0), np.random.default_rng(0)
            wins, left, health = 0, [], []
            for _ in range(args.episodes):
                if run_episode(env, noisy(eps), rng)["battle_won"]:
                    wins += 1
                    left.append(sum(u.health > 0 for u in env.agents.values()))
                    health.append(sum(u.health + u.shield for u in env.agents.values()))
            full = sum(u.health_max + u.shield_max for u in env.agents.values())
            rates.append(wins / args.episodes)
            won_by.append(f"{np.mean(left):.2f} of {env.n_agents}, {np.mean(health) / full:.0%}" if wins else "-")
            env.close()
        print(f"| {m} | " + " | ".join(f"{r:.2f}" for r in rates) + " |", flush=True)
        margins.append(f"| {m} | " + " | ".join(won_by) + " |")
    print("\nWon battles: allies alive (mean) and their health and shields left, of the team's full amount\n")
    print("| map | " + " | ".join(f"epsilon {e:g}" for e in eps_list) + " |")
    print("|---|" + "---|" * len(eps_list))
    print("\n".join(margins))


if __name__ == "__main__":
    main()
