"""A study cell's checkpoint: what a killed cell needs to go on where it was instead of from zero.

A cell on MMM2 trains for hours on one core, longer than a working session on a small machine, so
the runner saves the cell every `checkpoint_every_s` seconds of its wall time, between two training
iterations: the algorithm (`Algorithm.save_to_path`: weights, optimizer, env runner and metrics
counters, U-QMIX's episode buffer), the curve rows written so far, and where the loop stood.

A checkpoint is used only by the same cell (same fingerprint) run from the same committed code
(`code_version()`, no uncommitted changes): anything else starts the cell over, so a curve is
never made of two versions of the package, and leaves the checkpoint alone until the cell saves
its own. A checkpoint is written into a fresh folder and moved
into place only once complete; a kill during a save leaves the previous one as it was.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, Optional, Tuple

CHECKPOINTS_DIR = ".checkpoints"  # under the results folder; never committed
ALGORITHM_DIR = "algorithm"
CURVE_FILE = "curve.csv"
PROGRESS_FILE = "progress.json"  # written last: a folder without it is incomplete


@dataclass
class Progress:
    """Where a cell's training loop stood at its checkpoint."""

    fingerprint: str  # the cell's plan and switches (`Cell.fingerprint`)
    code: str  # `code_version()` of the run that started the cell
    env_steps: int  # the algorithm's lifetime env steps at the checkpoint
    next_eval: int  # env steps of the next greedy evaluation
    evals: int  # evaluations done (their seeds go on from here)
    wall_s: float  # the cell's wall time so far, all its runs together
    resumes: int  # times the cell had gone on from a checkpoint, counting the run that saved this one
    # the last iteration's training win rate and return, which the next evaluation row also shows
    train: Dict[str, float] = field(default_factory=dict)


def folder(out: Path, cell_name: str) -> Path:
    return out / CHECKPOINTS_DIR / cell_name


def _folders(out: Path, cell_name: str) -> Tuple[Path, Path, Path]:
    """The checkpoint's folder, the one a save writes first, and the one it moves the last to."""
    target = folder(out, cell_name)
    return target, target.with_name(target.name + ".new"), target.with_name(target.name + ".old")


def committed(code: str) -> bool:
    """Whether `code_version()` names committed code, which a checkpoint can be matched to."""
    return not (code.endswith("+dirty") or code == "unknown")


def save(algo, curve: Path, progress: Progress, out: Path, cell_name: str) -> None:
    """Write the cell's checkpoint next to the last one, then swap them."""
    target, fresh, old = _folders(out, cell_name)
    shutil.rmtree(fresh, ignore_errors=True)
    fresh.mkdir(parents=True)
    algo.save_to_path(str((fresh / ALGORITHM_DIR).resolve()))  # RLlib wants an absolute path
    shutil.copyfile(curve, fresh / CURVE_FILE)
    (fresh / PROGRESS_FILE).write_text(json.dumps(asdict(progress)))
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        os.replace(target, old)
    os.replace(fresh, target)
    shutil.rmtree(old, ignore_errors=True)


def load(out: Path, cell_name: str, fingerprint: str, code: str) -> Tuple[Optional[Path], Optional[Progress], str]:
    """(checkpoint folder, its progress, '') when the cell can go on from its checkpoint; else
    (None, None, why not: '' when there is none). A checkpoint this run cannot use is left in place
    (a run of the right code may still want it) until the cell saves a new one or finishes."""
    target, fresh, old = _folders(out, cell_name)
    if not (target / PROGRESS_FILE).exists() and (old / PROGRESS_FILE).exists():
        shutil.rmtree(target, ignore_errors=True)  # killed between the two moves of a save
        os.replace(old, target)
    shutil.rmtree(fresh, ignore_errors=True)  # a save cut short
    if not (target / PROGRESS_FILE).exists():
        discard(out, cell_name)
        return None, None, ""
    progress = peek(out, cell_name)
    why = ""
    if progress.fingerprint != fingerprint:
        why = "the cell's plan or switches changed since"
    elif not committed(code):
        why = f"the package has uncommitted changes ({code}), so its code cannot be matched to the checkpoint's"
    elif progress.code != code:
        why = f"it was made by {progress.code}, this run is {code}"
    if why:
        return None, None, why
    return target, progress, ""


def peek(out: Path, cell_name: str) -> Optional[Progress]:
    """The cell's checkpoint's progress, if it has a complete one (nothing is checked or moved)."""
    path = folder(out, cell_name) / PROGRESS_FILE
    return Progress(**json.loads(path.read_text())) if path.exists() else None


def discard(out: Path, cell_name: str) -> None:
    for path in _folders(out, cell_name):
        shutil.rmtree(path, ignore_errors=True)
