"""SMAC semantics of StarCraft2Env over the engine: reward, termination, masks, layouts, API."""

import numpy as np
import pytest

from rllib_uas.envs.engine import available_maps
from rllib_uas.envs.engine.maps import get_map
from rllib_uas.envs.engine.rules import DRAW, LOST, RUNNING, WON, RewardConfig, battle_reward, game_end_code
from rllib_uas.envs.engine.tables import build_tables
from rllib_uas.envs.scripted import random_policy, run_episode
from rllib_uas.envs.smac_api import StarCraft2Env


def test_reward_formula_hand_computed():
    # 2 allies, 2 enemies; enemy 0 loses 10 shield+hp, enemy 1 dies from 30; ally 0 loses 5
    prev = np.array([[45.0, 45.0, 80.0, 30.0]])
    hp = np.array([[40.0, 45.0, 60.0, 0.0]])
    sh = np.array([[0.0, 0.0, 10.0, 0.0]])
    tracker = np.zeros((1, 4), dtype=bool)
    r = battle_reward(RewardConfig(), 2, prev, hp, sh, tracker)
    assert r[0] == pytest.approx(10 + 30 + 10)  # |delta_enemy + delta_deaths|, allies ignored
    assert tracker.tolist() == [[False, False, False, True]]
    # the same step without only_positive: minus 0.5 * ally damage
    r = battle_reward(RewardConfig(reward_only_positive=False), 2, prev, hp, sh, np.zeros((1, 4), bool))
    assert r[0] == pytest.approx(50 - 0.5 * 5)
    # a dead unit already counted gives nothing again
    r = battle_reward(RewardConfig(), 2, hp + sh, hp, sh, tracker)
    assert r[0] == 0.0


def test_enemy_regeneration_is_rewarded_through_abs():
    prev = np.array([[45.0, 20.0]])
    r = battle_reward(
        RewardConfig(), 1, prev, np.array([[45.0, 10.0]]), np.array([[0.0, 12.0]]), np.zeros((1, 2), bool)
    )
    assert r[0] == pytest.approx(2.0)  # net enemy gain of 2 -> +2 (SMAC quirk)


def test_game_end_codes_including_mmm_medivac_rules():
    t = build_tables(get_map("MMM"))  # agents: 0-1 marauder, 2-8 marine, 9 medivac
    alive = np.ones((5, 20), dtype=bool)
    alive[1, 10:] = False  # all enemies dead -> won
    alive[2, :9] = False  # only our medivac left -> lost
    alive[3, 10:19] = False  # only the enemy medivac left -> won
    alive[4, :] = False  # everyone dead: MMM counts it a loss
    assert game_end_code(t, alive).tolist() == [RUNNING, WON, LOST, WON, LOST]
    t = build_tables(get_map("3m"))
    assert game_end_code(t, np.zeros((1, 6), bool)).tolist() == [DRAW]


def test_win_reward_scaling_and_info():
    env = StarCraft2Env(map_name="3m", seed=0)
    env.reset()
    vec = env._vec
    vec.engine.alive[0, 3:] = False  # enemies vanish with 0 health left
    vec.engine.hp[0, 3:] = 0.0
    reward, terminated, info = env.step([1, 1, 1])
    # 10 per newly counted death + 200 win, scaled by max_reward / 20
    assert terminated and info == {"battle_won": True, "dead_allies": 0, "dead_enemies": 3}
    assert reward == pytest.approx((3 * 10 + 200) / (365 / 20))
    assert env.get_stats()["battles_won"] == 1 and env.get_stats()["win_rate"] == 1.0


def test_timeout_is_a_termination_with_episode_limit_info_only_when_continuing():
    for continuing in (False, True):
        env = StarCraft2Env(map_name="2s_vs_1sc", seed=0, continuing_episode=continuing)
        env.reset()
        env._vec.episode_steps[0] = env.episode_limit - 1
        _, terminated, info = env.step([1, 1])
        assert terminated and info["battle_won"] is False
        assert info.get("episode_limit", False) is continuing
        assert env.get_stats()["timeouts"] == 1 and env.get_stats()["battles_draw"] == 1


def test_sparse_reward_is_scaled_too():
    env = StarCraft2Env(map_name="3m", seed=0, reward_sparse=True)
    env.reset()
    env._vec.engine.alive[0, 3:] = False
    env._vec.engine.hp[0, 3:] = 0.0
    reward, _, _ = env.step([1, 1, 1])
    assert reward == pytest.approx(1 / (365 / 20))


