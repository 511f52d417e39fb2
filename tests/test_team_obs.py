"""The team observation contract (`rllib_uas.team_obs`): one definition for the envs, buffer and modules."""

import subprocess
import sys

import numpy as np
import pytest
from toy_team_env import SEMANTICS, ToyBattle

from rllib_uas.envs.pettingzoo import PettingZooTeamEnv
from rllib_uas.envs.team import TeamEnv
from rllib_uas.team_obs import AGENT_STATE, TEAM_OBS_KEYS, last_action_onehot, space_groups, team_observation_space


def test_last_action_encoding_by_hand():
    out = last_action_onehot(np.array([[2, 0, 1]]), 4, valid=np.array([[True, False, True]]))
    assert out.shape == (1, 3, 4) and out.dtype == np.float32
    assert out[0].tolist() == [[0, 0, 1, 0], [0, 0, 0, 0], [0, 1, 0, 0]]


def test_the_space_carries_the_groups_and_their_masks():
    static = np.array([[1, 1, 1, 0], [1, 1, 1, 0], [1, 1, 0, 1]], bool)  # two shooters and a medic
    space = team_observation_space(5, 7, static, np.array([0, 0, 1]), agent_state=True)
    assert set(space) == {*TEAM_OBS_KEYS, AGENT_STATE}
    assert space["obs"].shape == (3, 5) and space["state"].shape == (7,) and space[AGENT_STATE].shape == (3, 12)
    agent_group, masks = space_groups(space)
    assert agent_group.tolist() == [0, 0, 1]
    assert masks.tolist() == [[True, True, True, False], [True, True, False, True]]


def test_smac_and_pettingzoo_team_envs_share_the_contract():
    for env in (TeamEnv({"map_name": "MMM"}), PettingZooTeamEnv(ToyBattle(), semantics=SEMANTICS)):
        obs, _ = env.reset(seed=0)
        assert set(env.observation_space) == set(TEAM_OBS_KEYS) == set(obs)
        assert env.observation_space.contains(obs)
        act = np.array([np.flatnonzero(m)[-1] for m in obs["action_mask"]])
        obs, *_ = env.step(act)
        alive = obs["alive"] > 0
        assert (obs["last_action"][alive].argmax(-1) == act[alive]).all()  # the previous action, one-hot


def test_the_modules_import_no_env():
    code = (
        "import sys, rllib_uas.modules.team_ppo, rllib_uas.modules.team_q; "
        "print([m for m in sys.modules if m.startswith('rllib_uas.envs')])"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and res.stdout.strip() == "[]", res.stdout + res.stderr[-1000:]


def test_a_module_refuses_an_env_that_gives_no_team_observation():
    """The team modules read obs, action_mask, state, alive, group and last_action; a plain gym space
    failed inside them with an IndexError or a KeyError."""
    import gymnasium as gym

    from rllib_uas.modules.team_ppo import TeamPPOModule
    from rllib_uas.team_obs import check_team_space

    box = gym.spaces.Box(-1.0, 1.0, (4,))
    with pytest.raises(ValueError, match=r"team observation .*\(missing obs, action_mask, state, alive, group"):
        TeamPPOModule(observation_space=box, action_space=gym.spaces.Discrete(2), model_config={"max_seq_len": 20})
    partial = gym.spaces.Dict({"obs": gym.spaces.Box(-1.0, 1.0, (3, 4)), "state": gym.spaces.Box(-1.0, 1.0, (5,))})
    with pytest.raises(ValueError, match=r"missing action_mask, alive, group, last_action\); use env 'smac_team'"):
        check_team_space(partial)


def test_the_configs_refuse_a_gymnasium_env_without_a_team_observation():
    """`CartPole-v1` for U-MAPPO failed in the env runner: a remote runner's error surfaced only as an
    IndexError in RLlib's `get_spaces`, an in-process one as a TypeError (the default env_config's
    map_name). A gymnasium id registered for a team env passes; an id that cannot be made here is the
    trial's to report."""
    import gymnasium as gym

    from rllib_uas.algorithms.u_mappo import UMAPPOConfig
    from rllib_uas.algorithms.u_qmix import UQMIXConfig
    from rllib_uas.variants import variant

    for config in (UMAPPOConfig(), UQMIXConfig(), variant("MAPPO").config()):
        for env_config in ({"map_name": "3m"}, {}):  # the team default, and a gym env's own
            config.environment("CartPole-v1", env_config=env_config)
            with pytest.raises(ValueError, match=r"team observation .*Box\(.*\(missing obs, action_mask"):
                config.validate()
    gym.register("ToyTeamBattle-v0", entry_point=lambda **kw: PettingZooTeamEnv(ToyBattle(), semantics=SEMANTICS))
    gym.register("Unmakeable-v0", entry_point="no_such_module:Env")
    try:
        UMAPPOConfig().environment("ToyTeamBattle-v0", env_config={}).validate()
        UMAPPOConfig().environment("Unmakeable-v0", env_config={}).validate()
    finally:
        gym.registry.pop("ToyTeamBattle-v0")
        gym.registry.pop("Unmakeable-v0")
