"""Both algorithms data-parallel on num_learners=2 CPU learners (torch DDP over gloo): the batch is split
across the learners, and their weights stay identical after every update."""

import numpy as np
import pytest
from test_u_mappo import tiny as tiny_mappo
from test_u_qmix import tiny as tiny_qmix


def learner_weights(algo):
    """The module's state dict of every remote learner, as numpy."""
    results = algo.learner_group.foreach_learner(
        lambda learner: {
            k: v.detach().cpu().numpy() for k, v in learner.module["default_policy"].unwrapped().state_dict().items()
        }
    )
    return [r.get() for r in results]


@pytest.mark.parametrize("algorithm", ["U-MAPPO", "U-QMIX"])
def test_two_learners_train_on_split_batches_and_stay_in_sync(ray_session, algorithm):
    cfg = tiny_mappo() if algorithm == "U-MAPPO" else tiny_qmix(batch_size_episodes=8)
    algo = cfg.learners(num_learners=2).build_algo()
    try:
        before = learner_weights(algo)
        for _ in range(3):
            result = algo.train()
        learner = result["learners"]["default_policy"]
        assert np.isfinite(float(learner["total_loss"])) and float(learner["cgi_loss"]) > 0
        if algorithm == "U-QMIX":
            assert float(learner["batch_episodes"]) == 4.0  # 8 replayed episodes, 4 per learner
        first, second = learner_weights(algo)
        assert first.keys() == second.keys()
        for k in first:
            np.testing.assert_array_equal(first[k], second[k], err_msg=k)
        assert any(not np.array_equal(before[0][k], first[k]) for k in first), "no learner updated"
        # the env runner acts with the learners' weights
        local = algo.env_runner.module.state_dict()
        k = next(k for k in local if k in first and "target" not in k)
        np.testing.assert_array_equal(local[k].detach().cpu().numpy(), first[k])
    finally:
        algo.stop()
