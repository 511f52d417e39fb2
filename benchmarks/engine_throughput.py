"""Embedded-engine throughput: env steps/s with obs, state and masks computed every step.

Random valid actions; finished battles are reset in place. Each row runs in its own process (so
peak memory is its own), pinned to one core, and reports env steps per wall second and per
CPU-second of that process. With --baseline DIR (a checkout of an earlier version, e.g. made with
`git worktree add /tmp/prev <commit>`), every row also runs that version's engine right after,
and the ratio of the two is printed. Usage:

    python benchmarks/engine_throughput.py [--maps MMM2,3s5z_vs_3s6z,27m_vs_30m] [--envs 1,16,256]
        [--seconds 5] [--baseline DIR] [--compile-time]

Every version runs under this checkout's harness (`rllib_uas/envs/engine/bench.py`: the workload and
its random-action draw), so a ratio compares engines only.

With --smax-python PY (the python of a virtualenv with jaxmarl), the run is instead ours against
JaxMARL's SMAX on the maps both have (3m, 2s3z, 3s5z_vs_3s6z, 27m_vs_30m), at 1, 16, 256 and 1024 envs
unless --envs says otherwise: each row runs our VectorizedSMAC, then SMAX one call per step (loop),
then SMAX with its steps fused in `lax.scan` (benchmarks/smax_worker.py), each in its own process
pinned to the same core, and prints our ratio to each. SMAX's compile time is reported, not timed.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def _harness():
    """This checkout's harness (rllib_uas/envs/engine/bench.py) loaded by file path, so an older
    checkout's engine runs under the same workload code."""
    import importlib.util

    path = os.path.join(HERE, os.pardir, "rllib_uas", "envs", "engine", "bench.py")
    spec = importlib.util.spec_from_file_location("uas_engine_harness", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _worker(path: str, map_name: str, n_envs: int, seconds: float, api: bool, threads: int, out) -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    if hasattr(os, "sched_setaffinity"):  # one core per engine thread
        os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[: max(threads, 1)]))
    if path:  # the harness imports the engine from the first checkout on sys.path: this one
        sys.path.insert(0, path)
    mode = dict(streams="per_env", threads=threads) if threads else {}  # per-env random streams
    wall, cpu = _harness().engine_throughput(map_name, n_envs, seconds, api=api, **mode)
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


def measure(map_name: str, n_envs: int, seconds: float, api: bool = False, path: str = "", threads: int = 0):
    """(wall steps/s, CPU steps/s, peak RSS MiB) of one row in a fresh process; `threads` > 0: the
    engine with per-env random streams on that many threads (and cores)."""
    return _in_fresh_process(_worker, path, map_name, n_envs, seconds, api, threads)


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


def _last_line(text: str) -> str:
    """A failed process's last line of output: its error, for a one-line message."""
    return (text.strip().splitlines() or ["no output"])[-1]


def measure_smax(python: str, map_name: str, n_envs: int, seconds: float, mode: str) -> dict:
    """One SMAX row in its own process (benchmarks/smax_worker.py under `python`), pinned to the core
    our rows use: {wall, cpu, rss_mib, compile_s, steps_per_call}."""
    cmd = [python, os.path.join(HERE, "smax_worker.py"), "--map", map_name, "--envs", str(n_envs)]
    cmd += ["--mode", mode, "--seconds", str(seconds)]
    if hasattr(os, "sched_getaffinity"):
        cmd = ["taskset", "-c", str(sorted(os.sched_getaffinity(0))[0])] + cmd
    out = subprocess.run(cmd, capture_output=True, text=True)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode or not lines:
        raise RuntimeError(
            f"the SMAX worker failed under {python}: {_last_line(out.stderr)} (--smax-python: a python with jaxmarl)"
        )
    return json.loads(lines[-1])


def check_smax_python(python: str) -> None:
    """Fail before any row runs when `python` cannot import jaxmarl."""
    try:
        out = subprocess.run([python, "-c", "import jaxmarl"], capture_output=True, text=True)
    except OSError as err:
        hint = "give the python of a virtualenv with jaxmarl"
        raise RuntimeError(f"--smax-python {python}: {err.strerror}; {hint}") from None
    if out.returncode:
        hint = "`pip install jaxmarl` in its virtualenv"
        raise RuntimeError(f"--smax-python {python} cannot import jaxmarl ({_last_line(out.stderr)}); {hint}")


