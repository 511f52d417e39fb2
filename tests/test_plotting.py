"""`rllib-uas plot`: learning curves that say what they show."""

import json

import pytest


def _fake_trial(root, name, params, rows):
    trial = root / name
    trial.mkdir(parents=True)
    (trial / "params.json").write_text(json.dumps(params))
    (trial / "result.json").write_text("\n".join(json.dumps(r) for r in rows) + "\n")


def test_plots_say_what_they_show(tmp_path):
    """Titles name the variant and map from the trials' settings; axes are words; greedy is dashed."""
    from rllib_uas.plotting import GREEDY_METRIC, X_LABEL, _collect, metric_label, plot_runs, title_for
    from rllib_uas.variants import variant_of

    assert variant_of("mappo", {"uas": True, "cgi_coeff": 0.5, "parameter_sharing": "global"}) == "U-MAPPO"
    assert variant_of("mappo", {"uas": False, "cgi_coeff": 0.0, "parameter_sharing": "global"}) == "MAPPO"
    assert variant_of("mappo", {"uas": False, "cgi_coeff": 0.0, "parameter_sharing": "group"}) == "MAPPO group"
    assert variant_of("qmix", {"uas": False, "cgi_coeff": 0.0, "mixer": "vdn", "parameter_sharing": "global"}) == "VDN"
    run = tmp_path / "mappo-run"
    rows = [{"num_env_steps_sampled_lifetime": s, "env_runners": {"win_rate": w}} for s, w in ((100, 0.1), (200, 0.3))]
    rows[1]["evaluation"] = {"env_runners": {"win_rate": 0.5}}
    for seed in (0, 1):
        _fake_trial(
            run,
            f"UMAPPO_smac_team_ab_0000{seed}_{seed}",
            {"uas": False, "cgi_coeff": 0.0, "parameter_sharing": "global", "env_config": {"map_name": "MMM2"}},
            rows,
        )
    groups, described = _collect([str(run)], "env_runners/win_rate", None)
    assert len(groups["mappo-run"]) == 2 and title_for(described) == "MAPPO on MMM2"
    assert metric_label(GREEDY_METRIC) == "win rate (greedy evaluation)" and "steps" in X_LABEL
    out = plot_runs([str(run)], str(tmp_path / "curve.png"), greedy=True)
    assert out.read_bytes()[:4] == b"\x89PNG"
    no_eval = tmp_path / "no-eval"
    _fake_trial(no_eval, "UQMIX_smac_team_ab_00000_0", {"env_config": {"map_name": "3m"}}, rows[:1])
    with pytest.raises(ValueError, match="no greedy evaluation results"):
        plot_runs([str(no_eval)], str(tmp_path / "x.png"), greedy=True)


def test_group_by_a_key_no_trial_has_is_refused(tmp_path):
    """A typo in --group-by gave one curve labelled '<key>=?' and exit 0."""
    from rllib_uas.plotting import _collect

    rows = [{"num_env_steps_sampled_lifetime": 100, "env_runners": {"win_rate": 0.2}}]
    run = tmp_path / "sweep"
    for i, coeff in enumerate((0.0, 0.1)):
        params = {"cgi_coeff": coeff, "env_config": {"map_name": "3m"}}
        _fake_trial(run, f"UMAPPO_smac_team_ab_0000{i}_{i}", params, rows)
    groups, _ = _collect([str(run)], "env_runners/win_rate", "cgi_coeff")
    assert sorted(groups) == ["sweep cgi_coeff=0.0", "sweep cgi_coeff=0.1"]
    by_map = _collect([str(run)], "env_runners/win_rate", "env_config.map_name")[0]
    assert list(by_map) == ["sweep env_config.map_name=3m"]
    with pytest.raises(ValueError, match="--group-by 'cgi_coef': no trial's config has it"):
        _collect([str(run)], "env_runners/win_rate", "cgi_coef")
