"""A whole-episode replay buffer (pymarl's EpisodeBatch): capacity in episodes, padded sampling.

RLlib's multi-agent episode buffer cannot sample RNN sequences, and QMIX needs every agent of an
env step in one row plus the state for the mixer: we store the team view's episodes as arrays.
A sample is a dict of [B, T+1, ...] arrays (T = longest sampled episode) with
  actions [B, T, n], rewards [B, T], terminated [B, T], filled [B, T] (1 on real steps);
padded observation steps keep only action 0 available so masked maxima stay finite.
The buffer's state (for checkpoints) is its episodes and insertion counter.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

import numpy as np

OBS_KEYS = ("obs", "action_mask", "state", "alive", "group", "last_action")


def episode_arrays(episode) -> Dict[str, np.ndarray]:
    """A finished team-view SingleAgentEpisode -> arrays (obs keys [T+1, ...], actions [T, n], ...)."""
    T = len(episode)
    obs = episode.get_observations(slice(0, T + 1))
    out = {k: np.asarray(obs[k], dtype=np.float32) for k in OBS_KEYS if k in obs}
    out["actions"] = np.asarray(episode.get_actions(slice(0, T)), dtype=np.int64)
    out["rewards"] = np.asarray(episode.get_rewards(slice(0, T)), dtype=np.float32)
    term = np.zeros(T, dtype=np.float32)
    if episode.is_terminated:  # a time-limit truncation bootstraps; a win/loss/draw does not
        term[-1] = 1.0
    out["terminated"] = term
    return out


class EpisodeBuffer:
    def __init__(self, capacity: int, seed: Optional[int] = None):
        if capacity < 1:
            raise ValueError(f"episode buffer capacity must be >= 1 episode, got {capacity}")
        self.capacity = int(capacity)
        self.episodes: List[Dict[str, np.ndarray]] = []
        self.next_index = 0       # ring position once full
        self.num_added = 0
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.episodes)

    def add(self, episodes) -> int:
        """Add finished episodes (SingleAgentEpisodes or array dicts); returns how many were added."""
        added = 0
        for ep in episodes:
            arrays = ep if isinstance(ep, dict) else episode_arrays(ep)
            if len(self.episodes) < self.capacity:
                self.episodes.append(arrays)
            else:
                self.episodes[self.next_index] = arrays
            self.next_index = (self.next_index + 1) % self.capacity
            self.num_added += 1
            added += 1
        return added

    def sample(self, batch_size: int) -> Dict[str, np.ndarray]:
        if not self.episodes:
            raise ValueError("cannot sample from an empty episode buffer")
        idx = self.rng.choice(len(self.episodes), size=batch_size, replace=len(self.episodes) < batch_size)
        return pad_episodes([self.episodes[i] for i in idx])

    def get_state(self) -> Dict[str, Any]:
        return {"capacity": self.capacity, "episodes": self.episodes, "next_index": self.next_index,
                "num_added": self.num_added, "rng": self.rng.bit_generator.state}

    def set_state(self, state: Dict[str, Any]) -> None:
        self.capacity = state["capacity"]
        self.episodes = list(state["episodes"])
        self.next_index, self.num_added = state["next_index"], state["num_added"]
        self.rng.bit_generator.state = state["rng"]


def pad_episodes(episodes: List[Dict[str, np.ndarray]]) -> Dict[str, np.ndarray]:
    B = len(episodes)
    T = max(len(e["rewards"]) for e in episodes)
    out: Dict[str, np.ndarray] = {}
    for k in episodes[0]:
        first = episodes[0][k]
        steps = T + 1 if k in OBS_KEYS else T
        arr = np.zeros((B, steps) + first.shape[1:], dtype=first.dtype)
        for b, e in enumerate(episodes):
            arr[b, :len(e[k])] = e[k]
        out[k] = arr
    out["filled"] = np.zeros((B, T), dtype=np.float32)
    for b, e in enumerate(episodes):
        n_obs = len(e["rewards"]) + 1
        out["filled"][b, :n_obs - 1] = 1.0
        out["action_mask"][b, n_obs:, :, 0] = 1.0  # padded steps: a finite masked max
        if "group" in out:
            out["group"][b, n_obs:] = e["group"][0]
    return out
