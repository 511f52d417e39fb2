"""The `rllib` / `rllib-uas` commands, run as a user would: in subprocesses."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

TINY = """
tiny-run:
  run: UMAPPO
  env: smac_team
  stop: {training_iteration: %(iters)d}
  checkpoint_config: {checkpoint_frequency: 1, checkpoint_at_end: true, num_to_keep: 1}
  config:
    env_config: {map_name: 3m1m_vs_4m}
    num_workers: 0
    num_envs_per_env_runner: 4
    train_batch_size_per_learner: 400
    minibatch_size: 400
    num_epochs: 1
"""


def run(*args, cwd, timeout=300, env_extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB")}
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, "-m", "rllib_uas.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def rllib(*args, cwd, **kw):
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB")}
    return subprocess.run(
        [sys.executable, "-c", "from rllib_uas.cli import rllib; rllib()", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=kw.get("timeout", 300),
    )


@pytest.mark.slow
def test_train_checkpoint_evaluate_plot(tmp_path):
    (tmp_path / "tiny.yaml").write_text(TINY % {"iters": 2})
    train = rllib(
        "train", "file", "tiny.yaml", "--storage-path", "results", "--wandb-project", "uas-test", cwd=tmp_path
    )
    assert train.returncode == 0, train.stdout[-2000:] + train.stderr[-2000:]
    lines = [ln for ln in train.stdout.splitlines() if "| iter" in ln]
    assert len(lines) == 2 and "win" in lines[0] and "steps/s" in lines[0]  # one line per iteration
    assert "notice:" in train.stdout and "num_workers" in train.stdout  # retired key mapped
    assert "best checkpoint" in train.stdout and "W&B: project 'uas-test', mode offline" in train.stdout
    assert list((tmp_path / "results").rglob("offline-run-*")), "W&B should write an offline run"
    assert "upload them with: wandb sync " in train.stdout and "offline-run-*" in train.stdout
    assert "elapsed " in lines[1] and "100% of stop, eta 0:00" in lines[1]  # 2 of 2 iterations
    kept = [p for p in (tmp_path / "results").rglob("checkpoint_*") if p.is_dir()]
    assert len(kept) == 1, kept  # num_to_keep: 1 of 2
    ev = rllib("evaluate", "results/tiny-run", "--episodes", "6", "--save-gif", "replay.gif", cwd=tmp_path)
    assert ev.returncode == 0, ev.stderr[-2000:]
    assert "greedy win rate" in ev.stdout and "95% CI" in ev.stdout and "6 episodes" in ev.stdout
    assert (tmp_path / "replay.gif").stat().st_size > 1000
    plot = run("plot", "results/tiny-run", "-o", "curve.png", "--metric", "env_runners/team_return_mean", cwd=tmp_path)
    assert plot.returncode == 0, plot.stderr[-2000:]
    assert (tmp_path / "curve.png").read_bytes()[:4] == b"\x89PNG"


TINY_QMIX = """
tiny-run:
  run: U-QMIX
  stop: {training_iteration: %(iters)d}
  checkpoint_config: {checkpoint_frequency: 1, num_to_keep: 1}
  config:
    env_config: {map_name: 3m1m_vs_4m}
    num_envs_per_env_runner: 4
    batch_size_episodes: 8
    learning_starts_episodes: 8
    episodes_per_iteration: 4
    buffer_size_episodes: 50
