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


def _worker(map_name: str, n_envs: int, seconds: float, api: bool, out) -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    from rllib_uas.envs.engine.bench import engine_steps_per_second

    sps = engine_steps_per_second(map_name, n_envs, seconds, api=api)
    out.put((sps, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


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
