"""Cluster support: launcher files validate offline; env runners spread over nodes; fault tolerance."""

import os
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["aws.yaml", "local.yaml"])
def test_cluster_files_pass_rays_schema(name):
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = yaml.safe_load((ROOT / "cluster" / name).read_text())
    validate_config(prepare_config(config))
    assert any("pip install" in c and "rllib-uas" in c for c in config["setup_commands"])


def test_a_typo_in_a_cluster_file_is_rejected():
    from jsonschema import ValidationError
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = yaml.safe_load((ROOT / "cluster" / "local.yaml").read_text())
    config["max_workerz"] = config.pop("max_workers")
    with pytest.raises(ValidationError, match="max_workerz"):
        validate_config(prepare_config(config))


def test_submit_script_checks_its_arguments():
    res = subprocess.run(["bash", str(ROOT / "cluster" / "submit.sh")], capture_output=True, text=True)
    assert res.returncode == 2 and "usage" in res.stderr
    res = subprocess.run(["bash", str(ROOT / "cluster" / "submit.sh"), "missing.yaml"], capture_output=True, text=True)
    assert res.returncode == 2 and "no such experiment file" in res.stderr
    res = subprocess.run(["bash", str(ROOT / "cluster" / "submit.sh"), "--address"], capture_output=True, text=True)
    assert res.returncode == 2 and "--address needs the head's dashboard address" in res.stderr