"""


def train_until(tmp_path, iters: int, until: int, deadline_s: float = 240, template: str = TINY):
    """Start `rllib train file` on `template` in its own session; read its output until iteration `until`
    (or the deadline) and return the running process and the lines seen."""
    (tmp_path / "tiny.yaml").write_text(template % {"iters": iters})
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from rllib_uas.cli import rllib; rllib()",
            "train",
            "file",
            "tiny.yaml",
            "--storage-path",
            "results",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    seen, deadline, mark = [], time.time() + deadline_s, f"| iter {until:>4}"
    for line in proc.stdout:
        seen.append(line)
        if mark in line or time.time() > deadline:
            break
    return proc, seen


def iter_and_steps(line: str):
    """(iteration, env steps) of one progress line."""
    return (int(line.split("| iter")[1].split("|")[0]), int(line.split("| steps")[1].split("|")[0].replace(",", "")))


def kill_at_3_and_resume(tmp_path, template: str):
    """Kill the driver of a 6-iteration run at iteration 3, resume it to the end; the progress lines
    before the kill and after the resume."""
    proc, seen = train_until(tmp_path, iters=6, until=3, template=template)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver dies mid-run
    proc.wait()
    before = [ln for ln in seen if "| iter" in ln]
    assert any("| iter    3" in ln for ln in before), "".join(seen)[-2000:]
    resumed = rllib("train", "file", "tiny.yaml", "--storage-path", "results", "--resume", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    lines = [ln for ln in resumed.stdout.splitlines() if "| iter" in ln]
    assert lines, resumed.stdout[-2000:]
    return before, lines


@pytest.mark.slow
def test_killed_driver_resumes_from_the_last_checkpoint(tmp_path):
    _, lines = kill_at_3_and_resume(tmp_path, TINY)
    iters, steps = zip(*map(iter_and_steps, lines))
    # continues from the last checkpoint Tune recorded (iteration 1-3), with its env step count
    assert iters and 2 <= iters[0] <= 4 and iters[-1] == 6, iters
    assert steps[0] > 400 * (iters[0] - 1)


@pytest.mark.slow
def test_killed_u_qmix_driver_resumes_with_its_buffer_and_counts(tmp_path):
    before, lines = kill_at_3_and_resume(tmp_path, TINY_QMIX)
    iters, steps = zip(*map(iter_and_steps, lines))
    old_steps = dict(map(iter_and_steps, before))
    # resumes after the last checkpoint Tune recorded (iteration 1-3): the step count goes on from it
    # (the buffer's counters are in the checkpoint), and learning goes on at once: 4 new episodes alone
    # would be below learning_starts_episodes (8), so the restored buffer's episodes are there too
    assert iters and 2 <= iters[0] <= 4 and iters[-1] == 6, iters
    assert steps[0] > old_steps[iters[0] - 1], (steps, old_steps)
    assert "warm-up" not in lines[0] and "loss nan" not in lines[0], lines[0]


@pytest.mark.slow
def test_ctrl_c_says_how_to_resume_and_exits_130(tmp_path):
    proc, seen = train_until(tmp_path, iters=50, until=2)
    assert any("| iter    2" in ln for ln in seen), "".join(seen)[-2000:]
    os.kill(proc.pid, signal.SIGINT)  # Ctrl-C reaches the driver
    try:
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, "".join(seen)[-1000:] + out[-2000:]
    assert "interrupted; resume with: rllib train file tiny.yaml --resume" in out


BAD_INPUTS = [
    ("x:\n  run: UMAPPO\n  config: {lr: [1, 2\n", "malformed YAML at line"),
    ("x: {run: PPOO, config: {}}\n", "unknown algorithm run: 'PPOO'"),
    ("x: {run: UMAPPO, env: smac_team, config: {env_config: {map_name: MMM3}}}\n", "unknown map 'MMM3'"),
    ("x: {run: UMAPPO, config: {lrr: 0.1}}\n", "unknown config key 'lrr'"),
    # the config's own checks and types, before Ray starts
    ("x: {run: UMAPPO, config: {cgi_coeff: -1}}\n", "cgi_coeff (lambda_I) must be a finite number >= 0"),
    ("x: {run: UQMIX, config: {cgi_coeff: {grid_search: [0.1, -2]}}}\n", "got -2"),
    ("x: {run: UMAPPO, config: {minibatch_size: abc}}\n", "'minibatch_size' must be a number"),
    ("x: {run: UMAPPO, config: {num_envs_per_env_runner: 0}}\n", "num_envs_per_env_runner must be a positive"),
    ("x: {run: UMAPPO, stop: {env_runners/win_rat: 0.9}, config: {}}\n", "did you mean 'env_runners/win_rate'"),
    # the env, its env_config keys and its backend, before Ray starts
    ("x: {run: UMAPPO, env: smac_teams, config: {}}\n", "unknown env 'smac_teams' (did you mean 'smac_team'?)"),
    # a gymnasium env without a team observation failed in the runner (an IndexError in RLlib's get_spaces)
    ("x: {run: U-QMIX, env: CartPole-v1, config: {}}\n", "train on a team observation (a Dict space with obs"),
    (
        "x: {run: UMAPPO, config: {env_config: {reward_sparce: true}}}\n",
        "unknown env_config key 'reward_sparce' (did you mean 'reward_sparse'?)",
    ),
    ("x: {run: UMAPPO, config: {env_config: {backend: sc2, map_name: MMM2}}}\n", "needs the SMAC package"),
    ("x: {run: UMAPPO, config: {env_config: {backend: starcraft}}}\n", "unknown env_config backend 'starcraft'"),
    ("x: {run: UMAPPO, config: {env_config: {engine_threads: 2}}}\n", "needs engine_streams='per_env'"),
    (
        "x: {run: UMAPPO, config: {env_config: {continuing_episode: 'no'}}}\n",
        "continuing_episode must be true (the time limit is a truncation) or false",
    ),
    ("x: {run: U-QMIX, config: {mixer: qmixx}}\n", "mixer must be 'qmix' or 'vdn'"),
    ("x: {run: MAPPO, config: {cgi_coeff: 0.5}}\n", "cgi_coeff > 0 needs uas=True"),
    ("x: {run: U-QMIX, config: {batch_size_episodes: 64, buffer_size_episodes: 32}}\n", "exceeds buffer_size_episodes"),
    (
        "x: {run: U-MAPPO, config: {train_batch_size_per_learner: 400, minibatch_size: 300}}\n",
        "minibatch_size 300 does not divide train_batch_size_per_learner 400",
    ),
    (
        "x: {run: U-MAPPO, config: {overlap_sampling: true, num_env_runners: 0}}\n",
        "overlap_sampling=True samples on remote env runners while the learner updates, but num_env_runners=0",
    ),
    # RLlib's settings out of the ranges its validate() leaves unchecked: a crash inside the trial, a hang
    ("x: {run: U-MAPPO, config: {num_epochs: -3}}\n", "num_epochs must be a positive integer, got -3"),
    ("x: {run: U-MAPPO, config: {rollout_fragment_length: 0}}\n", "rollout_fragment_length must be a positive integer"),
    ("x: {run: U-QMIX, config: {gamma: 1.5}}\n", "gamma must lie in [0, 1], got 1.5"),
    ("x: {run: U-MAPPO, config: {seed: abc}}\n", "seed must be an integer >= 0, got 'abc'"),
    ("x: {run: U-QMIX, env: smac, config: {}}\n", "env 'smac' is SMAC as a per-agent MultiAgentEnv"),
    ("x: {run: U-MAPPO, config: {lr: {grid_search: 0.1}}}\n", "config lr: grid_search needs a non-empty list"),
    ("x: {run: U-MAPPO, stop: {training_iteration: -1}}\n", "stop training_iteration must be >= 0"),
    ("x: {run: U-MAPPO, stop: {env_runners/win_rate: 1.5}}\n", "must lie in [0, 1] (a win rate of 1.5 is never"),
    ("x: {run: U-MAPPO, checkpoint_config: {checkpoint_frequency: -2}}\n", "checkpoint_frequency must be an integer"),
    # SMAC's keywords: the type of SMAC's default and the range its code assumes
    ("x: {run: U-MAPPO, config: {env_config: {seed: -1}}}\n", "env_config seed=-1: must be an integer >= 0, or None"),
    ("x: {run: U-MAPPO, config: {env_config: {reward_scale_rate: -5}}}\n", "env_config reward_scale_rate=-5: must be"),
    ("x: {run: U-MAPPO, config: {env_config: {step_mul: 2.5}}}\n", "env_config step_mul=2.5: must be a positive"),
    ("x: {run: U-QMIX, config: {env_config: {obs_all_health: maybe}}}\n", "obs_all_health='maybe': must be true or"),
    # SMACv2 scenarios
    ("x: {run: UMAPPO, config: {env_config: {map_name: terran_6_vs_6}}}\n", "SMACv2 scenarios: protoss_5_vs_5"),
    (
        "x: {run: U-MAPPO, config: {parameter_sharing: group, env_config: {map_name: terran_5_vs_5}}}\n",
        "draws each agent's group at every reset",
    ),
    ("x: {run: UMAPPO, config: {env_config: {backend: sc2, map_name: terran_5_vs_5}}}\n", "needs the SMACv2 package"),
]


@pytest.mark.parametrize("content, message", BAD_INPUTS)
def test_bad_input_exits_nonzero_with_one_line(tmp_path, content, message):
    (tmp_path / "bad.yaml").write_text(content)
    res = rllib("train", "file", "bad.yaml", cwd=tmp_path, timeout=120)
    assert res.returncode == 2
    assert "Traceback" not in res.stderr and "Traceback" not in res.stdout
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("rllib: error:")]
    assert len(errors) == 1 and message in errors[0] and "bad.yaml" in errors[0]
    assert not (tmp_path / "results").exists()  # nothing half-written


PROBE_IMPORTS = """
import json, sys
from rllib_uas.cli import main_rllib
out = []
for i in range(int(sys.argv[1])):
    rc = main_rllib(["train", "file", f"bad{i}.yaml"])
    out.append([rc, sorted(m for m in ("ray.rllib", "ray.tune", "torch") if m in sys.modules)])
