"""parameter_sharing="group": one agent network (and heads) per action group, on both algorithms."""

import numpy as np
import pytest
import torch
from ray.rllib.core.columns import Columns

from rllib_uas.algorithms.u_mappo import UMAPPOConfig
from rllib_uas.algorithms.u_qmix import UQMIXConfig
from rllib_uas.envs.team import TeamEnv
from rllib_uas.modules.agent_network import GroupedAgentNetwork, GroupedHead
from rllib_uas.modules.team_ppo import CGI_LOGITS, TeamPPOModule
from rllib_uas.modules.team_q import Q_VALUES, TeamQModule

MAP = "MMM"  # 7 Marines, 2 Marauders (one group: they attack) and a Medivac (the other: it heals)


def module(cls, **model_config):
    env = TeamEnv({"map_name": MAP})
    torch.manual_seed(0)
    m = cls(
        observation_space=env.observation_space,
        action_space=env.action_space,
        model_config={"max_seq_len": 20, **model_config},
    )
    if cls is TeamQModule:
        m.make_target_networks()  # as the learner does before training
    return env, m


def rollout_batch(env, module, T=6, seed=0):
    """A [1, T] batch of real observations from random available play."""
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    steps = []
    for _ in range(T):
        steps.append(obs)
        mask = obs["action_mask"]
        action = np.array([rng.choice(np.flatnonzero(m)) for m in mask])
        obs, *_ = env.step(action)
    batch_obs = {k: torch.as_tensor(np.stack([o[k] for o in steps]))[None] for k in steps[0]}  # [1, T, ...]
    h = torch.zeros(1, module.n_agents, module.cfg["gru_hidden"])
    return {Columns.OBS: batch_obs, Columns.STATE_IN: {"h": h}}


def test_map_has_two_groups():
    env = TeamEnv({"map_name": MAP})
    groups = env.observation_space["group"].high.astype(int)
    assert list(groups) == [0] * 9 + [1]


@pytest.mark.parametrize("cls", [TeamPPOModule, TeamQModule])
def test_group_copies_have_the_global_networks_sizes(cls):
    _, shared = module(cls)
    _, grouped = module(cls, parameter_sharing="group")
    assert isinstance(grouped.agent_net, GroupedAgentNetwork) and len(grouped.agent_net.copies) == 2
    head = grouped.policy_head if cls is TeamPPOModule else grouped.q_head
    assert isinstance(head, GroupedHead) and len(head.copies) == 2

    def count(m):
        return sum(p.numel() for p in m.parameters())

    assert count(grouped.agent_net) == 2 * count(shared.agent_net)
    assert count(grouped.cgi_head) == 2 * count(shared.cgi_head)
    for copy in grouped.agent_net.copies:
        assert [p.shape for p in copy.parameters()] == [p.shape for p in shared.agent_net.parameters()]


@pytest.mark.parametrize("cls", [TeamPPOModule, TeamQModule])
def test_copies_with_equal_weights_reproduce_global_sharing(cls):
    """Each group's copy loaded with the global network's weights: every agent's output is the
    global module's, so the grouping and the restored agent order are exact."""
    env, shared = module(cls)
    _, grouped = module(cls, parameter_sharing="group")
    state = shared.state_dict()
    mapped = {}
    for key in grouped.state_dict():
        parts = key.split(".")
        plain = ".".join(p for i, p in enumerate(parts) if not (i > 0 and parts[i - 1] == "copies") and p != "copies")
        mapped[key] = state[plain]
    grouped.load_state_dict(mapped)
    batch = rollout_batch(env, shared)
    if cls is TeamPPOModule:
        a, b = shared._forward_train(batch), grouped._forward_train(batch)
        keys = (Columns.ACTION_DIST_INPUTS, CGI_LOGITS)
        torch.testing.assert_close(a[Columns.STATE_OUT]["h"], b[Columns.STATE_OUT]["h"])
    else:
        a, b = shared._forward_train(batch), grouped._forward_train(batch)
        keys = (Q_VALUES, CGI_LOGITS)
    for k in keys:
        torch.testing.assert_close(a[k], b[k])


