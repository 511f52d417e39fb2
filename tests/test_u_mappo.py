"""U-MAPPO: module masking, CGI and per-agent clipping on hand-computed cases, real RLlib training."""

import copy
import math

import numpy as np
import pytest
import torch
from ray.rllib.core.columns import Columns

from rllib_uas.algorithms.u_mappo import UMAPPO, UMAPPOConfig
from rllib_uas.algorithms.u_mappo.learner import (
    UMAPPOTorchLearner,
    masked_entropy,
    per_agent_clipped_surrogate,
    taken_log_probs,
)
from rllib_uas.envs.team import TeamEnv
from rllib_uas.modules.agent_network import masked_logits
from rllib_uas.modules.batch_cache import SameTensorsCache
from rllib_uas.modules.cgi import cgi_loss
from rllib_uas.modules.team_ppo import CGI_LOGITS, TeamPPOModule


def make_module(map_name="MMM", **model_config):
    env = TeamEnv({"map_name": map_name, "agent_state": model_config.get("state_type") == "AS"})
    module = TeamPPOModule(
        observation_space=env.observation_space,
        action_space=env.action_space,
        model_config={"max_seq_len": 20, **model_config},
    )
    return env, module


def batch_of(obs_list, module):
    obs = {k: torch.as_tensor(np.stack([o[k] for o in obs_list]))[:, None] for k in obs_list[0]}
    h = torch.zeros(len(obs_list), module.n_agents, module.cfg["gru_hidden"])
    return {Columns.OBS: obs, Columns.STATE_IN: {"h": h}}


def random_masks(rng, n, A, B):
    m = (rng.random((B, n, A)) < 0.3).astype(np.float32)
    m[..., 0] = np.where(m.sum(-1) == 0, 1.0, m[..., 0])
    return m


def test_sampled_actions_are_never_unavailable():
    env, module = make_module("MMM")
    obs, _ = env.reset(seed=0)
    rng = np.random.default_rng(0)
    B = 1000
    bad = 0
    for _ in range(10):  # 10 x 1000 team samples x 10 agents
        masks = random_masks(rng, 10, env.view.n_actions, B)
        batch = batch_of([{**obs, "action_mask": m} for m in masks], module)
        with torch.no_grad():
            out = module.forward_exploration(batch)
        dist = module.get_exploration_action_dist_cls().from_logits(out[Columns.ACTION_DIST_INPUTS])
        actions = dist.sample().numpy()[:, 0]  # [B, n]
        bad += int((np.take_along_axis(masks, actions[..., None], -1) == 0).sum())
        greedy = (
            module.get_inference_action_dist_cls()
            .from_logits(out[Columns.ACTION_DIST_INPUTS])
            .to_deterministic()
            .sample()
            .numpy()[:, 0]
        )
        bad += int((np.take_along_axis(masks, greedy[..., None], -1) == 0).sum())
        assert torch.isfinite(dist.logp(dist.sample())).all()
    assert bad == 0


def test_cgi_loss_hand_computed_two_groups():
    group_masks = torch.tensor([[1, 1, 0], [1, 0, 1]], dtype=torch.bool)  # AM_0, AM_1
    group = torch.tensor([0, 1])
    pred = torch.tensor([[[0.0, 0.0, 0.0], [0.0, math.log(3.0), 0.0]]])  # [M=1, n=2, A=3]
    probs = torch.tensor([[[0.5, 0.5, 0.0], [0.2, 0.0, 0.8]]])
    alive, valid = torch.ones(1, 2), torch.ones(1)
    # agent 0 predicts group 1 over {0, 2}: [.5, 0, .5] vs [.2, 0, .8] -> 0.09 + 0.09 = 0.18
    # agent 1 predicts group 0 over {0, 1}: [.25, .75, 0] vs [.5, .5, 0] -> 0.0625 * 2 = 0.125
    loss = cgi_loss(pred, probs, group, alive, group_masks, valid)
    assert float(loss) == pytest.approx((0.18 + 0.125) / 2)


