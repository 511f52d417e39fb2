"""Run the study's cells through Ray Tune, resumably.

Each cell trains for its map's budget of simulated env steps and evaluates its greedy policy every
`eval_every` steps (and at step 0) over whole rounds of one episode per env. Its rows go to
`<out>/.<cell>.csv.partial` as they come; a finished cell's file is renamed to `<out>/<cell>.csv`
and a line appended to `<out>/manifest.csv` (fingerprint, commit, wall time, resumes). A rerun skips
every cell with a CSV and a manifest line of the same fingerprint. An unfinished cell goes on from
its last checkpoint (`cell_checkpoint`, every `checkpoint_every_s` seconds of the cell's wall time)
when the same committed code runs it again, and starts over otherwise.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import hashlib
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

from rllib_uas.file_lock import LockHeld, file_lock
from rllib_uas.study import cell_checkpoint
from rllib_uas.study.grid import Cell, MapPlan
from rllib_uas.value_types import is_integer

LOCK_NAME = ".study.lock"  # held by the run writing to a results folder (its cells' partial CSVs)


class StudyBusy(RuntimeError):
    """Another study run holds the results folder."""


CURVE_FIELDS = [
    "env_steps",
    "wall_s",
    "eval_win_rate",
    "eval_episodes",
    "eval_return",
    "eval_dead_allies",
    "eval_dead_enemies",
    "eval_battle_length",
    "train_win_rate",
    "train_return",
]
MANIFEST_FIELDS = [
    "cell",
    "map",
    "variant",
    "seed",
    "budget",
    "env_steps",
    "fingerprint",
    "commit",
    "wall_s",
    "finished_at",
    "resumes",  # times the cell went on from a checkpoint (empty in rows written before it was recorded)
]
CHECKPOINT_EVERY_S = 900.0  # a killed cell loses at most this much of its training
# a resumed run's random streams (env, exploration) start from seed + RESUME_SEED_STRIDE * resumes,
# not again from the seed the cell started with
RESUME_SEED_STRIDE = 1_000_003


def code_version() -> str:
    """The commit the package runs from (with '+dirty' for uncommitted changes), or 'unknown'."""
    root = Path(__file__).resolve().parents[2]
    try:
        rev = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--", "rllib_uas"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def require_results(folder: Path) -> None:
    """ValueError unless `folder` is a study results folder (it has the manifest finished cells append to)."""
    if not (Path(folder) / "manifest.csv").exists():
        raise ValueError(f"{folder} has no manifest.csv: not a study results folder (benchmarks/results/study)")


def partial_path(out: Path, cell: Cell) -> Path:
    """Where a running cell writes its curve until it finishes."""
    return out / f".{cell.name}.csv.partial"


def cell_of(spec: Dict[str, Any]) -> Cell:
    """The cell a trial's config names (the runner's grid-search value)."""
    return Cell(spec["map_name"], spec["variant"], spec["seed"], MapPlan(**spec["plan"]))


def read_manifest(out: Path) -> Dict[str, Dict[str, str]]:
    """cell name -> its last manifest row."""
    path = out / "manifest.csv"
    if not path.exists():
        return {}
    return {row["cell"]: row for row in csv.DictReader(path.open())}


def finished(cells: Sequence[Cell], out: Path) -> List[Cell]:
    manifest = read_manifest(out)
    return [
        c
        for c in cells
        if (out / f"{c.name}.csv").exists() and manifest.get(c.name, {}).get("fingerprint") == c.fingerprint()
    ]


def saved_steps(out: Path, cell: Cell) -> int | None:
    """The env steps of the cell's checkpoint, when it has one for its current plan."""
    progress = cell_checkpoint.peek(out, cell.name)
    return progress.env_steps if progress is not None and progress.fingerprint == cell.fingerprint() else None


def run_active(out: Path) -> bool:
    """Whether a study run holds `out`'s lock now, so that its partial CSVs are being written (a killed
    run's partial CSVs are leftovers: the next run restarts them from their checkpoints)."""
    if not (out / LOCK_NAME).exists():  # never create the lock file just to look
        return False
    try:
        with file_lock(str(out / LOCK_NAME), blocking=False):
            return False
    except LockHeld:
        return True


