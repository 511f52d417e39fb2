"""U-QMIX: mixer monotonicity, TD targets, masked exploration, episode buffer, real RLlib training."""

import numpy as np
import pytest
import torch
from ray.rllib.utils.torch_utils import convert_to_torch_tensor

from rllib_uas.algorithms.u_qmix import UQMIX, UQMIXConfig
from rllib_uas.algorithms.u_qmix.algorithm import train_batch
from rllib_uas.algorithms.u_qmix.episode_buffer import EpisodeBuffer, pad_episodes
from rllib_uas.algorithms.u_qmix.learner import td_lambda_targets
from rllib_uas.modules.mixers import QMixer, VDNMixer
from rllib_uas.modules.team_q import epsilon_at, masked_epsilon_greedy


def test_qmix_mixer_is_monotonic_in_every_agent_q():
    torch.manual_seed(0)
    mixer = QMixer(n_agents=5, state_dim=12, embed_dim=8, hypernet_embed=16)
    qs = torch.randn(256, 5, requires_grad=True)
    q_tot = mixer(qs, torch.randn(256, 12) * 3)
    (grad,) = torch.autograd.grad(q_tot.sum(), qs)
    assert (grad >= 0).all() and (grad > 0).any()
    assert torch.equal(VDNMixer()(qs, None), qs.sum(-1))


def test_td_targets_hand_computed_on_a_two_step_episode():
    r = torch.tensor([[1.0, 2.0]])
    term = torch.tensor([[0.0, 1.0]])
    filled = torch.ones(1, 2)
    q = torch.tensor([[5.0, 3.0, 7.0]])  # target Q_tot at s0, s1, s2
    gamma = 0.9
    # one-step (lambda = 0): y0 = r0 + g Q(s1); y1 = r1 (terminal)
    assert td_lambda_targets(r, term, filled, q, gamma, 0.0)[0].tolist() == pytest.approx([1 + 0.9 * 3, 2.0])
    # TD(0.6): y1 = r1; y0 = r0 + (1 - .6) g Q(s1) + .6 g y1
    y = td_lambda_targets(r, term, filled, q, gamma, 0.6)
    assert y[0].tolist() == pytest.approx([1 + 0.4 * 0.9 * 3 + 0.6 * 0.9 * 2, 2.0])
    # truncated at the last step (not terminated): bootstrap from Q(s2)
    y = td_lambda_targets(r, torch.zeros(1, 2), filled, q, gamma, 0.0)
    assert y[0].tolist() == pytest.approx([1 + 0.9 * 3, 2 + 0.9 * 7])


def test_masked_greedy_and_exploration_never_pick_unavailable_actions():
    g = torch.Generator().manual_seed(0)
    q = torch.randn(1000, 10, 26, generator=g) * 10
    mask = (torch.rand(1000, 10, 26, generator=g) < 0.2).float()
    mask[..., 0] = torch.where(mask.sum(-1) == 0, 1.0, mask[..., 0])
    for eps in (0.0, 0.5, 1.0):
        a = masked_epsilon_greedy(q, mask, eps, generator=g)  # 10,000 agent actions
        assert (mask.gather(-1, a[..., None]) == 1).all()
    greedy = masked_epsilon_greedy(q, mask, 0.0, generator=g)
    assert torch.equal(greedy, torch.where(mask > 0, q, torch.tensor(-1e9)).argmax(-1))


def test_epsilon_schedule_by_env_steps():
    assert epsilon_at(0, 1.0, 0.05, 100_000) == 1.0
    assert epsilon_at(50_000, 1.0, 0.05, 100_000) == pytest.approx(0.525)
    assert epsilon_at(100_000, 1.0, 0.05, 100_000) == pytest.approx(0.05)
    assert epsilon_at(10**7, 1.0, 0.05, 100_000) == pytest.approx(0.05)


def fake_episode(T, n=2, A=4, D=3, S=5, reward=1.0, terminated=True):
    return {
        "obs": np.ones((T + 1, n, D), np.float32),
        "action_mask": np.ones((T + 1, n, A), np.float32),
        "state": np.ones((T + 1, S), np.float32),
        "alive": np.ones((T + 1, n), np.float32),
        "group": np.tile(np.array([0.0, 1.0], np.float32), (T + 1, 1)),
        "last_action": np.zeros((T + 1, n, A), np.float32),
        "actions": np.ones((T, n), np.int64),
        "rewards": np.full(T, reward, np.float32),
        "terminated": np.eye(T, dtype=np.float32)[-1] * terminated,
    }


