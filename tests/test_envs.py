"""RLlib / PettingZoo views of SMAC: conventions, autoreset, backends, registration."""

import sys
import types

import numpy as np
import pytest

from rllib_uas.envs.multi_agent import SMACMultiAgentEnv
from rllib_uas.envs.pettingzoo import PettingZooTeamEnv, SMACParallelEnv
from rllib_uas.envs.sc2 import SMACNotInstalledError, import_smac_env_class
from rllib_uas.envs.smac_api import StarCraft2Env
from rllib_uas.envs.team import TeamEnv, TeamVectorEnv, make_team_env


def random_team_actions(obs, rng):
    m = obs["action_mask"]
    return (rng.random(m.shape) * m).argmax(-1)


def test_multi_agent_env_passes_rllib_check_and_conventions():
    from ray.rllib.utils.pre_checks.env import check_multiagent_environments

    env = SMACMultiAgentEnv({"map_name": "MMM", "seed": 0})
    check_multiagent_environments(env)
    obs, _ = env.reset(seed=0)
    assert env.possible_agents == [f"agent_{i}" for i in range(10)]
    assert set(obs["agent_0"]) == {"obs", "action_mask", "state"} and obs["agent_0"]["action_mask"].shape == (26,)
    while True:
        acts = {a: int(env.get_action_space(a).sample()) for a in env.possible_agents}
        obs, rew, term, trunc, info = env.step(acts)
        assert len(set(rew.values())) == 1  # the team reward, to everyone
        assert set(obs) == set(env.possible_agents)  # dead agents keep stepping
        dead = [a for a in obs if obs[a]["action_mask"][1] == 0]
        for a in dead:
            assert obs[a]["action_mask"].tolist() == [1] + [0] * 25  # no-op only
        if term["__all__"] or trunc["__all__"]:
            break
    assert set(info["agent_0"]) == {"battle_won", "dead_allies", "dead_enemies", "timeout"}
    assert term["__all__"] != trunc["__all__"]


def test_time_limit_is_a_truncation():
    env = SMACMultiAgentEnv({"map_name": "2s_vs_1sc"})
    env.reset(seed=0)
    env.backend.episode_steps[0] = env.backend.episode_limit - 1
    _, _, term, trunc, info = env.step({a: 1 for a in env.possible_agents})
    assert trunc["__all__"] and not term["__all__"] and info["agent_0"]["timeout"]


@pytest.mark.parametrize("continuing", [True, False])
def test_continuing_episode_decides_how_the_time_limit_ends_an_episode(continuing):
    """SMAC's flag: True (our default) truncates at the limit, False terminates there (PyMARL2's and
    MAPPO's reading of SMAC). A win, a loss and a draw terminate either way."""
    cfg = {"map_name": "2s_vs_1sc", "continuing_episode": continuing}
    multi = SMACMultiAgentEnv(cfg)
    multi.reset(seed=0)
    multi.backend.episode_steps[0] = multi.backend.episode_limit - 1
    _, _, term, trunc, info = multi.step({a: 1 for a in multi.possible_agents})
    assert (trunc["__all__"], term["__all__"], info["agent_0"]["timeout"]) == (continuing, not continuing, True)

    vec = TeamVectorEnv(cfg, num_envs=3)
    obs, _ = vec.reset(seed=0)
    vec.backend.episode_steps[1] = vec.backend.episode_limit - 1  # env 1 reaches its limit at this step
    _, _, term, trunc, info = vec.step(random_team_actions(obs, np.random.default_rng(0)))
    assert info["timeout"].tolist() == [False, True, False]
    assert trunc.tolist() == [False, continuing, False] and term.tolist() == [False, not continuing, False]


@pytest.mark.parametrize("value", ["no", 0, None])
def test_continuing_episode_must_be_a_bool(value):
    with pytest.raises(ValueError, match="continuing_episode must be true .* or false"):
        TeamVectorEnv({"map_name": "3m", "continuing_episode": value}, num_envs=1)