def test_cgi_loss_is_zero_at_the_target_and_ignores_dead_and_padding():
    group_masks = torch.tensor([[1, 1, 0], [1, 0, 1]], dtype=torch.bool)
    group = torch.tensor([0, 1, 1])
    probs = torch.tensor([[[0.5, 0.5, 0.0], [0.2, 0.0, 0.8], [0.4, 0.0, 0.6]]])
    target_g1 = torch.tensor([0.3, 0.0, 0.7])  # mean of agents 1 and 2
    pred = torch.log(
        torch.stack([target_g1.clamp(min=1e-12), torch.tensor([0.5, 0.5, 1e-12]), torch.tensor([0.5, 0.5, 1e-12])])
    )[None]
    loss = cgi_loss(pred, probs, group, torch.ones(1, 3), group_masks, torch.ones(1))
    assert float(loss) == pytest.approx(0.0, abs=1e-10)
    # a dead agent of group 1 leaves the target and the loss; a padded step contributes nothing
    alive = torch.tensor([[1.0, 1.0, 0.0]])
    pred2 = pred.clone()
    pred2[0, 0] = torch.log(torch.tensor([0.2, 1e-12, 0.8]))
    assert float(cgi_loss(pred2, probs, group, alive, group_masks, torch.ones(1))) == pytest.approx(0.0, abs=1e-10)
    assert float(cgi_loss(pred * 0, probs, group, alive, group_masks, torch.zeros(1))) == 0.0
    # one group only: no other group to predict
    one = torch.tensor([[True, True, True]])
    assert float(cgi_loss(pred, probs, torch.zeros(3, dtype=torch.long), alive, one, torch.ones(1))) == 0.0


def _cgi_all_groups(pred, probs, group, alive, group_masks, valid):
    """L_CGI written over every (agent, group) pair, the agent's own group weighted out."""
    n, A = pred.shape[-2:]
    G = group_masks.shape[0]
    pred, probs = pred.reshape(-1, n, A), probs.reshape(-1, n, A)
    live, ok = alive.reshape(-1, n), valid.reshape(-1)
    member = torch.nn.functional.one_hot(group.long(), G).float().reshape(-1, n, G)
    weights = live[:, :, None] * member
    count = weights.sum(1)
    target = torch.einsum("mng,mna->mga", weights, probs) / count.clamp(min=1.0)[..., None]
    pred_g = torch.softmax(torch.where(group_masks[None, None], pred[:, :, None, :], -1e9), -1)  # [M, n, G, A]
    err = ((pred_g - target[:, None]) ** 2).sum(-1)
    w = ok[:, None, None] * live[:, :, None] * (count > 0).float()[:, None, :] * (1.0 - member)
    return (err * w).sum() / w.sum().clamp(min=1.0)


@pytest.mark.parametrize("n_groups", [1, 2, 3])
@pytest.mark.parametrize("per_step", [False, True])
def test_cgi_loss_equals_the_all_groups_form(n_groups, per_step):
    """The loss predicts only each agent's other groups; value and gradient are those of the form over
    every group with the own group weighted out (dead agents, padding and absent groups included)."""
    g = torch.Generator().manual_seed(n_groups + 10 * per_step)
    M, n, A = 40, 6, 9
    group_masks = torch.rand(n_groups, A, generator=g) < 0.6
    group_masks[:, 0] = True
    group = torch.randint(0, n_groups, (M, n) if per_step else (n,), generator=g)
    alive = (torch.rand(M, n, generator=g) < 0.7).float()
    valid = (torch.rand(M, generator=g) < 0.9).float()
    probs = torch.softmax(torch.randn(M, n, A, generator=g), -1)
    raw = torch.randn(M, n, A, generator=g)
    results = []
    for loss_fn in (cgi_loss, _cgi_all_groups):
        pred = raw.clone().requires_grad_()
        value = loss_fn(pred, probs, group, alive, group_masks, valid)
        value.backward()
        results.append((float(value), pred.grad))
    assert results[0][0] == pytest.approx(results[1][0], rel=1e-6, abs=1e-12)
    assert torch.allclose(results[0][1], results[1][1], rtol=1e-5, atol=1e-9)
    if n_groups > 1:
        assert results[0][0] > 0


def test_cgi_gradient_reaches_the_shared_trunk():
    env, module = make_module("MMM")
    obs, _ = env.reset(seed=0)
    batch = batch_of([obs, obs], module)
    out = module.forward_train(batch)
    probs = torch.softmax(out[Columns.ACTION_DIST_INPUTS], -1).detach()
    loss = cgi_loss(
        out[CGI_LOGITS], probs, module.agent_group, batch[Columns.OBS]["alive"], module.group_masks, torch.ones(2, 1)
    )
    assert float(loss) > 0
    loss.backward()
    trunk = [p.grad for p in module.agent_net.parameters()]
    assert all(g is not None for g in trunk) and any(float(g.abs().sum()) > 0 for g in trunk)
    assert module.policy_head.weight.grad is None  # the target is detached