def test_avail_actions_semantics():
    env = StarCraft2Env(map_name="MMM", seed=0)
    env.reset()
    av = np.array(env.get_avail_actions())
    assert (av[:, 0] == 0).all() and (av[:, 1] == 1).all()
    assert av[:9, 6:].sum() == 0  # enemies start 14 away, beyond 6
    eng = env._eng
    assert av[9, 6 + 2] == 1 and av[9, 6 + 9] == 0  # medivac: heal marine 2, never another medivac
    assert av[9, 6 : 6 + 9].all()  # all 9 bio allies are within 6 at spawn
    eng.alive[0, 3], eng.hp[0, 3] = False, 0.0
    env._vec._invalidate()
    av = np.array(env.get_avail_actions())
    assert av[3].tolist() == [1] + [0] * 15  # dead: no-op only
    assert av[9, 6 + 3] == 0  # dead allies cannot be healed
    # moves follow pathing: the band is y in [8, 24); a unit at y = 23.5 cannot go north
    eng.y[0, 2] = 23.5
    env._vec._invalidate()
    assert env.get_avail_agent_actions(2)[2] == 0 and env.get_avail_agent_actions(2)[3] == 1


def test_unavailable_action_raises_naming_agent_action_and_choices():
    env = StarCraft2Env(map_name="3m", seed=0)
    env.reset()
    with pytest.raises(ValueError) as err:
        env.step([1, 7, 1])
    msg = str(err.value)
    assert "agent 1" in msg and "action 7" in msg and "[1, 2, 3, 4, 5]" in msg
    with pytest.raises(ValueError, match="one action per agent"):
        env.step([1, 1])


def test_observation_layout_values():
    env = StarCraft2Env(map_name="2s3z", seed=0)
    env.reset()
    eng = env._eng
    # put enemy stalker 0 (unit 5) 3 east of agent 0 and check its feature row
    eng.x[0, 5], eng.y[0, 5] = eng.x[0, 0] + 3.0, eng.y[0, 0]
    eng.sh[0, 5] = 40.0
    env._vec._invalidate()
    o = env.get_obs_agent(0)
    nf_en = 4 + 2 + 2  # + health, shield, 2 type bits
    row = o[4 : 4 + nf_en]
    assert row.tolist() == pytest.approx([1.0, 3 / 9, 3 / 9, 0.0, 1.0, 0.5, 0.0, 1.0])  # stalker = 1: reversed
    own = o[-(1 + 1 + 2) :]
    assert own.tolist() == pytest.approx([1.0, 1.0, 1.0, 0.0])  # health, shield, ally stalker one-hot = 0
    s = env.get_state_dict()
    assert s["allies"].shape == (5, 4 + 1 + 2) and s["enemies"].shape == (5, 3 + 1 + 2)
    assert s["allies"][0, 2] == pytest.approx((eng.x[0, 0] - 16) / 32)
    assert s["enemies"][0].tolist()[-2:] == [0.0, 1.0]


def test_dead_agent_obs_is_zero_and_last_action_is_one_hot():
    env = StarCraft2Env(map_name="3m", seed=0, obs_last_action=True)
    env.reset()
    env.step([2, 3, 4])
    assert env.last_action.argmax(1).tolist() == [2, 3, 4]
    env._eng.alive[0, 1], env._eng.hp[0, 1] = False, 0.0
    env._vec._invalidate()
    assert not env.get_obs_agent(1).any()
    assert env.get_obs_size() == 4 + 3 * 5 + 2 * (5 + 9) + 1


def test_same_seed_same_episode_bit_for_bit():
    def trajectory(seed):
        env = StarCraft2Env(map_name="MMM2", seed=seed)
        rng = np.random.default_rng(5)
        env.reset()
        out, term = [], False
        while not term:
            r, term, _ = env.step(random_policy(env, rng))
            out.append((r, env.get_state().tobytes()))
        return out

    a, b = trajectory(3), trajectory(3)
    assert a == b
    assert trajectory(4) != a


def test_seed_is_a_getter_and_misc_api():
    env = StarCraft2Env(map_name="3m", seed=17)
    assert env.seed() == 17 and env.seed() == 17
    assert env.unit_shoot_range(0) == 6 and env.unit_sight_range(0) == 9
    env.reset()
    u = env.get_unit_by_id(0)
    assert (u.health, u.health_max, u.unit_type) == (45.0, 45.0, 48)
    assert env.unit_max_cooldown(u) == 15
    assert env.get_visibility_matrix().shape == (3, 6)
    assert env.get_unit_types() == [48] * 6
    assert StarCraft2Env.distance(0, 0, 3, 4) == 5.0


