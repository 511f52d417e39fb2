"""Sampling fidelity: U-QMIX's collected episodes, evaluation rounds, seeding, step counts.

The reference is PyMARL2's parallel runner: every env plays exactly one episode per round. A fixed
uniformly random policy (epsilon = 1 in U-QMIX, random actions in the runner) must give the same
episode-length distribution and time-out share through our sampling paths, and every simulated
env step must be counted. RLlib's stock `sample(num_episodes=k)` is checked to fail the same test.
"""

import math

import numpy as np
import pytest
from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner
from ray.rllib.env.single_agent_episode import SingleAgentEpisode

from rllib_uas.algorithms.u_qmix import UQMIXConfig
from rllib_uas.algorithms.u_qmix.episode_buffer import DERIVED_LAST_ACTION
from rllib_uas.algorithms.u_qmix.stitching import EpisodeStitcher
from rllib_uas.env_runner import TeamEnvRunner
from rllib_uas.envs.registry import register_envs
from rllib_uas.envs.rounds import random_rounds
from rllib_uas.envs.team import TeamVectorEnv

MAP = "3m1m_vs_4m"
LIMIT = TeamVectorEnv({"map_name": MAP}).backend.episode_limit  # an episode this long timed out


def _logging_reset(reset, log):
    """`reset` that first appends the seed it was called with to `log`."""

    def logged(**kw):
        log.append(kw.get("seed"))
        return reset(**kw)

    return logged


def assert_same_distribution(lengths, timeouts, ref_lengths, ref_timeouts, z: float = 3.5):
    """Means and time-out shares agree within z standard errors of their difference."""
    se_len = math.sqrt(lengths.var() / len(lengths) + ref_lengths.var() / len(ref_lengths))
    assert abs(lengths.mean() - ref_lengths.mean()) <= z * se_len, (
        f"mean length {lengths.mean():.1f} vs reference {ref_lengths.mean():.1f} (se {se_len:.2f})"
    )
    p, q = timeouts.mean(), ref_timeouts.mean()
    se_p = math.sqrt(max(p * (1 - p), 1e-3) / len(timeouts) + max(q * (1 - q), 1e-3) / len(ref_timeouts))
    assert abs(p - q) <= z * se_p, f"time-out share {p:.3f} vs reference {q:.3f} (se {se_p:.3f})"


@pytest.fixture(scope="module")
def reference():
    lengths, timeouts = random_rounds(MAP, 480, num_envs=8, seed=123)
    assert 0.03 < timeouts.mean() < 0.3 and lengths.mean() > 25  # the map has long battles to lose
    return lengths, timeouts


def random_uqmix(runners: int, envs: int, **training):
    """U-QMIX that acts uniformly at random (epsilon 1) and never learns: only sampling runs."""
    return (
        UQMIXConfig()
        .environment(env_config={"map_name": MAP})
        .env_runners(num_env_runners=runners, num_envs_per_env_runner=envs)
        .training(
            epsilon_start=1.0, epsilon_finish=1.0, buffer_size_episodes=5000, learning_starts_episodes=5000, **training
        )
        .debugging(seed=0)
    )


@pytest.mark.parametrize("runners,envs", [(0, 8), (0, 32), (2, 8)], ids=["local-8", "local-32", "remote-2x8"])
def test_u_qmix_collects_the_one_episode_per_env_distribution(ray_session, reference, runners, envs):
    algo = random_uqmix(runners, envs).build_algo()
    try:
        while len(algo.episode_buffer) < 400:
            result = algo.train()
        episodes = [algo.episode_buffer.episode(i) for i in range(len(algo.episode_buffer))]
        # stored with derived last actions: last_action[0] == 0 (a reset) and last_action[t+1] ==
        # one-hot(actions[t]) at every step, so stitching neither lost nor doubled a row at a seam
        assert all(DERIVED_LAST_ACTION in e for e in algo.episode_buffer.episodes)
        lengths = np.array([len(e["rewards"]) for e in episodes])
        timeouts = np.array([e["terminated"][-1] == 0 for e in episodes])
        assert (lengths[timeouts] == LIMIT).all() and (lengths[~timeouts] <= LIMIT).all()
        assert_same_distribution(lengths, timeouts, *reference)
        # every simulated step is counted, once: kept episodes + battles still running == simulated
        simulated = int(result["env_runners"]["num_env_steps_sampled_lifetime"])
        running = sum(len(a["rewards"]) for a in algo.stitcher.pending.values())
        assert int(result["num_env_steps_sampled_lifetime"]) == simulated == lengths.sum() + running
        assert algo.stitcher.num_dropped_episodes == 0
    finally:
        algo.stop()


