"""Stopping a Ray this process started (`ray.init(address="local")`), without Ray's exit-hook waits.

Left to Ray's own exit hook, a local Ray takes about 1.4 s to stop on the development machine
(measured with `ray.shutdown` around an idle 2-CPU Ray): the hook sleeps 0.5 s so that workers' log
lines can still print, and the autoscaler monitor, sent SIGTERM after the GCS is already gone, tries
to report its "failure" to that GCS until `ray.shutdown` gives up on it after 1 s and kills it. A run
that has returned from `Tuner.fit` has no worker lines left to print, and a single-machine Ray's
monitor has nothing to clean up, so both waits are skipped here (0.4 s, same measurement).
"""

from __future__ import annotations

import socket
from contextlib import contextmanager
from typing import Any, Iterator, Optional

# how long a cluster's head may take to accept a connection before we say nobody answers
CONNECT_TIMEOUT_S = 5.0


def check_address(address: str) -> None:
    """Fail at once, saying what to do, when no Ray answers at `address` (host:port of a head's GCS,
    or ray://host:port). Given an address where nothing listens, `ray.init` retries for minutes.
    "auto" and "local" are left to `ray.init` (which fails fast for them)."""
    if address in ("auto", "local"):
        return
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(
            f"Ray address {address!r}: give the head's host:port (e.g. 10.0.0.1:6379), ray://host:port or auto"
        )
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as err:
        raise ValueError(
            f"no Ray cluster answers at {address} ({err.strerror or err}): start its head there "
            "(ray start --head) or give the address `ray status` prints on the head"
        ) from None


def start_own_ray(**init_kwargs: Any) -> None:
    """Start a Ray of this process's own (`ray.init(address="local")`). Without an address, `ray.init`
    joins any cluster already running on this machine (`ray start`), another job's, where our work
    competes for its CPUs, dies with it, or is refused when `num_cpus` is given."""
    import ray

    ray.init(address="local", **init_kwargs)


@contextmanager
def ray_for_run(address: Optional[str] = None, **init_kwargs: Any) -> Iterator[bool]:
    """Join the Ray at `address`, or start a Ray of our own (`start_own_ray`). A Ray already initialized
    in this process is used as it is. Yields whether the Ray is our own; an own Ray is stopped on the
    way out (`stop_local_ray`)."""
    import ray

    own = not ray.is_initialized() and not address
    if not ray.is_initialized():
        if address:
            check_address(address)
            try:
                ray.init(address=address, **init_kwargs)
            except ConnectionError:  # "auto" with no Ray on this machine
                raise ValueError(
                    f"no Ray cluster found at {address!r}: start one (ray start --head) or leave the address out "
                    "to run on a Ray of this process's own"
                ) from None
        else:
            start_own_ray(**init_kwargs)
    try:
        yield own
    finally:
        if own:
            stop_local_ray()


def stop_local_ray() -> None:
    """Kill the local Ray's autoscaler monitor, then `ray.shutdown()`; a no-op when Ray is not running."""
    import ray

    if not ray.is_initialized():
        return
    try:  # Ray's process table is internal: if it moves, this falls back to a plain (slower) shutdown
        from ray._private import ray_constants
        from ray._private.worker import _global_node as node

        monitors = node.all_processes.get(ray_constants.PROCESS_TYPE_MONITOR, []) if node is not None else []
    except (ImportError, AttributeError):
        monitors = []
    for info in monitors:
        if info.process.poll() is None:
            info.process.kill()
            info.process.wait()
    ray.shutdown()
