"""End-to-end training throughput (env steps/s sampled and trained), where the time goes, and how
well the learner uses the CPU.

Every row runs in its own process with a Ray of its own (`rllib_uas.local_ray.start_own_ray`, 2 CPUs),
in-process sampling (`num_env_runners=0`, so sampling and learning alternate on this machine's 2 cores) and
`num_cpus_per_learner` (default 2) for the learner's update. Each row warms up (U-QMIX: until its
buffer holds `learning_starts_episodes`, so timed iterations learn; then 2 iterations for all)
and is timed over `--iters` iterations. Per iteration it reports sampling, split into the engine
(the vector env's step), the module forward, the env-runner connectors and the rest (episodes,
metrics), the learner update, and the rest (weight sync, metrics, callbacks; for U-QMIX, building
the padded batch from its buffer, shown apart). Then it runs one more update recording every
matrix product (shapes and FLOPs) and replays those products alone at the same thread count:
`matmul share` is that replay's time over the update's time, the fraction of what the same matrix
work reaches on this CPU. Runs are seeded, so both versions start from the same episodes. RSS is the
process's peak (driver, learner and env runner are one process here).

With --baseline DIR (a checkout of an earlier version, e.g. `git worktree add /tmp/prev <commit>`),
each row also runs that version right after, with the same settings, and the ratio is printed.
With --learner-gpus 1 the update runs on a CUDA GPU (`num_gpus_per_learner`); acting stays on the
CPU. The matrix-product replay measures CPU products, so GPU rows leave its columns empty
(cuDNN's GRU is not made of the products it records).
With --overlap, each U-MAPPO row also runs with `overlap_sampling` right after: one remote env
runner on one core collects the next batch while the update runs on one thread on the other core
(`--overlap-learner-cpus 2`: on two threads, sharing a core with the runner).
Its sampling column is then the time the iteration waited for the runner's batch, with the wall and
CPU seconds of the runner's own `sample()` (no breakdown: the runner is another process), and its
RSS column is the driver's and the runner's peaks.

    python benchmarks/train_throughput.py [--rows quickstart,u_mappo,u_qmix] [--iters 5]
        [--learner-cpus 2] [--learner-gpus 0] [--baseline DIR] [--overlap] [--overlap-learner-cpus 1]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import queue
import resource
import sys
import time
from collections import defaultdict

import numpy as np

ROWS = {
    # the README's quick start (tuned_examples/quickstart.yaml)
    "quickstart": dict(algo="U-MAPPO", map="3m1m_vs_4m", envs=16, batch=1600, epochs=15),
    # U-MAPPO on MMM2: MAPPO's SMAC batch (3,200 steps, one minibatch, 5 epochs)
    "u_mappo": dict(algo="U-MAPPO", map="MMM2", envs=16, batch=3200, epochs=5),
    # U-QMIX on MMM2: PyMARL2's ratio (128-episode batches, one update per 8 finished episodes)
    "u_qmix": dict(algo="U-QMIX", map="MMM2", envs=8, batch=128),
}


def build_config(row: dict, learner_cpus: int, learner_gpus: int = 0, overlap: bool = False):
    """The row's config; `overlap`: U-MAPPO's overlap_sampling on one remote runner (else in-process)."""
    if row["algo"] == "U-MAPPO":
        from rllib_uas.algorithms.u_mappo import UMAPPOConfig

        cfg = UMAPPOConfig().training(
            train_batch_size_per_learner=row["batch"],
            minibatch_size=row["batch"],
            num_epochs=row["epochs"],
            overlap_sampling=overlap,
        )
    else:
        from rllib_uas.algorithms.u_qmix import UQMIXConfig

        cfg = UQMIXConfig().training(
            batch_size_episodes=row["batch"],
            learning_starts_episodes=row["batch"],
            episodes_per_iteration=row["envs"],
            buffer_size_episodes=1000,
        )
    return (
        cfg.environment(env_config={"map_name": row["map"]})
        .env_runners(num_env_runners=int(overlap), num_envs_per_env_runner=row["envs"])
        .learners(num_cpus_per_learner=learner_cpus, num_gpus_per_learner=learner_gpus)
        .debugging(seed=0)
    )  # both versions sample the same first episodes


class _Timed:
    """A callable's stand-in that adds its wall time to `totals[name]`; other attributes pass through."""

    def __init__(self, fn, totals, name):
        self._fn, self._totals, self._name = fn, totals, name

    def __call__(self, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            return self._fn(*args, **kwargs)
        finally:
            self._totals[self._name] += time.perf_counter() - t0

    def __getattr__(self, item):
        return getattr(self._fn, item)


def _instrument(algo, totals) -> None:
    # U-MAPPO's overlap_sampling (U-QMIX's config has no such option): the runner is another process,
    # so time the wait for its batch
    if getattr(algo.config, "overlap_sampling", False):
        from rllib_uas.algorithms import overlapped_sampling

        overlapped_sampling.collect = _Timed(overlapped_sampling.collect, totals, "sample")

        def record_samples(runner) -> None:  # nested: Ray ships it by value to the runner's process
            """Keep (wall, CPU) seconds of each of the runner's `sample()` calls in `runner.sample_times`."""
            import time

            runner.sample_times = []
            sample = runner.sample

            def timed(*args, **kwargs):
                t, c = time.perf_counter(), time.process_time()
                try:
                    return sample(*args, **kwargs)
                finally:
                    runner.sample_times.append((time.perf_counter() - t, time.process_time() - c))

            runner.sample = timed

        algo.env_runner_group.foreach_env_runner(record_samples, local_env_runner=False)
    else:
        _instrument_runner(algo.env_runner, totals)
    learner = algo.learner_group._learner
    learner.update = _Timed(learner.update, totals, "learner")
    buffer = getattr(algo, "episode_buffer", None)
    if buffer is not None:  # U-QMIX: padded batches from the buffer
        buffer.sample = _Timed(buffer.sample, totals, "buffer")


def _instrument_runner(runner, totals) -> None:
    runner.sample = _Timed(runner.sample, totals, "sample")
    runner._env_to_module = _Timed(runner._env_to_module, totals, "connectors")
    runner._module_to_env = _Timed(runner._module_to_env, totals, "connectors")
    try:  # the column loop's own two connector steps (it calls these, not the pipelines)
        from rllib_uas import column_sampling
    except ImportError:  # a --baseline version from before it
        column_sampling = None
    for name in ("draw_actions", "module_input") if column_sampling else ():
        setattr(column_sampling, name, _Timed(getattr(column_sampling, name), totals, "connectors"))
    runner.module.forward_exploration = _Timed(runner.module.forward_exploration, totals, "module forward")
    env = runner.env.unwrapped
    env.step = _Timed(env.step, totals, "engine")


def _matmul_share(update) -> dict:
    """Run `update()` recording matrix products and the thread count they ran on, then replay them
    alone on that many threads: (GFLOP, replay seconds)."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    aten = torch.ops.aten
    shapes, threads = [], []

    class Record(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func in (aten.mm.default, aten.addmm.default, aten.bmm.default, aten.baddbmm.default):
                a, b = (args[1], args[2]) if func in (aten.addmm.default, aten.baddbmm.default) else args[:2]
                shapes.append((tuple(a.shape), tuple(b.shape)))
                threads.append(torch.get_num_threads())
            return func(*args, **(kwargs or {}))

    with Record():
        update()
    flops = sum(2 * a[-2] * a[-1] * b[-1] * (a[0] if len(a) == 3 else 1) for a, b in shapes)
    before = torch.get_num_threads()
    torch.set_num_threads(max(threads))  # what the update ran on (the baseline: 1 thread)
    operands = {s: (torch.randn(*s[0]), torch.randn(*s[1])) for s in set(shapes)}
    for a, b in operands.values():
        a @ b  # warm caches and kernels
    t0 = time.perf_counter()
    for s in shapes:
        a, b = operands[s]
        a @ b
    replay = time.perf_counter() - t0
    torch.set_num_threads(before)
    return {"gflop": flops / 1e9, "replay_s": replay}


def _worker(path: str, name: str, iters: int, learner_cpus: int, learner_gpus: int, overlap: bool, out) -> None:
    if path:
        sys.path.insert(0, path)
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    import ray

    from rllib_uas.local_ray import start_own_ray

    # the overlap row's runner reserves a CPU of its own beside the learner's
    cpus = max(2, learner_cpus + int(overlap))
    start_own_ray(num_cpus=cpus, num_gpus=learner_gpus, include_dashboard=False, log_to_driver=False)
    row = ROWS[name]
    algo = build_config(row, learner_cpus, learner_gpus, overlap).build_algo()
    try:
        while len(getattr(algo, "episode_buffer", ())) < getattr(algo.config, "learning_starts_episodes", 0):
            algo.train()
        for _ in range(2):
            algo.train()
        totals = defaultdict(float)
        _instrument(algo, totals)
        start = algo.train()["num_env_steps_sampled_lifetime"]
        totals.clear()
        t0 = time.perf_counter()
        for _ in range(iters):
            end = algo.train()["num_env_steps_sampled_lifetime"]
        wall = time.perf_counter() - t0
        per_iter = {k: v / iters for k, v in totals.items()}
        # the remote runner's own sample() (overlap rows): mean wall and CPU seconds of the last calls
        runner_sample = [
            np.mean(t[-iters:], axis=0).tolist()
            for t in algo.env_runner_group.foreach_env_runner(
                lambda r: getattr(r, "sample_times", []), local_env_runner=False
            )
            if t
        ]
        learner = algo.learner_group._learner
        # one more iteration, its update timed alone and then re-run under the recorder
        calls = []
        orig = learner.update._fn

        def keep(*args, **kwargs):
            calls.append((args, kwargs))
            return orig(*args, **kwargs)

        learner.update._fn = keep
        algo.train()
        learner.update._fn = orig
        args, kwargs = calls[-1]
        t1 = time.perf_counter()
        orig(*args, **kwargs)
        update_s = time.perf_counter() - t1
        # before the replay below: its operands (one pair per distinct product shape, many more of
        # them with length buckets) are the harness's memory, not training's
        rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

        def peak_rss_mib(runner) -> float:  # nested: Ray ships it by value to the runner's process
            import resource

            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

        runner_rss = algo.env_runner_group.foreach_env_runner(peak_rss_mib, local_env_runner=False)
        mm = _matmul_share(lambda: orig(*args, **kwargs)) if not learner_gpus else {}
    finally:
        algo.stop()
        ray.shutdown()
    out.put(
        dict(
            sps=(end - start) / wall,
            iter_s=wall / iters,
            steps_per_iter=(end - start) / iters,
            per_iter=per_iter,
            update_s=update_s,
            **mm,
            rss_mib=rss_mib,
            runner_rss_mib=runner_rss,
            runner_sample=runner_sample,
        )
    )


def measure(
    name: str, iters: int, learner_cpus: int, path: str = "", learner_gpus: int = 0, overlap: bool = False
) -> dict:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_worker, args=(path, name, iters, learner_cpus, learner_gpus, overlap, q))
    p.start()
    while True:  # the row's result, or the worker's exit without one (a crash would block q.get forever)
        try:
            result = q.get(timeout=5)
            break
        except queue.Empty:
            if not p.is_alive():
                raise RuntimeError(f"row {name}: its worker exited with code {p.exitcode} before reporting") from None
    p.join()
    return result


def _breakdown(r: dict) -> str:
    it = r["per_iter"]
    sample = it.get("sample", 0.0)
    parts = [it.get("engine", 0.0), it.get("module forward", 0.0), it.get("connectors", 0.0)]
    rest = sample - sum(parts)
    other = r["iter_s"] - sample - it.get("learner", 0.0)
    buffer = f" (buffer {it['buffer']:.2f})" if "buffer" in it else ""
    split = f" ({parts[0]:.2f} / {parts[1]:.2f} / {parts[2]:.2f} / {rest:.2f})"
    if r["runner_sample"]:  # overlap: the wait, and the runner's own sample() per call (wall, CPU)
        split = "".join(f" wait; runner {w:.2f} wall, {c:.2f} CPU" for w, c in r["runner_sample"])
    return f"{sample:.2f}{split} | {it.get('learner', 0.0):.2f} | {other:.2f}{buffer}"


def _products(r: dict) -> str:
    """The learner's GFLOP/s and matmul share columns (empty for a GPU row: no CPU replay)."""
    if "gflop" not in r:
        return " | "
    return f"{r['gflop'] / r['update_s']:.1f} | {r['replay_s'] / r['update_s']:.0%}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", default=",".join(ROWS))
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--learner-cpus", type=int, default=2)
    ap.add_argument("--learner-gpus", type=int, default=0, help="1: the update on a CUDA GPU")
    ap.add_argument("--baseline", default="", help="a checkout of an earlier version to run side by side")
    ap.add_argument("--overlap", action="store_true", help="U-MAPPO rows also with overlap_sampling, side by side")
    ap.add_argument(
        "--overlap-learner-cpus", type=int, default=1, help="the overlap row's update threads (its runner takes 1 more)"
    )
    args = ap.parse_args()
    print(
        "| row | algorithm | map | envs | batch | version | env steps/s | s per iteration: sampling "
        "(engine / module / connectors / rest) | learner | other | learner GFLOP/s | matmul share "
        "| peak RSS MiB | env steps per iteration |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    )
    for name in args.rows.split(","):
        row = ROWS[name]
        batch = (
            f"{row['batch']} steps, {row['epochs']} epochs"
            if row["algo"] == "U-MAPPO"
            else f"{row['batch']} episodes, 1 update / {row['envs']} episodes"
        )
        results = [("this", measure(name, args.iters, args.learner_cpus, learner_gpus=args.learner_gpus))]
        if args.baseline:
            results.append(("baseline", measure(name, args.iters, args.learner_cpus, args.baseline, args.learner_gpus)))
        if args.overlap and row["algo"] == "U-MAPPO":  # the runner takes one core, the update the other
            results.append(
                ("overlap", measure(name, args.iters, args.overlap_learner_cpus, "", args.learner_gpus, overlap=True))
            )
        for version, r in results:
            rss = f"{r['rss_mib']:.0f}" + "".join(f" + runner {m:.0f}" for m in r["runner_rss_mib"])
            print(
                f"| {name} | {row['algo']} | {row['map']} | {row['envs']} | {batch} | {version} | {r['sps']:,.0f} | "
                f"{_breakdown(r)} | {_products(r)} | {rss} | {r['steps_per_iter']:,.0f} |",
                flush=True,
            )
        by = dict(results)
        for label, a, b in (("ratio", "this", "baseline"), ("overlap / this", "overlap", "this")):
            if a in by and b in by:
                print(f"| {name} | | | | | {label} | {by[a]['sps'] / by[b]['sps']:.2f}x | | | | | | | |", flush=True)
        print(json.dumps({name: by}), file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
