"""Every shipped example fits a 2-CPU machine: runner counts are fitted with a notice, or the run is
refused with what to set, before Tune could wait forever for resources that never come."""

from pathlib import Path

import pytest

from rllib_uas.experiment import ExperimentError, load_experiments, parse_experiments
from rllib_uas.fit_resources import first_variant, fit_trial, trial_resources

FILES = sorted((Path(__file__).resolve().parents[1] / "tuned_examples").rglob("*.yaml"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_tuned_example_fits_two_cpus(path):
    for exp in load_experiments(path):
        before = trial_resources(exp.algo_class, first_variant(exp.config))["CPU"]
        notice = fit_trial(exp, cpus=2, gpus=0)
        after = trial_resources(exp.algo_class, first_variant(exp.config))["CPU"]
        assert after <= 2
        if before > 2:
            assert notice and "Ray sees 2" in notice and "num_env_runners=" in notice
        else:
            assert notice is None and after == before


def spec(**config):
    return {"x": {"run": "U-MAPPO", "config": {"env_config": {"map_name": "3m"}, **config}}}


def test_runners_are_kept_as_far_as_they_fit():
    (exp,) = parse_experiments(spec(num_env_runners=6, evaluation_num_env_runners=1, evaluation_interval=5))
    notice = fit_trial(exp, cpus=4, gpus=0)
    assert exp.config.num_env_runners == 3 and exp.config.evaluation_num_env_runners == 0
    assert "num_env_runners=3 (was 6)" in notice


def test_a_trial_that_cannot_fit_is_refused_with_what_to_set():
    (exp,) = parse_experiments(spec(num_env_runners=0, num_learners=2, num_cpus_per_learner=2))
    with pytest.raises(ExperimentError, match="even without env runners.*num_cpus_per_learner"):
        fit_trial(exp, cpus=2, gpus=0)
    (exp,) = parse_experiments(spec(num_learners=1, num_gpus_per_learner=1))
    with pytest.raises(ExperimentError, match="needs 1 GPUs and Ray sees 0; set num_gpus_per_learner: 0"):
        fit_trial(exp, cpus=8, gpus=0)
