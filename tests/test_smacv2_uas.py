"""UAS with per-episode membership (SMACv2): which group each agent belongs to changes at every reset, and
the masks, the actions, the CGI loss and the replay buffer follow each step's membership."""

import numpy as np
import pytest
import torch

from rllib_uas.algorithms.u_mappo import UMAPPOConfig
from rllib_uas.algorithms.u_qmix import UQMIXConfig
from rllib_uas.algorithms.u_qmix.episode_buffer import expand
from rllib_uas.envs.team import TeamVectorEnv
from rllib_uas.modules.cgi import cgi_loss
from rllib_uas.team_obs import GROUP_MASKS, space_groups
from rllib_uas.uas import smac_map_action_groups

N_AGENTS, N_ENEMIES = 5, 5
HEAL0 = 6 + N_ENEMIES  # UAS index of "heal ally 0" on terran_5_vs_5: self 6, attack 5, heal 5


def env_with_a_medivac(num_envs=4, seed=0):
    """A terran_5_vs_5 vector env reset until some env has a Medivac (drawn with weight 0.1 per unit)."""
    env = TeamVectorEnv({"map_name": "terran_5_vs_5"}, num_envs=num_envs)
    obs, _ = env.reset(seed=seed)
    while not (obs["group"] == 1).any():
        obs, _ = env.reset()
    return env, obs


def test_the_space_carries_the_union_uas_and_per_step_groups():
    env, obs = env_with_a_medivac()
    space = env.single_observation_space
    agent_group, masks = space_groups(space)
    assert agent_group is None  # membership is not fixed
    assert masks.shape == (2, 6 + N_ENEMIES + N_AGENTS)  # attackers and healers over the union UAS
    assert masks[0, 6:HEAL0].all() and not masks[0, HEAL0:].any()  # attackers: attack enemy j
    assert masks[1, HEAL0:].all() and not masks[1, 6:HEAL0].any()  # healers: heal ally j
    assert smac_map_action_groups("terran_5_vs_5") == 2 and smac_map_action_groups("protoss_5_vs_5") == 1
    assert obs["group"].tolist() == env.backend.healer_agents_of().astype(float).tolist()
    np.testing.assert_array_equal(obs[GROUP_MASKS][0], masks)
    for e, i in zip(*np.nonzero(obs["action_mask"].sum(-1))):  # every live agent's mask stays in its group
        assert not (obs["action_mask"][e, i] > masks[int(obs["group"][e, i])]).any()


def test_membership_changes_between_episodes():
    env = TeamVectorEnv({"map_name": "terran_5_vs_5"}, num_envs=8)
    env.reset(seed=1)
    seen = set()
    for _ in range(10):
        obs, _ = env.reset()
        seen |= {tuple(g) for g in obs["group"].astype(int)}
    assert len(seen) > 3  # Medivacs in different numbers and slots


def test_actions_go_through_each_agents_group_row():
    env, obs = env_with_a_medivac()
    e, i = (int(v) for v in np.argwhere(obs["group"] == 1)[0])  # a Medivac
    groups = obs["group"].astype(int)
    actions = np.ones((env.num_envs, N_AGENTS), np.int64)  # stop
    native = env.view.to_native(actions)
    assert (native == 1).all()
    actions[e, i] = HEAL0 + 2  # heal ally 2 -> the Medivac's native 6 + 2
    attacker = int(np.flatnonzero(groups[e] == 0)[0])
    actions[e, attacker] = 6 + 3  # attack enemy 3 -> native 6 + 3
    native = env.view.to_native(actions)
    assert native[e, i] == 8 and native[e, attacker] == 9
    actions[e, i] = 6 + 1  # a Medivac cannot attack: the error names the env, agent and its group
    with pytest.raises(ValueError, match=rf"env {e}, agent {i} \(group 1 this episode\) cannot take UAS action 7"):
        env.view.to_native(actions)


