"""Learning tests: real training runs that must reach a greedy win rate (marked slow, still run)."""

import numpy as np
import pytest

from rllib_uas.algorithms.u_mappo import UMAPPOConfig

LEARNING_MAP = "3m1m_vs_4m"  # 3 Marines + 1 Medivac vs 4 Marines: two UAS groups; random play wins 0%


@pytest.mark.slow
def test_u_mappo_learns_a_small_heterogeneous_map(ray_session):
    config = (
        UMAPPOConfig()
        .environment(env_config={"map_name": LEARNING_MAP})
        .env_runners(num_env_runners=0, num_envs_per_env_runner=16)
        .training(train_batch_size_per_learner=1600, minibatch_size=1600, num_epochs=10, cgi_coeff=0.1)
        .evaluation(evaluation_num_env_runners=1, evaluation_duration=64)
        .debugging(seed=0)
    )
    algo = config.build_algo()
    try:
        # Once the training win rate holds 0.95, the greedy policy is evaluated (64 episodes) every 5
        # iterations until it wins 0.8 or the budget ends. Its first evaluation is not always the
        # one: with the same algorithm summed in another float order, 1 of 8 runs of this config
        # (seeds 0-3, two summation orders) won 0.08 greedily at the point its training win rate
        # first held 0.95, the other 7 won 1.00 (docs/algorithms.md).
        history, greedy_rates, greedy = [], [], None
        for it in range(120):  # at most 192k env steps
            result = algo.train()
            history.append(result["env_runners"].get("win_rate", 0.0))
            if len(history) >= 5 and np.mean(history[-5:]) >= 0.95 and (not greedy_rates or it % 5 == 0):
                greedy = algo.evaluate()["env_runners"]
                assert greedy["num_episodes"] >= 64
                greedy_rates.append(greedy["win_rate"])
                if greedy["win_rate"] >= 0.8:
                    break
        assert greedy is not None, f"the training win rate never held 0.95: {history}"
        assert greedy["win_rate"] >= 0.8, f"greedy win rates {greedy_rates}, training curve {history}"
    finally:
        algo.stop()


@pytest.mark.slow
def test_u_qmix_learns_a_small_heterogeneous_map_with_default_settings(ray_session):
    """PyMARL2's tuned QMIX settings, unchanged (batch 128 episodes, 1 update per 8 episodes,
    epsilon over 100k steps), plus lambda_I = 0.1. Greedy evaluation every 10k simulated steps."""
    from rllib_uas.algorithms.u_qmix import UQMIXConfig

    config = (
        UQMIXConfig()
        .environment(env_config={"map_name": LEARNING_MAP})
        .env_runners(num_env_runners=0)
        .evaluation(evaluation_num_env_runners=1, evaluation_duration=64)
        .debugging(seed=0)
    )
    algo = config.build_algo()
    try:
        history, steps, next_eval = [], 0, 20_000
        while steps < 200_000:
            steps = int(algo.train()["num_env_steps_sampled_lifetime"])  # every simulated step
            if steps >= next_eval:
                history.append((steps, algo.evaluate()["env_runners"]["win_rate"]))
                next_eval += 10_000
                if history[-1][1] >= 0.9:
                    break
        greedy = algo.evaluate()["env_runners"]  # a fresh 64 episodes
        assert greedy["num_episodes"] >= 64
        assert greedy["win_rate"] >= 0.8, f"greedy win rate {greedy['win_rate']}, evaluations {history}"
    finally:
        algo.stop()