print(json.dumps(out))
"""


def test_bad_input_is_refused_before_rllib_and_torch_are_imported(tmp_path):
    """Importing RLlib and torch takes 6-8 s; a mistake in the file must answer without them (the CLI
    reads the configs' keys and defaults from `config_manifest` and checks values with `checks`)."""
    for i, (content, _) in enumerate(BAD_INPUTS):
        (tmp_path / f"bad{i}.yaml").write_text(content)
    res = subprocess.run(
        [sys.executable, "-c", PROBE_IMPORTS, str(len(BAD_INPUTS))],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    seen = json.loads(res.stdout.splitlines()[-1])
    for (content, _), (rc, heavy) in zip(BAD_INPUTS, seen):
        assert rc == 2 and heavy == [], (content, rc, heavy)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--envs", "0"], "--envs must be comma-separated positive integers, e.g. 1,16,256, got '0'"),
        (["--envs", "16,a"], "got '16,a'"),
        (["--seconds", "-1"], "--seconds must be above 0, got -1"),
    ],
)
def test_bench_refuses_sizes_and_times_it_cannot_time(tmp_path, argv, message):
    res = run("bench", "--map", "3m", *argv, cwd=tmp_path, timeout=120)
    last = res.stderr.strip().splitlines()[-1]
    assert res.returncode == 2 and last.startswith("rllib-uas: error: --") and last.endswith(message)