def latest_evaluation(out: Path, cell: Cell) -> Dict[str, str] | None:
    """The last row of the cell's partial curve (its latest evaluation); None before its first."""
    try:
        with partial_path(out, cell).open(newline="") as f:
            rows = list(csv.DictReader(f))
    except FileNotFoundError:
        return None
    return rows[-1] if rows else None


def status_line(out: Path, cell: Cell, done: bool, active: bool) -> Tuple[str, float]:
    """`study.py status`'s line for one cell, and the share of its budget still to run. A cell the
    active run is training says where its curve is; a cell with a checkpoint says from where the next
    run goes on (what a killed run did after its last checkpoint is run again)."""
    where = f"{cell.map_name}  {cell.variant}  seed {cell.seed}"
    if done:
        return f"done     {where}", 0.0
    latest = latest_evaluation(out, cell) if active else None
    if latest is not None:
        steps = int(latest["env_steps"])
        line = (
            f"running  {where}  (at {steps:,} of {cell.plan.budget:,} env steps; last evaluation won "
            f"{float(latest['eval_win_rate']):.2f}, return {float(latest['eval_return']):.1f})"
        )
        return line, max(0.0, 1.0 - steps / cell.plan.budget)
    saved = saved_steps(out, cell)
    extra = f"  (checkpoint at {saved:,} env steps)" if saved is not None else ""
    return f"missing  {where}{extra}", max(0.0, 1.0 - (saved or 0) / cell.plan.budget)


def run_order(todo: Sequence[Cell], out: Path) -> List[Cell]:
    """The cells to run, those with a checkpoint first (their hours are partly paid, and a
    checkpoint left waiting behind a day of other cells holds gigabytes of disk), the rest in the
    grid's seed-major order."""
    return sorted(todo, key=lambda c: saved_steps(out, c) is None)  # stable: grid order otherwise


def evaluate_greedy(algo, episodes: int, seed: int) -> Dict[str, float]:
    from rllib_uas.evaluation import evaluate

    return evaluate(algo.get_module(), dict(algo.config.env_config), episodes=episodes, num_envs=8, seed=seed)