def test_episode_buffer_padding_and_capacity():
    batch = pad_episodes([fake_episode(3), fake_episode(5)])
    assert batch["obs"].shape == (2, 6, 2, 3) and batch["actions"].shape == (2, 5, 2)
    assert batch["filled"].tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]
    assert batch["terminated"][0].tolist() == [0, 0, 1, 0, 0]
    assert batch["action_mask"][0, 4:].tolist() == [[[1, 0, 0, 0]] * 2] * 2  # padding: only action 0
    assert (batch["action_mask"][0, :4] == 1).all()
    buf = EpisodeBuffer(capacity=3, seed=0)
    buf.add([fake_episode(2, reward=r) for r in range(5)])
    assert len(buf) == 3 and buf.num_added == 5
    assert sorted(float(e["rewards"][0]) for e in buf.episodes) == [2.0, 3.0, 4.0]  # oldest overwritten
    assert buf.sample(8)["rewards"].shape == (8, 2)


def tiny(runners=0, **training):
    training = {
        "batch_size_episodes": 8,
        "learning_starts_episodes": 4,
        "episodes_per_iteration": 4,
        "buffer_size_episodes": 50,
        **training,
    }
    return (
        UQMIXConfig()
        .environment(env_config={"map_name": "MMM"})
        .env_runners(num_env_runners=runners, num_envs_per_env_runner=4)
        .training(**training)
        .debugging(seed=0)
    )


@pytest.mark.parametrize("runners", [0, 2])
def test_training_iteration(ray_session, runners):
    algo = tiny(runners).build_algo()
    try:
        algo.train()
        result = algo.train()
        learner = result["learners"]["default_policy"]
        assert np.isfinite(float(learner["td_loss"])) and float(learner["cgi_loss"]) > 0
        assert result["episode_buffer_size"] >= 8
        assert result["num_env_steps_sampled_lifetime"] > 0 and "win_rate" in result["env_runners"]
    finally:
        algo.stop()


@pytest.mark.parametrize(
    "overrides",
    [
        dict(uas=False, cgi_coeff=0.0),
        dict(mixer="vdn", cgi_coeff=0.0),
        dict(optimizer="rmsprop", td_lambda=0.0, target_update_tau=0.01),
    ],
    ids=["qmix", "vdn", "rmsprop-onestep-soft"],
)
def test_baselines_run(ray_session, overrides):
    algo = tiny(**overrides).build_algo()
    try:
        algo.train()
        result = algo.train()
        assert np.isfinite(float(result["learners"]["default_policy"]["td_loss"]))
    finally:
        algo.stop()


def test_checkpoint_round_trip_includes_the_episode_buffer(ray_session, tmp_path):
    algo = tiny().build_algo()
    try:
        for _ in range(3):
            algo.train()
        path = algo.save_to_path(str(tmp_path / "ckpt"))
        buffer_before = algo.episode_buffer.get_state()
        q_before = algo.get_module().q_head.weight.detach().clone()
    finally:
        algo.stop()
    restored = UQMIX.from_checkpoint(path)
    try:
        after = restored.episode_buffer.get_state()
        kept = len(buffer_before["episodes"])
        assert len(after["episodes"]) == kept >= 12  # >= 4 finished episodes per iteration
        assert after["num_added"] == buffer_before["num_added"]
        for a, b in zip(after["episodes"], buffer_before["episodes"]):
            assert all(np.array_equal(a[k], b[k]) for k in a)
        assert torch.equal(restored.get_module().q_head.weight, q_before)
        assert restored.iteration == 3
        restored.train()  # continues from the restored buffer
        assert len(restored.episode_buffer) >= kept + 4
    finally:
        restored.stop()
    fresh = tiny().build_algo()  # Tune's resume path: restore_from_path
    try:
        fresh.restore_from_path(path)
        assert len(fresh.episode_buffer) == kept and fresh.iteration == 3
    finally:
        fresh.stop()