def test_unavailable_action_in_multi_agent_env_raises():
    env = SMACMultiAgentEnv({"map_name": "3m", "uas": False})
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action 6 is not available"):
        env.step({"agent_0": 6, "agent_1": 1, "agent_2": 1})
    with pytest.raises(ValueError, match="missing actions"):
        env.step({"agent_0": 1})
    with pytest.raises(ValueError, match=r"actions for unknown agents \['agent_9'\]; the agents are \['agent_0'"):
        env.step({"agent_0": 1, "agent_1": 1, "agent_2": 1, "agent_9": 1})
    with pytest.raises(ValueError, match=r"env 0, agent 1: action 1.5 is not an integer action number"):
        env.step({"agent_0": 1, "agent_1": 1.5, "agent_2": 1})  # int() would have played action 1
    team = TeamVectorEnv({"map_name": "3m"}, num_envs=2)
    team.reset(seed=0)
    with pytest.raises(ValueError, match=r"env 1, agent 2: action 1.7 is not an integer action number"):
        team.step(np.array([[1, 1, 1], [1, 1, 1.7]]))
    env.step({"agent_0": np.int64(1), "agent_1": np.array(1), "agent_2": 1})  # numpy scalars, as RLlib sends


def test_team_env_matches_starcraft2env():
    team = TeamEnv({"map_name": "MMM2", "seed": 3, "uas": False})
    smac = StarCraft2Env(map_name="MMM2", seed=3)
    obs, _ = team.reset()
    smac.reset()
    rng = np.random.default_rng(1)
    for _ in range(30):
        assert np.array_equal(obs["obs"], np.stack(smac.get_obs()))
        assert np.array_equal(obs["state"], smac.get_state())
        assert np.array_equal(obs["action_mask"], np.array(smac.get_avail_actions()))
        a = random_team_actions(obs, rng)
        obs, r, term, trunc, info = team.step(a)
        r2, t2, _ = smac.step(a)
        assert r == pytest.approx(r2) and (term or trunc) == t2
        if t2:
            break


def test_team_vector_env_next_step_autoreset():
    env = TeamVectorEnv({"map_name": "3m", "uas": True}, num_envs=3)
    obs, _ = env.reset(seed=0)
    assert obs["obs"].shape == (3, 3, 30) and obs["alive"].tolist() == [[1.0] * 3] * 3
    env.backend.engine.alive[1, 3:] = False  # env 1: the enemy vanishes
    env.backend.engine.hp[1, 3:] = 0.0
    obs, r, term, trunc, info = env.step(np.ones((3, 3), dtype=int))
    assert term.tolist() == [False, True, False] and info["battle_won"].tolist() == [False, True, False]
    assert r[1] > 0
    obs, r, term, trunc, info = env.step(np.ones((3, 3), dtype=int))  # env 1 only resets
    assert r[1] == 0 and not term[1] and not info["_battle_won"][1]
    assert env.backend.episode_steps.tolist() == [2, 0, 2]
    assert (obs["alive"][1] == 1).all()


