"""Ways to unroll the agent network's GRU over padded episodes, timed side by side in one process.

    python benchmarks/gru_unroll.py [--threads 1] [--repeats 7]

Two alternatives to what the modules do, both measured slower on this machine (docs/training_speed.md,
"What is left"), kept here so the comparison can be rerun rather than retried:

- **buckets** (shipped): `RecurrentAgentNetwork.valid_states`, rows unrolled in up to 4 length buckets.
- **packed**: one `nn.GRU` call on a `PackedSequence` of the valid steps (each step runs only the
  sequences still going), the textbook way to skip padding.
- **nn.GRU** against **hand-written**: one padded unroll through `nn.GRU`, and through an autograd
  Function with the gate arithmetic and its backward written out in torch ops (one product per step,
  the weight gradients in one product after the loop, no chunk-and-cat).

The batch is shaped like a U-QMIX update on MMM2: 128 episodes of 10 agents, most 22-58 steps long and
five of 100-161 (a 128-episode MMM2 batch measured 22-58 with a few up to 160), agent inputs of 214.
Every variant is checked against the shipped one (states, and the gradients of the hand-written GRU)
before it is timed. Prints the median milliseconds of forward + backward and of forward alone.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Callable, Dict, List

import numpy as np
import torch
from torch.nn.utils.rnn import PackedSequence

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from rllib_uas.modules.agent_network import Buckets, RecurrentAgentNetwork  # noqa: E402

B, N_AGENTS, IN_DIM, HIDDEN, T = 128, 10, 214, 64, 161


class HandWrittenGRU(torch.autograd.Function):
    """torch's GRU equations (r, z, n gates; h' = n + z * (h - n)) over [T, R, 3H] precomputed input
    gates, with the backward written out."""

    @staticmethod
    def forward(ctx, gi, h0, w_hh, b_hh):  # gi [T, R, 3H], h0 [R, H]
        steps, rows, h3 = gi.shape
        H = h3 // 3
        hs = gi.new_empty(steps + 1, rows, H)  # [T+1, R, H]
        hs[0] = h0
        gh = gi.new_empty(steps, rows, h3)  # [T, R, 3H]: W_hh h + b_hh
        rz = gi.new_empty(steps, rows, 2 * H)  # [T, R, 2H]: the r and z gates
        ng = gi.new_empty(steps, rows, H)  # [T, R, H]: the n gate
        for t in range(steps):
            torch.addmm(b_hh, hs[t], w_hh.t(), out=gh[t])
            torch.add(gi[t, :, : 2 * H], gh[t, :, : 2 * H], out=rz[t]).sigmoid_()
            torch.mul(rz[t, :, :H], gh[t, :, 2 * H :], out=ng[t]).add_(gi[t, :, 2 * H :]).tanh_()
            torch.sub(hs[t], ng[t], out=hs[t + 1]).mul_(rz[t, :, H:]).add_(ng[t])
        ctx.save_for_backward(hs, gh, rz, ng, w_hh)
        return hs[1:]

    @staticmethod
    def backward(ctx, dout):  # dout [T, R, H]
        hs, gh, rz, ng, w_hh = ctx.saved_tensors
        steps, rows, H = dout.shape
        d_gh = dout.new_empty(steps, rows, 3 * H)  # [T, R, 3H]
        d_gi_n = dout.new_empty(steps, rows, H)  # [T, R, H]
        carry = torch.zeros_like(dout[0])
        tmp, dh_z = torch.empty_like(carry), torch.empty_like(carry)
        for t in range(steps - 1, -1, -1):
            dh = carry.add_(dout[t])
            r, z, n = rz[t, :, :H], rz[t, :, H:], ng[t]
            torch.mul(n, n, out=tmp).neg_().add_(1.0)  # 1 - n^2
            torch.mul(dh, z, out=dh_z)
            dn = torch.sub(dh, dh_z, out=d_gi_n[t]).mul_(tmp)  # dh (1 - z) (1 - n^2)
            g = d_gh[t]
            torch.mul(dn, r, out=g[:, 2 * H :])
            torch.mul(dn, gh[t, :, 2 * H :], out=g[:, :H]).mul_(torch.sub(r, r * r, out=tmp))
            torch.sub(hs[t], n, out=g[:, H : 2 * H]).mul_(dh).mul_(torch.sub(z, z * z, out=tmp))
            carry = torch.addmm(dh_z, g, w_hh)
        d_gi = torch.cat([d_gh[:, :, : 2 * H], d_gi_n], dim=2)
        flat = d_gh.reshape(-1, 3 * H)
        return d_gi, carry, flat.t() @ hs[:-1].reshape(-1, H), flat.sum(0)


def packed_plan(lengths: np.ndarray, T: int, n_agents: int):
    """(episode, step) of every valid step in PackedSequence order (time-major, longest first), the
    batch size of each step (n_agents rows per episode), and the permutation back to row-major
    (episode, step) order, for episodes of valid `lengths` [B] padded to T."""
    order = np.argsort(-lengths, kind="stable")
    alive = (lengths[order][None, :] > np.arange(lengths.max())[:, None]).sum(1)  # [T_max] episodes running
    b_idx = np.concatenate([order[:c] for c in alive])
    t_idx = np.concatenate([np.full(c, t) for t, c in enumerate(alive)])
    back = np.argsort(b_idx * T + t_idx, kind="stable")
    return torch.as_tensor(b_idx), torch.as_tensor(t_idx), torch.as_tensor(alive * n_agents), torch.as_tensor(back)


def _median_ms(fns: Dict[str, Callable[[], None]], repeats: int) -> Dict[str, float]:
    for f in fns.values():  # warm-up
        f()
    times: Dict[str, List[float]] = {k: [] for k in fns}
    for _ in range(repeats):  # interleaved: the machine's load falls on every variant alike
        for k, f in fns.items():
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    return {k: 1000 * float(np.median(v)) for k, v in times.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default: 1)")
    p.add_argument("--repeats", type=int, default=7, help="timed calls per variant (default: 7)")
    args = p.parse_args()
    if args.threads < 1 or args.repeats < 1:
        p.error(f"--threads and --repeats must be at least 1, got {args.threads} and {args.repeats}")
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    lengths = np.concatenate([rng.integers(22, 59, B - 5), [100, 120, 140, 150, 161]])
    rng.shuffle(lengths)
    torch.manual_seed(0)
    net = RecurrentAgentNetwork(IN_DIM, HIDDEN, HIDDEN)
    x = torch.randn(B, T, N_AGENTS, IN_DIM)  # [B, T, n, In]
    h0 = torch.zeros(B, N_AGENTS, HIDDEN)  # [B, n, H]
    buckets = Buckets(torch.as_tensor(lengths), T, N_AGENTS)
    b_idx, t_idx, batch_sizes, back = packed_plan(lengths, T, N_AGENTS)

    def bucketed():
        return net.valid_states(buckets.take(x), h0, buckets)  # [M, n, H]

    def packed():
        z = net.fc(x[b_idx, t_idx]).reshape(-1, HIDDEN)  # [P * n, F], time-major
        out, _ = net.gru(PackedSequence(z, batch_sizes))
        return out.data.reshape(-1, N_AGENTS, HIDDEN)[back]  # [M, n, H]

    ref = bucketed()
    assert torch.allclose(packed(), ref, atol=1e-5), "packed states differ from the bucketed unroll"
    grad = torch.randn_like(ref)

    # the padded unroll: 1,280 rows (128 episodes x 10 agents) for 40 steps
    gru = net.gru
    xs = torch.randn(40, B * N_AGENTS, HIDDEN)  # [T, R, F]
    g_out = torch.randn(40, B * N_AGENTS, HIDDEN)

    def native():
        return gru(xs.transpose(0, 1))[0].transpose(0, 1)  # batch_first GRU

    def hand():
        gi = torch.nn.functional.linear(xs, gru.weight_ih_l0, gru.bias_ih_l0)
        return HandWrittenGRU.apply(gi, torch.zeros(B * N_AGENTS, HIDDEN), gru.weight_hh_l0, gru.bias_hh_l0)

    grads = []
    for f in (native, hand):
        gru.zero_grad()
        (f() * g_out).sum().backward()
        grads.append([q.grad.clone() for q in gru.parameters()])
    for a, b in zip(*grads):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-4 * float(a.abs().max())), "hand-written gradients differ"

    def fwd_bwd(f, g):
        def run():
            net.zero_grad()
            (f() * g).sum().backward()

        return run

    def fwd(f):
        def run():
            with torch.no_grad():
                f()

        return run

    ms = _median_ms(
        {
            "buckets fb": fwd_bwd(bucketed, grad),
            "packed fb": fwd_bwd(packed, grad),
            "buckets f": fwd(bucketed),
            "packed f": fwd(packed),
            "nn.GRU fb": fwd_bwd(native, g_out),
            "hand fb": fwd_bwd(hand, g_out),
            "nn.GRU f": fwd(native),
            "hand f": fwd(hand),
        },
        args.repeats,
    )
    plan = ", ".join(f"{len(idx)} x {steps}" for idx, steps, _ in buckets.groups)
    print(f"torch threads {args.threads}; bucket plan (episodes x steps): {plan}")
    print("| batch | variant | forward + backward ms | forward ms |")
    print("|---|---|---|---|")
    for batch, pair in (("U-QMIX-like, valid steps", ("buckets", "packed")), ("padded 1,280 x 40", ("nn.GRU", "hand"))):
        for v in pair:
            print(f"| {batch} | {v} | {ms[v + ' fb']:.1f} | {ms[v + ' f']:.1f} |")


if __name__ == "__main__":
    main()
