"""Learning tests: real training runs that must reach a greedy win rate (marked slow, still run)."""
import numpy as np
import pytest

from rllib_uas.algorithms.u_mappo import UMAPPOConfig

LEARNING_MAP = "3m1m_vs_4m"  # 3 Marines + 1 Medivac vs 4 Marines: two UAS groups; random play wins 0%


@pytest.mark.slow
def test_u_mappo_learns_a_small_heterogeneous_map(ray_session):
    config = (UMAPPOConfig()
              .environment(env_config={"map_name": LEARNING_MAP})
              .env_runners(num_env_runners=0, num_envs_per_env_runner=16)
              .training(train_batch_size_per_learner=1600, minibatch_size=1600, num_epochs=10, cgi_coeff=0.1)
              .evaluation(evaluation_num_env_runners=1, evaluation_duration=64)
              .debugging(seed=0))
    algo = config.build_algo()
    try:
        history = []
        for _ in range(120):                                  # at most 192k env steps
            result = algo.train()
            history.append(result["env_runners"].get("win_rate", 0.0))
            if len(history) >= 5 and np.mean(history[-5:]) >= 0.95:
                break
        greedy = algo.evaluate()["env_runners"]
        assert greedy["num_episodes"] >= 64
        assert greedy["win_rate"] >= 0.8, f"greedy win rate {greedy['win_rate']}, training curve {history}"
    finally:
        algo.stop()


@pytest.mark.slow
def test_u_qmix_learns_a_small_heterogeneous_map(ray_session):
    from rllib_uas.algorithms.u_qmix import UQMIXConfig

    config = (UQMIXConfig()
              .environment(env_config={"map_name": LEARNING_MAP})
              .env_runners(num_env_runners=0, num_envs_per_env_runner=8)
              .training(batch_size_episodes=64, learning_starts_episodes=64, episodes_per_iteration=8,
                        updates_per_iteration=2, epsilon_anneal_steps=30_000, target_update_interval_episodes=100,
                        buffer_size_episodes=2000, cgi_coeff=0.1)
              .evaluation(evaluation_num_env_runners=1, evaluation_duration=64)
              .debugging(seed=0))
    algo = config.build_algo()
    try:
        history = []
        for _ in range(600):                                  # at most ~130k env steps
            result = algo.train()
            history.append(result["env_runners"].get("win_rate", 0.0))
            if result["num_env_steps_sampled_lifetime"] > 40_000 and np.mean(history[-20:]) >= 0.95:
                break
        greedy = algo.evaluate()["env_runners"]
        assert greedy["num_episodes"] >= 64
        assert greedy["win_rate"] >= 0.8, f"greedy win rate {greedy['win_rate']}, training curve {history[::10]}"
    finally:
        algo.stop()
