"""The team connector pieces change the speed, nothing else.

Against RLlib's default pipelines, with the same seeds: the env runner samples the same episodes
(observations, actions, rewards and every extra model output, with their dtypes and shapes), by
timesteps across fragment boundaries and by evaluation rounds; the learner builds the same train
batch from the same episodes, tensor for tensor; and one U-MAPPO update from the same weights on
the same episodes ends at the same weights and losses whether the learner runs on 1 thread with
RLlib's pieces or on 2 threads with ours (to float tolerance: thread counts reorder sums).
"""

import copy

import numpy as np
import pytest
import torch
import tree

from rllib_uas.algorithms.team_config import LEARNER_DEFAULTS, TeamEpisodesToTrainBatch
from rllib_uas.algorithms.team_learner import learner_threads
from rllib_uas.algorithms.u_mappo import UMAPPOConfig
from rllib_uas.algorithms.u_qmix import UQMIXConfig
from rllib_uas.connectors import TeamActionsToEnv, TeamEpisodesToModule
from rllib_uas.env_runner import TeamEnvRunner
from rllib_uas.envs.registry import register_envs

MAP = "3m1m_vs_4m"  # two action groups, Medivac heals: every column is exercised


def _config(cls, team: bool, **learners):
    cfg = (
        cls()
        .environment(env_config={"map_name": MAP})
        .env_runners(num_env_runners=0, num_envs_per_env_runner=4)
        .learners(**learners)
        .debugging(seed=3)
    )
    cfg.team_connectors = team
    return cfg


def _episodes(cls, team: bool):
    register_envs()
    runner = TeamEnvRunner(config=_config(cls, team))
    pieces = [type(c) for c in runner._env_to_module.connectors + runner._module_to_env.connectors]
    assert (TeamEpisodesToModule in pieces and TeamActionsToEnv in pieces) == team
    torch.manual_seed(0)
    # 2 fragments (episodes cut and continued: state from the lookback), then greedy rounds
    eps = runner.sample(num_timesteps=240, explore=True) + runner.sample(num_timesteps=240, explore=True)
    eps += runner.sample(num_episodes=4, explore=False)
    runner.stop()
    return [e if e.is_numpy else e.to_numpy() for e in eps]


def _assert_same(a, b, where: str) -> None:
    fa, fb = dict(tree.flatten_with_path(a)), dict(tree.flatten_with_path(b))
    assert set(fa) == set(fb), f"{where}: keys differ: {set(fa) ^ set(fb)}"
    for k in fa:
        x, y = np.asarray(fa[k]), np.asarray(fb[k])
        assert x.dtype == y.dtype and x.shape == y.shape, f"{where} {k}: {x.dtype}{x.shape} vs {y.dtype}{y.shape}"
        np.testing.assert_array_equal(x, y, err_msg=f"{where} {k}")


@pytest.mark.parametrize("cls", [UMAPPOConfig, UQMIXConfig], ids=["U-MAPPO", "U-QMIX"])
def test_team_env_runner_pieces_sample_the_same_episodes_as_rllibs(cls):
    ref, ours = _episodes(cls, team=False), _episodes(cls, team=True)
    assert len(ref) == len(ours) and len(ref) > 8
    assert any(e.t_started > 0 for e in ref)  # continued chunks were compared
    for i, (x, y) in enumerate(zip(ref, ours)):
        assert (len(x), x.t_started, x.is_terminated, x.is_truncated) == (
            len(y),
            y.t_started,
            y.is_terminated,
            y.is_truncated,
        )
        _assert_same(x.get_observations(), y.get_observations(), f"episode {i} obs")
        _assert_same(x.get_actions(), y.get_actions(), f"episode {i} actions")
        _assert_same(x.get_rewards(), y.get_rewards(), f"episode {i} rewards")
        assert set(x.extra_model_outputs) == set(y.extra_model_outputs)
        for key in x.extra_model_outputs:
            _assert_same(x.get_extra_model_outputs(key), y.get_extra_model_outputs(key), f"episode {i} {key}")


