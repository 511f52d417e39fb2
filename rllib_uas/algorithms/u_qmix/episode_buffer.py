"""A whole-episode replay buffer (pymarl's EpisodeBatch): capacity in episodes and MB, padded sampling.

RLlib's multi-agent episode buffer cannot sample RNN sequences, and QMIX needs every agent of an
env step in one row plus the state for the mixer: we store the team view's episodes as arrays.
A sample is a dict of [B, T+1, ...] arrays (T = longest sampled episode) with
  actions [B, T, n], rewards [B, T], terminated [B, T], filled [B, T] (1 on real steps);
padded observation steps keep only action 0 available so masked maxima stay finite.

Episodes are stored compactly where that is exact (`compact`): masks and alive flags as bools,
groups as int8, actions as int16, and the last-action one-hots not at all when they are the
previous step's actions (always, for the team view): rebuilt when sampled. The oldest episodes go
first once `capacity` episodes or `capacity_mb` megabytes are exceeded. The buffer's state (for
checkpoints) is its episodes, oldest first, its insertion counter and its sampling RNG.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

import numpy as np

from rllib_uas.team_obs import STORED_OBS_KEYS


def episode_arrays(episode) -> Dict[str, np.ndarray]:
    """A finished team-view SingleAgentEpisode -> arrays (obs keys [T+1, ...], actions [T, n], ...)."""
    T = len(episode)
    obs = episode.get_observations(slice(0, T + 1))
    out = {k: np.asarray(obs[k], dtype=np.float32) for k in STORED_OBS_KEYS if k in obs}
    out["actions"] = np.asarray(episode.get_actions(slice(0, T)), dtype=np.int64)
    out["rewards"] = np.asarray(episode.get_rewards(slice(0, T)), dtype=np.float32)
    term = np.zeros(T, dtype=np.float32)
    if episode.is_terminated:  # a time-limit truncation bootstraps; a win/loss/draw does not
        term[-1] = 1.0
    out["terminated"] = term
    return out


DERIVED_LAST_ACTION = "last_action_is_previous_action"  # marker key of a compact episode
_COMPACT_DTYPES = {
    "action_mask": np.bool_,
    "alive": np.bool_,
    "terminated": np.bool_,
    "group": np.int8,
    "group_masks": np.bool_,
    "actions": np.int16,
}


def compact(arrays: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """The exact compact form of an episode (see the module docstring); idempotent."""
    if DERIVED_LAST_ACTION in arrays or any(arrays[k].dtype == d for k, d in _COMPACT_DTYPES.items() if k in arrays):
        return arrays
    out = {}
    for k, v in arrays.items():
        dtype = _COMPACT_DTYPES.get(k)
        narrow = v.astype(dtype) if dtype is not None else v
        out[k] = narrow if dtype is not None and np.array_equal(narrow, v) else v
    last = arrays.get("last_action")
    if last is not None and not last[0].any() and np.array_equal(last[1:], _one_hot(arrays["actions"], last.shape[-1])):
        del out["last_action"]
        out[DERIVED_LAST_ACTION] = np.asarray(last.shape[-1], dtype=np.int32)
    return out


def expand(stored: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """The float32/int64 arrays of a stored episode, as `episode_arrays` gave them."""
    out = {
        k: v.astype(np.int64 if k == "actions" else np.float32) if k in _COMPACT_DTYPES else v
        for k, v in stored.items()
        if k != DERIVED_LAST_ACTION
    }
    if DERIVED_LAST_ACTION in stored:
        n_actions = int(stored[DERIVED_LAST_ACTION])
        actions = out["actions"]
        last = np.zeros((len(actions) + 1,) + actions.shape[1:] + (n_actions,), np.float32)
        last[1:] = _one_hot(actions, n_actions)
        out["last_action"] = last
    return out


def _one_hot(actions: np.ndarray, n: int) -> np.ndarray:
    return np.eye(n, dtype=np.float32)[actions.astype(np.int64)]


def stored_bytes_per_step(observation_space) -> int:
    """Bytes one env step takes in the buffer for a team observation space (compact storage)."""

    def itemsize(key: str) -> int:
        return np.dtype(_COMPACT_DTYPES.get(key, np.float32)).itemsize

    n = int(np.prod(observation_space["alive"].shape))
    total = itemsize("rewards") + itemsize("terminated") + n * itemsize("actions")
    for key, space in observation_space.spaces.items():
        if key != "last_action":  # derived from the actions
            total += int(np.prod(space.shape)) * itemsize(key)
    return total


def episode_nbytes(stored: Dict[str, np.ndarray]) -> int:
    return int(sum(v.nbytes for v in stored.values()))


class EpisodeBuffer:
    def __init__(self, capacity: int, seed: Optional[int] = None, capacity_mb: Optional[float] = None):
        if capacity < 1:
            raise ValueError(f"episode buffer capacity must be >= 1 episode, got {capacity}")
        if capacity_mb is not None and not capacity_mb > 0:
            raise ValueError(f"episode buffer capacity_mb must be > 0 (or None), got {capacity_mb}")
        self.capacity = int(capacity)
        self.capacity_bytes = None if capacity_mb is None else int(capacity_mb * 2**20)
        self.episodes: List[Dict[str, np.ndarray]] = []  # compact, oldest first
        self.nbytes = 0
        self.num_added = 0
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.episodes)

    def add(self, episodes) -> int:
        """Add finished episodes (SingleAgentEpisodes or array dicts); returns how many were added."""
        added = 0
        for ep in episodes:
            stored = compact(ep if isinstance(ep, dict) else episode_arrays(ep))
            self.episodes.append(stored)
            self.nbytes += episode_nbytes(stored)
            self.num_added += 1
            added += 1
        self._evict()
        return added

    def _evict(self) -> None:
        """Drop the oldest episodes beyond the capacity in episodes or bytes (one always stays)."""
        drop, freed = 0, 0
        while len(self.episodes) - drop > 1 and (
            len(self.episodes) - drop > self.capacity
            or (self.capacity_bytes is not None and self.nbytes - freed > self.capacity_bytes)
        ):
            freed += episode_nbytes(self.episodes[drop])
            drop += 1
        self.nbytes -= freed
        del self.episodes[:drop]

    def episode(self, i: int) -> Dict[str, np.ndarray]:
        """Episode i (0 = oldest) as float32/int64 arrays."""
        return expand(self.episodes[i])

    def sample(self, batch_size: int) -> Dict[str, np.ndarray]:
        if not self.episodes:
            raise ValueError("cannot sample from an empty episode buffer")
        idx = self.rng.choice(len(self.episodes), size=batch_size, replace=len(self.episodes) < batch_size)
        return pad_episodes([self.episodes[i] for i in idx])

    def get_state(self) -> Dict[str, Any]:
        return {
            "capacity": self.capacity,
            "capacity_bytes": self.capacity_bytes,
            "episodes": self.episodes,
            "num_added": self.num_added,
            "rng": self.rng.bit_generator.state,
        }

    def set_state(self, state: Dict[str, Any]) -> None:
        episodes = list(state["episodes"])
        if "next_index" in state and len(episodes) == state["capacity"]:  # an older ring-buffer checkpoint
            episodes = episodes[state["next_index"] :] + episodes[: state["next_index"]]
        self.capacity = state["capacity"]
        self.capacity_bytes = state.get("capacity_bytes", self.capacity_bytes)
        self.episodes = [compact(e) for e in episodes]
        self.nbytes = sum(episode_nbytes(e) for e in self.episodes)
        self.num_added = state["num_added"]
        self.rng.bit_generator.state = state["rng"]
        self._evict()


def pad_episodes(episodes: List[Dict[str, np.ndarray]]) -> Dict[str, np.ndarray]:
    """Episodes (stored or plain arrays) -> one padded batch of float32/int64 arrays."""
    episodes = [expand(e) for e in episodes]
    B = len(episodes)
    T = max(len(e["rewards"]) for e in episodes)
    out: Dict[str, np.ndarray] = {}
    for k in episodes[0]:
        first = episodes[0][k]
        steps = T + 1 if k in STORED_OBS_KEYS else T
        arr = np.zeros((B, steps) + first.shape[1:], dtype=first.dtype)
        for b, e in enumerate(episodes):
            arr[b, : len(e[k])] = e[k]
        out[k] = arr
    out["filled"] = np.zeros((B, T), dtype=np.float32)
    for b, e in enumerate(episodes):
        n_obs = len(e["rewards"]) + 1
        out["filled"][b, : n_obs - 1] = 1.0
        out["action_mask"][b, n_obs:, :, 0] = 1.0  # padded steps: a finite masked max
        if "group" in out:
            out["group"][b, n_obs:] = e["group"][0]
    return out
