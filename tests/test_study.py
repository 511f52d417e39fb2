"""The multi-seed study: grid, resumable Tune runner on a tiny grid, statistics, the generated page."""

import csv
import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from benchmark_scripts import load_script

from rllib_uas.study import stats
from rllib_uas.study.grid import MAIN_VARIANTS, PLANS, Cell, MapPlan, grid, parse_cell, sweep_name, sweep_variant
from rllib_uas.study.report import reading, render
from rllib_uas.study.run import CURVE_FIELDS, finished, read_manifest, run_study

ROOT = Path(__file__).resolve().parents[1]
TINY = {
    "3m": MapPlan(
        1200,
        600,
        eval_episodes=8,
        settings={
            "mappo": dict(
                train_batch_size_per_learner=400, minibatch_size=400, num_epochs=1, num_envs_per_env_runner=4
            ),
            "qmix": dict(batch_size_episodes=8, learning_starts_episodes=8, buffer_size_episodes=100),
        },
    )
}


def _study_cli():
    """benchmarks/study.py as a module (its main() is the CLI)."""
    return load_script("study")


def test_grid_is_seed_major_and_the_sweep_reuses_the_main_cells():
    cells = grid(["3m1m_vs_4m"], MAIN_VARIANTS, [0, 1], sweep=True)
    assert [c.seed for c in cells[: len(cells) // 2]] == [0] * (len(cells) // 2)  # seed 0 first
    names = [c.variant for c in cells if c.seed == 0]
    assert len(names) == len(set(names)) == 8 + 2 * 3  # lambda 0 and 0.1 are "w/o CGI" and the default
    assert sweep_name("U-QMIX", 0.0) == "U-QMIX w/o CGI" and sweep_name("U-QMIX", 0.1) == "U-QMIX"
    assert sweep_variant("U-MAPPO lambda_I=0.5").switches == {"cgi_coeff": 0.5}
    assert sweep_variant("QMIX group").switches == dict(uas=False, cgi_coeff=0.0, parameter_sharing="group")
    for c in cells:
        assert parse_cell(c.name) == (c.map_name, c.variant, c.seed)
    with pytest.raises(ValueError, match="map 'nowhere' has no study plan; study maps: 3m1m_vs_4m"):
        grid(["nowhere"], MAIN_VARIANTS, [0])
    with pytest.raises(ValueError, match="unknown variant 'UMAPPO2'"):
        grid(["MMM"], ["UMAPPO2"], [0])


def test_every_variant_of_an_algorithm_gets_the_same_settings():
    for map_name in PLANS:
        configs = {v: Cell(map_name, v, 0).config() for v in MAIN_VARIANTS}
        for algo in ("MAPPO", "QMIX"):
            members = [configs[v] for v in MAIN_VARIANTS if algo in v]
            keys = (
                "train_batch_size_per_learner",
                "num_epochs",
                "num_envs_per_env_runner",
                "lr",
                "batch_size_episodes",
                "epsilon_anneal_steps",
                "gamma",
            )
            for k in keys:
                assert len({str(getattr(c, k, None)) for c in members}) == 1, (map_name, algo, k)
    mappo = Cell("3m1m_vs_4m", "MAPPO group", 3).config()
    assert (mappo.train_batch_size_per_learner, mappo.num_epochs, mappo.uas, mappo.parameter_sharing, mappo.seed) == (
        1600,
        10,
        False,
        "group",
        3,
    )


def test_statistics_hand_computed():
    run = stats.Run("m", "v", 0, np.array([0, 50, 100]), np.array([0.0, 1.0, 1.0]), budget=100, commit="x")
    assert run.final == 1.0 and run.auc == pytest.approx(0.75)  # (0 + 1) / 2 * 50 + 1 * 50
    iqm = stats.iqm_interval({"a": [0.0, 0.2, 0.4, 0.6, 1.0]})["a"]
    assert iqm[0] == pytest.approx(0.4)  # mean of the middle 0.2, 0.4, 0.6
    assert iqm[1] <= 0.4 <= iqm[2]
    # the intervals are the same on every call (rliable resamples from numpy's global RNG)
    scores = [0.1, 0.5, 0.3, 0.9, 0.2]
    assert len({stats.iqm_interval({"a": scores})["a"] for _ in range(3)}) == 1
    assert len({stats.probability_of_improvement(scores, [0.2, 0.2, 0.4, 0.1, 0.0]) for _ in range(3)}) == 1
    assert stats.probability_of_improvement([1.0, 1.0], [0.0, 0.0])[0] == 1.0
    assert stats.probability_of_improvement([0.5, 0.5], [0.5, 0.5])[0] == 0.5  # ties count half
    assert "worse than" in reading("X", "Y", (0.1, 0.0, 0.3), "final")
    assert "do not separate" in reading("X", "Y", (0.7, 0.3, 1.0), "final")
    assert "better than" in reading("X", "Y", (0.9, 0.6, 1.0), "final")
    # two seeds that agree give [1.00, 1.00]: no verdict from fewer seeds than the study plans
    assert "too few to read" in reading("X", "Y", (1.0, 1.0, 1.0), "final", seeds=2)
    assert "better than" not in reading("X", "Y", (1.0, 1.0, 1.0), "AUC", seeds=4)
    assert "better than" in reading("X", "Y", (1.0, 1.0, 1.0), "AUC", seeds=5)
    assert "every run of both scores 0.00, so there is nothing" in reading("X", "Y", (0.5, 0.5, 0.5), "final", 5, 0.0)


def test_the_fast_metrics_are_rliables_bit_for_bit():
    """The bootstrap calls stats' forms of rliable's IQM and probability of improvement (scipy's
    argument handling cost about 1 ms a call); they must give rliable's exact floats."""
    from rliable import metrics

    rng = np.random.default_rng(0)
    levels = np.array([0.0, 0.25, 0.5, 1.0])  # win rates tie often
    for trial in range(3000):
        n, m = rng.integers(1, 9, size=2)
        x = (levels[rng.integers(0, 4, n)] if trial % 2 else rng.random(n))[:, None]  # [runs, 1 task]
        y = x.copy() if trial % 7 == 0 else (levels[rng.integers(0, 4, m)] if trial % 3 else rng.random(m))[:, None]
        assert stats.aggregate_iqm(x) == metrics.aggregate_iqm(x)
        assert stats.improvement_probability(x, y) == metrics.probability_of_improvement(x, y)


def test_return_curve_statistics_hand_computed():
    steps = np.array([0, 50, 100, 120])  # the last evaluation lands past the budget
    run = stats.Run("m", "v", 0, steps, np.zeros(4), budget=100, commit="x", returns=np.array([2.0, 6.0, 10.0, 12.0]))
    assert run.final_of("return") == 12.0 and run.final == 0.0
    assert run.auc_of("return") == pytest.approx(((2 + 6) / 2 * 50 + (6 + 10) / 2 * 50 + 12 * 0) / 100)  # 6.0
    assert run.on_grid(np.array([25, 75]), "return").tolist() == [4.0, 8.0]
    with pytest.raises(ValueError, match="unknown metric 'kills'; metrics: win, return"):
        run.curve("kills")
    no_returns = dataclasses.replace(run, returns=None)
    with pytest.raises(ValueError, match="run m v seed 0 has no return curve"):
        no_returns.auc_of("return")


def _write_cells(out: Path, map_name: str, curves: dict) -> None:
    """Finished cells with manifest lines: {(variant, seed): [(env_steps, win_rate, return[, {column: value}])]}."""
    from rllib_uas.study.run import MANIFEST_FIELDS

    out.mkdir(parents=True, exist_ok=True)
    with (out / "manifest.csv").open("w", newline="") as m:
        manifest = csv.DictWriter(m, MANIFEST_FIELDS)
        manifest.writeheader()
        for (variant, seed), points in curves.items():
            name = Cell(map_name, variant, seed, plan=TINY["3m"]).name
            with (out / f"{name}.csv").open("w", newline="") as f:
                w = csv.DictWriter(f, CURVE_FIELDS)
                w.writeheader()
                for steps, win, ret, *more in points:
                    row = dict(env_steps=steps, wall_s=1.0, eval_win_rate=win, eval_episodes=8, eval_return=ret)
                    w.writerow({**row, **(more[0] if more else {})})
            row = dict(cell=name, map=map_name, variant=variant, seed=seed, budget=1200, env_steps=points[-1][0])
            manifest.writerow({**row, "fingerprint": "f", "commit": "abc1234", "wall_s": 10.0, "resumes": 0})


def test_a_map_no_variant_wins_is_read_by_its_returns(tmp_path):
    """All-zero win rates are said as such; the return table and its comparisons rank the runs."""
    curves = {}
    for seed in range(5):
        curves["U-MAPPO", seed] = [(0, 0.0, 1.0), (600, 0.0, 5.0 + seed), (1200, 0.0, 8.0 + seed)]
        curves["MAPPO", seed] = [(0, 0.0, 1.0), (600, 0.0, 2.0 + seed), (1200, 0.0, 4.0 + seed)]
    _write_cells(tmp_path, "3m", curves)
    page = render(tmp_path, None, plans=TINY)
    assert "No run of any variant won a greedy evaluation battle on 3m within the budget" in page
    assert "final: P(U-MAPPO > MAPPO) = 0.50 [0.50, 0.50]: every run of both scores 0.00" in page
    # final returns 8-12 against 4-8: IQM of the middle three, 10 and 6; U-MAPPO wins 24 of 25 pairs, ties 1
    assert "| U-MAPPO | 5 (0-4) | 10.00 [" in page and "| MAPPO | 5 (0-4) | 6.00 [" in page
    assert "| U-MAPPO > MAPPO | 5 | 0.98 [" in page
    # mean return over the budget: U-MAPPO seed 2 (1+7)/2/2 + (7+10)/2/2 = 6.25, MAPPO seed 2 (1+4)/4 + (4+6)/4 = 3.75
    assert "| 6.25 [" in page.split("| U-MAPPO | 5 (0-4) | 10.00 [")[1].split("\n")[0]
    assert "| 3.75 [" in page.split("| MAPPO | 5 (0-4) | 6.00 [")[1].split("\n")[0]
    assert "mean return: P(U-MAPPO > MAPPO) = " in page and "U-MAPPO is better than MAPPO." in page
    # the summary reads the mean return here, and says so; pairs without cells say that
    # mean returns (19 + 3 s) / 4 against (9 + 3 t) / 4: U-MAPPO seed 0 loses to MAPPO seed 4 only, 24 of 25
    glance = next(line for line in page.splitlines() if line.startswith("| 3m | 1,200 |"))
    assert glance.split(" | ")[2].startswith("0.96 [") and glance.split(" | ")[2].endswith(": better (return)")
    assert glance.count("no shared seed yet") == 3
    # one run that wins drops the line, and the summary reads win rates (from 5 shared seeds only)
    curves["MAPPO", 4] = [(0, 0.0, 1.0), (600, 0.0, 6.0), (1200, 0.25, 8.0)]
    del curves["U-MAPPO", 4]
    _write_cells(tmp_path, "3m", curves)
    page = render(tmp_path, None, plans=TINY)
    assert "No run of any variant won" not in page
    assert "| 3m | 1,200 | 4 shared seeds so far | no shared seed yet |" in page
    # scripted references: a line under the table, dashed lines on the plots
    from rllib_uas.study.reference import write_references

    write_references(tmp_path, ["3m"], "abc1234")
    page = render(tmp_path, tmp_path, plot_link=".", plans=TINY)
    assert "(32 battles from seed 0, `rllib_uas.envs.scripted`, at abc1234): focus fire wins" in page
    assert (tmp_path / "3m.png").stat().st_size > 0


def test_the_final_battles_are_read_from_each_runs_last_evaluation(tmp_path):
    """Kills, losses and battle length: the last row of each CSV, mean and range over seeds; with
    fewer than the planned seeds, the comparisons get one line that names them instead of verdicts."""

    def battles(killed, lost, length):
        return dict(eval_dead_enemies=killed, eval_dead_allies=lost, eval_battle_length=length)

    curves = {
        ("U-MAPPO", 0): [(0, 0.0, 1.0, battles(0, 3, 80)), (1200, 1.0, 20.0, battles(3.0, 1.0, 30.0))],
        ("U-MAPPO", 1): [(0, 0.0, 1.0, battles(0, 3, 80)), (1200, 0.5, 15.0, battles(2.5, 2.0, 50.0))],
        ("MAPPO", 0): [(0, 0.0, 1.0, battles(0, 3, 80)), (1200, 0.0, 5.0, battles(1.0, 3.0, 20.0))],
        ("MAPPO", 1): [(0, 0.0, 1.0), (1200, 0.0, 4.0)],  # a CSV without the columns is left out of the table
    }
    _write_cells(tmp_path, "3m", curves)
    page = render(tmp_path, None, plans=TINY)
    # 3m: 3 Marines a side, 60 steps
    assert "| variant | seeds | won | enemies killed (of 3) | allies lost (of 3) | battle length (limit 60) |" in page
    assert "| U-MAPPO | 2 (0-1) | 0.75 (0.50-1.00) | 2.8 (2.5-3.0) | 1.5 (1.0-2.0) | 40.0 (30.0-50.0) |" in page
    assert "| MAPPO | 1 (0) | 0.00 | 1.0 | 3.0 | 20.0 |" in page
    assert "P(U-MAPPO > MAPPO) =" not in page  # no sentence reads 2 seeds
    assert "- Not read yet, fewer than 5 shared seeds (how many in brackets): U-MAPPO > MAPPO (2)." in page


def test_tiny_grid_runs_through_tune_resumes_and_reports(ray_session, tmp_path):
    cells = grid(["3m"], ["U-MAPPO", "MAPPO"], [0, 1], plans=TINY)
    counts = run_study(cells, tmp_path, concurrent=2)
    assert counts == {"skipped": 0, "finished": 4, "failed": 0}
    rows = list(csv.DictReader((tmp_path / "3m__U-MAPPO__seed1.csv").open()))
    assert list(rows[0]) == CURVE_FIELDS
    steps = [int(r["env_steps"]) for r in rows]
    assert steps[0] == 0 and steps[-1] >= 1200 and len(steps) == 3  # at 0, ~600, ~1200
    assert all(int(r["eval_episodes"]) == 8 for r in rows)
    assert not list(tmp_path.glob(".*.partial"))

    # a rerun skips finished cells; a missing or differently planned cell runs again
    (tmp_path / "3m__MAPPO__seed0.csv").unlink()
    changed = {"3m": MapPlan(1200, 600, eval_episodes=16, settings=TINY["3m"].settings)}
    assert [c.name for c in finished(grid(["3m"], ["U-MAPPO"], [0], plans=changed), tmp_path)] == []
    left = tmp_path / ".checkpoints" / "3m__U-MAPPO__seed0"  # a finished cell's, left by a killed run
    left.mkdir(parents=True)
    counts = run_study(cells, tmp_path, concurrent=2)
    assert counts == {"skipped": 3, "finished": 1, "failed": 0}
    assert not left.exists()

    page = render(tmp_path, tmp_path, plot_link=".", plans=TINY)
    assert "| U-MAPPO | 2 (0-1) |" in page and "| MAPPO | 2 (0-1) |" in page
    assert "| U-MAPPO > MAPPO | 2 |" in page
    walls = sorted(float(r["wall_s"]) for r in read_manifest(tmp_path).values())
    assert f"median (range): MAPPO family {np.median(walls):,.0f} s" in page
    assert f"({walls[0]:,.0f}-{walls[-1]:,.0f} s, 4 cells)" in page
    assert 'study.py run --maps 3m --variants "U-MAPPO" --seeds 0-1' in page
    # the runs' own CSVs carry the final battles: the table has a row per variant, within the map's bounds
    battles = page.split("| battle length (limit 60) |")[1].split("\n\n")[0].splitlines()[2:]
    assert [row.split(" | ")[0] for row in battles] == ["| U-MAPPO", "| MAPPO"]
    for row in battles:
        killed, lost, length = (float(cell.split(" ")[0]) for cell in row.strip("| ").split(" | ")[3:6])
        assert 0 <= killed <= 3 and 0 <= lost <= 3 and 0 < length <= 60
    assert (tmp_path / "3m.png").stat().st_size > 0


def test_a_failed_cell_leaves_no_partial_curve_behind(ray_session, tmp_path, capsys):
    """A cell whose training fails (here: a learning rate that blows the loss up, after the evaluation
    at step 0 was written) is reported failed, and its partial curve goes as the trial errors, so that
    `study.py status` does not read it as running while the run goes on with other cells."""
    settings = {"mappo": dict(TINY["3m"].settings["mappo"], lr=1.0e6)}
    cell = Cell("3m", "U-MAPPO", 0, MapPlan(4000, 2000, eval_episodes=8, settings=settings))
    counts = run_study([cell], tmp_path, concurrent=1)
    assert counts == {"skipped": 0, "finished": 0, "failed": 1}
    failed = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("study: cell ")]
    assert len(failed) == 1 and "3m / U-MAPPO / seed 0 failed: " in failed[0] and "not finite" in failed[0]
    assert not list(tmp_path.glob(".*.partial")) and not list(tmp_path.glob("*.csv"))


def test_a_second_run_into_the_same_folder_is_refused_before_it_touches_anything(tmp_path, capsys):
    """Two runs into one folder would restart each other's cells (a run deletes partial CSVs it finds)."""
    import sys

    from rllib_uas.file_lock import file_lock
    from rllib_uas.study.run import LOCK_NAME, StudyBusy

    sys.path.insert(0, str(ROOT / "benchmarks"))
    import study as study_cli

    running = tmp_path / ".3m__U-MAPPO__seed0.csv.partial"  # the other run's cell in progress
    running.write_text("env_steps\n0\n")
    cells = grid(["3m"], ["U-MAPPO"], [0], plans=TINY)
    with file_lock(str(tmp_path / LOCK_NAME), blocking=False):  # the other run
        with pytest.raises(StudyBusy, match="another study run is writing to .* wait for it to finish, or give"):
            run_study(cells, tmp_path)
        assert study_cli.main(["run", "--maps", "3m1m_vs_4m", "--seeds", "0", "--out", str(tmp_path)]) == 2
    assert "error: another study run is writing to" in capsys.readouterr().err
    assert study_cli.main(["run", "--checkpoint-every", "-1", "--out", str(tmp_path)]) == 2
    assert "error: --checkpoint-every -1: give seconds >= 0" in capsys.readouterr().err
    fresh = tmp_path / "fresh"  # no cluster at the address: one line, and nothing written
    assert study_cli.main(["run", "--address", "127.0.0.1:9", "--out", str(fresh)]) == 2
    assert "error: no Ray cluster answers at 127.0.0.1:9" in capsys.readouterr().err and not fresh.exists()
    assert running.read_text() == "env_steps\n0\n"


def test_bad_arguments_are_refused_with_one_line_and_nothing_written(tmp_path, capsys):
    """A typo must not replace the committed page with an empty one, start no cell and wait forever, or
    run an empty grid and call it done."""
    import sys

    sys.path.insert(0, str(ROOT / "benchmarks"))
    import study as study_cli

    page = tmp_path / "results.md"
    page.write_text("the committed page\n")
    assert study_cli.main(["report", "--out", str(tmp_path / "typo"), "--page", str(page)]) == 2
    assert "has no manifest.csv: not a study results folder" in capsys.readouterr().err
    assert page.read_text() == "the committed page\n" and not (tmp_path / "results").exists()
    for argv, message in [
        (["run", "--concurrent", "0"], "argument --concurrent: '0': give a whole number >= 1"),
        (["run", "--seeds", "3-1"], "argument --seeds: '3-1': give a range A-B with A <= B"),
        (["status", "--seeds=-1"], "argument --seeds: '-1': give a range"),
        (["status", "--seeds", "0,x"], "argument --seeds: '0,x': give a range"),
    ]:
        with pytest.raises(SystemExit) as exit_:
            study_cli.main([*argv, "--out", str(tmp_path / "s")])
        assert exit_.value.code == 2 and message in capsys.readouterr().err
    assert study_cli.seeds("0-2") == [0, 1, 2] and study_cli.seeds("4,1") == [4, 1]
    with pytest.raises(ValueError, match="concurrent=0: give a whole number >= 1"):
        run_study(grid(["3m"], ["U-MAPPO"], [0], plans=TINY), tmp_path / "s", concurrent=0)
    assert not (tmp_path / "s").exists()


def test_the_page_counts_the_withdrawn_cells_that_ran_again(tmp_path):
    from rllib_uas.study.report import _withdrawn

    header = "cell,map,variant,seed,budget,env_steps,fingerprint,commit,wall_s,finished_at\n"
    for folder, cells in {"study": ["3m__QMIX__seed1", "3m__U-QMIX__seed0"], "study_invalidated": [
        "3m__QMIX__seed0", "3m__QMIX__seed1", "3m__MAPPO__seed0"]}.items():  # fmt: skip
        (tmp_path / folder).mkdir()
        rows = "".join(f"{c},3m,{c.split('__')[1]},{c[-1]},1,1,f,c,1,t\n" for c in cells)
        (tmp_path / folder / "manifest.csv").write_text(header + rows)
    text = " ".join(_withdrawn(tmp_path / "study"))
    assert "**Withdrawn: 3 cells**" in text and "1 of them have run again" in text and "other 2 are missing" in text
    with open(tmp_path / "study" / "manifest.csv", "a") as f:  # the other two run again
        f.write("3m__QMIX__seed0,3m,QMIX,0,1,1,f,c,1,t\n3m__MAPPO__seed0,3m,MAPPO,0,1,1,f,c,1,t\n")
    text = " ".join(_withdrawn(tmp_path / "study"))
    assert "All of them have run again with the fix" in text and "missing" not in text
    assert _withdrawn(tmp_path / "nowhere" / "study") == []


def test_the_results_page_is_generated_from_the_committed_csvs(tmp_path):
    """docs/results.md is what the report writes from benchmarks/results/study, to the character."""
    out = ROOT / "benchmarks" / "results" / "study"
    # only what is committed: a study running in this checkout keeps gigabytes of checkpoints there
    shutil.copytree(out, tmp_path / "study", ignore=shutil.ignore_patterns(".checkpoints", ".*.partial", ".study.lock"))
    withdrawn = out.parent / "study_invalidated"  # the page names the cells withdrawn beside the study
    if withdrawn.exists():
        shutil.copytree(withdrawn, tmp_path / "study_invalidated")
    assert render(tmp_path / "study", None) == (ROOT / "docs" / "results.md").read_text()


def test_a_killed_cell_goes_on_from_its_checkpoint(ray_session, tmp_path, monkeypatch):
    """Killed after a checkpoint, a U-QMIX cell goes on with the checkpoint's weights, episode buffer,
    step count and curve, and ends with the curve one uninterrupted run writes (0, ~600, ~1200)."""
    from rllib_uas.study import cell_checkpoint
    from rllib_uas.study import run as study_run

    monkeypatch.setattr(study_run, "code_version", lambda: "abc1234")
    seen = []  # (weights, episodes added to the buffer, evaluation seed, exploration's step count)

    def recording(algo, episodes, seed):
        weights = {k: v.detach().clone() for k, v in algo.get_module().state_dict().items()}
        seen.append((weights, algo.episode_buffer.num_added, seed, algo.env_runner.num_env_steps_sampled_lifetime))
        return evaluate(algo, episodes, seed)

    evaluate = study_run.evaluate_greedy
    monkeypatch.setattr(study_run, "evaluate_greedy", recording)

    class Killed(Exception):
        pass

    def kill_after_first_step_eval(metrics):
        if metrics["env_steps"] > 0:
            raise Killed  # the process dies after writing the row at ~600 steps

    cell = Cell("3m", "U-QMIX", 0, TINY["3m"])
    with pytest.raises(Killed):
        study_run.train_cell(cell, tmp_path, report=kill_after_first_step_eval, checkpoint_every_s=1e-9)
    saved = cell_checkpoint.peek(tmp_path, cell.name)
    assert (saved.evals, saved.next_eval, saved.resumes, saved.code) == (1, 600, 0, "abc1234")
    killed_at = seen[-1]
    partial = tmp_path / f".{cell.name}.csv.partial"
    written = list(csv.DictReader(partial.open()))
    assert len(written) == 2  # the killed run wrote the row at ~600
    assert int(written[1]["env_steps"]) == saved.env_steps >= 600  # saved right before that evaluation

    seen.clear()
    study_run.train_cell(cell, tmp_path, checkpoint_every_s=1e-9)
    first = seen[0]  # the resumed run evaluates again at the checkpoint, with the checkpoint's state
    assert first[1] == killed_at[1] > 0 and first[2] == killed_at[2]  # the same buffer, the same seed
    assert first[3] == killed_at[3] >= saved.env_steps  # epsilon's schedule goes on where it was
    assert all(torch.equal(first[0][k], killed_at[0][k]) for k in killed_at[0])
    rows = list(csv.DictReader((tmp_path / f"{cell.name}.csv").open()))
    steps = [int(r["env_steps"]) for r in rows]
    assert steps[0] == 0 and steps[1] == saved.env_steps and 1200 <= steps[2] < 1200 + 600 and len(steps) == 3
    assert float(rows[2]["wall_s"]) >= float(rows[1]["wall_s"]) >= saved.wall_s
    # the row at the checkpoint shows the training stats of the iteration before it, as in the killed run
    assert rows[1]["train_win_rate"] == written[1]["train_win_rate"] != ""
    assert float(rows[1]["train_return"]) == pytest.approx(float(written[1]["train_return"]))
    entry = study_run.read_manifest(tmp_path)[cell.name]
    assert (entry["resumes"], entry["commit"], entry["env_steps"]) == ("1", "abc1234", str(steps[2]))
    assert not (tmp_path / cell_checkpoint.CHECKPOINTS_DIR / cell.name).exists() and not partial.exists()


def test_a_checkpoint_is_used_only_by_the_same_cell_and_committed_code(tmp_path):
    from rllib_uas.study.cell_checkpoint import PROGRESS_FILE, Progress, folder, load

    def make(name, code="abc1234", fingerprint="f1", where=None):
        path = where or folder(tmp_path, name)
        path.mkdir(parents=True)
        (path / PROGRESS_FILE).write_text(
            json.dumps(dataclasses.asdict(Progress(fingerprint, code, 700, 600, 1, 9.0, 0)))
        )
        return path

    make("a")
    ckpt, progress, why = load(tmp_path, "a", "f1", "abc1234")
    assert ckpt == folder(tmp_path, "a") and progress.env_steps == 700 and why == ""
    for code, fingerprint, reason in [
        ("abc1234", "f2", "plan or switches changed"),
        ("abc1234+dirty", "f1", "uncommitted changes (abc1234+dirty)"),
        ("def5678", "f1", "made by abc1234, this run is def5678"),
    ]:
        ckpt, progress, why = load(tmp_path, "a", fingerprint, code)
        assert (ckpt, progress) == (None, None) and reason in why
        assert folder(tmp_path, "a").exists()  # kept for a run of the right code (this one would replace it)
    # killed while swapping in a new checkpoint: the previous one is kept; a half-written one is not used
    old = make("b", where=folder(tmp_path, "b").with_name("b.old"))
    folder(tmp_path, "b").mkdir()  # the new one, without its progress file
    ckpt, progress, _ = load(tmp_path, "b", "f1", "abc1234")
    assert ckpt == folder(tmp_path, "b") and progress.env_steps == 700 and not old.exists()
    from rllib_uas.study.run import saved_steps  # what `study.py status` shows per cell

    cell = Cell("3m", "U-QMIX", 0, TINY["3m"])
    make(cell.name, fingerprint=cell.fingerprint())
    assert saved_steps(tmp_path, cell) == 700
    assert saved_steps(tmp_path, Cell("3m", "U-QMIX", 0, MapPlan(600, 300, settings=TINY["3m"].settings))) is None
    (folder(tmp_path, "c").with_name("c.new")).mkdir()
    assert load(tmp_path, "c", "f1", "abc1234") == (None, None, "")
    assert not folder(tmp_path, "c").with_name("c.new").exists()


def test_status_says_which_cells_a_run_is_training_and_where(tmp_path):
    """`study.py status`: done, running (the lock held and a partial curve: its last evaluation), or
    missing; a partial curve that no run holds is a killed run's leftover and reads as missing."""
    from rllib_uas.file_lock import file_lock
    from rllib_uas.study.run import LOCK_NAME, run_active, status_line

    cell = Cell("3m", "U-MAPPO", 0, TINY["3m"])  # budget 1,200
    assert status_line(tmp_path, cell, True, False) == ("done     3m  U-MAPPO  seed 0", 0.0)
    assert status_line(tmp_path, cell, False, False) == ("missing  3m  U-MAPPO  seed 0", 1.0)
    assert not run_active(tmp_path) and not (tmp_path / LOCK_NAME).exists()  # looking creates no lock file
    partial = tmp_path / f".{cell.name}.csv.partial"
    with partial.open("w", newline="") as f:
        csv.DictWriter(f, CURVE_FIELDS).writeheader()
    with file_lock(str(tmp_path / LOCK_NAME)):  # as a run holds it
        assert run_active(tmp_path)
        assert status_line(tmp_path, cell, False, True) == ("missing  3m  U-MAPPO  seed 0", 1.0)  # no evaluation yet
        with partial.open("a", newline="") as f:
            w = csv.DictWriter(f, CURVE_FIELDS)
            w.writerow(dict(env_steps=0, eval_win_rate=0.0, eval_return=1.0))
            w.writerow(dict(env_steps=300, eval_win_rate=0.25, eval_return=4.56))
        line, left = status_line(tmp_path, cell, False, True)
    assert line == "running  3m  U-MAPPO  seed 0  (at 300 of 1,200 env steps; last evaluation won 0.25, return 4.6)"
    assert left == 0.75
    assert not run_active(tmp_path)
    assert status_line(tmp_path, cell, False, False) == ("missing  3m  U-MAPPO  seed 0", 1.0)


def test_cells_with_a_checkpoint_run_first(tmp_path):
    """A run starts the cells it can go on with before any other, then keeps the grid's seed-major order."""
    from rllib_uas.study.cell_checkpoint import PROGRESS_FILE, Progress, folder
    from rllib_uas.study.run import run_order

    cells = grid(["3m"], ["U-MAPPO", "U-QMIX"], [0, 1, 2], plans=TINY)
    for cell in (cells[5], cells[3]):  # U-QMIX seed 2 and seed 1 have checkpoints of their plan
        folder(tmp_path, cell.name).mkdir(parents=True)
        progress = Progress(cell.fingerprint(), "abc1234", 300, 300, 1, 9.0, 0)
        (folder(tmp_path, cell.name) / PROGRESS_FILE).write_text(json.dumps(dataclasses.asdict(progress)))
    stale = cells[1]  # a checkpoint of another plan is not counted: that cell starts over in its place
    folder(tmp_path, stale.name).mkdir(parents=True)
    (folder(tmp_path, stale.name) / PROGRESS_FILE).write_text(
        json.dumps(dataclasses.asdict(Progress("other", "abc1234", 300, 300, 1, 9.0, 0)))
    )
    order = [(c.variant, c.seed) for c in run_order(cells, tmp_path)]
    assert order == [
        ("U-QMIX", 1),
        ("U-QMIX", 2),
        ("U-MAPPO", 0),
        ("U-QMIX", 0),
        ("U-MAPPO", 1),
        ("U-MAPPO", 2),
    ]


def test_a_manifest_from_before_a_column_gets_it(tmp_path):
    from rllib_uas.study.run import MANIFEST_FIELDS, append_manifest

    path = tmp_path / "manifest.csv"
    path.write_text("cell,map,variant,seed,budget,env_steps,fingerprint,commit,wall_s,finished_at\r\n"
                    "3m__QMIX__seed0,3m,QMIX,0,1,1,f,c,1,t\r\n")  # fmt: skip
    append_manifest(path, dict(zip(MANIFEST_FIELDS, ["3m__QMIX__seed1", "3m", "QMIX", 1, 1, 1, "f", "c", 1, "t", 2])))
    lines = path.read_bytes().decode().split("\r\n")
    assert lines[0] == ",".join(MANIFEST_FIELDS) and lines[0].endswith(",resumes")
    assert lines[1:] == ["3m__QMIX__seed0,3m,QMIX,0,1,1,f,c,1,t,", "3m__QMIX__seed1,3m,QMIX,1,1,1,f,c,1,t,2", ""]


def test_the_scripted_references_are_played_not_typed(tmp_path, capsys):
    """references.csv is what the scripted policies score now; a clean win on a map without healing
    or shields scores exactly SMAC's 20."""
    from rllib_uas.study.reference import FIELDS, read_references, write_references

    committed = read_references(ROOT / "benchmarks" / "results" / "study")
    assert set(committed) == set(PLANS)
    played = read_references(write_references(tmp_path, list(PLANS), "abc1234").parent)
    for map_name, rows in committed.items():
        assert [r["policy"] for r in rows] == ["focus fire", "random"]
        for old, new in zip(rows, played[map_name]):
            for k in FIELDS[4:-1]:
                assert float(old[k]) == pytest.approx(float(new[k]), abs=1e-9), (map_name, old["policy"], k)
    focus = played["3m1m_vs_4m"][0]
    assert [float(focus[k]) for k in ("win_rate", "return_mean", "dead_enemies_mean")] == [1.0, 20.0, 4.0]
    assert float(played["3m1m_vs_4m"][1]["win_rate"]) == 0.0

    cli = _study_cli()
    assert cli.main(["references", "--maps", "3m,MMM", "--out", str(tmp_path / "x")]) == 2
    assert "error: '3m' is not a study map; study maps: 3m1m_vs_4m, MMM, 6m2m_vs_15m, MMM2" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_the_report_without_rliable_says_how_to_install_it(tmp_path, capsys, monkeypatch):
    import sys

    cli = _study_cli()
    monkeypatch.setitem(sys.modules, "rliable.library", None)  # an import of it fails
    page = tmp_path / "results.md"
    assert cli.main(["report", "--page", str(page)]) == 2
    assert capsys.readouterr().err == 'error: the report\'s statistics need rliable: pip install -e ".[study]"\n'
    assert not page.exists() and not (tmp_path / "results").exists()


def test_the_time_left_is_the_median_finished_cell_of_each_kind():
    from rllib_uas.study.report import time_left

    rows = {
        f"c{i}": dict(map="MMM", variant=v, wall_s=w)
        for i, (v, w) in enumerate([("U-MAPPO", 900), ("MAPPO group", 1100), ("MAPPO", 2000), ("U-QMIX", 3600)])
    }
    missing = [("MMM", "MAPPO", 1.0), ("MMM", "QMIX group", 0.5), ("MMM2", "U-QMIX", 1.0)]
    # MAPPO family median 1,100 s in full, QMIX 3,600 s half done: 2,900 s, two at a time
    line = time_left(missing, rows, concurrent=2)
    assert line.startswith(f"estimated wall time left: {2900 / 3600 / 2:.1f} h for 2 cells, 2 at a time")
    assert line.endswith("; 1 cell of a map and algorithm with no finished cell yet not counted.")
    assert "not counted" not in time_left(missing[:2], rows, concurrent=1)


def test_merge_brings_finished_cells_only_and_keeps_what_is_there(tmp_path, capsys):
    from rllib_uas.file_lock import file_lock
    from rllib_uas.study.run import LOCK_NAME

    src, dst = tmp_path / "worktree", tmp_path / "main"
    _write_cells(src, "3m", {("U-MAPPO", 0): [(0, 0.0, 1.0), (1200, 0.5, 9.0)], ("MAPPO", 0): [(0, 0.0, 1.0)]})
    (src / ".3m__MAPPO__seed1.csv.partial").write_text("env_steps\n0\n")  # running there: stays
    (src / ".checkpoints").mkdir()
    _write_cells(dst, "3m", {("MAPPO", 0): [(0, 0.0, 2.0)]})  # dst's own run of a cell src has too
    cli = _study_cli()
    assert cli.main(["merge", "--from", str(src), "--out", str(dst)]) == 0
    assert capsys.readouterr().out == "added  3m__U-MAPPO__seed0\n1 cells added, 1 already there\n"
    assert (dst / "3m__U-MAPPO__seed0.csv").read_bytes() == (src / "3m__U-MAPPO__seed0.csv").read_bytes()
    assert "2.0" in (dst / "3m__MAPPO__seed0.csv").read_text()  # dst's curve kept
    assert set(read_manifest(dst)) == {"3m__U-MAPPO__seed0", "3m__MAPPO__seed0"}
    files = sorted(p.name for p in dst.iterdir() if p.name != LOCK_NAME)  # no partial CSV, no checkpoints
    assert files == ["3m__MAPPO__seed0.csv", "3m__U-MAPPO__seed0.csv", "manifest.csv"]
    assert [r.seed for r in stats.load_runs(dst)] == [0, 0]
    # a second merge adds nothing; a run writing to dst, or a folder that is no study's, is refused
    assert cli.main(["merge", "--from", str(src), "--out", str(dst)]) == 0
    assert capsys.readouterr().out.endswith("0 cells added, 2 already there\n")
    with file_lock(str(dst / LOCK_NAME)):
        assert cli.main(["merge", "--from", str(src), "--out", str(dst)]) == 2
    assert "error: a study run is writing to" in capsys.readouterr().err
    assert cli.main(["merge", "--from", str(tmp_path / "nowhere"), "--out", str(dst)]) == 2
    assert "has no manifest.csv: not a study results folder" in capsys.readouterr().err
