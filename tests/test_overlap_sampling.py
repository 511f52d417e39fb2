"""U-MAPPO's overlap_sampling: the remote runner collects the next batch during each update, so every
batch after the first is exactly one update stale; off, each batch is played by the latest weights.

Staleness is read from the batches themselves: a runner stamps every step with the sequence number
of the weights it acted with (RLlib's WEIGHTS_SEQ_NO), and the learner counts its updates."""

import pytest
from ray.rllib.utils.metrics import WEIGHTS_SEQ_NO

from rllib_uas.algorithms.u_mappo import UMAPPOConfig


def config(overlap: bool, runners: int = 1, minibatch: int = 200) -> UMAPPOConfig:
    return (
        UMAPPOConfig()
        .training(train_batch_size_per_learner=200, minibatch_size=minibatch, num_epochs=2, overlap_sampling=overlap)
        .environment(env_config={"map_name": "3m1m_vs_4m"})
        .env_runners(num_env_runners=runners, num_envs_per_env_runner=4)
        .learners(num_cpus_per_learner=1)
        .debugging(seed=0)
    )


def record_staleness(algo) -> list:
    """Wraps the learner group's update: per update, (updates done before it, weight versions in its batch)."""
    seen = []
    update = algo.learner_group.update

    def recorded(*args, **kwargs):
        versions = {int(v) for e in kwargs["episodes"] for v in e.get_extra_model_outputs(WEIGHTS_SEQ_NO)}
        seen.append((algo.learner_group._learner._weights_seq_no, sorted(versions)))
        return update(*args, **kwargs)

    algo.learner_group.update = recorded
    return seen


def test_overlap_needs_a_remote_runner_and_a_bool():
    with pytest.raises(ValueError, match=r"num_env_runners=0; set num_env_runners >= 1"):
        config(True, runners=0).validate()
    with pytest.raises(ValueError, match="overlap_sampling must be true or false"):
        config("yes").validate()
    with pytest.raises(ValueError, match="needs one learner .* got num_learners=2"):
        config(True).learners(num_learners=2).validate()
    cfg = config(True)
    cfg.validate()
    assert cfg._dont_auto_sync_env_runner_states  # RLlib's blocking after-iteration sync is ours now
    plain = config(False)
    plain.validate()
    assert not plain._dont_auto_sync_env_runner_states


@pytest.mark.parametrize(
    "overlap, minibatch, staleness",
    [
        (False, 200, [0, 0, 0, 0]),
        (True, 200, [0, 1, 1, 1]),  # one minibatch per epoch: the proximal policy is the first epoch's pass
        (True, 100, [0, 1, 1, 1]),  # two: one pass over the whole batch before the update
    ],
)
def test_each_batch_is_one_update_stale_with_overlap(ray_session, overlap, minibatch, staleness):
    algo = config(overlap, minibatch=minibatch).build_algo()
    try:
        seen = record_staleness(algo)
        steps, log_weights = [], []
        for _ in range(4):
            result = algo.train()
            steps.append(result["num_env_steps_sampled_lifetime"])
            assert "win_rate" in result["env_runners"]  # the runner's metrics arrive with its batch
            log_weights.append(float(result["learners"]["default_policy"]["behaviour_log_weight_max"]))
        # the decoupled objective's pi_prox / pi_old: 1 without overlap; with it, 1 up to float rounding
        # on the first batch (learner and runner compute the same policy: the proximal logits line up
        # with the batch's steps), and away from 1 on the stale ones
        if overlap:
            assert log_weights[0] < 1e-4 and min(log_weights[1:]) > 1e-3, log_weights
        else:
            assert log_weights == [0.0] * 4
        assert [done - max(versions) for done, versions in seen] == staleness
        assert all(len(versions) == 1 for _, versions in seen)  # one weight version per batch
        assert all(b - a >= 200 for a, b in zip([0] + steps, steps))  # every batch full and counted
        # the runner's own step counter (RLlib syncs it after each iteration) follows
        runner_steps = algo.env_runner_group.foreach_env_runner(
            lambda r: r.num_env_steps_sampled_lifetime, local_env_runner=False
        )
        assert runner_steps[0] >= steps[-2]
    finally:
        algo.stop()


def test_restore_drops_the_batch_in_flight(ray_session, tmp_path):
    """A batch the runner is collecting when weights are restored was played by the replaced weights:
    it is dropped, and the next update learns from a batch of the restored ones."""
    saved = config(True).build_algo()
    try:
        saved.train()
        saved.train()
        path = saved.save_to_path(str(tmp_path / "ckpt"))  # after 2 updates
    finally:
        saved.stop()
    algo = config(True).build_algo()
    try:
        algo.train()  # leaves a batch of its own first weights (version 0) in flight
        seen = record_staleness(algo)
        algo.restore_from_path(path)
        algo.train()
        algo.train()
        assert seen == [(2, [2]), (3, [2])]
    finally:
        algo.stop()
