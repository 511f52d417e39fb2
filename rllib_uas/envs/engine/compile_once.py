"""The engine's kernels compiled once per checkout, whichever process gets there first.

numba compiles the kernels on their first call and caches them on disk (`cache=True`); a fresh
checkout pays that compile once (docs/engine.md has the time). Two things make it cheaper:

- One process compiles, the others wait: every process takes an exclusive file lock around its
  first battle of a kind (a fixed map or a SMACv2 scenario, and a random-stream mode), played as a
  tiny dry run. The first compiles and writes the cache; the others then load it instead of
  compiling the same kernels side by side (env runners, Tune trials, test workers).
- Cached kernels of older sources are dropped first (`drop_stale_kernels`): numba checks a cached
  kernel against the time stamp of the file that defines it only, not of the files whose code it
  inlined, so a kernel in simulate.py would otherwise keep running an edited ai.py's old code.
- `rllib train` starts the compile in a background process as soon as the experiment file is known
  good (`start_background_compile`), so it overlaps Ray's start-up, the imports and the algorithm's
  build, instead of following them.

Run as a module (`python -m rllib_uas.envs.engine.compile_once [--features] MAP STREAMS ...`) it
compiles for each (map, stream mode) pair given and exits.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import subprocess
import sys
import tempfile
from typing import Iterable, Iterator, List, Optional, Set, Tuple

import numpy as np

from rllib_uas.file_lock import file_lock

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
# one lock per checkout: kernels of two checkouts are cached apart, so they need not wait for each other
LOCK_PATH = os.path.join(
    tempfile.gettempdir(), f"rllib_uas-engine-compile-{hashlib.sha1(_PACKAGE_DIR.encode()).hexdigest()[:12]}.lock"
)
_ready: Set[Tuple[bool, str]] = set()  # kinds this process has played a battle of
_SOURCES_STAMP = "kernel_sources.sha1"  # the sources' digest, kept next to numba's cache of the kernels
_sources_checked = False


def sources_digest(package_dir: str = _PACKAGE_DIR) -> str:
    """SHA-1 of every engine source file (names and contents), in name order."""
    h = hashlib.sha1()
    for name in sorted(os.listdir(package_dir)):
        if name.endswith(".py"):
            with open(os.path.join(package_dir, name), "rb") as f:
                h.update(name.encode() + b"\0" + f.read() + b"\0")
    return h.hexdigest()


def kernel_cache_dir() -> str:
    """Where numba caches the engine's kernels: next to the sources, under NUMBA_CACHE_DIR when set,
    or in the user's cache directory when the sources' directory is read-only (numba decides)."""
    from rllib_uas.envs.engine.simulate import step_envs

    return step_envs._cache._cache_path


def drop_stale_kernels(cache_dir: Optional[str] = None, package_dir: str = _PACKAGE_DIR) -> bool:
    """Delete numba's cached engine kernels when any engine source changed since they were cached
    (the digest is kept next to them); True when it deleted them. numba itself checks a kernel only
    against the stamp of its own file, while the step kernel inlines ai.py's and combat.py's code.
    Done once per process, under its own short lock (not the compile lock, which a compile holds for
    seconds). `cache_dir`: default numba's (kernel_cache_dir)."""
    global _sources_checked
    if _sources_checked:
        return False
    _sources_checked = True
    digest = sources_digest(package_dir)
    cache_dir = cache_dir or kernel_cache_dir()
    stamp = os.path.join(cache_dir, _SOURCES_STAMP)
    with file_lock(LOCK_PATH + ".sources"):
        try:
            with open(stamp) as f:
                if f.read().strip() == digest:
                    return False
        except OSError:
            pass
        try:
            os.makedirs(cache_dir, exist_ok=True)
            stale = [n for n in os.listdir(cache_dir) if n.endswith((".nbi", ".nbc"))]
            for name in stale:
                os.remove(os.path.join(cache_dir, name))
            with open(stamp + ".tmp", "w") as f:
                f.write(digest + "\n")
            os.replace(stamp + ".tmp", stamp)
        except OSError:
            return False  # cannot be written: numba will not cache there either
        return bool(stale)