def _taken(logits, actions):
    """The taken actions' log-probabilities under the policy of `logits` (log-probabilities here)."""
    return taken_log_probs(torch.log_softmax(logits, -1), actions)


def test_per_agent_clipping_hand_computed():
    old = torch.log(torch.tensor([[0.5, 0.5], [0.5, 0.5]]))  # [n=2, A=2]
    new = torch.log(torch.tensor([[0.8, 0.2], [0.3, 0.7]]))
    actions = torch.tensor([0, 0])
    obj, ratio, behaviour = per_agent_clipped_surrogate(
        _taken(new, actions), _taken(old, actions), torch.tensor(1.0), 0.2, torch.ones(2)
    )
    assert ratio.tolist() == pytest.approx([1.6, 0.6]) and behaviour.tolist() == [1.0, 1.0]
    # agent 0: min(1.6, 1.2) = 1.2; agent 1: min(0.6, 0.8) = 0.6 -> mean 0.9 (the joint ratio 0.96 would give 0.96)
    assert float(obj) == pytest.approx(0.9)
    obj, *_ = per_agent_clipped_surrogate(
        _taken(new, actions), _taken(old, actions), torch.tensor(-1.0), 0.2, torch.ones(2)
    )
    assert float(obj) == pytest.approx((-1.6 - 0.8) / 2)  # A < 0: min(-1.6, -1.2), min(-0.6, -0.8)
    obj, *_ = per_agent_clipped_surrogate(
        _taken(new, actions), _taken(old, actions), torch.tensor(1.0), 0.2, torch.tensor([1.0, 0.0])
    )
    assert float(obj) == pytest.approx(1.2)  # a dead agent is masked out


def test_masked_entropy_hand_computed_and_as_exp_of_log_probs():
    """-sum p log p over the available actions only; from the softmax, it agrees with the
    exp(log_softmax) form it replaced, in value and gradient, to float rounding."""
    logits = masked_logits(torch.tensor([[1.0, 1.0, 5.0], [0.0, 2.0, 0.0]]), torch.tensor([[1, 1, 0], [1, 1, 1]]))
    ent = masked_entropy(torch.softmax(logits, -1), torch.log_softmax(logits, -1), torch.tensor([1.0, 0.0]))
    assert float(ent) == pytest.approx(math.log(2))  # two equal available actions; the second agent weighs 0
    e1, e2 = math.exp(0.0), math.exp(2.0)
    p = [e1 / (2 * e1 + e2), e2 / (2 * e1 + e2)]
    both = masked_entropy(torch.softmax(logits, -1), torch.log_softmax(logits, -1), torch.ones(2))
    assert float(both) == pytest.approx((math.log(2) - 2 * p[0] * math.log(p[0]) - p[1] * math.log(p[1])) / 2)

    g = torch.Generator().manual_seed(0)
    raw = torch.randn(50, 10, 28, generator=g)
    mask = torch.rand(50, 10, 28, generator=g) < 0.4
    mask[..., 0] = True
    weight = (torch.rand(50, 10, generator=g) < 0.8).float()
    grads = []
    for form in ("softmax", "exp"):
        x = masked_logits(raw, mask).requires_grad_()
        logp = torch.log_softmax(x, -1)
        if form == "softmax":
            value = masked_entropy(torch.softmax(x, -1), logp, weight)
        else:  # the replaced form
            value = (-(logp.exp() * logp).sum(-1) * weight).sum() / weight.sum()
        value.backward()
        grads.append((float(value), x.grad))
    assert grads[0][0] == pytest.approx(grads[1][0], rel=1e-6)
    assert torch.allclose(grads[0][1], grads[1][1], rtol=1e-5, atol=1e-8)
    assert bool(torch.isfinite(grads[0][1]).all()) and float(grads[0][1][~mask].abs().max()) == 0.0