def test_a_groups_copy_moves_only_its_own_agents():
    env, grouped = module(TeamPPOModule, parameter_sharing="group")
    batch = rollout_batch(env, grouped)
    before = grouped._forward_train(batch)[Columns.ACTION_DIST_INPUTS]  # [1, T, n, A]
    with torch.no_grad():
        for p in grouped.agent_net.copies[1].parameters():  # the Medivac's network
            p.add_(0.5)
    after = grouped._forward_train(batch)[Columns.ACTION_DIST_INPUTS]
    torch.testing.assert_close(after[:, :, :9], before[:, :, :9])
    medivac_available = batch[Columns.OBS]["action_mask"][:, :, 9] > 0
    assert not torch.allclose(after[:, :, 9][medivac_available], before[:, :, 9][medivac_available])


def test_a_loss_on_one_group_trains_only_that_groups_copy():
    env, grouped = module(TeamQModule, parameter_sharing="group")
    q = grouped._forward_train(rollout_batch(env, grouped))[Q_VALUES]  # [1, T, n, A]
    q[:, :, :9].sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in grouped.agent_net.copies[0].parameters())
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in grouped.agent_net.copies[1].parameters())
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in grouped.q_head.copies[1].parameters())


@pytest.mark.parametrize("config_cls", [UMAPPOConfig, UQMIXConfig])
def test_unknown_sharing_is_refused(config_cls):
    with pytest.raises(ValueError, match="parameter_sharing must be 'global'.*'group'.*got 'per-type'"):
        config_cls().training(parameter_sharing="per-type").validate()


def test_mappo_and_qmix_with_group_sharing_train(ray_session):
    mappo = (
        UMAPPOConfig()
        .environment(env_config={"map_name": MAP})
        .env_runners(num_env_runners=0, num_envs_per_env_runner=4)
        .training(
            uas=False,
            cgi_coeff=0.0,
            parameter_sharing="group",
            train_batch_size_per_learner=200,
            minibatch_size=200,
            num_epochs=1,
        )
        .debugging(seed=0)
    ).build_algo()
    qmix = (
        UQMIXConfig()
        .environment(env_config={"map_name": MAP})
        .env_runners(num_env_runners=0, num_envs_per_env_runner=4)
        .training(
            uas=True,
            cgi_coeff=0.1,
            parameter_sharing="group",
            batch_size_episodes=8,
            learning_starts_episodes=4,
            episodes_per_iteration=4,
            buffer_size_episodes=50,
        )
        .debugging(seed=0)
    ).build_algo()
    try:
        r = mappo.train()
        assert np.isfinite(float(r["learners"]["default_policy"]["policy_loss"]))
        assert isinstance(mappo.get_module().agent_net, GroupedAgentNetwork)
        qmix.train()
        r = qmix.train()
        learner = r["learners"]["default_policy"]
        assert np.isfinite(float(learner["td_loss"])) and np.isfinite(float(learner["cgi_loss"]))
    finally:
        mappo.stop()
        qmix.stop()


def test_interleaved_groups_come_back_in_agent_order():
    """Agents of groups [1, 0, 1, 0, 0]: every row goes through its own group's copy and lands at
    its own agent's place (the maps list their healers last, so this order is built by hand)."""
    from rllib_uas.modules.agent_network import RecurrentAgentNetwork

    agent_group = np.array([1, 0, 1, 0, 0])
    torch.manual_seed(1)
    net = GroupedAgentNetwork(lambda: RecurrentAgentNetwork(3, 8, 4), agent_group)
    head = GroupedHead(lambda: torch.nn.Linear(4, 2), agent_group)
    x, h0 = torch.randn(2, 5, 5, 3), torch.randn(2, 5, 4)  # [B, T, n, In], [B, n, H]
    h_seq, h_last = net(x, h0)
    out = head(h_seq)  # [B, T, n, 2]
    for i, g in enumerate(agent_group):
        own_seq, own_last = net.copies[g](x[:, :, i : i + 1], h0[:, i : i + 1])
        torch.testing.assert_close(h_seq[:, :, i], own_seq[:, :, 0])
        torch.testing.assert_close(h_last[:, i], own_last[:, 0])
        torch.testing.assert_close(out[:, :, i], head.copies[g](own_seq[:, :, 0]))
