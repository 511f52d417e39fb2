"""The PyMARL2-style reference QMIX (benchmarks/pymarl2_qmix.py): its targets, its runs, its CSV."""

from __future__ import annotations

import csv
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from rllib_uas.algorithms.u_qmix.learner import td_lambda_targets
from rllib_uas.envs.engine.vec_smac import VectorizedSMAC

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))  # as when it runs as a script: its sibling learning_check
spec = importlib.util.spec_from_file_location("pymarl2_qmix", ROOT / "benchmarks" / "pymarl2_qmix.py")
ref = sys.modules["pymarl2_qmix"] = importlib.util.module_from_spec(spec)  # its dataclass looks itself up there
spec.loader.exec_module(ref)


def test_td_lambda_targets_by_hand_and_against_ours_on_full_length_episodes():
    # gamma = lambda = 0.5; one episode terminated at its last step, one cut by the time limit
    rewards = torch.tensor([[1.0, 2.0], [1.0, 2.0]])
    terminated = torch.tensor([[0.0, 1.0], [0.0, 0.0]])
    mask = torch.ones(2, 2)
    target_qs = torch.tensor([[10.0, 20.0, 30.0], [10.0, 20.0, 30.0]])
    y = ref.td_lambda_targets(rewards, terminated, mask, target_qs, 0.5, 0.5)
    # terminated: y1 = 2, y0 = 0.25 * 2 + 1 + 0.25 * 20 = 6.5; truncated: y1 = 0.25 * 30 + 2 + 0.25 * 30 = 17,
    # y0 = 0.25 * 17 + 1 + 0.25 * 20 = 10.25
    assert y.tolist() == [[6.5, 2.0], [10.25, 17.0]]
    assert torch.equal(y, td_lambda_targets(rewards, terminated, mask, target_qs, 0.5, 0.5))


@pytest.mark.parametrize("continuing", [False, True])
def test_a_run_plays_one_episode_per_env_and_stores_it_as_pymarl2_does(continuing):
    env = VectorizedSMAC("3m", n_envs=8, seed=0)
    T1 = env.episode_limit + 1
    agent = ref.QMIX(env.n_agents, env.n_actions, env.obs_size, env.state_size, ref.Settings())
    data, returns, wins, lengths = ref.run_episodes(env, agent, 1.0, torch.Generator().manual_seed(0), continuing, T1)
    filled = data["filled"].sum(1)
    assert (filled == lengths + 1).all()  # every step's observation and the final one
    for e in range(8):
        L = lengths[e]
        assert (data["avail"][e, : L + 1].sum(-1) > 0).all() and data["filled"][e, L + 1 :].sum() == 0
        chosen = np.take_along_axis(data["avail"][e, :L], data["actions"][e, :L, :, None], -1)
        assert (chosen == 1).all()  # only available actions were played
        timeout = L == env.episode_limit and not wins[e]
        want_terminal = 0.0 if (timeout and continuing) else 1.0
        assert data["terminated"][e].tolist() == [0.0] * (L - 1) + [want_terminal] + [0.0] * (T1 - L)
        assert data["reward"][e, :L].sum() == pytest.approx(returns[e], rel=1e-6)


def test_a_short_run_trains_and_writes_the_learning_check_csv(tmp_path):
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "pymarl2_qmix.py"), "--steps", "5000", "--eval-every", "2500",
         "--eval-episodes", "8", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    updates, episodes = map(int, re.search(r"(\d+) updates, (\d+) training episodes", out.stdout).groups())
    assert episodes >= 128 and updates == (episodes - 128) // 8 + 1  # one per run of 8 from 128 stored on
    rows = list(csv.DictReader((tmp_path / "3m__PyMARL2_QMIX__seed0.csv").open()))
    assert [int(r["eval_episodes"]) for r in rows] == [8, 8, 8]
    steps = [int(r["env_steps"]) for r in rows]
    assert steps[0] == 0 and 2500 <= steps[1] < 2500 + 8 * 60 and steps[2] >= 5000
    summary = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "learning_check.py"), "--summary", str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    row = next(line for line in summary.stdout.splitlines() if line.startswith("| 3m | PyMARL2 QMIX | 0 |"))
    late = [float(r["eval_win_rate"]) for r, t in zip(rows, steps) if t >= steps[-1] / 2]  # the second half
    assert 1 <= len(late) <= 2
    assert row.endswith(f"| {sum(late) / len(late):.2f} | {sum(w >= 0.9 for w in late)} of {len(late)} |")


def test_the_summary_reads_each_seed_and_their_second_halves_together(tmp_path, capsys):
    import learning_check

    curves = {0: [(0, 0.0), (50, 1.0), (100, 0.5), (150, 0.25), (200, 1.0)], 10: [(0, 0.0), (100, 0.95), (200, 0.0)]}
    for seed, curve in curves.items():
        with (tmp_path / f"3m__QMIX__seed{seed}.csv").open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(learning_check.FIELDS)
            w.writerows([t, 0, 0, 0, win, 64, 0, 0] for t, win in curve)
    learning_check.summarize(tmp_path)
    lines = capsys.readouterr().out.splitlines()[2:]
    # seed 0: first >= 0.9 at 50, then 1.0, 0.5, 0.25, 1.0; second half (from 100): 0.5, 0.25, 1.0
    assert lines[0] == "| 3m | QMIX | 0 | 200 | 50 | 2 of 4 | 0.25 | 1.00 | 0.58 | 1 of 3 |"
    assert lines[1] == "| 3m | QMIX | 10 | 200 | 100 | 1 of 2 | 0.00 | 0.00 | 0.47 | 1 of 2 |"  # after seed 0
    assert lines[2] == "| 3m | QMIX | all 2 | | | | | | 0.53 | 2 of 5 |"  # (0.583 + 0.475) / 2
