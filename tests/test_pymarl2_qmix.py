"""The PyMARL2-style reference QMIX (benchmarks/pymarl2_qmix.py): its targets, its runs, its CSV."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from benchmark_scripts import load_script

from rllib_uas.algorithms.u_qmix.learner import td_lambda_targets
from rllib_uas.envs.engine.vec_smac import VectorizedSMAC

ROOT = Path(__file__).resolve().parents[1]
ref = load_script("pymarl2_qmix", register=True)  # its dataclass looks itself up; it imports learning_check


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
    # seed 0 holds 0.9 from its last evaluation (200) on; seed 10 ends at 0.0
    assert lines[6:8] == ["| 3m | QMIX | 0 | 200 |", "| 3m | QMIX | 10 | never |"]


def test_the_summary_compares_variants_over_the_seeds_they_share(tmp_path, capsys):
    import learning_check

    ours, ref = tmp_path / "ours", tmp_path / "ref"
    seconds = {(ours, "QMIX"): {0: 0.2, 1: 0.6, 2: 0.9, 3: 0.0}, (ref, "PyMARL2_QMIX"): {0: 0.5, 1: 0.5, 2: 0.5}}
    for (folder, slug), by_seed in seconds.items():
        folder.mkdir()
        for seed, win in by_seed.items():  # a second half of one evaluation: its mean is `win`
            with (folder / f"3m__{slug}__seed{seed}.csv").open("w", newline="") as f:
                w = csv.writer(f)
                w.writerow(learning_check.FIELDS)
                w.writerows([t, 0, 0, 0, x, 64, 0, 0] for t, x in [(0, 0.0), (100, win)])
    learning_check.summarize(ours, ref)
    out = capsys.readouterr().out
    # IQM of 0.0, 0.2, 0.6, 0.9: the middle half, (0.2 + 0.6) / 2
    assert re.search(r"^\| 3m \| QMIX \| 4 \| 0\.40 \[", out, re.M)
    assert re.search(r"^\| 3m \| PyMARL2 QMIX \| 3 \| 0\.50 \[0\.50, 0\.50\] \|$", out, re.M)
    # seeds 0-2 only (the reference has no seed 3): 0.2, 0.6, 0.9 against 0.5 three times; ours wins 6 of
    # the 9 pairs, so P(reference > ours) = 3 / 9 (variants in name order)
    assert re.search(r"^\| 3m \| PyMARL2 QMIX \| QMIX \| 3 \| 0\.33 \[", out, re.M)
    wrong = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "learning_check.py"), "--summary", str(ours), str(tmp_path / "x")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert wrong.returncode == 2 and f"no learning-check CSVs in {tmp_path / 'x'}" in wrong.stderr


# our module's parameter -> the reference's (the same layers: fc, GRU gates r, z, n, Q head, nmix)
OURS_TO_REF = {
    "agent_net.fc.0.weight": "agent.fc1.weight",
    "agent_net.fc.0.bias": "agent.fc1.bias",
    "agent_net.gru.weight_ih_l0": "agent.rnn.weight_ih",
    "agent_net.gru.weight_hh_l0": "agent.rnn.weight_hh",
    "agent_net.gru.bias_ih_l0": "agent.rnn.bias_ih",
    "agent_net.gru.bias_hh_l0": "agent.rnn.bias_hh",
    "q_head.weight": "agent.fc2.weight",
    "q_head.bias": "agent.fc2.bias",
    **{
        f"mixer.hyper_{a}.{b}": f"mixer.{a}.{b}"
        for a in ("w1", "w2", "v")
        for b in ("0.weight", "0.bias", "2.weight", "2.bias")
    },
    "mixer.hyper_b1.weight": "mixer.b1.weight",
    "mixer.hyper_b1.bias": "mixer.b1.bias",
}


def test_our_qmix_update_has_pymarl2s_loss_and_gradients_on_the_same_batch(ray_session):
    """The learner (sampling aside): our QMIX and the PyMARL2-style reference, given the same weights
    and the same replayed episodes, compute the same TD loss and the same (clipped) gradients."""
    from rllib_uas.algorithms.u_qmix.algorithm import train_batch
    from rllib_uas.variants import VARIANTS

    cfg = (
        VARIANTS["QMIX"].config()
        .environment(env_config={"map_name": "3m"})
        .env_runners(num_env_runners=0, num_envs_per_env_runner=8)
        .training(learning_starts_episodes=10_000)
        .debugging(seed=0)
    )  # fmt: skip
    algo = cfg.build_algo()
    try:
        while len(algo.episode_buffer) < 24:
            algo.train()
        np.random.seed(0)
        sample = algo.episode_buffer.sample(24)
        lengths = sample["filled"].sum(1).astype(int)
        T = sample["filled"].shape[1]
        # PyMARL2 bootstraps a truncated episode from the batch's last row: only the longest may be one
        assert all(sample["terminated"][b].any() or lengths[b] == T for b in range(24))
        learner = algo.learner_group._learner
        module = learner.module["default_policy"].unwrapped()
        names = {id(p): n for n, p in module.named_parameters()}
        grads = {}
        learner.apply_gradients = lambda gd: grads.update(
            {names[id(learner._params[k])]: g.clone() for k, g in gd.items()}
        )
        results = algo.learner_group.update(batch=train_batch(sample), timesteps={})
        ours_loss = float(results[0]["default_policy"]["td_loss"].peek())

        n, A = sample["actions"].shape[2], sample["action_mask"].shape[-1]
        reference = ref.QMIX(n, A, sample["obs"].shape[-1], sample["state"].shape[-1], ref.Settings())
        state = module.state_dict()
        ref_params = dict(reference.agent.named_parameters(prefix="agent"))
        ref_params.update(reference.mixer.named_parameters(prefix="mixer"))
        with torch.no_grad():
            for ours, theirs in OURS_TO_REF.items():
                ref_params[theirs].copy_(state[ours])
        reference.update_targets()
        pad = lambda x: np.concatenate([x, np.zeros_like(x[:, :1])], 1)  # noqa: E731
        filled = np.zeros((24, T + 1), np.float32)
        for b, L in enumerate(lengths):
            filled[b, : L + 1] = 1.0  # the steps and the final observation, as PyMARL2 marks them
        batch = {
            "obs": torch.as_tensor(sample["obs"]),
            "state": torch.as_tensor(sample["state"]),
            "avail": torch.as_tensor(sample["action_mask"]),
            "actions": torch.as_tensor(pad(sample["actions"])),
            "reward": torch.as_tensor(pad(sample["rewards"])),
            "terminated": torch.as_tensor(pad(sample["terminated"])),
            "filled": torch.as_tensor(filled),
        }
        loss = reference.loss(batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(reference.params, 10.0)
    finally:
        algo.stop()
    assert ours_loss == pytest.approx(loss.item(), rel=1e-5)
    assert set(grads) == set(OURS_TO_REF)
    for ours, theirs in OURS_TO_REF.items():
        torch.testing.assert_close(grads[ours], ref_params[theirs].grad, rtol=1e-4, atol=1e-6, msg=ours)