def test_decoupled_clipping_hand_computed():
    """overlap_sampling's stale batches: clip around the proximal policy (the update's start), weight
    by pi_prox / pi_old (Hilton et al., 2022)."""
    old = torch.log(torch.tensor([[0.5, 0.5], [0.5, 0.5]]))  # [n=2, A=2] behaviour: the runner's weights
    prox = torch.log(torch.tensor([[0.75, 0.25], [0.25, 0.75]]))  # after the previous update
    new = torch.log(torch.tensor([[0.9, 0.1], [0.2, 0.8]]))
    actions = torch.tensor([0, 0])
    new.requires_grad_(True)
    obj, ratio, behaviour = per_agent_clipped_surrogate(
        _taken(new, actions),
        _taken(old, actions),
        torch.tensor(1.0),
        0.2,
        torch.ones(2),
        prox_logp=_taken(prox, actions),
    )
    assert ratio.tolist() == pytest.approx([1.2, 0.8])  # 0.9 / 0.75, 0.2 / 0.25
    assert behaviour.tolist() == pytest.approx([1.5, 0.5])  # 0.75 / 0.5, 0.25 / 0.5
    # agent 0: 1.5 * min(1.2, 1.2) = 1.8; agent 1: 0.5 * min(0.8, 0.8) = 0.4 -> mean 1.1. Clipped
    # against the behaviour policy, agent 0's ratio 1.8 would be cut to 1.2, with no gradient
    assert float(obj) == pytest.approx(1.1)
    obj.backward()
    assert new.grad is not None and not behaviour.requires_grad
    # the proximal policy equal to the behaviour one gives PPO's objective
    same, *_ = per_agent_clipped_surrogate(
        _taken(new, actions),
        _taken(old, actions),
        torch.tensor(1.0),
        0.2,
        torch.ones(2),
        prox_logp=_taken(old, actions),
    )
    plain, *_ = per_agent_clipped_surrogate(
        _taken(new, actions), _taken(old, actions), torch.tensor(1.0), 0.2, torch.ones(2)
    )
    assert float(same) == pytest.approx(float(plain))


def test_config_validation_errors():
    with pytest.raises(ValueError, match="needs uas=True"):
        UMAPPOConfig().training(uas=False, cgi_coeff=0.1).validate()
    with pytest.raises(ValueError, match="cgi_coeff"):
        UMAPPOConfig().training(cgi_coeff=float("nan")).validate()
    with pytest.raises(ValueError, match="state_type"):
        UMAPPOConfig().training(state_type="XX").validate()
    with pytest.raises(ValueError, match="contradicts"):
        UMAPPOConfig().environment(env_config={"map_name": "3m", "uas": False}).validate()
    with pytest.raises(ValueError, match="value_loss must be 'huber'"):
        UMAPPOConfig().training(value_loss="l1").validate()
    with pytest.raises(ValueError, match="huber_delta must be a finite number > 0"):
        UMAPPOConfig().training(huber_delta=0).validate()


def tiny(map_name="MMM", runners=0, **training):
    training = {"train_batch_size_per_learner": 400, "minibatch_size": 200, "num_epochs": 2, **training}
    return (
        UMAPPOConfig()
        .environment(env_config={"map_name": map_name})
        .env_runners(num_env_runners=runners, num_envs_per_env_runner=4)
        .training(**training)
        .debugging(seed=0)
    )


@pytest.mark.parametrize("runners", [0, 2])
def test_training_iteration(ray_session, runners):
    algo = tiny(runners=runners).build_algo()
    try:
        result = algo.train()
        learner = result["learners"]["default_policy"]
        for key in ("policy_loss", "vf_loss", "entropy", "cgi_loss", "vf_explained_var"):
            assert np.isfinite(float(learner[key]))
        assert float(learner["cgi_loss"]) > 0  # MMM has two groups
        assert result["num_env_steps_sampled_lifetime"] >= 400
        assert "win_rate" in result["env_runners"]
    finally:
        algo.stop()


def test_mappo_baseline_runs_on_the_native_space(ray_session):
    algo = tiny(uas=False, cgi_coeff=0.0).build_algo()
    try:
        module = algo.get_module()
        assert module.n_actions == 16 and module.cgi_head is None
        result = algo.train()
        assert float(result["learners"]["default_policy"]["cgi_loss"]) == 0.0
    finally:
        algo.stop()


