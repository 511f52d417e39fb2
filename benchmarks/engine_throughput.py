"""Embedded-engine throughput: env steps/s with obs, state and masks computed every step.

Random valid actions; finished battles are reset in place. Each row runs in its own process (so
peak memory is its own), pinned to one core, and reports env steps per wall second and per
CPU-second of that process. With --baseline DIR (a checkout of an earlier version, e.g. made with
`git worktree add /tmp/prev <commit>`), every row also runs that version's engine right after,
and the ratio of the two is printed. Usage:

    python benchmarks/engine_throughput.py [--maps MMM2,3s5z_vs_3s6z,27m_vs_30m] [--envs 1,16,256]
        [--seconds 5] [--baseline DIR] [--compile-time]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import sys
import time


def _worker(path: str, map_name: str, n_envs: int, seconds: float, api: bool, out) -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    if path:
        sys.path.insert(0, path)
    from rllib_uas.envs.engine import bench

    if hasattr(bench, "engine_throughput"):
        wall, cpu = bench.engine_throughput(map_name, n_envs, seconds, api=api)
    else:  # versions before the compiled engine report wall time only
        wall = bench.engine_steps_per_second(map_name, n_envs, seconds, api=api)
        cpu = float("nan")
    out.put((wall, cpu, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def _in_fresh_process(target, *args):
    """Run target(*args, queue) in a spawned process and return what it puts on the queue."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=target, args=(*args, q))
    p.start()
    result = q.get()
    p.join()
    return result


def measure(map_name: str, n_envs: int, seconds: float, api: bool = False, path: str = ""):
    """(wall steps/s, CPU steps/s, peak RSS MiB) of one row in a fresh process."""
    return _in_fresh_process(_worker, path, map_name, n_envs, seconds, api)


def _first_step(out) -> None:
    t0 = time.perf_counter()
    from rllib_uas.envs.smac_api import StarCraft2Env

    env = StarCraft2Env(map_name="MMM2", seed=0)
    env.reset()
    env.step([1] * env.n_agents)
    env.get_obs(), env.get_state(), env.get_avail_actions()
    out.put(time.perf_counter() - t0)


def first_step_seconds(cache_dir: str) -> float:
    """Seconds from import to the first full env step in a fresh process using numba cache `cache_dir`."""
    previous = os.environ.get("NUMBA_CACHE_DIR")
    os.environ["NUMBA_CACHE_DIR"] = cache_dir  # the spawned process inherits it
    try:
        return _in_fresh_process(_first_step)
    finally:
        if previous is None:
            os.environ.pop("NUMBA_CACHE_DIR")
        else:
            os.environ["NUMBA_CACHE_DIR"] = previous


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--maps", default="MMM2,3s5z_vs_3s6z,27m_vs_30m")
    ap.add_argument("--envs", default="1,16,256")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--baseline", default="", help="checkout of an earlier version to measure side by side")
    ap.add_argument(
        "--compile-time",
        action="store_true",
        help="also report the first step's time with an empty and with a warm numba cache",
    )
    args = ap.parse_args()
    if args.compile_time:
        import tempfile

        with tempfile.TemporaryDirectory() as cache:
            cold, warm = first_step_seconds(cache), first_step_seconds(cache)
        print(
            f"first env step in a fresh process: {cold:.1f} s with an empty numba cache (compiling), "
            f"{warm:.1f} s with the cache\n"
        )
    base = bool(args.baseline)
    head = "| map | path | n_envs | env steps/s (wall) | per CPU-second | peak RSS MiB |"
    print(head + (" baseline steps/s (wall) | ratio |" if base else ""))
    print("|---" * (6 + 2 * base) + "|")
    rows = [
        r for m in args.maps.split(",") for r in [(m, 1, True)] + [(m, int(n), False) for n in args.envs.split(",")]
    ]
    for m, n, api in rows:
        wall, cpu, rss = measure(m, n, args.seconds, api)
        line = f"| {m} | {'StarCraft2Env' if api else 'VectorizedSMAC'} | {n} | {wall:,.0f} | {cpu:,.0f} | {rss:.0f} |"
        if base:
            b_wall = measure(m, n, args.seconds, api, path=os.path.abspath(args.baseline))[0]
            line += f" {b_wall:,.0f} | {wall / b_wall:.1f}x |"
        print(line, flush=True)


if __name__ == "__main__":
    main()