def train_cell(cell: Cell, out: Path, report=None, checkpoint_every_s: float = CHECKPOINT_EVERY_S) -> Path:
    """Train one cell to its budget, writing its curve; returns the finished CSV's path. A usable
    checkpoint of the cell (`cell_checkpoint.load`) is gone on from; 0 seconds saves none."""
    plan = cell.plan
    partial = partial_path(out, cell)
    code = code_version()  # what this process imported: read at the start, not when the cell ends
    fingerprint = cell.fingerprint()
    ckpt, progress, why = cell_checkpoint.load(out, cell.name, fingerprint, code)
    if why:
        note = f"its checkpoint is not used ({why}) and stays until this run saves one"
        print(f"study: {cell.name} starts over; {note}", flush=True)
    config = cell.config()
    if progress is None:
        progress = cell_checkpoint.Progress(fingerprint, code, 0, 0, 0, 0.0, 0)
    else:
        progress.resumes += 1
        config.debugging(seed=cell.seed + RESUME_SEED_STRIDE * progress.resumes)
        shutil.copyfile(ckpt / cell_checkpoint.CURVE_FILE, partial)
        print(f"study: {cell.name} goes on from its checkpoint at {progress.env_steps} env steps", flush=True)
    if checkpoint_every_s and not cell_checkpoint.committed(code):
        print(f"study: {cell.name} saves no checkpoints: the package's code is {code}", flush=True)
        checkpoint_every_s = 0
    algo = config.build_algo()
    t0 = time.perf_counter() - progress.wall_s
    steps, next_eval, evals = progress.env_steps, progress.next_eval, progress.evals
    train: Dict[str, Any] = dict(progress.train)
    try:
        if ckpt is not None:
            algo.restore_from_path(str((ckpt / cell_checkpoint.ALGORITHM_DIR).resolve()))
        last_save = time.perf_counter()
        with partial.open("a" if ckpt is not None else "w", newline="") as f:
            writer = csv.DictWriter(f, CURVE_FIELDS)
            if ckpt is None:
                writer.writeheader()
            while True:
                if steps >= next_eval or steps >= plan.budget:
                    # evaluation seeds differ per evaluation and per cell seed, the same across variants
                    ev = evaluate_greedy(algo, plan.eval_episodes, seed=10_000 * (cell.seed + 1) + evals)
                    row = dict(
                        env_steps=steps,
                        wall_s=round(time.perf_counter() - t0, 1),
                        eval_win_rate=ev["win_rate"],
                        eval_episodes=ev["episodes"],
                        eval_return=ev["return_mean"],
                        eval_dead_allies=ev["dead_allies_mean"],
                        eval_dead_enemies=ev["dead_enemies_mean"],
                        eval_battle_length=ev["length_mean"],
                        train_win_rate=train.get("win_rate", ""),
                        train_return=train.get("team_return_mean", ""),
                    )
                    writer.writerow(row)
                    f.flush()
                    evals += 1
                    next_eval += plan.eval_every
                    if report is not None:
                        report({"env_steps": steps, "eval_win_rate": ev["win_rate"]})
                    if steps >= plan.budget:
                        break
                result = algo.train()
                before, steps = steps, int(result["num_env_steps_sampled_lifetime"])
                if steps <= before:  # a restored run that counts from zero would overrun its budget
                    raise RuntimeError(
                        f"cell {cell.name}: the env-step count went from {before} to {steps} in one iteration; "
                        f"remove {cell_checkpoint.folder(out, cell.name)} to start the cell over"
                    )
                train = result.get("env_runners", {})
                if checkpoint_every_s and steps < plan.budget and time.perf_counter() - last_save >= checkpoint_every_s:
                    f.flush()
                    progress = dataclasses.replace(
                        progress,
                        env_steps=steps,
                        next_eval=next_eval,
                        evals=evals,
                        wall_s=time.perf_counter() - t0,
                        train={k: float(train[k]) for k in ("win_rate", "team_return_mean") if k in train},
                    )
                    cell_checkpoint.save(algo, partial, progress, out, cell.name)
                    last_save = time.perf_counter()
    finally:
        algo.stop()
    path = out / f"{cell.name}.csv"
    os.replace(partial, path)
    append_manifest(
        out / "manifest.csv",
        dict(
            cell=cell.name,
            map=cell.map_name,
            variant=cell.variant,
            seed=cell.seed,
            budget=plan.budget,
            env_steps=steps,
            fingerprint=fingerprint,
            commit=code,
            wall_s=round(time.perf_counter() - t0, 1),
            finished_at=time.strftime("%Y-%m-%dT%H:%M:%S"),
            resumes=progress.resumes,
        ),
    )
    cell_checkpoint.discard(out, cell.name)
    return path


def append_manifest(path: Path, row: Dict[str, Any]) -> None:
    """Append a finished cell's line; a manifest written before a column existed gets the column
    (empty in its older lines) first."""
    if path.exists():
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            header, rows = reader.fieldnames or [], list(reader)
        if header != MANIFEST_FIELDS:
            tmp = path.with_name(path.name + ".tmp")
            with tmp.open("w", newline="") as f:
                writer = csv.DictWriter(f, MANIFEST_FIELDS)
                writer.writeheader()
                writer.writerows({k: r.get(k, "") for k in MANIFEST_FIELDS} for r in rows)
            os.replace(tmp, path)
    new = not path.exists()
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, MANIFEST_FIELDS)
        if new:
            writer.writeheader()
        writer.writerow(row)


def _drop_failed_partials(out: Path):
    """A Tune callback that removes a failed cell's partial curve as soon as the trial errors, so that
    `study.py status` no longer reads it as running while the run goes on with other cells (the
    cell's checkpoint, if it has one, stays: the next run goes on from it)."""
    from ray import tune

    class DropFailedPartials(tune.Callback):
        def on_trial_error(self, iteration, trials, trial, **info):
            partial_path(out, cell_of(trial.config["cell"])).unlink(missing_ok=True)

    return DropFailedPartials()


def _trainable(config: Dict[str, Any]) -> None:
    from ray import tune

    cell = cell_of(config)
    train_cell(cell, Path(config["out"]), report=tune.report, checkpoint_every_s=config["checkpoint_every_s"])