def test_checkpoint_restore_gives_the_same_greedy_actions(ray_session, tmp_path):
    algo = tiny(map_name="3m").build_algo()
    try:
        algo.train()
        path = algo.save_to_path(str(tmp_path / "ckpt"))
        module = algo.get_module()
        env = TeamEnv({"map_name": "3m"})
        obs, _ = env.reset(seed=1)
        batch = batch_of([obs], module)
        with torch.no_grad():
            before = module.forward_inference(batch)[Columns.ACTION_DIST_INPUTS]
    finally:
        algo.stop()
    restored = UMAPPO.from_checkpoint(path)
    try:
        with torch.no_grad():
            after = restored.get_module().forward_inference(batch)[Columns.ACTION_DIST_INPUTS]
        assert torch.equal(before.argmax(-1), after.argmax(-1))
        assert torch.allclose(before, after)
        assert restored.iteration == 1
    finally:
        restored.stop()


# ---------------------------------------------------------------- MAPPO's optimization details
def test_huber_value_loss_and_alive_standardization_hand_computed():
    from rllib_uas.algorithms.u_mappo.learner import standardize, value_error_loss

    err = torch.tensor([0.5, -3.0, 12.0, -20.0])
    # inside delta 10: 0.5 e^2; outside: delta (|e| - delta / 2)
    assert value_error_loss(err, "huber", 10.0).tolist() == pytest.approx([0.125, 4.5, 70.0, 150.0])
    assert value_error_loss(err, "mse", 10.0).tolist() == pytest.approx([0.125, 4.5, 72.0, 200.0])
    adv = torch.tensor([[1.0, 1.0], [3.0, 3.0], [100.0, 100.0]])  # [T=3, n=2]
    weight = torch.tensor([[1.0, 1.0], [1.0, 0.0], [0.0, 0.0]])  # agent 1 dies; step 2 is padding
    out = standardize(adv, weight)
    # over the three valid alive entries (1, 1, 3): mean 5/3, std sqrt(8/9)
    mean, std = 5 / 3, math.sqrt(8 / 9)
    assert out[0].tolist() == pytest.approx([(1 - mean) / (std + 1e-5)] * 2, rel=1e-5)
    assert out[1, 0].item() == pytest.approx((3 - mean) / (std + 1e-5), rel=1e-5)


def test_orthogonal_init_gives_a_near_uniform_masked_policy():
    env, module = make_module("MMM")
    w = module.policy_head.weight.detach()  # [A, H]
    sv = torch.linalg.svdvals(w)
    assert torch.allclose(sv, torch.full_like(sv, 0.01), atol=1e-6)  # orthogonal, gain 0.01
    assert float(module.policy_head.bias.abs().max()) == 0.0
    obs, _ = env.reset(seed=0)
    with torch.no_grad():
        logits = module.forward_inference(batch_of([obs], module))[Columns.ACTION_DIST_INPUTS]
    probs = torch.softmax(logits, -1)[0, 0]  # [n, A]
    mask = torch.as_tensor(obs["action_mask"]) > 0
    uniform = mask / mask.sum(-1, keepdim=True)
    assert float((probs - uniform).abs().max()) < 0.02
    _, plain = make_module("MMM", orthogonal_init=False)
    assert not torch.allclose(torch.linalg.svdvals(plain.policy_head.weight.detach()), sv)


def test_actor_and_critic_have_their_own_adam_and_clip(ray_session):
    algo = tiny(map_name="3m", grad_clip=0.5).build_algo()
    try:
        learner = algo.learner_group._learner
        optims = dict(learner.get_optimizers_for_module("default_policy"))
        assert set(optims) == {"actor", "critic"}
        for opt in optims.values():
            assert opt.defaults["eps"] == 1e-5 and opt.defaults["lr"] == 5e-4
        module = learner.module["default_policy"].unwrapped()
        actor = {id(p) for g in optims["actor"].param_groups for p in g["params"]}
        critic = {id(p) for g in optims["critic"].param_groups for p in g["params"]}
        assert not actor & critic and actor | critic == {id(p) for p in module.parameters()}
        assert critic == {id(p) for p in module.critic.parameters()}
        # a huge critic gradient is clipped on its own and leaves the actor's step alone
        grads = {
            learner.get_param_ref(p): torch.full_like(p, 1e3 if id(p) in critic else 1e-4) for p in module.parameters()
        }
        out = learner.postprocess_gradients_for_module(
            module_id="default_policy", config=algo.config, module_gradients_dict=dict(grads)
        )
        by_id = {id(p): out[learner.get_param_ref(p)] for p in module.parameters()}
        critic_norm = torch.sqrt(sum((by_id[i] ** 2).sum() for i in critic))
        assert float(critic_norm) == pytest.approx(0.5, rel=1e-4)
        assert all(torch.equal(by_id[id(p)], torch.full_like(p, 1e-4)) for p in module.parameters() if id(p) in actor)
    finally:
        algo.stop()


