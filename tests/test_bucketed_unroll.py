"""The length-bucketed unroll of the agent network: a speed-up, the same numbers.

At every valid step the bucketed GRU gives the padded unroll's hidden states, and a loss masked to
the valid steps has the same value and gradients; after a sequence's end it gives zeros. The bucket
plan is the cheapest split under its cost model (checked against brute force), and U-QMIX's
update from the same weights and batch ends at the same weights with buckets as without.
"""

import itertools

import numpy as np
import pytest
import torch
from u_qmix_update import one_update

import rllib_uas.modules.agent_network as agent_network
from rllib_uas.modules.agent_network import RecurrentAgentNetwork, length_buckets


def _cost(groups, T, width, overhead):
    return sum(max(g) * (len(g) * width + overhead) for g in groups)


@pytest.mark.parametrize("seed", range(6))
def test_bucket_plan_is_the_cheapest_split_of_sorted_lengths(seed):
    rng = np.random.default_rng(seed)
    T, width, overhead = 20, int(rng.integers(1, 11)), 32
    lengths = rng.integers(1, T + 1, size=int(rng.integers(4, 30)))
    plan = length_buckets(lengths, T, width, max_buckets=3, step_overhead=overhead)
    values = np.unique(lengths)
    best = T * (len(lengths) * width + overhead)  # one bucket padded to T
    for k in range(1, 3):  # 2 or 3 buckets of neighbouring values
        for cuts in itertools.combinations(range(1, len(values)), k):
            edges = [0, *cuts, len(values)]
            groups = [[int(v) for v in lengths if values[a] <= v <= values[b - 1]] for a, b in zip(edges, edges[1:])]
            best = min(best, _cost(groups, T, width, overhead))
    if plan is None:
        assert best > agent_network.MIN_SAVING * T * (len(lengths) * width + overhead)
    else:
        rows = np.concatenate([r for r, _ in plan])
        assert sorted(rows.tolist()) == list(range(len(lengths)))  # every sequence exactly once
        assert all(lengths[r].max() == steps for r, steps in plan)
        assert _cost([lengths[r].tolist() for r, _ in plan], T, width, overhead) == pytest.approx(best)


def test_bucketed_unroll_equals_the_padded_one_on_valid_steps():
    torch.manual_seed(0)
    B, T, n, In = 37, 20, 5, 12
    net = RecurrentAgentNetwork(In, 16, 16)
    lengths = torch.cat([torch.full((5,), T), torch.randint(1, T, (B - 5,))])  # mostly padding, as U-QMIX
    valid = (torch.arange(T)[None] < lengths[:, None]).float()  # [B, T]
    x = torch.randn(B, T, n, In) * valid[..., None, None]  # zero padding, as batches
    h0 = torch.randn(B, n, 16)
    assert length_buckets(lengths.numpy(), T, n) is not None  # the bucketed path runs

    def run(lens):
        net.zero_grad()
        h_seq, h_last = net(x, h0, lens)
        loss = ((h_seq**2).sum(-1).sum(-1) * valid).sum()
        loss.backward()
        return h_seq.detach(), h_last.detach(), loss.item(), [p.grad.clone() for p in net.parameters()]

    h_ref, _, loss_ref, g_ref = run(None)
    h_b, last_b, loss_b, g_b = run(lengths)
    m = valid.bool()
    torch.testing.assert_close(h_b[m], h_ref[m], rtol=1e-5, atol=1e-6)
    assert not h_b[~m].any()  # zeros after the end
    torch.testing.assert_close(last_b, h_ref[torch.arange(B), lengths - 1], rtol=1e-5, atol=1e-6)
    assert loss_b == pytest.approx(loss_ref, rel=1e-5)
    for a, b in zip(g_b, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_without_buckets_the_lengths_contract_still_holds():
    """Little padding: one plain unroll, yet zeros after each end and the last valid state."""
    torch.manual_seed(1)
    B, T, n = 12, 20, 3
    net = RecurrentAgentNetwork(6, 8, 8)
    lengths = torch.full((B,), T)
    lengths[0] = T - 2
    assert length_buckets(lengths.numpy(), T, n) is None
    x, h0 = torch.randn(B, T, n, 6), torch.zeros(B, n, 8)
    h_seq, h_last = net(x, h0, lengths)
    h_ref, _ = net(x, h0)
    torch.testing.assert_close(h_seq[1:], h_ref[1:])
    torch.testing.assert_close(h_seq[0, : T - 2], h_ref[0, : T - 2])
    assert not h_seq[0, T - 2 :].any()
    torch.testing.assert_close(h_last[0], h_ref[0, T - 3])


def test_u_qmix_update_is_the_same_with_and_without_buckets(ray_session, monkeypatch):
    def check(batch):
        filled = batch["filled"].sum(1)
        assert filled.min() < filled.max() * 0.8  # padded episodes of mixed lengths
        # ... that the bucketed path splits
        assert length_buckets(filled.astype(int) + 1, batch["obs"].shape[1], batch["obs"].shape[2])

    def trained(bucketed: bool):
        if not bucketed:
            monkeypatch.setattr(agent_network, "length_buckets", lambda *a, **k: None)
        try:
            before, after, _ = one_update(check if bucketed else None)
            return before, after
        finally:
            monkeypatch.undo()

    before_b, after_b = trained(True)
    before_p, after_p = trained(False)
    for k in before_b:
        torch.testing.assert_close(before_b[k], before_p[k])  # same start
    moved = [k for k in after_b if not torch.equal(after_b[k], before_b[k])]
    assert moved
    for k in after_b:
        torch.testing.assert_close(after_b[k], after_p[k], rtol=1e-5, atol=1e-6, msg=k)