def test_maps_and_unknown_checkpoint(tmp_path):
    res = run("maps", cwd=tmp_path, timeout=120)
    assert res.returncode == 0 and "MMM2" in res.stdout and "6m2m_vs_15m" in res.stdout
    assert "terran_5_vs_5" in res.stdout and "marine 0.45, marauder 0.45, medivac 0.1" in res.stdout
    res = rllib("evaluate", str(tmp_path / "nothing"), cwd=tmp_path, timeout=120)
    assert res.returncode == 2 and "does not exist" in res.stderr and "Traceback" not in res.stderr


SEARCH = """
tiny-search:
  run: UMAPPO
  env: smac_team
  stop: {training_iteration: 1}
  config:
    env_config: {map_name: 3m1m_vs_4m}
    cgi_coeff: {grid_search: [0.0, 0.2]}
    num_env_runners: 0
    num_envs_per_env_runner: 2
    train_batch_size_per_learner: 200
    minibatch_size: 200
    num_epochs: 1
"""


@pytest.mark.slow
def test_lambda_grid_search_ends_with_a_summary_table(tmp_path):
    (tmp_path / "search.yaml").write_text(SEARCH)
    res = rllib("train", "file", "search.yaml", "--storage-path", "results", cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    out = res.stdout
    table = out[out.index("Summary of tiny-search:") :].splitlines()
    assert table[1].split()[0] == "cgi_coeff"
    assert sorted(row.split()[0] for row in table[2:4]) == ["0", "0.2"]
    assert "best checkpoint" in out


def test_without_an_address_a_run_starts_its_own_ray(monkeypatch):
    """address=None would attach to any Ray already running on the machine (another job's)."""
    import ray

    from rllib_uas import local_ray, tune_runner

    seen = []
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kw: seen.append(kw["address"]))
    monkeypatch.setattr(local_ray, "check_address", lambda address: None)  # no cluster at those addresses
    for given, expected in ((None, "local"), ("auto", "auto"), ("ray://head:10001", "ray://head:10001")):
        assert tune_runner.run_experiments([], storage_path="/tmp/unused", ray_address=given) == 0
        assert seen[-1] == expected