class FirstMinibatchLearner(UMAPPOTorchLearner):
    """Records the diagnostics of the first minibatch (before any optimizer step)."""

    def compute_loss_for_module(self, **kwargs):
        total = super().compute_loss_for_module(**kwargs)
        if not hasattr(self, "first"):
            self.first = {
                k: float(self.metrics.peek((kwargs["module_id"], k)))
                for k in ("mean_ratio", "value_change_abs_mean", "vf_loss")
            }
        return total


@pytest.mark.parametrize(
    "critic",
    [
        dict(),
        dict(state_type="AS"),
        dict(recurrent_critic=True),
        dict(state_type="AS", recurrent_critic=True),
        # the baselines' inputs: the native action space (its last-action column) and one network per group
        dict(uas=False, cgi_coeff=0.0),
        dict(uas=False, cgi_coeff=0.0, parameter_sharing="group"),
    ],
    ids=["EP-mlp", "AS-mlp", "EP-rnn", "AS-rnn", "MAPPO", "MAPPO-group"],
)
def test_acting_and_training_agree_on_the_first_minibatch(ray_session, critic):
    """New and sampled logits, and new and sampled critic values, are equal before the first step:
    the memory (policy and critic GRU states), observations (the last action included), masks and
    weights agree between acting and training."""
    algo = tiny(map_name="MMM", learner_class=FirstMinibatchLearner, **critic).build_algo()
    try:
        algo.train()
        first = algo.learner_group._learner.first
        assert first["mean_ratio"] == pytest.approx(1.0, abs=1e-6)
        assert first["value_change_abs_mean"] == pytest.approx(0.0, abs=1e-6)
        assert np.isfinite(first["vf_loss"])
        module = algo.get_module()
        if critic.get("recurrent_critic"):
            rows = module.n_agents if critic.get("state_type") == "AS" else 1
            assert module.get_initial_state()["hc"].shape == (rows, 64)
    finally:
        algo.stop()


def test_agent_specific_critic_is_per_agent_with_death_masking():
    from rllib_uas.algorithms.u_mappo.gae import team_value_targets

    env, module = make_module("MMM", state_type="AS")
    obs, _ = env.reset(seed=0)
    dead = {**obs, "alive": np.r_[np.zeros(2), np.ones(8)].astype(np.float32), "agent_state": obs["agent_state"] + 5.0}
    batch = batch_of([obs, dead], module)
    with torch.no_grad():
        v = module.compute_values(batch)  # [B, T, n]
    assert v.shape == (2, 1, 10)
    # a dead agent's input is its id alone: its value does not depend on the state it would see
    again = batch_of([obs, {**dead, "agent_state": dead["agent_state"] * 3.0}], module)
    with torch.no_grad():
        v2 = module.compute_values(again)
    assert torch.equal(v[1, 0, :2], v2[1, 0, :2]) and not torch.equal(v[1, 0, 2:], v2[1, 0, 2:])
    # GAE per agent column with the team reward: lambda 1, gamma 0.5, two steps then truncated; RLlib's
    # layout: the last real step carries truncated, the extra row holds the bootstrap state's value
    values = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], np.float32)  # [rows, n]
    targets = team_value_targets(
        values, np.array([1.0, 1.0, 0.0]), np.zeros(3), np.array([0.0, 1.0, 0.0]), gamma=0.5, lambda_=1.0
    )
    # agent 0: y1 = 1 + .5 * 5 = 3.5, y0 = 1 + .5 * 3.5 = 2.75; agent 1: y1 = 1 + .5 * 6 = 4, y0 = 3
    np.testing.assert_allclose(targets[:2], [[2.75, 3.0], [3.5, 4.0]], rtol=1e-6)


