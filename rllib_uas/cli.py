"""The `rllib` and `rllib-uas` commands.

    rllib train file tuned_examples/u_mappo/MMM.yaml [KEY=VALUE ...] [--config JSON] [--seed N]
          [--num-env-runners N] [--stop-timesteps N] [--stop-iters N] [--checkpoint-freq N] [--resume]
          [--ray-address ADDR] [--num-cpus N] [--wandb-project P] [-v]
    rllib train --algo U-QMIX [--env smac_team] env_config.map_name=3m --stop-timesteps 200000
    rllib evaluate CHECKPOINT [--episodes 32] [--map M] [--save-gif out.gif]
    rllib-uas {train, evaluate, maps, bench, plot}

Errors in user input end the command with a one-line message and exit code 2 (no traceback).
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from typing import List, Optional

DEFAULT_STORAGE = os.environ.get("RLLIB_UAS_RESULTS", "results")


class UsageError(Exception):
    """Bad user input: reported as one line."""


def _add_train(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train from an experiment YAML file",
        description="Train from a classic RLlib experiment YAML: {name: {run, env, stop, config}}.",
    )
    p.add_argument("file_kw", nargs="?", help=argparse.SUPPRESS)  # the word "file" (rllib train file X.yaml)
    p.add_argument("file", nargs="?", help="experiment YAML")
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="config overrides for every experiment of the file, e.g. lr=1e-4 env_config.map_name=MMM2",
    )
    p.add_argument("--config", help='config overrides as JSON, e.g. \'{"lr": 1e-4, "num_epochs": 5}\' (default: none)')
    p.add_argument("--num-env-runners", type=int, help="config num_env_runners (default: the file's)")
    p.add_argument("--seed", type=int, help="config seed (default: the file's)")
    p.add_argument(
        "--algo",
        help="quick mode without a file: the variant to train (U-MAPPO, MAPPO, U-QMIX, "
        "QMIX, VDN); with --env and KEY=VALUE settings, e.g. env_config.map_name=3m (default: a file)",
    )
    p.add_argument("--env", help="quick mode: the env (default: smac_team)")
    p.add_argument("--stop-timesteps", type=int, help="stop at this many env steps (default: the file's stop)")
    p.add_argument("--stop-iters", type=int, help="stop after this many training iterations (default: the file's stop)")
    p.add_argument(
        "--checkpoint-freq",
        type=int,
        help="checkpoint every N iterations (0: only at the end; default: the file's checkpoint_config)",
    )
    p.add_argument("--resume", action="store_true", help="continue the experiment from its last checkpoint")
    p.add_argument(
        "--storage-path",
        default=DEFAULT_STORAGE,
        help="where runs are written (default: %(default)s; or set RLLIB_UAS_RESULTS)",
    )
    p.add_argument(
        "--ray-address",
        help="connect to a running Ray cluster (e.g. auto); without it, a new "
        "local Ray is started even when another one runs on this machine (default)",
    )
    p.add_argument("--num-cpus", type=int, help="CPUs for the local Ray instance (default: all of this machine's)")
    p.add_argument("--wandb-project", help="log to Weights & Biases (offline without an API key; default: off)")
    p.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="-v: Ray's and Tune's own logs; -vv: also tracebacks for input errors (default: quiet)",
    )


def _add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="greedy evaluation of a checkpoint")
    p.add_argument("checkpoint", help="a checkpoint dir, or a run dir (its newest checkpoint is used)")
    p.add_argument(
        "--episodes",
        type=int,
        default=32,
        help="greedy episodes to play, in whole rounds of one per env (default: %(default)s)",
    )
    p.add_argument("--map", help="evaluate on another map with the same unit counts (default: the trained map)")
    p.add_argument("--save-gif", help="write the first episode as an animated GIF (default: none)")
    p.add_argument("--seed", type=int, default=0, help="the evaluation envs' seed (default: %(default)s)")
    p.add_argument("--num-envs", type=int, default=8, help="battles stepped together (default: %(default)s)")


def _add_extras(sub) -> None:
    sub.add_parser("maps", help="list the embedded maps")
    p = sub.add_parser("bench", help="embedded engine throughput")
    p.add_argument("--map", default="MMM2", help="the map to step (default: %(default)s)")
    p.add_argument("--envs", default="1,16,256", help="comma-separated batch sizes (default: %(default)s)")
    p.add_argument("--seconds", type=float, default=3.0, help="timing per row (default: %(default)s)")
    p = sub.add_parser("plot", help="win rate vs env steps of Tune runs (mean and band over seeds)")
    p.add_argument("run_dirs", nargs="+", help="Tune run directories (results/<experiment>) or trial directories")
    p.add_argument("-o", "--out", default="win_rate.png", help="the PNG to write (default: %(default)s)")
    p.add_argument(
        "--metric",
        default="env_runners/win_rate",
        help="the result key to plot (default: env_runners/win_rate, the training win rate)",
    )
    p.add_argument("--group-by", help="split runs by a config key, e.g. cgi_coeff (default: one curve per run)")
    p.add_argument(
        "--greedy",
        action="store_true",
        help="also draw the greedy evaluation win rate (dashed), for runs trained with evaluation",
    )


def build_parser(prog: str, extras: bool) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="rllib-uas: UAS + CGI multi-agent RL on Ray RLlib")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_train(sub)
    _add_evaluate(sub)
    if extras:
        _add_extras(sub)
    return parser


def parse_overrides(args) -> dict:
    """The config overrides of the command line: --config JSON, then KEY=VALUE words, then the flags."""
    import json

    import yaml

    out: dict = {}
    if args.config:
        try:
            given = json.loads(args.config)
        except json.JSONDecodeError as err:
            raise UsageError(
                f"--config is not valid JSON ({err.msg} at column {err.colno}); "
                """e.g. --config '{"lr": 0.0001}'"""
            ) from None
        if not isinstance(given, dict):
            raise UsageError("--config must be a JSON object, e.g. --config '{\"lr\": 0.0001}'")
        out.update(given)
    for word in args.overrides:
        key, eq, text = word.partition("=")
        if not eq or not key:
            raise UsageError(f"override {word!r} is not KEY=VALUE (e.g. lr=1e-4 or env_config.map_name=MMM2)")
        try:
            value = json.loads(text)  # numbers as JSON reads them (1e-4), true/false, lists
        except json.JSONDecodeError:
            value = yaml.safe_load(text) if text else ""
        out[key] = value
    for key, value in (("num_env_runners", args.num_env_runners), ("seed", args.seed)):
        if value is not None:
            out[key] = value
    return out


def _at_least(flag: str, value: Optional[float], low: float) -> None:
    """A numeric flag below its least meaningful value (a stop of 0 iterations, 0 envs) is refused."""
    if value is not None and value < low:
        raise UsageError(f"{flag} must be at least {low:g}, got {value:g}")


def cmd_train(args) -> int:
    from rllib_uas.experiment import apply_overrides, engine_battles, load_yaml, parse_experiments

    for flag, value, low in (
        ("--stop-timesteps", args.stop_timesteps, 1),
        ("--stop-iters", args.stop_iters, 1),
        ("--checkpoint-freq", args.checkpoint_freq, 0),
        ("--num-cpus", args.num_cpus, 1),
    ):
        _at_least(flag, value, low)

    words = [w for w in (args.file_kw, args.file) if w is not None]
    if words[:1] == ["file"]:
        words = words[1:]
    path = words[0] if words and "=" not in words[0] else None
    args.overrides = [w for w in words if w is not path] + list(args.overrides)
    overrides = parse_overrides(args)
    if args.algo:
        if path:
            raise UsageError("give an experiment file or --algo, not both")
        name = f"{args.algo}-{overrides.get('env_config.map_name', 'default')}"
        data, source = {name: {"run": args.algo, "env": args.env or "smac_team", "config": {}}}, "<command line>"
    elif not path:
        raise UsageError(
            "missing the experiment file; usage: rllib train file EXPERIMENT.yaml [KEY=VALUE ...], "
            "or rllib train --algo U-MAPPO [KEY=VALUE ...]"
        )
    else:
        if args.env:
            raise UsageError("--env is for quick mode (--algo); set env in the experiment file")
        data, source = load_yaml(path), str(path)

    def compile_engine(specs) -> None:  # overlaps the engine's compile with Ray's start-up
        from rllib_uas.envs.engine.compile_once import start_background_compile

        start_background_compile(engine_battles(specs))

    experiments = parse_experiments(apply_overrides(data, overrides), source=source, on_checked=compile_engine)
    from rllib_uas.tune_runner import run_experiments  # Ray Tune: imported once the file is known good

    return run_experiments(
        experiments,
        storage_path=args.storage_path,
        stop_timesteps=args.stop_timesteps,
        stop_iters=args.stop_iters,
        checkpoint_freq=args.checkpoint_freq,
        resume=args.resume,
        ray_address=args.ray_address,
        num_cpus=args.num_cpus,
        wandb_project=args.wandb_project,
        verbose=args.verbose,
    )


def cmd_evaluate(args) -> int:
    from rllib_uas.evaluation import evaluate, load_policy

    _at_least("--episodes", args.episodes, 1)
    _at_least("--num-envs", args.num_envs, 1)
    _at_least("--seed", args.seed, 0)
    module, env_config, algo = load_policy(args.checkpoint)
    if args.map:
        from rllib_uas.envs.engine import get_battle_spec

        get_battle_spec(args.map)  # unknown map -> error listing the maps and scenarios
        env_config["map_name"] = args.map
    res = evaluate(
        module, env_config, episodes=args.episodes, num_envs=args.num_envs, seed=args.seed, gif_path=args.save_gif
    )
    lo, hi = res["win_rate_ci95"]
    print(
        f"{algo} on {res['map_name']}: greedy win rate {res['win_rate']:.3f} "
        f"(95% CI {lo:.3f}-{hi:.3f}, {res['episodes']} episodes) | return {res['return_mean']:.2f} | "
        f"dead allies {res['dead_allies_mean']:.2f} | dead enemies {res['dead_enemies_mean']:.2f} | "
        f"length {res['length_mean']:.1f}"
    )
    if res["gif"]:
        print(f"replay: {res['gif']}")
    return 0


def cmd_maps(args) -> int:
    from rllib_uas.envs.engine import available_maps, available_scenarios, get_map, get_scenario
    from rllib_uas.uas import smac_map_action_groups

    print(f"{'map':<16} {'agents':>6} {'enemies':>7} {'limit':>5}  {'UAS groups':<10} units")
    for name in available_maps():
        spec = get_map(name)
        groups = smac_map_action_groups(name)  # from the unit groups: no spawn layout to build
        allies = ", ".join(f"{c} {u}" for u, c, _ in spec.allies)
        enemies = ", ".join(f"{c} {u}" for u, c, _ in spec.enemies)
        print(f"{name:<16} {spec.n_agents:>6} {spec.n_enemies:>7} {spec.limit:>5}  {groups:<10} {allies} vs {enemies}")
    print("\nSMACv2 scenarios (teams and start positions drawn at every reset; docs/smac.md, SMACv2)")
    print(f"{'scenario':<16} {'agents':>6} {'enemies':>7} {'limit':>5}  {'UAS groups':<10} unit types (weights)")
    for name in available_scenarios():
        s = get_scenario(name)
        types = ", ".join(f"{t} {w:g}" for t, w in zip(s.unit_types, s.weights))
        groups = smac_map_action_groups(name)
        print(f"{name:<16} {s.n_units:>6} {s.n_enemies:>7} {s.spec.limit:>5}  {groups:<10} {types}")
    return 0


def cmd_bench(args) -> int:
    from rllib_uas.envs.engine import get_battle_spec
    from rllib_uas.envs.engine.bench import engine_steps_per_second

    get_battle_spec(args.map)
    sizes = [v.strip() for v in args.envs.split(",")]
    if not all(v.isdigit() and int(v) >= 1 for v in sizes):
        raise UsageError(f"--envs must be comma-separated positive integers, e.g. 1,16,256, got {args.envs!r}")
    if not args.seconds > 0:
        raise UsageError(f"--seconds must be above 0, got {args.seconds:g}")
    print("| map | path | n_envs | env steps/s |\n|---|---|---|---|")
    print(f"| {args.map} | StarCraft2Env | 1 | {engine_steps_per_second(args.map, 1, args.seconds, api=True):,.0f} |")
    for n in (int(v) for v in sizes):
        print(f"| {args.map} | VectorizedSMAC | {n} | {engine_steps_per_second(args.map, n, args.seconds):,.0f} |")
    return 0


def cmd_plot(args) -> int:
    from rllib_uas.plotting import plot_runs

    print(f"wrote {plot_runs(args.run_dirs, args.out, args.metric, args.group_by, greedy=args.greedy)}")
    return 0


COMMANDS = {"train": cmd_train, "evaluate": cmd_evaluate, "maps": cmd_maps, "bench": cmd_bench, "plot": cmd_plot}


def _run(prog: str, extras: bool, argv: Optional[List[str]]) -> int:
    args = build_parser(prog, extras).parse_args(argv)
    from rllib_uas.envs.engine import UnitDataError, UnknownMapError
    from rllib_uas.experiment import ExperimentError

    try:
        return COMMANDS[args.command](args)
    # ValueError covers evaluation.CheckpointError, whose module would import torch and RLlib up front
    except (UsageError, ExperimentError, UnknownMapError, UnitDataError, FileNotFoundError, ValueError) as err:
        if getattr(args, "verbose", 0) > 1:
            raise
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `rllib-uas maps | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; resume with --resume", file=sys.stderr)
        return 130


def main_rllib(argv: Optional[List[str]] = None) -> int:
    return _run("rllib", False, argv)


def main_uas(argv: Optional[List[str]] = None) -> int:
    return _run("rllib-uas", True, argv)


def _exit(code: int) -> None:
    """Exit with `code`, without the interpreter's final sweep over every object torch, Ray and numba
    created (about 1.3 s after a training run on this machine): the objects are frozen out of the
    garbage collector first. Files, checkpoints and Ray are closed by then; atexit handlers still run."""
    sys.stdout.flush()
    sys.stderr.flush()
    gc.freeze()
    sys.exit(code)


def rllib() -> None:
    _exit(main_rllib())


def rllib_uas() -> None:
    _exit(main_uas())


if __name__ == "__main__":
    rllib_uas()