def _mappo(ray_session, team: bool, cpus: int):
    cfg = _config(UMAPPOConfig, team, num_cpus_per_learner=cpus).training(
        train_batch_size_per_learner=480, minibatch_size=480, num_epochs=1
    )
    return cfg.build_algo()


def test_team_learner_batch_loss_and_update_equal_rllibs(ray_session):
    episodes = _episodes(UMAPPOConfig, team=False)[:-4]  # the training fragments
    results = {}
    for team, cpus in ((False, 1), (True, 2)):
        algo = _mappo(ray_session, team, cpus)
        try:
            learner = algo.learner_group._learner
            names = [type(c).__name__ for c in learner._learner_connector.connectors]
            assert ("TeamEpisodesToTrainBatch" in names) == team
            assert team or all(n in names for n in LEARNER_DEFAULTS)
            assert learner_threads(learner.config) == cpus
            shared = {}
            batch = learner._learner_connector(
                rl_module=learner.module, episodes=copy.deepcopy(episodes), batch={}, shared_data=shared, metrics=None
            )
            assert shared.get("_zero_padded_for_mid=default_policy")  # the Learner may shuffle the chunks
            before = {k: v.detach().clone() for k, v in learner.module["default_policy"].state_dict().items()}
            np.random.seed(0)  # the chunk shuffle's draws
            out = learner.update(
                episodes=copy.deepcopy(episodes), num_epochs=2, minibatch_size=240, shuffle_batch_per_epoch=True
            )
            weights = {k: v.detach().clone() for k, v in learner.module["default_policy"].state_dict().items()}
            assert any(not torch.equal(before[k], weights[k]) for k in weights)  # the update moved the weights
            results[team] = (tree.map_structure(lambda t: t.numpy(), batch), out["default_policy"], weights)
            assert torch.get_num_threads() == 1  # the update gave its threads back
        finally:
            algo.stop()
    (b_ref, m_ref, w_ref), (b_ours, m_ours, w_ours) = results[False], results[True]
    _assert_same(b_ref, b_ours, "train batch")
    for key in ("policy_loss", "vf_loss", "entropy", "cgi_loss"):
        assert float(m_ours[key].peek()) == pytest.approx(float(m_ref[key].peek()), rel=1e-5, abs=1e-6), key
    for k in w_ref:
        torch.testing.assert_close(w_ours[k], w_ref[k], rtol=1e-5, atol=1e-6, msg=k)


def test_team_learner_piece_reads_episodes_without_ppos_bootstrap_step():
    """Without PPO's AddOneTs piece in front, masks and end flags are made from the episodes."""
    episodes = _episodes(UMAPPOConfig, team=True)[:6]
    register_envs()
    runner = TeamEnvRunner(config=_config(UMAPPOConfig, True))
    try:
        batch = TeamEpisodesToTrainBatch()(rl_module=runner.module, batch={}, episodes=episodes, shared_data={})
    finally:
        runner.stop()
    b = batch["default_policy"]
    T = runner.module.model_config["max_seq_len"]
    lens = [len(e) for e in episodes]
    assert b["seq_lens"].tolist() == [min(T, n - i * T) for n in lens for i in range(-(-n // T))]
    assert int(b["loss_mask"].sum()) == sum(lens)
    assert int(b["terminateds"].sum()) == sum(e.is_terminated for e in episodes)
    row = 0
    for e, n in zip(episodes, lens):  # each episode's rows in order, its last chunk zero-padded
        flat = b["obs"]["obs"][row : row + -(-n // T)].reshape(-1, *b["obs"]["obs"].shape[2:])
        np.testing.assert_array_equal(flat[:n].numpy(), e.get_observations(slice(0, n))["obs"])
        assert not flat[n:].any()
        row += -(-n // T)