def test_the_training_forward_builds_a_batchs_inputs_once_and_anew_for_another_batch():
    """MAPPO's epochs pass the same batch tensors every epoch: the buckets, agent inputs and masks are
    built once for them (the same outputs as built afresh), and a batch of other tensors, even with
    equal values but one changed observation, gets its own."""
    env, module = make_module("MMM")
    rng = np.random.default_rng(0)
    B, T = 6, 20
    obs0, _ = env.reset(seed=0)
    obs = {k: torch.as_tensor(np.broadcast_to(v, (B, T, *np.shape(v))).copy()) for k, v in obs0.items()}
    obs["obs"] = obs["obs"] + torch.as_tensor(rng.normal(size=obs["obs"].shape), dtype=torch.float32)
    lengths = torch.tensor([20, 3, 5, 2, 4, 3])  # padded enough to bucket
    h = torch.zeros(B, module.n_agents, module.cfg["gru_hidden"])
    batch = {Columns.OBS: obs, Columns.STATE_IN: {"h": h}, Columns.SEQ_LENS: lengths}
    built = []
    real = module.agent_inputs
    module.agent_inputs = lambda o: built.append(1) or real(o)
    with torch.no_grad():
        first = module.forward_train(batch)[Columns.ACTION_DIST_INPUTS]
        n_built = len(built)
        assert n_built >= 2  # one per bucket
        again = module.forward_train(batch)[Columns.ACTION_DIST_INPUTS]  # the next epoch
        assert len(built) == n_built  # reused
        torch.testing.assert_close(again, first, rtol=0, atol=0)
        copy = {**batch, Columns.OBS: {k: v.clone() for k, v in obs.items()}}
        fresh = module.forward_train(copy)[Columns.ACTION_DIST_INPUTS]
        assert len(built) == 2 * n_built  # other tensors: built anew, the same values
        torch.testing.assert_close(fresh, first, rtol=0, atol=0)
        copy[Columns.OBS]["obs"] = copy[Columns.OBS]["obs"].clone()
        copy[Columns.OBS]["obs"][1, 0] += 1.0
        changed = module.forward_train(copy)[Columns.ACTION_DIST_INPUTS]
        assert len(built) == 3 * n_built
        assert not torch.equal(changed, first)


class _NoReuse:
    """A SameTensorsCache stand-in that builds every time."""

    def get(self, name, tensors, build):
        return build()


class _Counting:
    """Records which entries a cache builds (the part of the name before its "/")."""

    def __init__(self, inner, built: list):
        self.inner, self.built = inner, built

    def get(self, name, tensors, build):
        return self.inner.get(name, tensors, lambda: self.built.append(name.split("/")[0]) or build())


@pytest.mark.parametrize("overlap", [False, True])
def test_an_updates_epochs_reuse_the_batch_terms_with_the_same_result(ray_session, overlap):
    """One minibatch per epoch: the loss's terms that depend on the batch only (masks, standardized
    advantages, the behaviour policy's and, with overlap_sampling, the proximal policy's
    log-probabilities) are built in the first epochs and reused; the update ends at the same weights
    and losses, bit for bit, as when every epoch builds them."""
    cfg = tiny(map_name="3m1m_vs_4m", runners=int(overlap), minibatch_size=400, num_epochs=3)
    algo = cfg.training(overlap_sampling=overlap).learners(num_cpus_per_learner=1).build_algo()
    try:
        episodes = algo.env_runner_group.foreach_env_runner(
            lambda r: r.sample(num_timesteps=400), local_env_runner=not overlap
        )[0]
        learner = algo.learner_group._learner
        module = learner.module["default_policy"].unwrapped()
        start, before = learner.get_state(), {k: v.clone() for k, v in module.state_dict().items()}
        results, builds = [], []
        for reuse in (True, False):
            learner.set_state(start)
            built = []
            learner._batch_cache = _Counting(SameTensorsCache() if reuse else _NoReuse(), built)
            module._batch_cache = SameTensorsCache() if reuse else _NoReuse()
            out = learner.update(episodes=copy.deepcopy(episodes), num_epochs=3, minibatch_size=400)
            weights = {k: v.detach().clone() for k, v in module.state_dict().items()}
            losses = {k: float(out["default_policy"][k].peek()) for k in ("policy_loss", "vf_loss", "entropy")}
            results.append((weights, losses))
            builds.append(built)
        # with reuse: the loss terms once; the proximal ones once, in the second epoch (the first
        # epoch's own logits are the proximal policy)
        assert builds[0] == (["loss", "prox"] if overlap else ["loss"])
        assert builds[1] == (["loss", "loss", "prox", "loss", "prox"] if overlap else ["loss"] * 3)
        (w_reuse, l_reuse), (w_fresh, l_fresh) = results
        assert l_reuse == l_fresh
        for k in w_reuse:
            assert torch.equal(w_reuse[k], w_fresh[k]), k
        assert any(not torch.equal(w_reuse[k], before[k]) for k in before)  # the update moved the weights
    finally:
        algo.stop()