def test_a_failed_trial_is_reported_by_its_exception_line(capsys):
    """Ray's error text starts with "The actor died ..." and ends with the exception that killed it."""
    from types import SimpleNamespace

    from rllib_uas.tune_runner import print_summary

    error = RuntimeError(
        "The actor died unexpectedly before finishing this task.\n  Traceback ...\n"
        "    raise ValueError(...)\nValueError: minibatch_size 0 must be positive\n"
    )
    failed = SimpleNamespace(error=error, path="/tmp/results/x/trial_0")
    exp = SimpleNamespace(searched_keys=[], name="x")
    # one failed trial, by its exception line (the exit code reads the lines: 2 for a non-finite loss)
    assert print_summary(exp, [failed], "env_runners/win_rate") == ["ValueError: minibatch_size 0 must be positive"]
    out = capsys.readouterr().out
    assert "trial /tmp/results/x/trial_0 failed: ValueError: minibatch_size 0 must be positive" in out
    assert "actor died" not in out


def test_a_runner_that_failed_to_start_is_reported_with_where_to_find_its_error(capsys):
    """RLlib's own algorithms drop an env runner that failed to start and then fail in get_spaces with
    an IndexError that says nothing of why: the line says where the runner's error is."""
    from types import SimpleNamespace

    from rllib_uas.tune_runner import RUNNER_START_HINT, print_summary

    error = RuntimeError(
        "The actor died because of an error raised in its creation task\n"
        '  File "ray/rllib/env/env_runner_group.py", line 319, in get_spaces\n'
        "    spaces = self.foreach_env_runner(\nIndexError: list index out of range\n"
    )
    failed = SimpleNamespace(error=error, path="/tmp/results/x/trial_0")
    exp = SimpleNamespace(searched_keys=[], name="x")
    want = f"IndexError: list index out of range ({RUNNER_START_HINT})"
    assert print_summary(exp, [failed], "env_runners/win_rate") == [want]
    assert "rerun with -v" in capsys.readouterr().out
    other = SimpleNamespace(error=RuntimeError("Traceback ...\nIndexError: list index out of range"), path="p")
    assert print_summary(exp, [other], "env_runners/win_rate") == ["IndexError: list index out of range"]