class CountingSMAC(StarCraft2Env):
    """A StarCraft2Env-API battle that counts its steps, like real SMAC's battle counters."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.steps_taken = 0

    def step(self, actions):
        self.steps_taken += 1
        return super().step(actions)


def test_a_finished_battle_is_reset_without_being_stepped_again():
    env = TeamVectorEnv({"map_name": "3m", "backend": "sc2", "env_factory": CountingSMAC, "seed": 1}, num_envs=3)
    obs, _ = env.reset()
    rng = np.random.default_rng(0)
    lengths, running = np.zeros(3, int), np.zeros(3, int)
    for _ in range(300):
        obs, _, term, trunc, _ = env.step(random_team_actions(obs, rng))
        running += ~env._held  # (nothing is held here)
        done = term | trunc
        lengths += np.where(done, running, 0)
        running[done] = -1  # the next step only resets: not a battle step
    # every SMAC step belongs to a battle: steps taken == finished lengths + the running battles
    taken = np.array([e.steps_taken for e in env.backend.envs])
    assert (lengths > 0).all() and (taken == lengths + np.maximum(running, 0)).all()

    # embedded engine: a held (or just finished) env neither moves nor draws random numbers
    emb = TeamVectorEnv({"map_name": "3m", "seed": 1}, num_envs=2)
    obs, _ = emb.reset()
    emb.hold(np.array([True, False]))
    x0 = emb.backend.engine.x[0].copy()
    for _ in range(5):
        obs, r, term, trunc, info = emb.step(random_team_actions(obs, rng))
        assert r[0] == 0 and not term[0] and not trunc[0] and not info["_battle_won"][0]
    assert np.array_equal(emb.backend.engine.x[0], x0) and emb.backend.episode_steps.tolist() == [0, 5]


def test_vector_env_and_single_env_from_the_rllib_creator():
    assert isinstance(make_team_env({"map_name": "3m", "num_envs": 4}), TeamVectorEnv)
    assert isinstance(make_team_env({"map_name": "3m"}), TeamEnv)


def test_agent_specific_state():
    env = TeamEnv({"map_name": "3m", "agent_state": True})
    obs, _ = env.reset(seed=0)
    assert obs["agent_state"].shape == (3, 48 + 30)
    assert np.array_equal(obs["agent_state"][1, 48:], obs["obs"][1])


def test_sc2_adapter_through_the_embedded_env_api():
    """backend 'sc2' drives any StarCraft2Env-API object; with ours it must equal the embedded path."""
    a = TeamVectorEnv({"map_name": "MMM", "backend": "sc2", "env_factory": StarCraft2Env, "seed": 5}, num_envs=2)
    b = TeamVectorEnv({"map_name": "MMM", "seed": 5}, num_envs=1)
    oa, _ = a.reset()
    ob, _ = b.reset()
    assert a.view.space_map.agent_group.tolist() == b.view.space_map.agent_group.tolist() == [0] * 9 + [1]
    rng = np.random.default_rng(0)
    for _ in range(10):
        for k in oa:
            assert np.array_equal(oa[k][0], ob[k][0])
        act = random_team_actions(ob, rng)
        oa, ra, ta, _, _ = a.step(np.concatenate([act, act]))
        ob, rb, tb, _, _ = b.step(act)
        assert ra[0] == pytest.approx(rb[0])


def test_missing_smac_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "smac", None)
    with pytest.raises(SMACNotInstalledError, match="github.com/oxwhirl/smac"):
        import_smac_env_class()


def test_wrong_smac_package_is_named(monkeypatch):
    fake = types.ModuleType("smac")
    fake.__file__ = "/site-packages/smac/__init__.py"
    monkeypatch.setitem(sys.modules, "smac", fake)
    monkeypatch.setitem(sys.modules, "smac.env", None)
    with pytest.raises(SMACNotInstalledError, match="unrelated optimizer"):
        import_smac_env_class()


def test_unknown_backend_and_key():
    with pytest.raises(ValueError, match="unknown backend 'sc3'"):
        TeamEnv({"backend": "sc3"})
    with pytest.raises(ValueError, match=r"unknown env_config key\(s\) \['mapname'\]"):
        TeamEnv({"mapname": "3m"})


def test_pettingzoo_parallel_api():
    from pettingzoo.test import parallel_api_test

    parallel_api_test(SMACParallelEnv({"map_name": "MMM"}), num_cycles=100)


def test_pettingzoo_env_becomes_a_team_env():
    team = PettingZooTeamEnv(SMACParallelEnv({"map_name": "3m", "uas": False}))
    direct = TeamEnv({"map_name": "3m", "uas": False})
    o1, _ = team.reset(seed=2)
    o2, _ = direct.reset(seed=2)
    assert team.uas.n_groups == 1 and team.action_space.nvec.tolist() == [9, 9, 9]
    for k in ("obs", "action_mask", "state", "alive"):
        assert np.array_equal(o1[k], o2[k])
    rng = np.random.default_rng(0)
    a = random_team_actions(o1, rng)
    o1, r1, *_ = team.step(a)
    o2, r2, *_ = direct.step(a)
    assert r1 == pytest.approx(r2) and np.array_equal(o1["obs"], o2["obs"])


def test_pettingzoo_semantics_table_gives_uas_groups():
    # SMAC's native MMM space through PettingZoo, re-aligned with a user semantics table
    pz = SMACParallelEnv({"map_name": "MMM", "uas": False})
    moves = ["noop", "stop", "move_north", "move_south", "move_east", "move_west"]
    attack = moves + [f"attack:enemy:{j}" for j in range(10)]
    heal = attack[:6] + [f"heal:ally:{j}" for j in range(10)]
    team = PettingZooTeamEnv(
        pz,
        semantics={"marine": attack, "medivac": heal},
        agent_types={f"agent_{i}": "medivac" if i == 9 else "marine" for i in range(10)},
    )
    assert team.uas.size == 26 and team.uas.n_groups == 2
    obs, _ = team.reset(seed=0)
    assert obs["action_mask"][9, 16:25].all() and not obs["action_mask"][9, 6:16].any()
    assert obs["group"].tolist() == [0.0] * 9 + [1.0]


def test_registered_names():
    from ray.tune.registry import ENV_CREATOR, _global_registry

    import rllib_uas.envs.registry  # noqa: F401

    assert _global_registry.contains(ENV_CREATOR, "smac") and _global_registry.contains(ENV_CREATOR, "smac_team")


def test_rllib_env_runner_samples_the_vector_env():
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec
    from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner

    from rllib_uas.modules.random_masked import MaskedRandomModule

    config = (
        PPOConfig()
        .environment("smac_team", env_config={"map_name": "3m"})
        .env_runners(num_envs_per_env_runner=4, gym_env_vectorize_mode="vector_entry_point")
        .rl_module(rl_module_spec=RLModuleSpec(module_class=MaskedRandomModule))
    )
    runner = SingleAgentEnvRunner(config=config)
    assert runner.env.unwrapped.__class__.__name__ == "TeamVectorEnv"
    episodes = runner.sample(num_episodes=6)
    assert len(episodes) >= 6 and all(e.is_done for e in episodes)
    assert all(0 < len(e) <= 60 for e in episodes)


@pytest.mark.parametrize("uas", [True, False])
def test_an_observation_handed_out_never_changes_afterwards(uas):
    """RLlib's episodes keep the observation arrays they are given: a later step must not rewrite them.
    (The native last-action column was the backend's own array, rewritten in place at every step, so
    stored episodes showed each step's own action as its "last action": training saw what acting
    could not.)"""
    rng = np.random.default_rng(0)
    env = TeamVectorEnv({"map_name": "3m1m_vs_4m", "uas": uas}, num_envs=4)
    obs, _ = env.reset(seed=0)
    kept = [obs]
    copies = [{k: v.copy() for k, v in obs.items()}]
    for _ in range(30):  # through battle ends and autoresets
        obs, *_ = env.step(random_team_actions(obs, rng))
        kept.append(obs)
        copies.append({k: v.copy() for k, v in obs.items()})
    for t, (o, c) in enumerate(zip(kept, copies)):
        for k in o:
            np.testing.assert_array_equal(o[k], c[k], err_msg=f"step {t}: {k} changed after it was returned")

    multi = SMACMultiAgentEnv({"map_name": "3m1m_vs_4m", "uas": uas})
    first, _ = multi.reset(seed=0)
    before = {a: {k: v.copy() for k, v in o.items()} for a, o in first.items()}
    multi.step({a: int(multi.get_action_space(a).sample()) for a in multi.possible_agents})
    for a, o in first.items():
        for k in o:
            np.testing.assert_array_equal(o[k], before[a][k], err_msg=f"{a}: {k} changed after it was returned")


def test_an_env_config_that_is_not_a_mapping_or_no_battles_are_refused_by_name():
    """A bare map name failed as 'dictionary update sequence element #0', num_envs=0 as an IndexError."""
    from rllib_uas.envs.multi_agent import SMACMultiAgentEnv
    from rllib_uas.envs.team import TeamEnv, TeamVectorEnv, make_team_env

    for make in (lambda: TeamVectorEnv("3m", num_envs=2), lambda: TeamEnv("3m"), lambda: SMACMultiAgentEnv("3m")):
        with pytest.raises(TypeError, match="env_config must be a mapping such as {'map_name': '3m'}, got '3m'"):
            make()
    with pytest.raises(TypeError, match=r"got \['3m'\]"):
        make_team_env(["3m"])
    with pytest.raises(ValueError, match="num_envs must be a positive integer .*, got 0"):
        TeamVectorEnv({"map_name": "3m"}, num_envs=0)
    assert TeamVectorEnv(None, num_envs=1).map_name == "3m"  # None: every default
