"""Heads, mixers and the CGI term on the valid steps of a padded batch only: a speed-up, the same
numbers. On the valid rows the packed result is the dense one, on the padding it is zero, and a whole
U-QMIX update (TD and CGI terms) ends at the same weights packed as dense."""

import copy

import pytest
import torch
from ray.rllib.core.columns import Columns
from u_qmix_update import algo_with_episodes, one_update

import rllib_uas.modules.valid_rows as valid_rows
from rllib_uas.algorithms.u_mappo.learner import UMAPPOTorchLearner
from rllib_uas.modules.agent_network import Buckets, GroupedAgentNetwork, RecurrentAgentNetwork, length_buckets
from rllib_uas.modules.mixers import QMixer
from rllib_uas.modules.valid_rows import VALID_ROWS, scatter_rows, valid_steps


def test_a_mixer_on_the_valid_rows_is_the_dense_result_there_and_zero_on_padding_with_the_same_gradients():
    """What the learner does: the mixer on the picked rows, scattered back to the [B, T] grid."""
    torch.manual_seed(0)
    mixer = QMixer(n_agents=3, state_dim=5)
    qs, state = torch.randn(4, 6, 3, requires_grad=True), torch.randn(4, 6, 5)
    rows = valid_steps(torch.tensor([6, 1, 3, 4]), 6)  # [4, 6]
    assert rows.sum() == 14 and rows[1].tolist() == [True] + [False] * 5
    packed = scatter_rows(mixer(qs[rows], state[rows]), rows)  # [4, 6]
    dense = mixer(qs, state)
    torch.testing.assert_close(packed[rows], dense[rows])
    assert not packed[~rows].any()
    (g_packed,) = torch.autograd.grad((packed * rows).sum(), qs)
    (g_dense,) = torch.autograd.grad((dense * rows).sum(), qs)
    torch.testing.assert_close(g_packed, g_dense)
    assert not g_packed[~rows].any()
    assert state[rows].shape == (14, 5)


