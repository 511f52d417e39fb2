"""Every tuned example parses into a valid config of its algorithm."""

from pathlib import Path

import pytest

from rllib_uas.experiment import ExperimentError, load_experiments, parse_experiments

ROOT = Path(__file__).resolve().parents[1] / "tuned_examples"
FILES = sorted(ROOT.rglob("*.yaml"))


def test_tuned_examples_exist_for_the_paper_maps():
    names = {(p.parent.name, p.stem) for p in FILES}
    for algo in ("u_mappo", "mappo", "u_qmix", "qmix"):
        for m in ("MMM", "MMM2", "3s5z", "1c3s5z", "3s5z_vs_3s6z", "6m2m_vs_15m", "12m4m_vs_30m"):
            assert (algo, m) in names
        for m in ("terran_5_vs_5", "terran_10_vs_10"):  # SMACv2: groups drawn per episode
            assert (algo, m) in names
    assert ("u_mappo", "protoss_5_vs_5") in names


PER_MAP = [p for p in FILES if p.parent.name in ("u_mappo", "mappo", "u_qmix", "qmix")]


def test_quickstart_trains_u_mappo_on_the_small_two_group_map():
    (exp,) = load_experiments(ROOT / "quickstart.yaml")
    exp.config.validate()
    assert exp.algo_class.__name__ == "UMAPPO" and exp.config.env_config["map_name"] == "3m1m_vs_4m"
    assert exp.config.cgi_coeff > 0 and exp.checkpoint_at_end


@pytest.mark.parametrize("path", PER_MAP, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_tuned_example_builds_a_valid_config(path):
    (exp,) = load_experiments(path)
    exp.config.validate()
    assert exp.config.env_config["map_name"] == path.stem
    assert exp.stop["num_env_steps_sampled_lifetime"] > 0
    assert exp.algo_class.__name__ == ("UQMIX" if "qmix" in path.parent.name else "UMAPPO")
    if path.parent.name in ("mappo", "qmix"):
        assert exp.config.uas is False and exp.config.cgi_coeff == 0.0
    else:
        assert exp.config.uas is True and exp.config.cgi_coeff == 0.1


def test_lambda_search_grids_lambda_and_seeds():
    (exp,) = load_experiments(ROOT / "tune" / "lambda_I_search.yaml")
    assert exp.searched_keys == ["cgi_coeff", "seed"]
    assert exp.config.cgi_coeff == {"grid_search": [0.0, 0.05, 0.1, 0.5, 1.0]}
    assert exp.scheduler["type"] == "asha"


def test_retired_keys_are_mapped_with_a_notice():
    (exp,) = parse_experiments(
        {
            "x": {
                "run": "UMAPPO",
                "env": "smac_team",
                "stop": {"timesteps_total": 1000, "episode_reward_mean": 5},
                "config": {"num_workers": 0, "num_sgd_iter": 3, "framework": "torch", "env_config": {"map_name": "3m"}},
            }
        }
    )
    assert exp.config.num_env_runners == 0 and exp.config.num_epochs == 3
    assert exp.stop == {"num_env_steps_sampled_lifetime": 1000, "env_runners/episode_return_mean": 5}
    assert any("num_workers" in n for n in exp.notices) and any("framework" in n for n in exp.notices)


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"run": "UMAPPOO", "config": {}}, "unknown algorithm run: 'UMAPPOO' (did you mean 'UMAPPO'?)"),
        ({"run": "UMAPPO", "config": {"lrr": 0.1}}, "unknown config key 'lrr' (did you mean 'lr'?)"),
        ({"run": "UMAPPO", "config": {"env": "smac_team", "env_config": {"map_name": "MMM3"}}}, "unknown map 'MMM3'"),
        ({"run": "UMAPPO", "stopp": {}}, "unknown key 'stopp' (did you mean 'stop'?)"),
    ],
)
def test_bad_experiments_name_the_problem(spec, message):
    with pytest.raises(ExperimentError) as err:
        parse_experiments({"bad": spec}, source="f.yaml")
    assert message in str(err.value) and "f.yaml: experiment 'bad'" in str(err.value)


def test_malformed_yaml_names_file_and_line(tmp_path):
    f = tmp_path / "broken.yaml"
    f.write_text("x:\n  run: UMAPPO\n  config: {lr: [1, 2\n")
    with pytest.raises(ExperimentError, match=r"broken.yaml: malformed YAML at line \d+"):
        load_experiments(f)


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_tuned_examples_state_only_what_differs_from_the_defaults(path):
    import yaml

    from rllib_uas.experiment import restated_defaults

    for name, spec in yaml.safe_load(path.read_text()).items():
        assert spec["run"] in ("U-MAPPO", "MAPPO", "U-QMIX", "QMIX", "VDN"), f"{name}: use the variant's name"
        assert restated_defaults(spec) == [], f"{path.name}: {name} restates defaults"


def test_restating_a_default_is_caught():
    from rllib_uas.experiment import restated_defaults

    spec = {
        "run": "QMIX",
        "env": "smac_team",
        "checkpoint_config": {"checkpoint_at_end": True},
        "config": {"uas": False, "lr": 0.001, "env_config": {"map_name": "MMM"}, "seed": {"grid_search": [0]}},
    }
    assert restated_defaults(spec) == ["config.uas", "config.lr", "env", "checkpoint_config.checkpoint_at_end"]


@pytest.mark.parametrize("path", PER_MAP, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_cgi_on_a_one_group_map_is_announced(path):
    (exp,) = load_experiments(path)
    one_group = path.stem in ("1c3s5z", "3s5z", "3s5z_vs_3s6z") or path.stem.startswith(("protoss_", "zerg_"))
    announced = any("has one action group" in n for n in exp.notices)
    assert announced == (one_group and path.parent.name in ("u_mappo", "u_qmix"))
    assert ("One action group on this map" in path.read_text()) == announced
