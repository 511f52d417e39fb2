"""Scripted baselines on the SMACv2 scenarios: the win rate of focus fire, uniform random and stop play,
over all start positions and over each kind alone (reflect / surrounded), so a reader sees how hard a
scenario is for a simple script on the embedded engine (docs/smac.md, "SMACv2").

    python benchmarks/smacv2_policies.py --scenarios terran_5_vs_5,protoss_5_vs_5,zerg_5_vs_5 --episodes 100
"""

from __future__ import annotations

import argparse

import numpy as np

from rllib_uas.envs.engine.scenarios import get_scenario
from rllib_uas.envs.scripted import focus_fire_policy, random_policy, run_episode, stop_policy
from rllib_uas.envs.smac_api import StarCraft2Env
from rllib_uas.envs.smacv2_api import StarCraft2Env as SMACv2Env

POLICIES = {"focus fire": focus_fire_policy, "random": random_policy, "stop": stop_policy}


def capability_config(name: str, positions: str) -> dict:
    """The scenario's capability config with its start positions forced to one kind."""
    cap = get_scenario(name).capability_config()
    cap["start_positions"]["dist_type"] = positions
    return cap


def win_rate(env, policy, episodes: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    return float(np.mean([run_episode(env, policy, rng)["battle_won"] for _ in range(episodes)]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenarios", default="terran_5_vs_5,protoss_5_vs_5,zerg_5_vs_5")
    ap.add_argument("--episodes", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print(f"{args.episodes} episodes per cell, seed {args.seed}")
    print("| scenario | policy | win rate | reflect only | surrounded only |\n|---|---|---|---|---|")
    for name in args.scenarios.split(","):
        s = get_scenario(name)
        for label, policy in POLICIES.items():
            rates = [win_rate(StarCraft2Env(map_name=name, seed=args.seed), policy, args.episodes, args.seed)]
            for kind in ("reflect_position", "surrounded"):
                env = SMACv2Env(
                    map_name=s.map_name,
                    capability_config=capability_config(name, kind),
                    seed=args.seed,
                    obs_own_pos=True,
                    use_unit_ranges=True,
                )
                rates.append(win_rate(env, policy, args.episodes, args.seed))
            print(f"| {name} | {label} | " + " | ".join(f"{r:.2f}" for r in rates) + " |", flush=True)


if __name__ == "__main__":
    main()
