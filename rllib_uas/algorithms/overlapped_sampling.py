"""Sampling overlapped with learning: the remote env runners collect the next batch while the
learner updates on the current one (U-MAPPO's `overlap_sampling`).

RLlib's PPO alternates: sample a batch on the env runners, update on it, send the new weights, sample
again; on a 2-core machine one core idles while the other learns. Here each iteration
1. waits for the batch its runners were already collecting,
2. sends them the learner's current weights (and merges/broadcasts the connector states and the
   env-step count, as RLlib does after every iteration),
3. starts their next batch, and
4. updates on the batch from step 1 while they collect.

A runner executes its calls in order, so the weights reach it before the next `sample` starts. The
price: every batch after the first was collected with the weights from before the previous update,
one update stale. The U-MAPPO learner then clips around the policy at the start of its update and
weights by pi_prox / pi_old (the decoupled objective, `u_mappo/learner.py`); clipped against the
stale logits instead, it learned markedly less per env step (BENCHMARKS.md). It is not synchronous
MAPPO, which is why it is an option, off by default.

RLlib's own after-iteration state sync (`Algorithm.train`) would block on the busy runners, so the
config turns it off (`_dont_auto_sync_env_runner_states`, as IMPALA does) and step 2 does it while
the runners are idle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, List, Optional

import ray

TAG = "overlapped_sample"


@dataclass
class SampledBatch:
    """One batch from the remote runners: their episodes, connector states, metrics and indices."""

    episodes: List[Any] = field(default_factory=list)
    connector_states: List[Any] = field(default_factory=list)
    metrics: List[Any] = field(default_factory=list)
    runner_ids: List[int] = field(default_factory=list)


def start(env_runner_group) -> None:
    """Each healthy remote runner without a batch in flight starts one `sample()` (its configured
    steps) and returns at once."""
    env_runner_group.foreach_env_runner_async("sample_get_state_and_metrics", tag=TAG)


def in_flight(env_runner_group) -> int:
    """Batches started and not yet collected (a failed call no longer counts)."""
    return env_runner_group.num_in_flight_async_reqs(TAG)


def collect(env_runner_group, timeout_s: Optional[float]) -> SampledBatch:
    """Wait up to `timeout_s` (None: no limit) for the batches in flight. A runner that fails
    contributes nothing (RLlib's fault tolerance restarts it); one still sampling at the timeout
    stays in flight and its batch comes with the next call."""
    out = SampledBatch()
    if not in_flight(env_runner_group):
        return out
    for runner_id, (episodes_ref, states, metrics) in env_runner_group.fetch_ready_async_reqs(
        tags=TAG, timeout_seconds=timeout_s
    ):
        out.episodes.extend(ray.get(episodes_ref))
        out.connector_states.append(states)
        out.metrics.append(metrics)
        out.runner_ids.append(runner_id)
    return out


def discard(env_runner_group) -> None:
    """Wait for the batches in flight and drop them (before a restore: the old weights played them)."""
    while in_flight(env_runner_group):
        collect(env_runner_group, timeout_s=None)