def test_progress_line_parts():
    from types import SimpleNamespace

    from rllib_uas.progress import format_progress, trial_label

    result = {
        "training_iteration": 3,
        "num_env_steps_sampled_lifetime": 30_000,
        "episode_buffer_size": 40,
        "env_runners": {"win_rate": 0.5, "team_return_mean": 10.0},
        "learners": {"default_policy": {}},
    }
    line = format_progress(
        "t", result, 1000.0, elapsed_s=60.0, stop={"num_env_steps_sampled_lifetime": 120_000}, warmup=(40, 128)
    )
    assert "warm-up 40/128 episodes" in line and "loss" not in line  # U-QMIX filling its buffer
    result["learners"]["default_policy"] = {"cgi_loss": float("nan")}
    assert "cgi" not in format_progress("t", result, 1.0, warmup=(40, 128))  # nor a CGI loss
    assert "elapsed 1:00" in line and "25% of stop, eta 3:00" in line
    assert "eval win" not in line  # not an evaluating iteration
    result["learners"]["default_policy"] = {"td_loss": 0.5}
    assert "loss 0.5000" in format_progress("t", result, 1.0, warmup=(128, 128))
    trial = SimpleNamespace(config={"cgi_coeff": 0.5, "seed": 1, "env_config": {"map_name": "MMM"}})
    assert trial_label(trial, ["cgi_coeff", "seed", "env_config.map_name"]) == "cgi_coeff=0.5 seed=1 map_name=MMM"


def test_command_line_overrides_reach_every_experiment():
    from rllib_uas.cli import build_parser, parse_overrides
    from rllib_uas.experiment import apply_overrides

    args = build_parser("rllib", False).parse_args(
        [
            "train",
            "file",
            "x.yaml",
            "lr=1e-4",
            "env_config.map_name=MMM2",
            "uas=false",
            "--config",
            '{"num_epochs": 3}',
            "--seed",
            "7",
            "--num-env-runners",
            "0",
        ]
    )
    over = parse_overrides(args)
    assert over == {
        "num_epochs": 3,
        "lr": 1e-4,
        "env_config.map_name": "MMM2",
        "uas": False,
        "seed": 7,
        "num_env_runners": 0,
    }
    data = {
        "a": {"run": "U-MAPPO", "config": {"env_config": {"map_name": "3m", "seed": 1}, "lr": 0.1}},
        "b": {"run": "QMIX"},
    }
    out = apply_overrides(data, over)
    assert out["a"]["config"]["env_config"] == {"map_name": "MMM2", "seed": 1} and out["a"]["config"]["lr"] == 1e-4
    assert out["b"]["config"]["seed"] == 7 and data["a"]["config"]["lr"] == 0.1  # the input is not changed


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "file", "bad.yaml", "lr"], "override 'lr' is not KEY=VALUE"),
        (["train", "file", "bad.yaml", "--config", "{lr: 1}"], "--config is not valid JSON"),
        (["train", "--algo", "U-MAPPO", "lrr=0.1"], "unknown config key 'lrr' (did you mean 'lr'?)"),
        (["train", "--algo", "U-MAPOO"], "unknown algorithm run: 'U-MAPOO'"),
        (["train", "--algo", "U-MAPPO", "env_config.map_name=MMM3"], "unknown map 'MMM3'"),
        (["train", "file", "bad.yaml", "--stop-iters", "0"], "--stop-iters must be at least 1, got 0"),
        (["train", "file", "bad.yaml", "--stop-timesteps", "-100"], "--stop-timesteps must be at least 1, got -100"),
        (["evaluate", "bad.yaml", "--num-envs", "0"], "--num-envs must be at least 1, got 0"),
        # port 9 (discard) has no Ray head: one line at once, not ray.init's minutes of retries
        (["train", "--algo", "U-MAPPO", "--ray-address", "127.0.0.1:9"], "no Ray cluster answers at 127.0.0.1:9"),
    ],
)
def test_bad_command_line_overrides_exit_2_with_one_line(tmp_path, argv, message):
    (tmp_path / "bad.yaml").write_text("x: {run: U-MAPPO, config: {env_config: {map_name: 3m}}}\n")
    res = rllib(*argv, cwd=tmp_path, timeout=120)
    assert res.returncode == 2, res.stdout[-1000:] + res.stderr[-1000:]
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("rllib: error:")]
    assert len(errors) == 1 and message in errors[0], res.stderr[-1000:]
    assert not (tmp_path / "results").exists()


