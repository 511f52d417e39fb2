"""One U-QMIX update on a seeded buffer sample: the comparison the speed-up tests run twice (a code
path on and off) and expect to end at the same weights."""

from typing import Callable, Dict, Optional, Tuple

import numpy as np

from rllib_uas.algorithms.u_qmix.algorithm import train_batch


def algo_with_episodes(episodes: int, seed: int, **learners):
    """A U-QMIX algorithm on 3m1m_vs_4m (two groups: the CGI term is on) whose buffer holds at least
    `episodes` episodes and which has not updated yet (the tests' own updates are the ones compared);
    `learners`: settings for `config.learners` (e.g. num_gpus_per_learner=1)."""
    from rllib_uas.algorithms.u_qmix import UQMIXConfig

    cfg = (
        UQMIXConfig()
        .environment(env_config={"map_name": "3m1m_vs_4m"})
        .env_runners(num_env_runners=0, num_envs_per_env_runner=8)
        .learners(**learners)
        .training(batch_size_episodes=episodes, learning_starts_episodes=10_000, episodes_per_iteration=8)
        .debugging(seed=seed)
    )
    algo = cfg.build_algo()
    try:
        while len(algo.episode_buffer) < episodes:
            algo.train()
    except BaseException:
        algo.stop()
        raise
    return algo


def one_update(check_batch: Optional[Callable[[dict], None]] = None, **learners) -> Tuple[Dict, Dict, Dict[str, float]]:
    """(state dict before, after, {td_loss, cgi_loss}) of one update on 48 buffered 3m1m_vs_4m episodes
    (two groups: the CGI term is on); `check_batch(batch)` sees the sampled batch first; `learners` as
    in algo_with_episodes."""
    algo = algo_with_episodes(48, seed=5, **learners)
    try:
        np.random.seed(1)
        batch = algo.episode_buffer.sample(48)
        if check_batch is not None:
            check_batch(batch)
        module = algo.learner_group._learner.module["default_policy"]
        before = {k: v.clone() for k, v in module.state_dict().items()}
        results = algo.learner_group.update(batch=train_batch(batch), timesteps={})
        losses = {k: float(results[0]["default_policy"][k].peek()) for k in ("td_loss", "cgi_loss")}
        return before, {k: v.clone() for k, v in module.state_dict().items()}, losses
    finally:
        algo.stop()
