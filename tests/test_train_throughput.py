"""The training benchmark's timing hooks on real algorithms (benchmarks/train_throughput.py)."""

from __future__ import annotations

from collections import defaultdict

import pytest
from benchmark_scripts import load_script


def _harness():
    return load_script("train_throughput")


@pytest.mark.parametrize("algo", ["U-QMIX", "U-MAPPO"])
def test_every_row_is_timed_where_its_time_goes(ray_session, algo):
    """Each algorithm's row runs under the hooks: sampling split into engine and connectors, the
    learner's update, and U-QMIX's batches from its buffer (U-QMIX's config has no overlap option)."""
    tt = _harness()
    row = dict(algo=algo, map="3m", envs=2, batch=4, epochs=1)
    config = tt.build_config(row, learner_cpus=1)
    if algo == "U-MAPPO":
        config = config.training(train_batch_size_per_learner=64, minibatch_size=64)
    algo_ = config.build_algo()
    try:
        totals = defaultdict(float)
        tt._instrument(algo_, totals)
        for _ in range(3):  # U-QMIX learns from its third iteration (2 episodes each, starts at 4)
            algo_.train()
    finally:
        algo_.stop()
    expected = {"sample", "engine", "connectors", "module forward", "learner"}
    if algo == "U-QMIX":
        expected.add("buffer")
    assert expected <= set(totals)
    assert all(totals[k] > 0 for k in expected)
    assert totals["engine"] < totals["sample"]