def test_stock_first_to_finish_sampling_fails_the_same_check(ray_session, reference):
    """The check above can fail: RLlib's sample(num_episodes=8) on 8 envs is length-biased."""
    register_envs()
    runner = SingleAgentEnvRunner(config=random_uqmix(0, 8))
    lengths, timeouts = [], []
    while len(lengths) < 400:
        for ep in runner.sample(num_episodes=8, explore=True):
            lengths.append(len(ep))
            timeouts.append(ep.is_truncated)
    runner.stop()
    with pytest.raises(AssertionError):
        assert_same_distribution(np.array(lengths), np.array(timeouts), *reference)


def test_evaluation_rounds_play_one_episode_per_env(ray_session, reference):
    register_envs()
    config = random_uqmix(0, 8)
    runner = TeamEnvRunner(config=config)
    seeds = []
    reset = runner.env.unwrapped.reset
    runner.env.unwrapped.reset = lambda **kw: (seeds.append(kw.get("seed")), reset(**kw))[1]
    lengths, timeouts = [], []
    for _ in range(20):
        eps = runner.sample(num_episodes=20, explore=True)  # ceil(20 / 8) = 3 rounds of 8 (epsilon 1)
        assert len(eps) == 24
        lengths += [len(e) for e in eps]
        timeouts += [e.is_truncated for e in eps]
    assert_same_distribution(np.array(lengths), np.array(timeouts), *reference)
    assert seeds[0] == config.seed and all(s is None for s in seeds[1:]), f"reseeded: {seeds[:5]}"
    # the runner's metrics count exactly these episodes (the held envs played no extra battles)
    metrics = runner.get_metrics()
    assert metrics["num_episodes"].peek() == len(lengths) == 480
    assert metrics["num_env_steps_sampled"].peek() == sum(lengths)
    runner.stop()


def test_a_seeded_run_seeds_each_env_once(ray_session):
    algo = (
        random_uqmix(0, 4).evaluation(evaluation_interval=1, evaluation_num_env_runners=0, evaluation_duration=8)
    ).build_algo()
    seeds = {"train": [], "eval": []}
    for name, runner in (("train", algo.env_runner), ("eval", algo.eval_env_runner)):
        env = runner.env.unwrapped
        env.reset = _logging_reset(env.reset, seeds[name])
    try:
        for _ in range(3):
            algo.train()
    finally:
        algo.stop()
    # the first reset takes the runner's seed (RLlib adds 1,000,000 for evaluation runners); every
    # later reset continues the same random stream
    assert seeds["train"] == [0], seeds
    assert len(seeds["eval"]) >= 3 and seeds["eval"][0] == 1_000_000, seeds
    assert all(s is None for s in seeds["eval"][1:]), seeds


def _obs(t):
    """A team observation whose 'state' is the step index."""
    return {
        "obs": np.full((2, 1), t, np.float32),
        "action_mask": np.ones((2, 3), np.float32),
        "state": np.array([t], np.float32),
        "alive": np.ones(2, np.float32),
        "group": np.zeros(2, np.float32),
        "last_action": np.zeros((2, 3), np.float32),
    }


