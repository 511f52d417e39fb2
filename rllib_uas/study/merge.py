"""Bring finished cells from another results folder into this one (a worktree's, a cluster node's).

Runs of different code versions write to different folders (docs/study.md); their finished cells
(a CSV and its manifest line) are then merged into the folder the results page is generated from.
Only finished cells move: partial CSVs and checkpoints stay where they are, and a cell the
destination already has is left as it is there.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Dict, List

from rllib_uas.file_lock import LockHeld, file_lock
from rllib_uas.study.run import LOCK_NAME, StudyBusy, append_manifest, read_manifest, require_results


def merge_cells(src: Path, dst: Path) -> Dict[str, List[str]]:
    """Copy `src`'s finished cells that `dst` lacks; {"added": [...], "already there": [...]} by cell
    name. Refused (StudyBusy) while a study run writes to `dst`; ValueError if `src` is no results folder."""
    src, dst = Path(src), Path(dst)
    if src.resolve() == dst.resolve():
        raise ValueError(f"{src} is the destination itself")
    require_results(src)
    dst.mkdir(parents=True, exist_ok=True)
    lock = dst / LOCK_NAME
    try:
        with file_lock(str(lock), blocking=False):
            return _merge(src, dst)
    except LockHeld:
        raise StudyBusy(f"a study run is writing to {dst} (it holds {lock}); merge when it has stopped") from None


def _merge(src: Path, dst: Path) -> Dict[str, List[str]]:
    have = {name for name in read_manifest(dst) if (dst / f"{name}.csv").exists()}
    out: Dict[str, List[str]] = {"added": [], "already there": []}
    for name, row in read_manifest(src).items():
        if not (src / f"{name}.csv").exists():
            continue  # a manifest line whose curve is not here (withdrawn or moved): nothing to bring
        if name in have:
            out["already there"].append(name)
            continue
        tmp = dst / f".{name}.csv.merging"
        shutil.copyfile(src / f"{name}.csv", tmp)
        os.replace(tmp, dst / f"{name}.csv")  # the curve first: a line never names a missing CSV
        append_manifest(dst / "manifest.csv", row)
        out["added"].append(name)
    return out
