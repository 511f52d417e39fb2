"""The multi-seed study of UAS and CGI (docs/results.md): run its grid, show where it stands, report.

    python benchmarks/study.py run --maps 3m1m_vs_4m --seeds 0-4 --sweep      # skips finished cells
    python benchmarks/study.py status                                          # done / running / missing cells
    python benchmarks/study.py references                                      # scripted policies' scores
    python benchmarks/study.py merge --from ../worktree/benchmarks/results/study  # another folder's finished cells
    python benchmarks/study.py report                                          # docs/results.md + plots

Cells run through Ray Tune, one CPU each, `--concurrent` at a time; each finished cell's curve is a
CSV under benchmarks/results/study/ (commit them: the results page is generated from them). A
running cell saves a checkpoint every --checkpoint-every seconds (under the results folder's
.checkpoints/, never committed); a killed run, run again from the same commit, goes on from there.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "study"


def seeds(text: str) -> List[int]:
    """'0-4' or '0,2,5': integers >= 0, at least one."""
    try:
        if "-" in text:
            a, b = text.split("-")
            out = list(range(int(a), int(b) + 1))
        else:
            out = [int(s) for s in text.split(",")]
    except ValueError:
        out = []
    if not out:
        raise argparse.ArgumentTypeError(f"{text!r}: give a range A-B with A <= B (e.g. 0-4) or a list (e.g. 0,2,5)")
    if min(out) < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: seeds are integers >= 0")
    return out


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number >= 1")
    return value


def main(argv=None) -> int:
    from rllib_uas.study.grid import MAIN_VARIANTS, STUDY_MAPS, grid
    from rllib_uas.study.run import CHECKPOINT_EVERY_S

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    for name in ("run", "status"):
        p = sub.add_parser(name)
        p.add_argument("--maps", default=",".join(STUDY_MAPS[:1]), help=f"comma-separated, of {', '.join(STUDY_MAPS)}")
        p.add_argument("--variants", default=",".join(MAIN_VARIANTS))
        p.add_argument("--seeds", default="0-4", type=seeds)
        p.add_argument(
            "--sweep",
            action="store_true",
            help="add the lambda_I sweep (0, 0.01, 0.1, 0.5, 1) on 3m1m_vs_4m for U-MAPPO and U-QMIX",
        )
        p.add_argument("--out", default=str(OUT))
    sub.choices["run"].add_argument("--concurrent", type=positive_int, default=2, help="cells at a time (one CPU each)")
    sub.choices["status"].add_argument(
        "--concurrent", type=positive_int, default=2, help="cells at a time, for the estimate of the time left"
    )
    sub.choices["run"].add_argument(
        "--address",
        help="run the cells on this Ray cluster (auto inside a Ray job, or the head's host:port); "
        "--out must then be a folder every node mounts at the same path. Default: a Ray of this "
        "process's own with --concurrent CPUs",
    )
    sub.choices["run"].add_argument(
        "--checkpoint-every",
        type=float,
        default=CHECKPOINT_EVERY_S,
        metavar="SECONDS",
        help="save each running cell this often, so a killed run goes on from there (0: never; default %(default)g)",
    )
    ref = sub.add_parser("references", help="play the scripted reference policies on the study maps")
    ref.add_argument("--maps", default=",".join(STUDY_MAPS), help=f"comma-separated, of {', '.join(STUDY_MAPS)}")
    ref.add_argument("--out", default=str(OUT))
    mer = sub.add_parser("merge", help="copy another results folder's finished cells into --out")
    mer.add_argument("--from", dest="src", required=True, help="the other results folder")
    mer.add_argument("--out", default=str(OUT))
    rep = sub.add_parser("report")
    rep.add_argument("--out", default=str(OUT))
    rep.add_argument("--page", default=str(ROOT / "docs" / "results.md"))
    args = ap.parse_args(argv)

    if args.command == "report":
        try:
            import rliable.library  # noqa: F401  (the statistics' bootstrap)
        except ImportError:
            print('error: the report\'s statistics need rliable: pip install -e ".[study]"', file=sys.stderr)
            return 2
        from rllib_uas.study.report import write_report

        try:
            print(write_report(Path(args.out), Path(args.page)))
        except ValueError as err:
            print(f"error: {err}; the page was left as it was", file=sys.stderr)
            return 2
        return 0
    if args.command == "merge":
        from rllib_uas.study.merge import merge_cells
        from rllib_uas.study.run import StudyBusy

        try:
            moved = merge_cells(Path(args.src), Path(args.out))
        except (StudyBusy, ValueError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        for name in moved["added"]:
            print(f"added  {name}")
        print(f"{len(moved['added'])} cells added, {len(moved['already there'])} already there")
        return 0
    if args.command == "references":
        from rllib_uas.study.reference import write_references
        from rllib_uas.study.run import code_version

        maps = args.maps.split(",")
        unknown = [m for m in maps if m not in STUDY_MAPS]
        if unknown:
            print(f"error: {unknown[0]!r} is not a study map; study maps: {', '.join(STUDY_MAPS)}", file=sys.stderr)
            return 2
        print(write_references(Path(args.out), maps, code_version()))
        return 0
    if args.command == "run" and not args.checkpoint_every >= 0:
        print(
            f"error: --checkpoint-every {args.checkpoint_every:g}: give seconds >= 0 (0: no checkpoints)",
            file=sys.stderr,
        )
        return 2
    try:
        cells = grid(args.maps.split(","), args.variants.split(","), args.seeds, sweep=args.sweep)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    from rllib_uas.study.run import StudyBusy, finished, run_study

    if args.command == "status":
        from rllib_uas.study.report import time_left
        from rllib_uas.study.run import read_manifest, run_active, status_line

        out = Path(args.out)
        done = {c.name for c in finished(cells, out)}
        active = run_active(out)
        missing = []
        for c in cells:
            line, left = status_line(out, c, c.name in done, active)
            print(line)
            if c.name not in done:
                missing.append((c.map_name, c.variant, left))
        print(f"{len(done)} of {len(cells)} cells finished" + ("; a run is writing here now" if active else ""))
        if missing:
            print(time_left(missing, read_manifest(out), args.concurrent))
        return 0
    try:
        counts = run_study(
            cells,
            args.out,
            concurrent=args.concurrent,
            checkpoint_every_s=args.checkpoint_every,
            address=args.address,
        )
    except (StudyBusy, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"study: {counts['finished']} cells finished now, {counts['skipped']} before, {counts['failed']} failed")
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