def test_submit_script_names_the_file_inside_the_shipped_repository(tmp_path):
    """The job receives a copy of the repository only: a file outside it is refused, one inside it is named
    relative to the repository's root, from whatever folder the script was started in."""
    outside = tmp_path / "mine.yaml"
    outside.write_text("x: {run: U-MAPPO}\n")
    script = str(ROOT / "cluster" / "submit.sh")
    res = subprocess.run(["bash", script, str(outside)], capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 2 and "is outside the repository" in res.stderr and "copy it into" in res.stderr
    fake = tmp_path / "bin"  # a `ray` that prints the command it was given instead of submitting it
    fake.mkdir()
    (fake / "ray").write_text('#!/usr/bin/env bash\necho "$@"\n')
    (fake / "ray").chmod(0o755)
    env = {**os.environ, "PATH": f"{fake}:{os.environ['PATH']}"}
    inside = os.path.relpath(ROOT / "tuned_examples" / "quickstart.yaml", tmp_path)
    res = subprocess.run(["bash", script, inside, "--seed", "3"], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert res.returncode == 0, res.stderr
    assert "-- rllib train file tuned_examples/quickstart.yaml --ray-address auto" in res.stdout
    assert res.stdout.strip().endswith("--seed 3")


@pytest.fixture
def three_node_cluster():
    """A head and two worker nodes on this machine; each worker offers one 'runner_slot'."""
    import ray
    from ray.cluster_utils import Cluster

    from rllib_uas.local_ray import start_own_ray

    if ray.is_initialized():
        ray.shutdown()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    workers = [cluster.add_node(num_cpus=1, resources={"runner_slot": 1}) for _ in range(2)]
    ray.init(address=cluster.address)
    yield cluster, workers
    ray.shutdown()
    cluster.shutdown()
    # back to a local Ray like the session's (conftest), never a `ray start` cluster on this machine
    start_own_ray(num_cpus=2, include_dashboard=False, log_to_driver=False)


def tiny_mappo(runners):
    from rllib_uas.algorithms.u_mappo import UMAPPOConfig

    return (
        UMAPPOConfig()
        .environment(env_config={"map_name": "3m"})
        .env_runners(
            num_env_runners=runners,
            num_envs_per_env_runner=2,
            num_cpus_per_env_runner=0,
            custom_resources_per_env_runner={"runner_slot": 1},
        )
        .learners(num_cpus_per_learner=0)
        .training(train_batch_size_per_learner=200, minibatch_size=200, num_epochs=1)
        .fault_tolerance(restart_failed_env_runners=True)
        .debugging(seed=0)
    )


@pytest.mark.slow
def test_env_runners_run_on_different_nodes(three_node_cluster):
    import ray

    cluster, workers = three_node_cluster
    algo = tiny_mappo(2).build_algo()
    try:
        result = algo.train()
        nodes = algo.env_runner_group.foreach_env_runner(
            lambda r: ray.get_runtime_context().get_node_id(), local_env_runner=False
        )
        assert len(nodes) == 2 and len(set(nodes)) == 2
        assert set(nodes) == {w.node_id for w in workers}
        assert result["num_env_steps_sampled_lifetime"] >= 200
    finally:
        algo.stop()


@pytest.mark.slow
def test_killed_env_runner_is_restarted_and_no_sample_counts_twice(ray_session):
    import ray

    from rllib_uas.algorithms.u_mappo import UMAPPOConfig

    config = (
        UMAPPOConfig()
        .environment(env_config={"map_name": "3m"})
        .env_runners(num_env_runners=2, num_envs_per_env_runner=2, num_cpus_per_env_runner=0.5)
        .training(train_batch_size_per_learner=200, minibatch_size=200, num_epochs=1)
        .fault_tolerance(restart_failed_env_runners=True)
        .debugging(seed=0)
    )
    algo = config.build_algo()
    try:
        per_iter, lifetime = [], []
        r = algo.train()
        per_iter.append(r["env_runners"]["num_env_steps_sampled"])
        lifetime.append(r["num_env_steps_sampled_lifetime"])
        victim = list(algo.env_runner_group._worker_manager.actors().values())[0]
        ray.kill(victim, no_restart=False)  # an env runner crashes
        deadline = time.monotonic() + 180  # a loaded machine restarts slowly
        while True:
            r = algo.train()
            per_iter.append(r["env_runners"].get("num_env_steps_sampled", 0))
            lifetime.append(r["num_env_steps_sampled_lifetime"])
            if len(per_iter) >= 3 and algo.env_runner_group.num_healthy_remote_workers() == 2:
                break
            assert time.monotonic() < deadline, "the killed env runner was not restarted within 180 s"
        assert algo.env_runner_group.num_healthy_remote_workers() == 2  # restarted
        assert np.all(np.diff(lifetime) > 0)  # training went on
        assert lifetime[-1] == sum(per_iter)  # every step counted once
    finally:
        algo.stop()


@pytest.mark.slow
def test_u_qmix_keeps_only_whole_episodes_when_an_env_runner_dies(ray_session):
    """A runner killed mid-battle: its running battles are dropped whole, never half-stored; every
    step is counted once; the runner comes back."""
    import ray

    from rllib_uas.algorithms.u_qmix import UQMIXConfig
    from rllib_uas.algorithms.u_qmix.episode_buffer import DERIVED_LAST_ACTION

    config = (
        UQMIXConfig()
        .environment(env_config={"map_name": "3m"})
        .env_runners(num_env_runners=2, num_envs_per_env_runner=4, num_cpus_per_env_runner=0.5)
        .training(learning_starts_episodes=10_000, buffer_size_episodes=10_000)
        .fault_tolerance(restart_failed_env_runners=True)
        .debugging(seed=0)
    )
    algo = config.build_algo()
    limit = 60  # 3m's episode limit
    try:
        algo.train()
        assert algo.stitcher.pending  # battles are running
        victim = list(algo.env_runner_group._worker_manager.actors().values())[0]
        ray.kill(victim, no_restart=False)
        deadline = time.monotonic() + 180
        while True:
            r = algo.train()
            if algo.stitcher.num_dropped_episodes and algo.env_runner_group.num_healthy_remote_workers() == 2:
                break
            assert time.monotonic() < deadline, "the killed env runner was not restarted within 180 s"
        for _ in range(2):
            r = algo.train()
        dropped = algo.stitcher.num_dropped_steps
        assert algo.stitcher.num_dropped_episodes >= 1 and dropped >= 1
        for e in algo.episode_buffer.episodes:  # only whole battles:
            # stored with derived last actions: last_action[0] == 0 (a reset) and last_action[t+1] ==
            # one-hot(actions[t]) at every step, so no row is missing or doubled at a chunk seam
            assert DERIVED_LAST_ACTION in e
            assert e["terminated"][-1] or len(e["rewards"]) == limit  # ends in a result or the limit
        kept = sum(len(e["rewards"]) for e in algo.episode_buffer.episodes)
        running = sum(len(a["rewards"]) for a in algo.stitcher.pending.values())
        assert r["num_env_steps_sampled_lifetime"] == kept + running + dropped  # each step once
    finally:
        algo.stop()


@pytest.mark.slow
def test_u_qmix_learners_on_two_nodes_split_the_replay_batch(three_node_cluster):
    """Data-parallel learners on different nodes (DDP over gloo): each gets half of the replayed
    episodes and both end every update with the same weights."""
    import ray
    from test_multi_learner import learner_weights
    from test_u_qmix import tiny as tiny_qmix

    cluster, workers = three_node_cluster
    cfg = tiny_qmix(batch_size_episodes=8).learners(
        num_learners=2, num_cpus_per_learner=0, custom_resources_per_learner={"runner_slot": 1}
    )
    algo = cfg.build_algo()
    try:
        nodes = [
            r.get() for r in algo.learner_group.foreach_learner(lambda learner: ray.get_runtime_context().get_node_id())
        ]
        assert sorted(nodes) == sorted(w.node_id for w in workers)  # one learner per worker node
        for _ in range(3):
            result = algo.train()
        assert float(result["learners"]["default_policy"]["batch_episodes"]) == 4.0  # 8 episodes, 4 each
        first, second = learner_weights(algo)
        for k in first:
            np.testing.assert_array_equal(first[k], second[k], err_msg=k)
    finally:
        algo.stop()


@pytest.mark.slow
def test_the_study_runs_its_cells_on_a_cluster_and_leaves_it_up(three_node_cluster, tmp_path):
    """`study.py run --address`: the driver joins the cluster by its address (as in a Ray job), the
    cells (one CPU each; one CPU per node here) write into the shared results folder, and the
    cluster is still up afterwards: it is not the run's own Ray, which the run would stop."""
    import ray
    from test_study import TINY

    from rllib_uas.study.grid import grid
    from rllib_uas.study.run import run_study

    cluster, _ = three_node_cluster
    ray.shutdown()
    cells = grid(["3m"], ["U-MAPPO"], [0, 1, 2], plans=TINY)
    assert run_study(cells, tmp_path, concurrent=3, address=cluster.address) == {
        "skipped": 0,
        "finished": 3,
        "failed": 0,
    }
    assert sorted(p.name for p in tmp_path.glob("*.csv")) == [f"{c.name}.csv" for c in cells] + ["manifest.csv"]
    assert ray.is_initialized() and sum(node["Alive"] for node in ray.nodes()) == 3  # still joined, still up