def test_render_and_gif(tmp_path):
    env = StarCraft2Env(map_name="3m", seed=0)
    env.reset()
    env.start_recording()
    for _ in range(3):
        env.step([4, 4, 4])
    frame = env.render()
    assert frame.shape == (512, 512, 3) and frame.dtype == np.uint8
    assert (frame == [40, 120, 230]).all(-1).any()  # full-health ally discs are drawn
    path = env.save_gif(tmp_path / "ep.gif")
    from PIL import Image

    assert Image.open(path).n_frames == 4


def test_a_recorded_episode_is_annotated_and_ends_with_its_outcome(tmp_path):
    """GIF frames carry the step counter, a legend of the unit markers and, on the last one, a banner."""
    from PIL import Image

    from rllib_uas.envs.engine.render import OUTCOMES, outcome_of, type_markers

    env = StarCraft2Env(map_name="MMM", seed=0)
    env.reset()
    env.start_recording()
    rng = np.random.default_rng(0)
    terminated, steps = False, 0
    while not terminated:  # random play loses MMM
        acts = [int(rng.choice(np.flatnonzero(a))) for a in env.get_avail_actions()]
        _, terminated, info = env.step(acts)
        steps += 1
    assert not info["battle_won"] and info["dead_allies"] == 10
    gif = Image.open(env.save_gif(tmp_path / "mmm.gif"))
    assert gif.n_frames == steps + 1
    map_frame = env.render()
    frames = []
    for i in (0, gif.n_frames - 1):
        gif.seek(i)
        frames.append(np.asarray(gif.convert("RGB")))
    first, last = frames
    assert first.shape[1] == map_frame.shape[1] and first.shape[0] > map_frame.shape[0]  # header and legend
    banner = np.array(OUTCOMES["lost"][0])
    assert (np.abs(last.astype(int) - banner).sum(-1) <= 6).sum() > 2000  # the DEFEAT banner
    assert (np.abs(first.astype(int) - banner).sum(-1) <= 6).sum() < 200
    assert not np.array_equal(first[:20], last[:20])  # the step counter moved
    # outcomes as SMAC counts them; markers stay apart
    assert outcome_of(True, False, 1, 5, 5, 5) == "won"
    assert outcome_of(False, True, 0, 0, 5, 5) == "timeout"
    assert outcome_of(False, False, 5, 5, 5, 5) == "draw"
    assert outcome_of(False, False, 5, 3, 5, 5) == "lost"
    marks = type_markers(["marine", "marauder", "medivac", "tank", "thor", "tempest"])
    assert marks["marine"] == "M" and marks["medivac"] == "+" and len(set(marks.values())) == 6


def test_heuristic_ai_mode_fights():
    env = StarCraft2Env(map_name="3m", seed=0, heuristic_ai=True)
    res = run_episode(env, lambda e, r: [0] * 3, np.random.default_rng(0))
    assert res["dead_enemies"] > 0


@pytest.mark.parametrize("name", available_maps())
def test_pymarl_style_loop_runs_full_episodes(name):
    """The runner loop of pymarl/epymarl, unchanged but for the import."""
    env = StarCraft2Env(map_name=name, seed=0)
    info = env.get_env_info()
    rng = np.random.default_rng(0)
    env.reset()
    terminated, steps = False, 0
    while not terminated:
        obs, state = env.get_obs(), env.get_state()
        assert len(obs) == info["n_agents"] and state.shape == (info["state_shape"],)
        actions = []
        for agent_id in range(info["n_agents"]):
            avail = env.get_avail_agent_actions(agent_id)
            actions.append(int(rng.choice(np.nonzero(avail)[0])))
        reward, terminated, step_info = env.step(actions)
        assert np.isfinite(reward) and reward >= 0
        steps += 1
    assert steps <= info["episode_limit"]
    assert {"battle_won", "dead_allies", "dead_enemies"} <= set(step_info)
    env.close()


def test_a_pymarl_env_registry_runs_on_the_swapped_imports():
    """oxwhirl/pymarl's, PyMARL2's and EPyMARL's src/envs/__init__.py, with `smac.env` swapped for ours."""
    from functools import partial

    from rllib_uas.envs.smac_api import MultiAgentEnv, get_map_params

    def env_fn(env, **kwargs) -> MultiAgentEnv:
        return env(**kwargs)

    registry = {"sc2": partial(env_fn, env=StarCraft2Env)}
    env = registry["sc2"](map_name="MMM2", seed=0)
    assert isinstance(env, MultiAgentEnv)
    for name, member in vars(MultiAgentEnv).items():  # every abstract method is implemented
        if callable(member) and not name.startswith("_"):
            assert getattr(StarCraft2Env, name) is not member or name == "get_env_info", name
    params = get_map_params("MMM2")
    info = env.get_env_info()
    assert (params["n_agents"], params["n_enemies"], params["limit"]) == (10, 12, 180)
    assert info["n_agents"] == params["n_agents"] and info["episode_limit"] == params["limit"]
    assert params["unit_type_bits"] == env.unit_type_bits and params["map_type"] == env.map_type