@pytest.mark.slow
def test_quick_mode_trains_without_a_file(tmp_path):
    res = rllib(
        "train",
        "--algo",
        "U-MAPPO",
        "env_config.map_name=3m",
        "train_batch_size_per_learner=400",
        "minibatch_size=400",
        "num_epochs=1",
        "num_envs_per_env_runner=4",
        "--num-env-runners",
        "0",
        "--seed",
        "3",
        "--stop-iters",
        "1",
        "--storage-path",
        "results",
        cwd=tmp_path,
        timeout=300,
    )
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    lines = [ln for ln in res.stdout.splitlines() if "| iter    1" in ln]
    assert len(lines) == 1 and int(lines[0].split("| steps")[1].split("|")[0].replace(",", "")) >= 400
    assert (tmp_path / "results" / "U-MAPPO-3m").is_dir()


def test_search_summary_per_value_over_seeds():
    import math

    from rllib_uas.search_summary import format_table, group_by_value, mean_interval

    mean, low, high = mean_interval([0.2, 0.4, 0.6])
    # mean 0.4, sd 0.2, t(0.975, 2) = 4.3027: half-width 4.3027 * 0.2 / sqrt(3) = 0.4968
    assert mean == pytest.approx(0.4) and (low, high) == pytest.approx((0.4 - 0.49683, 0.4 + 0.49683), abs=1e-4)
    trials = (
        [({"cgi_coeff": 0.0, "seed": s}, v) for s, v in enumerate([0.5, 0.7])]
        + [({"cgi_coeff": 0.1, "seed": s}, v) for s, v in enumerate([0.6, 0.6])]
        + [({"cgi_coeff": 1.0, "seed": s}, float("nan")) for s in range(2)]
        + [({"cgi_coeff": 0.5, "seed": s}, v) for s, v in enumerate([0.9, float("nan")])]
    )
    rows = group_by_value(trials, ["cgi_coeff"])
    assert [r["value"]["cgi_coeff"] for r in rows] == [0.5, 0.1, 0.0, 1.0]  # NaN-only value last
    assert rows[0]["finite"] == 1 and math.isnan(rows[0]["low"])  # one finite seed: no interval
    # 0.1 and 0.0 tie on the mean 0.6: 0.1's interval (zero width) has the higher lower bound
    lines = format_table(rows, "win")
    assert lines[-1].startswith("best: cgi_coeff=0.5, mean win 0.900 over 1 seed(s)")
    assert "1/2" in lines[1] and lines[-2].split()[0] == "1" and "nan" in lines[-2]
    tie = format_table(group_by_value(trials[:4], ["cgi_coeff"]), "win")
    assert tie[-1].startswith("best: cgi_coeff=0.1") and "tied on the mean" in tie[-1]


def test_the_config_manifest_matches_the_config_classes():
    """The CLI's pre-flight reads keys and defaults from a stored manifest; it must be what the classes
    say today, or a valid key would be refused (or a bad one let through) before RLlib is imported."""
    from rllib_uas.algorithms.config_manifest import REGENERATE, build_manifest, load_manifest

    live, stored = build_manifest(), load_manifest()
    for algorithm, entry in live["configs"].items():
        kept = stored["configs"].get(algorithm, {"keys": [], "defaults": {}})
        keys = sorted(set(entry["keys"]) ^ set(kept["keys"]))
        defaults = sorted(
            k
            for k in set(entry["defaults"]) | set(kept["defaults"])
            if entry["defaults"].get(k, "-") != kept["defaults"].get(k, "-")
        )
        changed = [(k, kept["defaults"].get(k), entry["defaults"].get(k)) for k in defaults]
        assert not keys and not changed, (
            f"the config manifest is stale ({algorithm}: keys {keys}, defaults {changed}); regenerate it: {REGENERATE}"
        )
    assert live == stored, f"the config manifest is stale; regenerate it: {REGENERATE}"