def test_a_medivacs_heal_is_its_last_action_in_the_unified_space():
    env, obs = env_with_a_medivac(seed=3)
    for _ in range(60):  # until some Medivac can heal someone
        heal = [(e, i) for e, i in np.argwhere(obs["group"] == 1) if obs["action_mask"][e, i, HEAL0:].any()]
        if heal:
            break
        obs, *_ = env.step(np.array([[int(np.flatnonzero(m)[-1]) for m in row] for row in obs["action_mask"]]))
    assert heal, "no Medivac got a heal target in 60 steps"
    e, i = heal[0]
    act = np.array([[int(np.flatnonzero(m)[0]) for m in row] for row in obs["action_mask"]])
    act[e, i] = HEAL0 + int(np.flatnonzero(obs["action_mask"][e, i, HEAL0:])[0])
    obs, *_ = env.step(act)
    assert obs["last_action"][e, i].argmax() == act[e, i]


def test_cgi_loss_follows_each_steps_membership_by_hand():
    """Two agents, actions [a, b, c]: group 0 may take a, b; group 1 a, c. Zero logits predict
    [.5, .5, 0] for group 0 and [.5, 0, .5] for group 1.
    Step 0: agent 0 in group 0, agent 1 in group 1 -> agent 0 vs agent 1's [.6, 0, .4]: .01 + .01 = .02;
    agent 1 vs agent 0's [.2, .8, 0]: .09 + .09 = .18. Step 1: both in group 0, group 1 absent: no term.
    L = (.02 + .18) / 2 = .1. With the groups of step 0 held fixed, step 1 would add 1.5 and .5: .55."""
    masks = torch.tensor([[1, 1, 0], [1, 0, 1]], dtype=torch.bool)
    pred = torch.zeros(2, 2, 3)
    probs = torch.tensor([[[0.2, 0.8, 0.0], [0.6, 0.0, 0.4]], [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
    alive, valid = torch.ones(2, 2), torch.ones(2)
    per_step = torch.tensor([[0.0, 1.0], [0.0, 0.0]])
    assert float(cgi_loss(pred, probs, per_step, alive, masks, valid)) == pytest.approx(0.1)
    assert float(cgi_loss(pred, probs, torch.tensor([0, 1]), alive, masks, valid)) == pytest.approx(0.55)


def test_group_sharing_needs_fixed_groups():
    cfg = UMAPPOConfig().environment(env="smac_team", env_config={"map_name": "terran_5_vs_5"})
    cfg = cfg.training(parameter_sharing="group")
    with pytest.raises(ValueError, match="draws each agent's group at every reset"):
        cfg.validate()


def _configs():
    env = {"map_name": "terran_5_vs_5"}
    return {
        "U-MAPPO": UMAPPOConfig()
        .environment(env="smac_team", env_config=env)
        .training(train_batch_size_per_learner=400, minibatch_size=200, num_epochs=2),
        "U-QMIX": UQMIXConfig()
        .environment(env="smac_team", env_config=env)
        .training(batch_size_episodes=16, learning_starts_episodes=16, episodes_per_iteration=16),
        "QMIX": UQMIXConfig()
        .environment(env="smac_team", env_config=env)
        .training(
            uas=False, cgi_coeff=0.0, batch_size_episodes=8, learning_starts_episodes=8, episodes_per_iteration=8
        ),
    }


@pytest.mark.parametrize("name", ["U-MAPPO", "U-QMIX", "QMIX"])
def test_training_on_terran_5_vs_5_with_membership_changing(ray_session, name):
    cfg = _configs()[name].env_runners(num_env_runners=0, num_envs_per_env_runner=4).debugging(seed=0)
    algo = cfg.build_algo()
    try:
        cgi = []
        for _ in range(3):
            result = algo.train()
            learner = result["learners"]["default_policy"]
            assert np.isfinite(float(learner["total_loss"]))
            cgi.append(float(learner.get("cgi_loss", 0.0)))
        if name != "QMIX":
            assert max(cgi) > 0  # Medivacs appear in some episodes: CGI has a second group to predict
        if name == "U-QMIX":  # stored episodes keep their own membership, step by step
            groups = [expand(e)["group"] for e in algo.episode_buffer.episodes]
            assert all((g == g[0]).all() for g in groups)  # fixed within an episode
            assert len({tuple(g[0].astype(int)) for g in groups}) > 1  # and different across episodes
    finally:
        algo.stop()


def test_the_sc2_backend_drives_smacv2s_wrapper_api_like_the_embedded_path():
    """backend 'sc2' on a scenario builds SMACv2's StarCraftCapabilityEnvWrapper (here ours, which has its
    API) with the scenario's capability config; seeded alike, it must equal the embedded path."""
    from rllib_uas.envs.smacv2_api import StarCraftCapabilityEnvWrapper

    cfg = {"map_name": "terran_5_vs_5", "seed": 4}
    a = TeamVectorEnv({**cfg, "backend": "sc2", "env_factory": StarCraftCapabilityEnvWrapper}, num_envs=2)
    b = TeamVectorEnv(cfg, num_envs=1)
    assert a.backend.dynamic_groups and a.backend.can_heal
    assert a.single_observation_space == b.single_observation_space
    oa, _ = a.reset()
    b.reset()  # SMACAPIBatch resets its envs once when built: one draw more to catch up
    ob, _ = b.reset()
    rng = np.random.default_rng(0)
    for _ in range(120):  # several episodes: the groups change at the resets, on both paths alike
        for k in ob:
            np.testing.assert_array_equal(oa[k][0], ob[k][0], err_msg=k)
        act = np.array([[int(rng.choice(np.flatnonzero(m))) for m in ob["action_mask"][0]]])
        other = np.array([[int(rng.choice(np.flatnonzero(m))) for m in oa["action_mask"][1]]])
        oa, ra, *_ = a.step(np.concatenate([act, other]))
        ob, rb, *_ = b.step(act)
        assert ra[0] == pytest.approx(rb[0])


def test_missing_smacv2_says_how_to_install(monkeypatch):
    import builtins

    from rllib_uas.envs.sc2 import SMACNotInstalledError

    real_import = builtins.__import__

    def no_smacv2(name, *args, **kwargs):
        if name.startswith("smacv2"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_smacv2)
    with pytest.raises(SMACNotInstalledError, match="pip install git\\+https://github.com/oxwhirl/smacv2.git"):
        TeamVectorEnv({"map_name": "terran_5_vs_5", "backend": "sc2"}, num_envs=1)


def test_more_allies_than_enemies_gives_every_ally_a_heal_slot():
    """SMACv2's terran rule: with n_agents > n_enemies the native space is 6 + n_agents, so a Medivac can heal
    each ally; attackers' extra slots are never available. The union UAS: 6 + 4 attacks + 6 heals."""
    from rllib_uas.envs.smacv2_api import StarCraft2Env

    cap = {
        "n_units": 6,
        "n_enemies": 4,
        "team_gen": {"unit_types": ["marine", "medivac"], "weights": [0.5, 0.5], "exception_unit_types": ["medivac"]},
        "start_positions": {"dist_type": "surrounded"},
    }
    env = StarCraft2Env(map_name="10gen_terran", capability_config=cap, seed=0, use_unit_ranges=True)
    assert env.get_total_actions() == 6 + 6
    env.reset()
    avail = np.array(env.get_avail_actions())
    healers = np.array([u.unit_type == 54 for u in env.agents.values()])
    assert healers.any() and not avail[~healers][:, 10:].any()  # no attacker slot beyond enemy 3
    from rllib_uas.envs.engine.vec_smac import VectorizedSMAC
    from rllib_uas.envs.team import TeamView

    vec = VectorizedSMAC("terran", scenario=env._eng.scenario, n_envs=2, seed=0)
    view = TeamView(vec)
    assert view.space_map.size == 6 + 4 + 6 and view.space_map.n_native == 12