@contextlib.contextmanager
def compile_lock(path: str = LOCK_PATH) -> Iterator[None]:
    """Hold the checkout's compile lock (blocks while another process compiles). Without a lock to be
    had, each process compiles on its own, as numba does by itself."""
    with file_lock(path):
        yield


def _kind(map_name: str, scenario: object, streams: str) -> Tuple[bool, str]:
    """What decides which kernel versions a battle compiles: every fixed map shares one set of kernel
    signatures, SMACv2 scenarios (a table per env) may differ, and per-env streams use their own kernel."""
    from rllib_uas.envs.engine.scenarios import is_scenario

    return (scenario is not None or is_scenario(map_name), streams)


def ensure_compiled(map_name: str, scenario: Optional[object] = None, streams: str = "shared") -> None:
    """Before this process's first battle of its kind: a tiny dry run under the compile lock, which
    compiles the kernels (or loads them from numba's cache when another process compiled them)."""
    kind = _kind(map_name, scenario, streams)
    if kind in _ready:
        return
    _ready.add(kind)  # first: the dry run's own VectorizedSMAC comes back here
    try:
        drop_stale_kernels()
        with compile_lock():
            dry_run(map_name, scenario, streams)
    except BaseException:
        _ready.discard(kind)
        raise


def dry_run(map_name: str, scenario: Optional[object] = None, streams: str = "shared", part: str = "all") -> None:
    """Two battles for two steps each, one reset: every kernel of a training step is called once.

    The battle step's kernel, the longest to compile, goes first. `part="features"`: everything but
    that kernel (its step is skipped), for a second process to compile alongside (`main`)."""
    from rllib_uas.envs.engine.vec_smac import VectorizedSMAC

    env = VectorizedSMAC(map_name, n_envs=2, seed=0, scenario=scenario, engine_streams=streams)
    env.reset()
    if part == "features":
        env.engine.step = lambda actions, active=None: None  # no battle kernel: the other process has it
    else:
        env.engine.step(np.ones((2, env.n_agents), np.int64))  # stop orders: valid for any unit
    for _ in range(2):
        avail = env.avail_actions()
        env.observations(), env.states()
        env.step(np.argmax(avail, axis=-1))
    env.reset(np.array([True, False]))
    env.avail_actions(), env.observations(), env.states()
    env.close()


def start_background_compile(kinds: Iterable[Tuple[str, str]]) -> List[subprocess.Popen]:
    """Compile for each (map, stream mode) in the background: one process compiles everything under
    the lock, starting with the battle step's kernel, while a second compiles the rest (features,
    rewards, spawning) alongside, so a process waiting on the lock waits about as long as the step's
    kernel takes. Both are stopped at this process's exit if still running (the lock goes with them,
    and numba writes each cache file whole or not at all)."""
    args = [a for kind in dict.fromkeys(kinds) for a in kind]
    if not args:
        return []
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "rllib_uas.envs.engine.compile_once", *part, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for part in ([], ["--features"])
    ]
    atexit.register(lambda: [p.kill() for p in procs if p.poll() is None])
    return procs


def main(argv: List[str]) -> int:
    features = argv[:1] == ["--features"]
    argv = argv[1:] if features else argv
    if not argv or len(argv) % 2:
        print(
            "usage: python -m rllib_uas.envs.engine.compile_once [--features] MAP STREAMS [MAP STREAMS ...]",
            file=sys.stderr,
        )
        return 2
    # the package's module, not this __main__ copy: one set of ready kinds, so the dry run's own
    # VectorizedSMAC does not take the lock a second time
    from rllib_uas.envs.engine import compile_once

    if features and hasattr(os, "nice"):
        os.nice(10)  # it has time to spare: the step kernel and Ray's start-up come first
    for map_name, streams in zip(argv[::2], argv[1::2]):
        if features:  # no lock: it compiles what the locked process reaches last, and may lose the race
            compile_once.drop_stale_kernels()
            compile_once._ready.add(compile_once._kind(map_name, None, streams))
            compile_once.dry_run(map_name, streams=streams, part="features")
        else:
            compile_once.ensure_compiled(map_name, streams=streams)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
