"""Sampling env steps/s through RLlib's env runners: team vector env vs per-agent MultiAgentEnv.

A masked random module acts, so the numbers measure env + connector + episode plumbing. Usage:

    python benchmarks/sampling_throughput.py [--map MMM2] [--envs 1,8,32] [--steps 4000]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("RAY_DEDUP_LOGS", "0")


def team_runner(map_name: str, num_envs: int):
    from ray.rllib.algorithms.ppo import PPOConfig as AlgorithmConfig  # any config with module defaults
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec
    from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner

    from rllib_uas.envs.registry import register_envs
    from rllib_uas.modules.random_masked import MaskedRandomModule

    register_envs()
    config = (
        AlgorithmConfig()
        .environment("smac_team", env_config={"map_name": map_name})
        .env_runners(
            num_envs_per_env_runner=num_envs, gym_env_vectorize_mode="vector_entry_point", rollout_fragment_length=50
        )
        .rl_module(rl_module_spec=RLModuleSpec(module_class=MaskedRandomModule))
    )
    return SingleAgentEnvRunner(config=config)


def per_agent_runner(map_name: str, num_envs: int):
    from ray.rllib.algorithms.ppo import PPOConfig as AlgorithmConfig  # any config with module defaults
    from ray.rllib.core.rl_module.multi_rl_module import MultiRLModuleSpec
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec
    from ray.rllib.env.multi_agent_env_runner import MultiAgentEnvRunner

    from rllib_uas.envs.registry import register_envs
    from rllib_uas.modules.random_masked import MaskedRandomModule

    register_envs()
    config = (
        AlgorithmConfig()
        .environment("smac", env_config={"map_name": map_name})
        .env_runners(num_envs_per_env_runner=num_envs, rollout_fragment_length=50)
        .multi_agent(policies={"shared"}, policy_mapping_fn=lambda aid, *a, **k: "shared")
        .rl_module(
            rl_module_spec=MultiRLModuleSpec(rl_module_specs={"shared": RLModuleSpec(module_class=MaskedRandomModule)})
        )
    )
    return MultiAgentEnvRunner(config=config)


def measure(runner, steps: int) -> float:
    runner.sample(num_timesteps=min(steps // 4, 500))  # warm-up
    t0 = time.perf_counter()
    done = 0
    while done < steps:
        episodes = runner.sample(num_timesteps=min(1000, steps - done))
        done += sum(e.env_steps() if hasattr(e, "env_steps") else len(e) for e in episodes)
    return done / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--map", default="MMM2")
    ap.add_argument("--envs", default="1,8,32")
    ap.add_argument("--steps", type=int, default=4000)
    args = ap.parse_args()
    print("| env runner | map | envs per runner | env steps/s |\n|---|---|---|---|")
    for n in map(int, args.envs.split(",")):
        sps = measure(per_agent_runner(args.map, n), args.steps)
        print(f"| per-agent MultiAgentEnv | {args.map} | {n} | {sps:,.0f} |", flush=True)
        print(
            f"| TeamVectorEnv | {args.map} | {n} | {measure(team_runner(args.map, n), args.steps):,.0f} |", flush=True
        )


if __name__ == "__main__":
    main()