def _play(ep, steps, rewards, terminated_at=None):
    for t, r in zip(steps, rewards):
        ep.add_env_step(
            observation=_obs(t), action=np.array([t % 3, 1]), reward=float(r), terminated=t == terminated_at
        )
    return ep


def _episode(rewards, terminated=True):
    ep = SingleAgentEpisode()
    ep.add_env_reset(observation=_obs(0))
    n = len(rewards)
    return _play(ep, range(1, n + 1), rewards, terminated_at=n if terminated else None)


def test_stitcher_joins_chunks_and_drops_what_a_dead_runner_held():
    # as a runner does: cut the running episode, return the chunk as numpy, go on in the continuation
    head = _episode([1, 2, 3], terminated=False)
    tail = head.cut()  # same id, starts at t=3 with obs 3
    st = EpisodeStitcher()
    done, steps = st.add([head.to_numpy()])
    assert done == [] and steps == 3 and head.id_ in st.pending
    _play(tail, (4, 5), (4, 5), terminated_at=5)
    assert tail.id_ == head.id_ and tail.t_started == 3
    done, steps = st.add([tail.to_numpy()])
    assert steps == 2 and len(done) == 1 and not st.pending
    ep = done[0]
    assert ep["state"][:, 0].tolist() == [0, 1, 2, 3, 4, 5]
    assert ep["rewards"].tolist() == [1, 2, 3, 4, 5] and ep["terminated"].tolist() == [0, 0, 0, 0, 1]
    assert ep["actions"][:, 0].tolist() == [1, 2, 0, 1, 2]

    # a runner died: its running battle is not continued by the next call and is dropped whole
    st = EpisodeStitcher()
    orphan = _episode([1, 1], terminated=False)
    orphan_tail = orphan.cut()
    st.add([orphan.to_numpy()])
    done, steps = st.add([_episode([2, 2, 2]).to_numpy()])
    assert len(done) == 1 and steps == 3 and not st.pending
    assert st.num_dropped_episodes == 1 and st.num_dropped_steps == 2
    # ... and a continuation whose beginning was never seen is dropped too
    done, _ = st.add([_play(orphan_tail, (3,), (0,), terminated_at=3).to_numpy()])
    assert done == [] and st.num_dropped_episodes == 2


def test_validate_rejects_sampling_that_cannot_be_unbiased():
    with pytest.raises(ValueError, match="length-biased"):
        UQMIXConfig().env_runners(env_runner_cls=SingleAgentEnvRunner).validate()
    with pytest.raises(ValueError, match="evaluation_duration_unit='episodes'"):
        UQMIXConfig().evaluation(evaluation_interval=1, evaluation_duration_unit="timesteps").validate()
    with pytest.raises(ValueError, match="rollout_fragment_length"):
        UQMIXConfig().env_runners(rollout_fragment_length=0).validate()


def test_rllib_evaluate_plays_whole_rounds():
    from rllib_uas.envs.team import TeamEnv
    from rllib_uas.evaluation import evaluate
    from rllib_uas.modules.team_ppo import TeamPPOModule

    env = TeamEnv({"map_name": "3m"})
    module = TeamPPOModule(
        observation_space=env.observation_space, action_space=env.action_space, model_config={"max_seq_len": 20}
    )
    res = evaluate(module, {"map_name": "3m"}, episodes=12, num_envs=8)  # 2 rounds of 8, not the first 12
    assert res["episodes"] == 16
    assert 1 <= res["length_mean"] <= 60 and 0.0 <= res["win_rate"] <= 1.0
    for kwargs, message in (
        (dict(episodes=0), "episodes must be an integer >= 1, got 0"),  # was 'num_envs ... got 0'
        (dict(num_envs=0), "num_envs must be an integer >= 1, got 0"),
        (dict(seed=-1), "seed must be an integer >= 0, got -1"),
    ):
        with pytest.raises(ValueError, match=message):
            evaluate(module, {"map_name": "3m"}, **kwargs)
