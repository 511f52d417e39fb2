"""The engine benchmark's harness: the workload's random policy, the engine it drives, and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from benchmark_scripts import load_script

from rllib_uas.envs.engine import bench
from rllib_uas.envs.engine.vec_smac import VectorizedSMAC

ROOT = Path(__file__).resolve().parents[1]


def test_random_valid_actions_are_uniform_over_the_available_ones():
    avail = np.zeros((20_000, 7), np.int32)
    avail[:, [1, 3, 4]] = 1
    drawn = bench.random_valid_actions(avail, np.random.default_rng(0))
    counts = np.bincount(drawn, minlength=7)
    assert counts[[0, 2, 5, 6]].sum() == 0
    assert np.allclose(counts[[1, 3, 4]] / 20_000, 1 / 3, atol=0.015)  # about 5 standard errors


def test_the_harness_drives_the_engine_it_is_given():
    built = []

    class Recording(VectorizedSMAC):
        def __init__(self, *args, **kwargs):
            built.append(kwargs)
            super().__init__(*args, **kwargs)

    wall, cpu = bench.engine_throughput(
        "3m", 4, seconds=0.2, engine=SimpleNamespace(VectorizedSMAC=Recording), streams="per_env"
    )
    assert wall > 0 and cpu > 0
    assert built == [dict(n_envs=4, seed=0, engine_streams="per_env", engine_threads=1)]


def test_a_smax_python_without_jaxmarl_is_refused_before_any_row():
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "engine_throughput.py"), "--smax-python", sys.executable],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert "cannot import jaxmarl" in out.stderr and "pip install jaxmarl" in out.stderr
    assert "| map |" not in out.stdout


def _fake_trial(folder: Path, overlap: bool, seed: int, evals: list, train: list, last_step: int = 150_400) -> None:
    """A Tune trial folder as `rllib train file` leaves it: params.json and result.json, with a greedy
    evaluation every other iteration, repeated (as RLlib does) in the iteration after it."""
    folder.mkdir(parents=True)
    (folder / "params.json").write_text(
        json.dumps({"overlap_sampling": overlap, "seed": seed, "evaluation_interval": 2})
    )
    steps = np.linspace(16_000, last_step, len(train)).round().astype(int)
    lines = []
    for i, (s, w) in enumerate(zip(steps, train)):
        it = i + 1
        result = {"training_iteration": it, "num_env_steps_sampled_lifetime": int(s), "env_runners": {"win_rate": w}}
        if it >= 2:  # evaluated at 2, 4, ...; the results after an evaluation repeat it
            result["evaluation"] = {"env_runners": {"win_rate": evals[it // 2 - 1]}}
        lines.append(json.dumps(result))
    (folder / "result.json").write_text("\n".join(lines) + "\n")


def test_the_overlap_summary_reads_the_trials_scores(tmp_path):
    exp = tmp_path / "overlap-learning"
    for seed in (0, 1):
        _fake_trial(exp / f"seq{seed}", False, seed, evals=[0.0, 0.5], train=[0.1, 0.5, 0.96, 0.9])
        _fake_trial(exp / f"ovl{seed}", True, seed, evals=[0.25, 1.0], train=[0.1, 0.2, 0.3, 0.4])
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "overlap_learning.py"), str(exp)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    rows = {ln.split("|")[1].strip(): ln for ln in out.stdout.splitlines() if ln.startswith("| ")}
    # final greedy win rate: the last evaluation (0.5 and 1.0 on both seeds); the training win rate
    # first reaches 0.95 at the third row (16,000 + 2/3 of the span) for sequential, never for overlap
    assert "| 0.50 [0.50, 0.50] |" in rows["sequential"] and "105,600, 105,600" in rows["sequential"]
    assert "| 1.00 [1.00, 1.00] |" in rows["overlap"] and "not reached, not reached" in rows["overlap"]
    # AUC over the evaluated span: trapezoid of (0, 0.5) = 0.25, of (0.25, 1.0) = 0.625
    assert "| 0.25 [0.25, 0.25] |" in rows["sequential"] and "| 0.62 [0.62, 0.62] |" in rows["overlap"]
    assert "P(overlap > sequential), final: 1.00" in out.stdout


def test_the_overlap_summary_refuses_unfinished_trials(tmp_path):
    exp = tmp_path / "overlap-learning"
    _fake_trial(exp / "seq0", False, 0, evals=[0.0], train=[0.1, 0.2], last_step=40_000)
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "overlap_learning.py"), str(exp)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2 and "trials not finished yet: sequential seed 0" in out.stderr


def test_the_gru_comparison_runs_the_same_computation():
    """benchmarks/gru_unroll.py times two unrolls it says we did not take; each must compute what the
    shipped one does, or its timing compares nothing: the PackedSequence plan lists the valid steps
    (states equal to the bucketed unroll's), and the hand-written GRU's states and gradients equal
    nn.GRU's."""
    import torch
    from torch.nn.utils.rnn import PackedSequence

    from rllib_uas.modules.agent_network import Buckets, RecurrentAgentNetwork

    g = load_script("gru_unroll")
    torch.manual_seed(0)
    lengths, T, n = np.array([3, 7, 1, 5, 7, 2]), 7, 2
    net = RecurrentAgentNetwork(4, 8, 8)
    x = torch.randn(len(lengths), T, n, 4)  # [B, T, n, In]
    buckets = Buckets(torch.as_tensor(lengths), T, n)
    want = net.valid_states(buckets.take(x), torch.zeros(len(lengths), n, 8), buckets)  # [M, n, H]
    b_idx, t_idx, batch_sizes, back = g.packed_plan(lengths, T, n)
    assert batch_sizes.tolist() == [12, 10, 8, 6, 6, 4, 4]  # agents of the episodes still going
    out, _ = net.gru(PackedSequence(net.fc(x[b_idx, t_idx]).reshape(-1, 8), batch_sizes))
    assert torch.allclose(out.data.reshape(-1, n, 8)[back], want, atol=1e-6)

    gru = torch.nn.GRU(5, 6)
    xs, h0, dout = torch.randn(4, 3, 5), torch.randn(3, 6), torch.randn(4, 3, 6)  # [T, R, F], [R, H]
    results = []
    for hand in (False, True):
        gru.zero_grad()
        if hand:
            gi = torch.nn.functional.linear(xs, gru.weight_ih_l0, gru.bias_ih_l0)
            states = g.HandWrittenGRU.apply(gi, h0, gru.weight_hh_l0, gru.bias_hh_l0)
        else:
            states = gru(xs, h0[None])[0]
        (states * dout).sum().backward()
        results.append([states.detach(), *(p.grad.clone() for p in gru.parameters())])
    for a, b in zip(*results):
        assert torch.allclose(a, b, atol=1e-5)


def test_the_cgi_gradient_probe_splits_the_loss_gradient_and_scales_with_lambda(ray_session):
    """benchmarks/cgi_gradient.py: on the first minibatch (same seed: same weights and batch) the RL
    part of the trunk's gradient is the same at lambda_I 0.1 and 1 and the CGI part exactly 10 times
    larger, for U-MAPPO and for U-QMIX's TD loss: the captured term is the one the loss adds. The
    learners' own cgi_loss is back in place afterwards; lambda_I 0 is refused."""
    import pytest

    from rllib_uas.algorithms.u_mappo import learner as mappo_learner
    from rllib_uas.modules.cgi import cgi_loss
    from rllib_uas.study.grid import Cell, MapPlan

    g = load_script("cgi_gradient")
    tiny = MapPlan(
        400,
        400,
        settings={
            "mappo": dict(
                train_batch_size_per_learner=200, minibatch_size=200, num_epochs=2, num_envs_per_env_runner=2
            ),
            "qmix": dict(batch_size_episodes=4, learning_starts_episodes=4, buffer_size_episodes=50),
        },
    )
    for variant, iters, per_run in (("U-MAPPO", 1, 2), ("U-QMIX", 4, None)):
        runs = {lam: g.measure(Cell("3m1m_vs_4m", f"{variant} lambda_I={lam}", 0, tiny), iters) for lam in (0.1, 1.0)}
        for rows in runs.values():
            assert rows and (per_run is None or len(rows) == per_run)  # U-MAPPO: one minibatch per epoch
            for r in rows:
                assert r["rl"] > 0 and r["cgi"] > 0 and -1 <= r["cos"] <= 1
        first_small, first_large = runs[0.1][0], runs[1.0][0]
        assert first_large["rl"] == pytest.approx(first_small["rl"], rel=1e-5)
        assert first_large["cgi"] == pytest.approx(10 * first_small["cgi"], rel=1e-5)
        if variant == "U-MAPPO":
            steps = runs[0.1][0]["env_steps"]
            assert steps >= 200 and f"| 0.1 | {steps:,} | 2 |" in g.summary(0.1, runs[0.1])
    assert mappo_learner.cgi_loss is cgi_loss and not g._TERMS
    with pytest.raises(ValueError, match="U-MAPPO lambda_I=0.0 has lambda_I 0: no CGI term to measure"):
        g.measure(Cell("3m1m_vs_4m", "U-MAPPO lambda_I=0.0", 0, tiny), 1)