def run_study(
    cells: Sequence[Cell],
    out: str | Path,
    concurrent: int = 2,
    cpus: int | None = None,
    storage_path: str | None = None,
    checkpoint_every_s: float = CHECKPOINT_EVERY_S,
    address: str | None = None,
) -> Dict[str, int]:
    """Run every unfinished cell (one CPU each, `concurrent` at a time) through Tune; returns counts
    of cells skipped, finished and failed. Each running cell saves a checkpoint every
    `checkpoint_every_s` seconds (0: none), which a later run goes on from. One run at a time per
    `out`: a second one raises StudyBusy before it touches anything there.

    Without `address` the cells run on a Ray of this process's own with `cpus` (default
    `concurrent`) CPUs; with one (e.g. "auto" inside a Ray job) they run on that cluster's nodes,
    and then `out` must be a folder every node sees at the same path (the cells write there)."""
    if not is_integer(concurrent) or concurrent < 1:
        raise ValueError(f"concurrent={concurrent!r}: give a whole number >= 1 (0 starts no cell and waits forever)")
    if address:
        from rllib_uas.local_ray import check_address

        check_address(address)  # before anything is written
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    lock = out / LOCK_NAME
    with contextlib.ExitStack() as held:
        try:  # only taking the lock can mean another run: the run's own errors pass through as they are
            held.enter_context(file_lock(str(lock), blocking=False))
        except LockHeld:
            raise StudyBusy(
                f"another study run is writing to {out} (it holds {lock}); wait for it to finish, or give this "
                "run another --out"
            ) from None
        return _run_unlocked(cells, out, concurrent, cpus, storage_path, checkpoint_every_s, address)


def _run_unlocked(
    cells: Sequence[Cell],
    out: Path,
    concurrent: int,
    cpus: int | None,
    storage_path: str | None,
    checkpoint_every_s: float,
    address: str | None,
) -> Dict[str, int]:
    from ray import tune

    from rllib_uas.local_ray import ray_for_run

    done = {c.name for c in finished(cells, out)}
    todo = run_order([c for c in cells if c.name not in done], out)
    for name in done:  # left behind by a run stopped between a cell's last line and its clean-up
        cell_checkpoint.discard(out, name)
    for stale in out.glob(".*.csv.partial"):
        stale.unlink()  # an interrupted cell starts over, or from its checkpoint's copy of its curve
    saved = sum(saved_steps(out, c) is not None for c in todo)
    first = ", run first" if saved else ""
    print(
        f"study: {len(cells)} cells, {len(done)} finished, {len(todo)} to run ({saved} with a checkpoint{first}), "
        f"{concurrent} at a time; results in {out}",
        flush=True,
    )
    if not todo:
        return {"skipped": len(done), "finished": 0, "failed": 0}
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    space = {
        "cell": tune.grid_search(
            [dict(map_name=c.map_name, variant=c.variant, seed=c.seed, plan=dataclasses.asdict(c.plan)) for c in todo]
        )
    }

    def trainable(config):
        _trainable({**config["cell"], "out": str(out), "checkpoint_every_s": checkpoint_every_s})

    own = {} if address else {"num_cpus": cpus or concurrent}  # a cluster has its own CPUs
    with ray_for_run(address, include_dashboard=False, log_to_driver=False, logging_level="WARNING", **own):
        tuner = tune.Tuner(
            tune.with_resources(trainable, {"cpu": 1}),
            param_space=space,
            tune_config=tune.TuneConfig(max_concurrent_trials=concurrent),
            run_config=tune.RunConfig(
                # Tune's own files per results folder: runs into other folders never share them
                name=f"study-{hashlib.sha1(str(out).encode()).hexdigest()[:8]}",
                storage_path=storage_path or str(Path.home() / "ray_results"),
                verbose=0,
                failure_config=tune.FailureConfig(max_failures=0),
                callbacks=[_drop_failed_partials(out)],
            ),
        )
        results = tuner.fit()
    failed = [r for r in results if r.error is not None]
    for r in failed:
        cell = r.config["cell"]
        print(
            f"study: cell {cell['map_name']} / {cell['variant']} / seed {cell['seed']} failed: "
            f"{str(r.error).strip().splitlines()[-1]}",
            flush=True,
        )
    now = {c.name for c in finished(cells, out)}
    return {"skipped": len(done), "finished": len(now - done), "failed": len(failed)}