def smax_side_by_side(python: str, maps: list, envs: list, seconds: float) -> None:
    """Ours (VectorizedSMAC) against SMAX loop and scan, row by row (see the module docstring)."""
    print(
        "| map | n_envs | ours env steps/s | SMAX loop | ours / loop | SMAX scan (steps per call) | ours / scan "
        "| SMAX compile s (loop, scan) | peak RSS MiB (ours, SMAX) |"
    )
    print("|---" * 9 + "|")
    for m in maps:
        for n in envs:
            ours, _, rss = measure(m, n, seconds)
            loop = measure_smax(python, m, n, seconds, "loop")
            scan = measure_smax(python, m, n, seconds, "scan")
            print(
                f"| {m} | {n} | {ours:,.0f} | {loop['wall']:,.0f} | {ours / loop['wall']:.2f}x "
                f"| {scan['wall']:,.0f} ({scan['steps_per_call']}) | {ours / scan['wall']:.2f}x "
                f"| {loop['compile_s']:.1f}, {scan['compile_s']:.1f} "
                f"| {rss:.0f}, {max(loop['rss_mib'], scan['rss_mib']):.0f} |",
                flush=True,
            )


def threads_side_by_side(maps: list, envs: list, seconds: float, threads: int) -> None:
    """The default engine (shared random stream, one thread) against per-env random streams on one
    and on `threads` threads (pinned to that many cores), row by row."""
    print(
        f"| map | n_envs | shared stream, 1 thread | per-env streams, 1 thread | per-env streams, {threads} threads "
        f"| {threads} threads / shared | CPU-seconds per env step, {threads} threads / shared |"
    )
    print("|---" * 7 + "|")
    for m in maps:
        for n in envs:
            shared, shared_cpu, _ = measure(m, n, seconds)
            one = measure(m, n, seconds, threads=1)[0]
            many, many_cpu, _ = measure(m, n, seconds, threads=threads)
            print(
                f"| {m} | {n} | {shared:,.0f} | {one:,.0f} | {many:,.0f} | {many / shared:.2f}x "
                f"| {shared_cpu / many_cpu:.2f} |",
                flush=True,
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--maps", help="default MMM2,3s5z_vs_3s6z,27m_vs_30m (with --smax-python: SMAX's four)")
    ap.add_argument("--envs", help="default 1,16,256 (with --smax-python: 1,16,256,1024)")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--baseline", default="", help="checkout of an earlier version to measure side by side")
    ap.add_argument(
        "--compile-time",
        action="store_true",
        help="also report the first step's time with an empty and with a warm numba cache",
    )
    ap.add_argument("--smax-python", default="", help="python of a virtualenv with jaxmarl: run ours against SMAX")
    ap.add_argument(
        "--threads",
        type=int,
        default=0,
        help="instead: the default engine against per-env random streams on 1 and on this many threads",
    )
    args = ap.parse_args()
    if args.threads:
        maps = (args.maps or "MMM2,3s5z_vs_3s6z,27m_vs_30m").split(",")
        threads_side_by_side(
            maps, [int(n) for n in (args.envs or "16,256,1024").split(",")], args.seconds, args.threads
        )
        return
    if args.smax_python:
        maps = (args.maps or "3m,2s3z,3s5z_vs_3s6z,27m_vs_30m").split(",")
        envs = [int(n) for n in (args.envs or "1,16,256,1024").split(",")]
        try:
            check_smax_python(args.smax_python)
            smax_side_by_side(args.smax_python, maps, envs, args.seconds)
        except (RuntimeError, OSError) as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(2)
        return
    args.maps, args.envs = args.maps or "MMM2,3s5z_vs_3s6z,27m_vs_30m", args.envs or "1,16,256"
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
            line += f" {b_wall:,.0f} | {wall / b_wall:.2f}x |"
        print(line, flush=True)


if __name__ == "__main__":
    main()
