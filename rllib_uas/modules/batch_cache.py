"""Values built from a training batch's tensors, kept while those are the very same tensor objects.

MAPPO's epochs on SMAC take one minibatch each, so every epoch of a U-MAPPO update passes the very
same batch tensors to the module and the loss. What depends on them only (length buckets, agent
inputs, the behaviour policy's log-probabilities, standardized advantages) is built in the first
epoch and reused. Nothing writes into a batch's tensors, so the same objects mean the same values;
an entry holds its key tensors, so their ids cannot be reused while it is kept, and a new batch
replaces it (one entry per name).
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Sequence, Tuple


class SameTensorsCache:
    """`get(name, tensors, build)`: build() once for as long as `tensors` are the same objects."""

    def __init__(self) -> None:
        self._entries: Dict[str, Tuple[Tuple[Any, ...], Any]] = {}

    def get(self, name: str, tensors: Sequence[Any], build: Callable[[], Any]) -> Any:
        key = tuple(tensors)
        entry = self._entries.get(name)
        if entry is not None and len(entry[0]) == len(key) and all(a is b for a, b in zip(entry[0], key)):
            return entry[1]
        value = build()
        self._entries[name] = (key, value)
        return value
