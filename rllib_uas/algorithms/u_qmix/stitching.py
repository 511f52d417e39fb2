"""Whole episodes from the chunks that `EnvRunner.sample(num_timesteps=...)` returns.

Sampling by timesteps keeps every battle running across calls: an unfinished episode comes back as
a chunk and continues in the next call as a chunk with the same `id_`, whose first observation
repeats the previous chunk's last one. Stitching them gives the replay buffer every episode, of
every length, in the order they finish, with no step thrown away (PyMARL2's parallel runner gives
the same distribution). A pending episode that no chunk of the latest call continues belonged to a
runner that died or was reset: it is dropped whole, never stored half.
"""

from __future__ import annotations

from typing import Dict, Iterable, List, Tuple

import numpy as np

from rllib_uas.algorithms.u_qmix.episode_buffer import episode_arrays
from rllib_uas.team_obs import STORED_OBS_KEYS


class EpisodeStitcher:
    def __init__(self) -> None:
        self.pending: Dict[str, Dict[str, np.ndarray]] = {}
        self.num_dropped_episodes = 0
        self.num_dropped_steps = 0

    def add(self, chunks: Iterable) -> Tuple[List[Dict[str, np.ndarray]], int]:
        """Take one call's chunks from all runners; returns (finished episodes as arrays, env steps)."""
        finished: List[Dict[str, np.ndarray]] = []
        still_running: Dict[str, Dict[str, np.ndarray]] = {}
        steps = 0
        for chunk in chunks:
            steps += len(chunk)
            arrays = episode_arrays(chunk)
            head = self.pending.pop(chunk.id_, None)
            if head is not None:
                arrays = _join(head, arrays)
            elif chunk.t_started > 0:  # its beginning was dropped: drop the rest too
                self._drop(arrays)
                continue
            if chunk.is_done:
                finished.append(arrays)
            else:
                still_running[chunk.id_] = arrays
        for arrays in self.pending.values():  # not continued: their runner is gone
            self._drop(arrays)
        self.pending = still_running
        return finished, steps

    def _drop(self, arrays: Dict[str, np.ndarray]) -> None:
        self.num_dropped_episodes += 1
        self.num_dropped_steps += len(arrays["rewards"])


def _join(head: Dict[str, np.ndarray], tail: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """Concatenate two chunks of one episode; the tail's first observation is the head's last."""
    if not np.array_equal(head["state"][-1], tail["state"][0]):
        raise RuntimeError(
            "episode chunks do not join: the continuation's first state differs from the "
            "previous chunk's last (an EnvRunner returned chunks out of order)"
        )
    return {k: np.concatenate([head[k], tail[k][1:] if k in STORED_OBS_KEYS else tail[k]]) for k in head}