def test_save_replay_says_once_that_there_are_no_sc2_replays():
    import warnings

    import rllib_uas.envs.smac_api as smac_api

    smac_api._REPLAY_NOTICE_GIVEN = False
    env = StarCraft2Env(map_name="3m", seed=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        env.save_replay()
        env.save_replay()
    assert len(caught) == 1 and "save_gif" in str(caught[0].message)


def test_one_rule_says_which_agents_heal_for_the_engine_and_for_real_smac():
    from types import SimpleNamespace

    from rllib_uas.envs.engine.actions import smac_healing_agents
    from rllib_uas.envs.engine.vec_smac import VectorizedSMAC

    for name in ("MMM", "MMM2", "6m2m_vs_15m", "3m", "2s3z"):
        env = StarCraft2Env(map_name=name, seed=0)
        assert (smac_healing_agents(env) == VectorizedSMAC(name).healer_agents).all(), name
    # oxwhirl/smac gives agents custom unit ids on MMM maps and names the Medivac's medivac_id
    units = [SimpleNamespace(unit_type=t) for t in (1970, 1971, 1972)]
    real = SimpleNamespace(map_type="MMM", n_agents=3, medivac_id=1972, get_unit_by_id=lambda i: units[i])
    assert smac_healing_agents(real).tolist() == [False, False, True]
    real.map_type = "marines"  # outside MMM maps nobody heals, as in SMAC
    assert not smac_healing_agents(real).any()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(step_mul=0), "step_mul=0: must be a positive integer"),
        (dict(move_amount=-2), "move_amount=-2: must be a number > 0"),
        (dict(reward_scale_rate=0), "reward_scale_rate=0: must be a number > 0"),
        (dict(reward_win="lots"), "reward_win='lots': must be a finite number"),
        (dict(reward_sparse=1), "reward_sparse=1: must be true or false"),
        (dict(difficulty=7), "difficulty=7: must be one of SMAC's levels 1, 2, 3"),
        (dict(seed=-3), "seed=-3: must be an integer >= 0, or None"),
        (dict(replay_dir=None), "replay_dir=None: must be a string"),
    ],
)
def test_keyword_values_of_the_wrong_type_or_range_are_refused(kwargs, message):
    """SMAC assumes each keyword's type and range; a wrong one crashed deep in a run or changed what it learns."""
    with pytest.raises(ValueError) as err:
        StarCraft2Env(map_name="3m", **kwargs)
    assert message in str(err.value)
    env = StarCraft2Env(map_name="3m", difficulty="A", seed=0, game_version=None, step_mul=4, reward_win=150.5)
    assert env.step_mul == 4 and env.reward_win == 150.5
    env = StarCraft2Env(map_name="3m", seed=np.int64(2), step_mul=np.int64(8), reward_win=np.float32(100))  # numpy
    assert env.step_mul == 8


def test_the_vector_env_refuses_a_bad_env_config_value():
    from rllib_uas.envs.team import TeamVectorEnv

    with pytest.raises(ValueError, match="env_config reward_scale_rate=-5: must be a number > 0"):
        TeamVectorEnv({"map_name": "3m", "reward_scale_rate": -5}, num_envs=2)
    with pytest.raises(ValueError, match="env_config uas must be true or false, got 'no'"):
        TeamVectorEnv({"map_name": "3m", "uas": "no"}, num_envs=2)


def test_per_agent_getters_refuse_an_id_that_is_no_agent():
    """numpy took -1 as the last agent and 4 (on 3m) as an enemy; SMAC's dict of agents refuses both."""
    env = StarCraft2Env(map_name="3m", seed=0)
    env.reset()
    for get in (env.get_obs_agent, env.get_avail_agent_actions, env.get_unit_by_id, env.unit_shoot_range):
        for bad in (-1, 3, 4, "0", True):
            with pytest.raises(ValueError, match=r"agent_id .*: 3m has 3 agents, 0-2"):
                get(bad)
    assert env.get_avail_agent_actions(np.int64(2)) == env.get_avail_actions()[2]
    assert env.get_unit_by_id(2).tag == 2