def test_a_search_says_what_it_will_cost_before_it_starts():
    from rllib_uas.experiment import load_experiments
    from rllib_uas.search_cost import MEASURED_ENV_STEPS_PER_S, search_cost

    speed = MEASURED_ENV_STEPS_PER_S["UMAPPO"]
    assert speed == 678.0
    # 15 trials of 2M steps, 3 CPUs each on 2: one at a time, 15 x 2e6 / 678 s = 737.5 min
    line = search_cost(
        "UMAPPO", 15, {"num_env_steps_sampled_lifetime": 2_000_000}, cpus_per_trial=3, cpus=2, early_stopping=True
    )
    assert "15 trials x at most 2,000,000 env steps = at most 30,000,000 env steps" in line
    assert "1 trial at a time on 2 CPUs" in line and line.endswith("at most about 12 h 17 min")
    # 2 CPUs each on 8: 4 at a time, 4 waves: 4 x 2e6 / 678 s = 196.7 min
    line = search_cost("UMAPPO", 15, {"num_env_steps_sampled_lifetime": 2_000_000}, cpus_per_trial=2, cpus=8)
    assert "4 trials at a time" in line and line.endswith("about 3 h 17 min")
    # 1 CPU each on 2: 2 at a time, each with one core at half the speed: 8 waves x 2e6 / 339 s = 786.6 min
    line = search_cost("UMAPPO", 15, {"num_env_steps_sampled_lifetime": 2_000_000}, cpus_per_trial=1, cpus=2)
    assert "2 trials at a time" in line and "each at about 339 env steps/s" in line
    assert line.endswith("about 13 h 07 min")
    # nothing to estimate: one trial, no env-step stop, an algorithm without a measured speed
    assert search_cost("UMAPPO", 1, {"num_env_steps_sampled_lifetime": 10}, 1, 2) is None
    assert search_cost("UMAPPO", 4, {"training_iteration": 10}, 1, 2) is None
    assert search_cost("PPO", 4, {"num_env_steps_sampled_lifetime": 10}, 1, 2) is None
    # the shipped lambda_I search: 5 values x 3 seeds
    (exp,) = load_experiments(REPO / "tuned_examples" / "tune" / "lambda_I_search.yaml")
    assert exp.num_trials == 15


def test_every_flag_has_help_text_with_its_default():
    import argparse

    from rllib_uas.cli import build_parser

    parser = build_parser("rllib-uas", extras=True)
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in subparsers.choices.items():
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction) or action.help == argparse.SUPPRESS:
                continue
            assert action.help, (name, action.dest)
            if action.option_strings and not isinstance(action, argparse._StoreTrueAction):
                assert "default" in action.help, (name, action.dest)


def test_a_loss_that_stops_being_finite_fails_with_one_line_and_exit_2(tmp_path):
    """A learning rate that blows the weights up is bad input: the trial stops at the first non-finite
    loss with a line that names what to change, and the CLI exits 2 (1 is for runs that failed otherwise)."""
    (tmp_path / "nan.yaml").write_text(
        "x:\n  run: U-MAPPO\n  stop: {training_iteration: 4}\n  config:\n    env_config: {map_name: 3m}\n"
        "    lr: 1.0e+6\n    num_env_runners: 0\n    train_batch_size_per_learner: 400\n    minibatch_size: 400\n"
    )
    res = rllib("train", "file", "nan.yaml", cwd=tmp_path, timeout=300)
    failed = [ln for ln in res.stdout.splitlines() if " failed: " in ln]
    assert res.returncode == 2, res.stdout[-2000:] + res.stderr[-2000:]
    assert len(failed) == 1 and "FloatingPointError: U-MAPPO loss is not finite" in failed[0]
    assert "lower the learning rate" in failed[0]