@pytest.mark.parametrize("grouped", [False, True])
@pytest.mark.parametrize("padded", ["mostly", "little"])
def test_valid_states_are_the_unrolls_states_at_the_valid_steps_with_the_same_gradients(grouped, padded):
    """The agent network's packed states [M, n, H] are h_seq[valid] of its padded unroll, in row-major
    (episode, step) order, by the bucketed path (mostly padding) and the plain one (little)."""
    torch.manual_seed(3)
    B, T, n, In, H = 60, 24, 4, 7, 8
    lengths = torch.randint(1, T // 3, (B,)) if padded == "mostly" else torch.full((B,), T)
    lengths[-1] = T  # one long episode sets the padded length
    lengths[0] = T - 1 if padded == "little" else lengths[0]
    assert (length_buckets(lengths.numpy(), T, n) is None) == (padded == "little")
    net = (
        GroupedAgentNetwork(lambda: RecurrentAgentNetwork(In, H, H), [0, 1, 0, 1])
        if grouped
        else RecurrentAgentNetwork(In, H, H)
    )
    x, h0 = torch.randn(B, T, n, In), torch.randn(B, n, H)
    rows = valid_steps(lengths, T)  # [B, T]
    weights = torch.randn(int(rows.sum()), n, H)

    def grads(h):
        net.zero_grad()
        (h * weights).sum().backward()
        return [p.grad.clone() for p in net.parameters()]

    buckets = Buckets(lengths, T, n)
    assert buckets.whole == (padded == "little") and torch.equal(buckets.rows, rows)
    packed = net.valid_states(buckets.take(x), h0, buckets)  # [M, n, H]
    g_packed = grads(packed)
    dense = net(x, h0, lengths)[0][rows]
    g_dense = grads(dense)
    assert packed.shape == (int(rows.sum()), n, H)
    torch.testing.assert_close(packed, dense, rtol=1e-6, atol=1e-6)
    for a, b in zip(g_packed, g_dense):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    # the order is row-major: episode 1's first state follows episode 0's last
    first_of_1 = int(lengths[0])
    torch.testing.assert_close(packed[first_of_1], net(x, h0)[0][1, 0])


def test_u_qmix_update_is_the_same_packed_and_dense(ray_session, monkeypatch):
    def check(batch):
        assert batch["filled"].mean() < 0.8  # padded episodes of mixed lengths

    def trained(pack: bool):
        monkeypatch.setattr(valid_rows, "PACK", pack)
        try:
            return one_update(check)
        finally:
            monkeypatch.undo()

    before_p, after_p, loss_p = trained(True)
    before_d, after_d, loss_d = trained(False)
    assert loss_p["cgi_loss"] > 0
    for k in loss_p:
        assert loss_p[k] == pytest.approx(loss_d[k], rel=1e-5), k
    for k in before_p:
        torch.testing.assert_close(before_p[k], before_d[k])  # same start
    moved = [k for k in after_p if not torch.equal(after_p[k], before_p[k])]
    assert any("mixer" in k for k in moved) and any("cgi" in k for k in moved)
    for k in after_p:
        torch.testing.assert_close(after_p[k], after_d[k], rtol=1e-5, atol=1e-6, msg=k)


def _dense_reference_loss(module, batch, out, cfg) -> torch.Tensor:
    """The U-QMIX loss written on the whole padded grid (every term masked by `filled`): what the
    learner computed before it worked on the valid rows only."""
    from rllib_uas.algorithms.u_qmix.learner import max_target_q, td_lambda_targets, td_loss
    from rllib_uas.modules.agent_network import masked_logits
    from rllib_uas.modules.cgi import cgi_loss
    from rllib_uas.modules.team_q import CGI_LOGITS, Q_VALUES, TARGET_Q_VALUES

    obs, filled = batch[Columns.OBS], batch["filled"]
    q, q_target, mask = out[Q_VALUES], out[TARGET_Q_VALUES], obs["action_mask"]  # [B, T+1, n, A]
    chosen = q[:, :-1].gather(-1, batch["actions"].long()[..., None]).squeeze(-1)  # [B, T, n]
    q_tot = module.mix(chosen, obs["state"][:, :-1])
    target_tot = module.mix(max_target_q(q, q_target, mask, cfg.double_q), obs["state"], target=True)
    y = td_lambda_targets(batch["rewards"], batch["terminated"], filled, target_tot, cfg.gamma, cfg.td_lambda)
    probs = torch.softmax(masked_logits(q[:, :-1], mask[:, :-1]), -1).detach()
    cgi = cgi_loss(
        out[CGI_LOGITS][:, :-1], probs, obs["group"][:, :-1], obs["alive"][:, :-1], module.group_masks, filled
    )
    return td_loss(q_tot, y, filled) + cfg.cgi_coeff * cgi


def test_the_learners_loss_on_valid_rows_is_the_dense_grid_loss(ray_session, monkeypatch):
    """The learner's loss from the module's packed outputs and from its padded grid both equal the
    loss written on the whole grid (a learner that drops or shifts a row fails this)."""
    import numpy as np
    from ray.rllib.utils.torch_utils import convert_to_torch_tensor

    from rllib_uas.algorithms.u_qmix.algorithm import train_batch
    from rllib_uas.modules.team_q import TARGET_Q_VALUES
    from rllib_uas.modules.valid_rows import on_grid

    algo = algo_with_episodes(32, seed=2)
    try:
        np.random.seed(0)
        sample = algo.episode_buffer.sample(32)
        assert sample["filled"].mean() < 0.8 and sample["terminated"].sum() < 32  # padding; some time-outs
        batch = convert_to_torch_tensor(dict(train_batch(sample).policy_batches["default_policy"]))
        learner = algo.learner_group._learner
        module = learner.module["default_policy"].unwrapped()
        torch.manual_seed(0)
        with torch.no_grad():  # online and target networks apart, so that double Q picks differ
            for p in module.agent_net.parameters():
                p.add_(0.1 * torch.randn_like(p))
        losses = {}
        for pack in (True, False):
            monkeypatch.setattr(valid_rows, "PACK", pack)
            with torch.no_grad():
                out = module._forward_train(batch)
                assert (VALID_ROWS in out) == pack
                # the TargetNetworkAPI's forward_target gives the same target Q-values, on the grid
                grid = module.forward_target(batch)[TARGET_Q_VALUES]  # [B, T+1, n, A]
                torch.testing.assert_close(grid, on_grid(out, TARGET_Q_VALUES))
                losses[pack] = float(
                    learner.compute_loss_for_module(
                        module_id="default_policy", config=algo.config, batch=batch, fwd_out=out
                    )
                )
                if not pack:
                    reference = float(_dense_reference_loss(module, batch, out, algo.config))
        assert losses[True] > 0
        assert losses[True] == pytest.approx(reference, rel=1e-5)
        assert losses[False] == pytest.approx(reference, rel=1e-5)
    finally:
        algo.stop()


class PackedAgainstGridLearner(UMAPPOTorchLearner):
    """On the first minibatch, the U-MAPPO loss and its gradients from packed outputs (valid_rows.PACK)
    and from the padded grid, on the same batch and weights (the value normalizer's statistics are
    put back between the two: the loss updates them)."""

    def compute_loss_for_module(self, *, module_id, config, batch, fwd_out):
        if not hasattr(self, "compared"):
            module = self.module[module_id].unwrapped()
            params = [p for p in module.parameters() if p.requires_grad]
            norm = copy.deepcopy(module.value_norm.state_dict()) if module.value_norm is not None else None
            self.compared = {}
            for pack in (True, False):
                valid_rows.PACK = pack
                if norm is not None:
                    module.value_norm.load_state_dict(norm)
                out = module.forward_train(batch)
                loss = super().compute_loss_for_module(module_id=module_id, config=config, batch=batch, fwd_out=out)
                grads = torch.autograd.grad(loss, params, allow_unused=True)
                rows = batch[Columns.LOSS_MASK]
                self.compared[pack] = (float(loss.detach()), grads, out.get(VALID_ROWS), float(rows.float().mean()))
            valid_rows.PACK = True
            if norm is not None:
                module.value_norm.load_state_dict(norm)
            fwd_out = module.forward_train(batch)
        return super().compute_loss_for_module(module_id=module_id, config=config, batch=batch, fwd_out=fwd_out)


@pytest.mark.parametrize(
    "model",
    [dict(), dict(state_type="AS"), dict(recurrent_critic=True), dict(parameter_sharing="group")],
    ids=["EP-mlp", "AS-mlp", "EP-rnn", "group"],
)
def test_u_mappo_loss_and_gradients_are_the_same_packed_and_on_the_grid(ray_session, model):
    """The U-MAPPO learner on the module's outputs at the valid steps only (policy, CGI and critic
    terms) gives the loss and gradients of the padded grid, on a real sampled batch with padding."""
    from rllib_uas.algorithms.u_mappo import UMAPPOConfig

    config = (
        UMAPPOConfig()
        .environment(env_config={"map_name": "MMM", "agent_state": model.get("state_type") == "AS"})
        .env_runners(num_env_runners=0, num_envs_per_env_runner=4)
        .training(
            train_batch_size_per_learner=400,
            minibatch_size=400,
            num_epochs=1,
            learner_class=PackedAgainstGridLearner,
            **model,
        )
        .debugging(seed=0)
    )
    algo = config.build_algo()
    try:
        algo.train()
        compared = algo.learner_group._learner.compared
    finally:
        algo.stop()
    (loss_p, grads_p, rows_p, valid_frac), (loss_g, grads_g, rows_g, _) = compared[True], compared[False]
    assert rows_p is not None and rows_g is None  # packed, then the grid
    assert 0.2 < valid_frac < 0.95  # a batch with padding to skip
    assert int(rows_p.sum()) < rows_p.numel()
    assert loss_p == pytest.approx(loss_g, rel=1e-5, abs=1e-6)
    assert any(g is not None and g.abs().sum() > 0 for g in grads_p)
    for gp, gg in zip(grads_p, grads_g):
        assert (gp is None) == (gg is None)
        if gp is not None:
            torch.testing.assert_close(gp, gg, rtol=1e-4, atol=1e-6)
