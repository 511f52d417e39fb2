"""MAPPO's epochs: each of `num_epochs` epochs is batch / minibatch_size updates that together see
every sequence of the train batch exactly once (u_mappo/epochs.py), in a real RLlib update too."""

import numpy as np
import pytest
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch

from rllib_uas.algorithms.u_mappo import UMAPPOConfig
from rllib_uas.algorithms.u_mappo.epochs import EpochMinibatchIterator, minibatches_per_epoch
from rllib_uas.algorithms.u_mappo.learner import UMAPPOTorchLearner


def sequence_batch(n_seq: int = 7, T: int = 4) -> MultiAgentBatch:
    """A zero-padded [B, T] batch as the learner connector leaves it; column "id" names each sequence."""
    seq_lens = np.array([T - (i % 2) for i in range(n_seq)])
    ids = np.repeat(np.arange(n_seq)[:, None], T, 1)
    b = SampleBatch({"id": torch.as_tensor(ids), SampleBatch.SEQ_LENS: torch.as_tensor(seq_lens)}, _zero_padded=True)
    b.enable_slicing_by_batch_id()
    return MultiAgentBatch({"p": b}, env_steps=int(seq_lens.sum()))


def seen(minibatch: MultiAgentBatch) -> list:
    return minibatch.policy_batches["p"]["id"][:, 0].tolist()


def test_minibatches_per_epoch_is_mappos_num_mini_batch():
    assert minibatches_per_epoch(3200, 3200) == 1
    assert minibatches_per_epoch(3200, None) == 1
    assert minibatches_per_epoch(3200, 5000) == 1
    assert minibatches_per_epoch(3200, 1600) == 2
    assert minibatches_per_epoch(3200, 800) == 4


def test_one_whole_batch_update_per_epoch():
    batch = sequence_batch()
    out = list(EpochMinibatchIterator(batch, num_epochs=3, num_minibatches=1))
    assert len(out) == 3
    assert all(sorted(seen(m)) == list(range(7)) for m in out)


@pytest.mark.parametrize("k", [2, 3, 7])
def test_each_epoch_covers_every_sequence_once(k):
    np.random.seed(0)
    out = list(EpochMinibatchIterator(sequence_batch(), num_epochs=4, num_minibatches=k))
    assert len(out) == 4 * k
    orders = []
    for epoch in range(4):
        parts = [seen(m) for m in out[epoch * k : (epoch + 1) * k]]
        assert sorted(sum(parts, [])) == list(range(7))  # each sequence once: none twice, none missed
        assert max(map(len, parts)) - min(map(len, parts)) <= 1  # near-equal parts
        orders.append(sum(parts, []))
    assert len({tuple(o) for o in orders}) > 1  # reshuffled between epochs


def test_more_minibatches_than_sequences_is_refused():
    with pytest.raises(ValueError, match="has 7 sequences for 8 minibatches"):
        list(EpochMinibatchIterator(sequence_batch(), num_epochs=1, num_minibatches=8))


def test_a_minibatch_size_that_does_not_divide_the_batch_is_refused():
    with pytest.raises(
        ValueError,
        match="minibatch_size 300 does not divide train_batch_size_per_learner 400.*set minibatch_size to 200",
    ):
        UMAPPOConfig().training(train_batch_size_per_learner=400, minibatch_size=300).validate()
    UMAPPOConfig().training(train_batch_size_per_learner=400, minibatch_size=100).validate()


@pytest.mark.parametrize("minibatch_size,updates_per_epoch", [(400, 1), (200, 2)])
def test_a_real_update_is_num_epochs_passes_over_the_whole_batch(
    ray_session, monkeypatch, minibatch_size, updates_per_epoch
):
    """3 envs sample whole vector steps: 402 for a 400-step batch. RLlib's cyclic iterator cut
    minibatches of 400/402 of the sequences and needed an extra update to cover the epochs."""
    calls = []
    original = UMAPPOTorchLearner.compute_loss_for_module

    def counting(self, *, module_id, config, batch, fwd_out):
        calls.append(batch[Columns.LOSS_MASK].clone())  # [B, T]: the sampled steps, not PPO's bootstrap steps
        return original(self, module_id=module_id, config=config, batch=batch, fwd_out=fwd_out)

    monkeypatch.setattr(UMAPPOTorchLearner, "compute_loss_for_module", counting)
    algo = (
        UMAPPOConfig()
        .environment(env_config={"map_name": "3m1m_vs_4m"})
        .env_runners(num_env_runners=0, num_envs_per_env_runner=3)
        .training(train_batch_size_per_learner=400, minibatch_size=minibatch_size, num_epochs=3)
        .debugging(seed=0)
        .build_algo()
    )
    try:
        result = algo.train()
    finally:
        algo.stop()
    steps = int(result["env_runners"]["num_env_steps_sampled"])
    assert steps > 400  # the sample ran past the configured size, the case RLlib's iterator got wrong
    assert len(calls) == 3 * updates_per_epoch
    for epoch in range(3):
        parts = calls[epoch * updates_per_epoch : (epoch + 1) * updates_per_epoch]
        assert sum(int(p.sum()) for p in parts) == steps  # every sampled step once per epoch