def test_config_validation():
    with pytest.raises(ValueError, match="needs uas=True"):
        UQMIXConfig().training(uas=False).validate()
    with pytest.raises(ValueError, match="mixer"):
        UQMIXConfig().training(mixer="qtran").validate()
    with pytest.raises(ValueError, match="exceeds buffer_size_episodes"):
        UQMIXConfig().training(batch_size_episodes=64, buffer_size_episodes=32).validate()


# ---------------------------------------------------------------- PyMARL2's loss details, by hand
def test_td_lambda_on_padded_short_truncated_and_terminal_episodes():
    gamma, lam = 0.9, 0.6
    # row 0: 2-step truncated episode in a 4-step batch (bootstraps from its own s_2)
    # row 1: 3 steps, terminated at the last; row 2: 4 steps, truncated at the batch end
    r = torch.tensor([[1.0, 2.0, 0.0, 0.0], [1.0, 1.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
    term = torch.tensor([[0.0, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]])
    filled = torch.tensor([[1.0, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1]])
    q = torch.tensor([[5.0, 3.0, 7.0, -50.0, -50.0], [2.0, 2.0, 2.0, 9.0, -50.0], [1.0, 1.0, 1.0, 1.0, 4.0]])
    y = td_lambda_targets(r, term, filled, q, gamma, 0.0)
    assert y[0].tolist() == pytest.approx([1 + 0.9 * 3, 2 + 0.9 * 7, 0, 0])  # PyMARL2 would give 2 + 0 at t=1
    assert y[1].tolist() == pytest.approx([1 + 0.9 * 2, 1 + 0.9 * 2, 1.0, 0])
    assert y[2].tolist() == pytest.approx([0.9, 0.9, 0.9, 1 + 0.9 * 4])
    y = td_lambda_targets(r, term, filled, q, gamma, lam)
    y01 = 2 + 0.9 * 7  # G_1 = r_1 + g Q(s_2): the bootstrap takes all the weight
    y00 = 1 + (1 - lam) * 0.9 * 3 + lam * 0.9 * y01
    assert y[0, :2].tolist() == pytest.approx([y00, y01])
    assert y[0, :2].tolist() == pytest.approx([6.562, 8.3])  # the numbers, once
    y12 = 1.0
    y11 = 1 + (1 - lam) * 0.9 * 2 + lam * 0.9 * y12
    y10 = 1 + (1 - lam) * 0.9 * 2 + lam * 0.9 * y11
    assert y[1, :3].tolist() == pytest.approx([y10, y11, y12])
    y23 = 1 + 0.9 * 4
    y22 = 0 + (1 - lam) * 0.9 * 1 + lam * 0.9 * y23
    assert y[2, 2:].tolist() == pytest.approx([y22, y23])


def test_td_loss_is_half_the_masked_mean_square():
    from rllib_uas.algorithms.u_qmix.learner import td_loss

    q_tot = torch.tensor([[1.0, 2.0, 9.0], [0.0, 0.0, 0.0]])
    y = torch.tensor([[0.0, 0.0, 0.0], [3.0, 0.0, 0.0]])
    filled = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    assert float(td_loss(q_tot, y, filled)) == pytest.approx(0.5 * (1 + 4 + 9) / 3)


def test_double_q_never_bootstraps_from_an_unavailable_action():
    from rllib_uas.algorithms.u_qmix.learner import max_target_q

    q = torch.tensor([[[10.0, 1.0, 3.0], [0.0, 5.0, 4.0]]])  # [T=1, n=2, A=3]
    q_target = torch.tensor([[[100.0, 7.0, 2.0], [-1.0, 8.0, 6.0]]])
    mask = torch.tensor([[[0.0, 1.0, 1.0], [1.0, 0.0, 1.0]]])  # the online argmax is unavailable
    # online best available: agent 0 -> action 2 (3 > 1), agent 1 -> action 2 (4 > 0): target's values there
    assert max_target_q(q, q_target, mask, double_q=True).tolist() == [[2.0, 6.0]]
    assert max_target_q(q, q_target, mask, double_q=False).tolist() == [[7.0, 6.0]]


def test_target_networks_follow_every_200_episodes(ray_session):
    from rllib_uas.algorithms.u_qmix.learner import NUM_EPISODES_SAMPLED_LIFETIME
    from rllib_uas.envs.team import TeamEnv

    learner = UQMIXConfig().environment(env_config={"map_name": "3m"}).build_learner(env=TeamEnv({"map_name": "3m"}))
    module = learner.module["default_policy"].unwrapped()
    updates = []
    for episodes in (8, 100, 199, 200, 208, 399, 400, 650):
        with torch.no_grad():
            module.q_head.weight.add_(1.0)  # the online net moves
        learner.after_gradient_based_update(timesteps={NUM_EPISODES_SAMPLED_LIFETIME: episodes})
        updates.append(torch.equal(module.q_head.weight, module._target_q_head.weight))
    assert updates == [False, False, False, True, False, False, True, True]


def test_epsilon_anneals_by_simulated_steps_inside_a_real_runner(ray_session):
    algo = (
        UQMIXConfig()
        .environment(env_config={"map_name": "3m"})
        .env_runners(num_env_runners=0, num_envs_per_env_runner=4)
        .training(epsilon_anneal_steps=2000, learning_starts_episodes=10_000, buffer_size_episodes=10_000)
        .debugging(seed=0)
    ).build_algo()
    module = algo.env_runner.module
    seen = []
    explore = module._forward_exploration
    module._forward_exploration = lambda batch, t=0, **kw: (seen.append(t), explore(batch, t=t, **kw))[1]
    try:
        for _ in range(8):
            steps = int(algo.train()["num_env_steps_sampled_lifetime"])
        # t is the simulated step count when each action is chosen: 4 envs step per call
        assert seen[0] == 0 and seen == sorted(seen)
        assert steps - 8 <= seen[-1] <= steps
        from rllib_uas.modules.team_q import epsilon_at

        assert epsilon_at(seen[-1], 1.0, 0.05, 2000) == pytest.approx(max(0.05, 1 - 0.95 * seen[-1] / 2000))
    finally:
        algo.stop()


@pytest.mark.parametrize(
    "switches",
    [dict(), dict(uas=False, cgi_coeff=0.0), dict(uas=False, cgi_coeff=0.0, parameter_sharing="group")],
    ids=["U-QMIX", "QMIX", "QMIX-group"],
)
def test_training_unroll_reproduces_the_acted_greedy_actions(ray_session, switches):
    """The learner's unroll of buffered episodes from h0 = 0 gives the actions the runner took
    (epsilon 0): observations, masks, last actions and memory agree between acting and training."""
    algo = (
        tiny(
            epsilon_start=0.0,
            epsilon_finish=0.0,
            learning_starts_episodes=10_000,
            buffer_size_episodes=10_000,
            buffer_size_mb=256,  # keeps every episode of 4 iterations; a worst case the machine's memory holds
            **switches,
        )
    ).build_algo()
    try:
        for _ in range(4):
            algo.train()
        batch = pad_episodes(algo.episode_buffer.episodes[:16])
        module = algo.learner_group._learner.module["default_policy"].unwrapped()
        with torch.no_grad():
            rows = train_batch(batch).policy_batches["default_policy"]  # the learner's layout
            out = module._forward_train(convert_to_torch_tensor(dict(rows)))
        from rllib_uas.modules.agent_network import masked_logits
        from rllib_uas.modules.team_q import Q_VALUES
        from rllib_uas.modules.valid_rows import on_grid

        q = on_grid(out, Q_VALUES)  # [B, T+1, n, A]: the module packs its training outputs at the valid rows
        greedy = masked_logits(q[:, :-1], torch.as_tensor(batch["action_mask"][:, :-1])).argmax(-1)
        filled = batch["filled"] > 0
        assert filled.sum() > 100
        assert np.array_equal(greedy.numpy()[filled], batch["actions"][filled])
    finally:
        algo.stop()


# ---------------------------------------------------------------- the buffer's memory
def test_compact_storage_is_exact_and_smaller():
    from rllib_uas.algorithms.u_qmix.episode_buffer import DERIVED_LAST_ACTION, compact, episode_nbytes, expand

    ep = fake_episode(5, A=4)
    ep["actions"] = np.array([[0, 1], [2, 3], [1, 1], [3, 0], [2, 2]], np.int64)
    ep["last_action"] = np.zeros((6, 2, 4), np.float32)
    ep["last_action"][1:] = np.eye(4, dtype=np.float32)[ep["actions"]]
    ep["action_mask"][2, 0, 3] = 0.0
    stored = compact(ep)
    assert DERIVED_LAST_ACTION in stored and "last_action" not in stored
    assert stored["action_mask"].dtype == np.bool_ and stored["actions"].dtype == np.int16
    assert episode_nbytes(stored) < 0.6 * episode_nbytes(ep)
    back = expand(stored)
    assert set(back) == set(ep) and all(np.array_equal(back[k], ep[k]) and back[k].dtype == ep[k].dtype for k in ep)
    assert compact(stored) is stored  # idempotent
    # a last action that is not the previous action (another env's convention) is kept as it is
    odd = dict(ep, last_action=ep["last_action"][::-1].copy())
    assert np.array_equal(expand(compact(odd))["last_action"], odd["last_action"])
    # padded batches are the same from stored and from plain episodes
    a, b = pad_episodes([ep, fake_episode(3, A=4)]), pad_episodes([stored, compact(fake_episode(3, A=4))])
    assert set(a) == set(b) and all(np.array_equal(a[k], b[k]) and a[k].dtype == b[k].dtype for k in a)


def test_buffer_capacity_in_megabytes_drops_the_oldest():
    from rllib_uas.algorithms.u_qmix.episode_buffer import compact, episode_nbytes

    size = episode_nbytes(compact(fake_episode(10)))
    buf = EpisodeBuffer(capacity=1000, seed=0, capacity_mb=3.5 * size / 2**20)
    buf.add([fake_episode(10, reward=r) for r in range(6)])
    assert len(buf) == 3 and buf.nbytes == 3 * size <= buf.capacity_bytes
    assert [float(e["rewards"][0]) for e in buf.episodes] == [3.0, 4.0, 5.0]


def test_a_buffer_that_cannot_fit_is_refused_at_start():
    from rllib_uas.algorithms.u_qmix.algorithm import check_buffer_fits
    from rllib_uas.envs.team import TeamEnv

    space = TeamEnv({"map_name": "MMM2"}).observation_space
    config = UQMIXConfig().environment(env_config={"map_name": "MMM2"})
    with pytest.raises(
        ValueError,
        match=r"replay buffer can grow to .* GiB \(5000 episodes x up to 180 steps.*"
        r"set buffer_size_mb",
    ):
        check_buffer_fits(config, space, memory=2 * 2**30)  # 2 GiB of memory
    check_buffer_fits(config, space, memory=64 * 2**30)  # fits
    check_buffer_fits(config.training(buffer_size_mb=1500), space, memory=2 * 2**30)
    with pytest.raises(ValueError, match="buffer_size_mb must be a number > 0"):
        UQMIXConfig().training(buffer_size_mb=-1).validate()


def test_checkpoints_can_leave_the_buffer_out(ray_session, tmp_path):
    from pathlib import Path

    algo = tiny().build_algo()
    lean = tiny(checkpoint_buffer=False).build_algo()
    try:
        for _ in range(3):
            algo.train()
        steps, episodes = algo._env_steps_sampled, algo._episodes_sampled
        full = algo.save_to_path(str(tmp_path / "full"))
        lean.set_state(algo.get_state())  # the same run, saved without its buffer
        assert len(lean.episode_buffer) == len(algo.episode_buffer) >= 12
        path = lean.save_to_path(str(tmp_path / "lean"))
    finally:
        algo.stop()
        lean.stop()
    size = lambda p: sum(f.stat().st_size for f in Path(p).rglob("*") if f.is_file())  # noqa: E731
    assert size(path) < size(full) - 100_000  # 12+ MMM episodes are well over 100 kB
    restored = UQMIX.from_checkpoint(path)
    try:
        assert len(restored.episode_buffer) == 0 and restored.iteration == 3
        assert (restored._env_steps_sampled, restored._episodes_sampled) == (steps, episodes)  # counting goes on
        restored.train()
        assert len(restored.episode_buffer) >= 4
    finally:
        restored.stop()
