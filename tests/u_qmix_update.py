"""One U-QMIX update on a seeded buffer sample: the comparison the speed-up tests run twice (a code
path on and off) and expect to end at the same weights."""

from typing import Callable, Dict, Optional, Tuple

import numpy as np

from rllib_uas.algorithms.u_qmix.algorithm import train_batch


def one_update(check_batch: Optional[Callable[[dict], None]] = None) -> Tuple[Dict, Dict, Dict[str, float]]:
    """(state dict before, after, {td_loss, cgi_loss}) of one update on 48 buffered 3m1m_vs_4m episodes
    (two groups: the CGI term is on); `check_batch(batch)` sees the sampled batch first."""
    from rllib_uas.algorithms.u_qmix import UQMIXConfig

    cfg = (
        UQMIXConfig()
        .environment(env_config={"map_name": "3m1m_vs_4m"})
        .env_runners(num_env_runners=0, num_envs_per_env_runner=8)
        # no updates while the buffer fills: the one update compared is the test's own
        .training(batch_size_episodes=48, learning_starts_episodes=10_000, episodes_per_iteration=8)
        .debugging(seed=5)
    )
    algo = cfg.build_algo()
    try:
        while len(algo.episode_buffer) < 48:
            algo.train()
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
