"""Embedded-engine throughput: env steps/s with obs, state and masks computed every step.

Random valid actions; finished battles are reset in place. Each configuration runs in its own
process (so peak memory is its own), pinned to one core. Usage:

    python benchmarks/engine_throughput.py [--maps MMM2,3s5z_vs_3s6z,27m_vs_30m] [--envs 1,16,256] [--seconds 5]
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import time


def _worker(map_name: str, n_envs: int, seconds: float, api: bool, out) -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    import numpy as np

    rng = np.random.default_rng(0)
    if api:  # the pymarl-style single-env path through StarCraft2Env
        from rllib_uas.envs.smac_api import StarCraft2Env

        env = StarCraft2Env(map_name=map_name, seed=0)
        env.reset()
        steps, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            avail = np.array(env.get_avail_actions())
            actions = (rng.random(avail.shape) * avail).argmax(1)
            _, terminated, _ = env.step(actions)
            env.get_obs(), env.get_state()
            steps += 1
            if terminated:
                env.reset()
    else:
        from rllib_uas.envs.engine.vec_smac import VectorizedSMAC

        vec = VectorizedSMAC(map_name, n_envs=n_envs, seed=0)
        vec.reset()
        steps, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            avail = vec.avail_actions()
            actions = (rng.random(avail.shape) * avail).argmax(-1)
            res = vec.step(actions)
            vec.observations(), vec.states(), vec.avail_actions()
            steps += n_envs
            if res.terminated.any():
                vec.reset(res.terminated)
    elapsed = time.perf_counter() - t0
    out.put((steps / elapsed, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def measure(map_name: str, n_envs: int, seconds: float, api: bool = False):
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_worker, args=(map_name, n_envs, seconds, api, q))
    p.start()
    result = q.get()
    p.join()
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--maps", default="MMM2,3s5z_vs_3s6z,27m_vs_30m")
    ap.add_argument("--envs", default="1,16,256")
    ap.add_argument("--seconds", type=float, default=5.0)
    args = ap.parse_args()
    print("| map | path | n_envs | env steps/s | peak RSS MiB (whole process) |")
    print("|---|---|---|---|---|")
    for m in args.maps.split(","):
        sps, rss = measure(m, 1, args.seconds, api=True)
        print(f"| {m} | StarCraft2Env | 1 | {sps:,.0f} | {rss:.0f} |", flush=True)
        for n in map(int, args.envs.split(",")):
            sps, rss = measure(m, n, args.seconds)
            print(f"| {m} | VectorizedSMAC | {n} | {sps:,.0f} | {rss:.0f} |", flush=True)


if __name__ == "__main__":
    main()
