"""MAPPO's epochs: every epoch is `num_minibatches` updates that cover each sequence exactly once.

MAPPO (on-policy's `recurrent_generator`) shuffles the batch's chunks once per epoch and cuts them
into `num_mini_batch` minibatches; on SMAC `num_mini_batch=1`, so an epoch is one update on the
whole batch. RLlib's `MiniBatchCyclicIterator` instead cuts `minibatch_size` env steps' worth of
sequences out of the batch in a cycle until `num_epochs` passes are covered. A sampled batch is a
few steps larger than `train_batch_size_per_learner` (whole vector steps), so with
`minibatch_size == train_batch_size_per_learner` every minibatch was one sequence short of the
batch and the passes took one update more (11 updates per 10 epochs in the quick start), and a
minibatch straddling a reshuffle could hold a sequence twice and miss another.

Here `minibatch_size` keeps RLlib's meaning as the user's knob, and the number of minibatches per
epoch is `train_batch_size_per_learner / minibatch_size` (MAPPO's `num_mini_batch`; the config
refuses a size that does not divide the batch). Each epoch reshuffles the sequences and splits
them into that many near-equal parts (MAPPO drops the remainder; this keeps it).
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch
from ray.rllib.utils.minibatch_utils import MiniBatchIteratorBase


def minibatches_per_epoch(train_batch_size: int, minibatch_size: int | None) -> int:
    """MAPPO's num_mini_batch from RLlib's sizes: 1 when minibatch_size is unset or the whole batch."""
    if not minibatch_size or minibatch_size >= train_batch_size:
        return 1
    return max(1, round(train_batch_size / minibatch_size))


def _units(batch: SampleBatch) -> int:
    """The batch's sequences when it has them (RLlib then slices it by sequence), else its rows."""
    seq_lens = batch.get(SampleBatch.SEQ_LENS)
    return len(seq_lens) if seq_lens is not None else len(batch)


class EpochMinibatchIterator(MiniBatchIteratorBase):
    """Yields `num_epochs * num_minibatches` MultiAgentBatches; within an epoch each module's
    sequences (or rows) appear in exactly one of them."""

    def __init__(self, batch: MultiAgentBatch, *, num_epochs: int, num_minibatches: int, shuffle: bool = True):
        super().__init__(batch, num_epochs=num_epochs, minibatch_size=0, shuffle_batch_per_epoch=shuffle)
        self._batch = batch
        self._num_epochs = num_epochs
        self._num_minibatches = num_minibatches
        # one whole-batch update per epoch computes the same loss in any order: no reshuffle copies
        self._shuffle = shuffle and num_minibatches > 1

    def __iter__(self) -> Iterator[MultiAgentBatch]:
        k = self._num_minibatches
        for _ in range(self._num_epochs):
            parts = {}
            for module_id, module_batch in self._batch.policy_batches.items():
                n = _units(module_batch)
                if n < k:
                    raise ValueError(
                        f"the train batch of module {module_id!r} has {n} sequences for {k} minibatches per "
                        "epoch; raise minibatch_size (fewer minibatches) or train_batch_size_per_learner"
                    )
                if self._shuffle:
                    module_batch.shuffle()  # RLlib's in-place shuffle: whole sequences, numpy's seeded RNG
                bounds = np.linspace(0, n, k + 1).round().astype(int)
                parts[module_id] = (
                    [module_batch[s:e] for s, e in zip(bounds[:-1], bounds[1:])] if k > 1 else [module_batch]
                )
            for i in range(k):
                yield MultiAgentBatch({mid: p[i] for mid, p in parts.items()}, env_steps=len(self._batch))
