"""docs/results.md and its plots, generated from the study's committed CSVs (never typed by hand).

    python benchmarks/study.py report

Every number on the page comes from `rllib_uas.study.stats` over the finished cells; the sentences
that read the comparisons are chosen by where the intervals lie, so a null or negative result reads
as one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from rllib_uas.study import stats
from rllib_uas.study.grid import LAMBDAS, MAIN_VARIANTS, PLANNED_SEEDS, PLANS, SWEEP_MAP, MapPlan, grid, sweep_name
from rllib_uas.study.reference import read_references, reference_line
from rllib_uas.study.run import finished, read_manifest

# (X, Y): is X better than Y? The method against each baseline, per algorithm
COMPARISONS = (
    [(f"U-{a}", a) for a in ("MAPPO", "QMIX")]
    + [(f"U-{a}", f"U-{a} w/o CGI") for a in ("MAPPO", "QMIX")]
    + [(f"U-{a} w/o CGI", a) for a in ("MAPPO", "QMIX")]
    + [(f"U-{a}", f"{a} group") for a in ("MAPPO", "QMIX")]
    + [(f"{a} group", a) for a in ("MAPPO", "QMIX")]
)


def interval_text(t: Tuple[float, float, float], n: int = 2) -> str:
    """'IQM [low, high]'; one seed has no interval."""
    return f"{t[0]:.2f} [{t[1]:.2f}, {t[2]:.2f}]" if n >= 2 else f"{t[0]:.2f} (1 seed, no interval)"


def variant_rows(runs: Sequence[stats.Run], map_name: str, names: Sequence[str], metric: str = "win") -> List[str]:
    """The table's rows; the win-rate table also says how to reproduce each row and at which commits."""
    rows = stats.variant_table([r for r in runs if r.variant in names], map_name, names, metric)
    commits: Dict[str, set] = {}  # the code versions each variant's cells of this map ran on
    for r in runs:
        if r.map_name == map_name:
            commits.setdefault(r.variant, set()).add(r.commit)
    out = []
    for row in rows:
        n = len(row["seeds"])
        cells = [row["variant"], f"{n} ({_seeds(row['seeds'])})", interval_text(row["final"], n)]
        cells.append(interval_text(row["auc"], n))
        if metric == "win":
            ran_at = ", ".join(sorted(commits[row["variant"]]))
            cells += [f"`{command(map_name, row['variant'], row['seeds'])}`", ran_at]
        out.append("| " + " | ".join(cells) + " |")
    return out


TABLE_HEAD = [
    "| variant | seeds | final win rate, IQM [95% CI] | AUC, IQM [95% CI] | reproduce | ran at |",
    "|---|---|---|---|---|---|",
]
RETURN_HEAD = [
    "| variant | seeds | final return, IQM [95% CI] | mean return over the budget, IQM [95% CI] |",
    "|---|---|---|---|",
]
# the words a metric's comparisons are read with: (final, area under the curve)
METRIC_WORDS = {"win": ("final", "AUC"), "return": ("final return", "mean return")}


def _spread(values: Sequence[float], digits: int) -> str:
    """'mean (lowest-highest)' over seeds; one seed is its value."""
    text = f"{np.mean(values):.{digits}f}"
    return text if len(values) < 2 else f"{text} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def battle_lines(runs: Sequence[stats.Run], map_name: str, names: Sequence[str]) -> List[str]:
    """How each variant's final evaluation ended: won, enemies killed, allies lost and battle length
    (each run's means over its evaluation episodes, then their mean and range over seeds). Return
    says how much damage was done; this says how the battles ended (wiped out fast, or alive at the
    time limit), which the reader needs before reading a return or a win rate of 0."""
    from rllib_uas.envs.engine.maps import UnknownMapError, get_map

    groups = stats.by_variant(runs, map_name)
    rows = []
    for v in [v for v in names if v in groups]:
        battles = [r for r in groups[v] if r.final_battles is not None]
        if not battles:
            continue
        seeds = [r.seed for r in battles]
        cells = [v, f"{len(seeds)} ({_seeds(seeds)})", _spread([r.final for r in battles], 2)]
        cells += [_spread([r.final_battles[k] for r in battles], 1) for k in ("killed", "lost", "length")]
        rows.append("| " + " | ".join(cells) + " |")
    if not rows:
        return []
    try:
        spec = get_map(map_name)
        of = (f" (of {spec.n_enemies})", f" (of {spec.n_agents})", f" (limit {spec.limit})")
    except UnknownMapError:  # a map the engine does not have (tests)
        of = ("", "", "")
    return [
        "How the final evaluation's battles ended: each run's means over its episodes, then their mean",
        "over seeds and (in brackets) the lowest and highest seed.",
        "",
        f"| variant | seeds | won | enemies killed{of[0]} | allies lost{of[1]} | battle length{of[2]} |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
    ]


def _count(n: int, word: str) -> str:
    """'1 seed', '2 seeds'."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _seeds(seeds: Sequence[int]) -> str:
    s = sorted(seeds)
    if s == list(range(s[0], s[-1] + 1)) and len(s) > 1:
        return f"{s[0]}-{s[-1]}"
    return ",".join(map(str, s))


def command(map_name: str, variant: str, seeds: Sequence[int]) -> str:
    return f'python benchmarks/study.py run --maps {map_name} --variants "{variant}" --seeds {_seeds(seeds)}'


def _verdict(p: Tuple[float, float, float]) -> str:
    """Where P(X > Y)'s interval lies: wholly above 0.5, wholly below, or around it."""
    return "better" if p[1] > 0.5 else "worse" if p[2] < 0.5 else "not separated"


def _anyone_won(runs: Sequence[stats.Run], map_name: str) -> bool:
    """Whether any run on the map won any greedy evaluation battle (else return ranks them)."""
    return any(r.win_rate.any() for r in runs if r.map_name == map_name)


def reading(
    x: str, y: str, p: Tuple[float, float, float], metric: str, seeds: int = PLANNED_SEEDS, same: Optional[float] = None
) -> str:
    """A plain sentence for P(X > Y) with its interval, over `seeds` shared seeds. With fewer than the
    study's planned seeds it gives no verdict: from 2 seeds whose order agrees, the bootstrap
    interval is [1.00, 1.00] whatever the variants' real difference. `same`: the one score every run
    of both variants has (a map where none wins), said as such rather than as a tie."""
    point, low, high = p
    if seeds < PLANNED_SEEDS:
        verdict = f"{seeds} shared seeds so far, too few to read (the study reads from {PLANNED_SEEDS})"
    elif same is not None:
        verdict = f"every run of both scores {same:.2f}, so there is nothing to separate"
    else:
        verdict = {
            "better": f"{x} is better than {y}",
            "worse": f"{x} is worse than {y}",
            "not separated": f"these seeds do not separate {x} from {y}",
        }[_verdict(p)]
    return f"{metric}: P({x} > {y}) = {point:.2f} [{low:.2f}, {high:.2f}]: {verdict}."


def comparison_rows(runs: Sequence[stats.Run], map_name: str, metric: str = "win") -> List[Dict]:
    groups = stats.by_variant(runs, map_name)
    rows = []
    for x, y in COMPARISONS:
        if x not in groups or y not in groups:
            continue
        a, b = stats.shared_seeds(groups[x], groups[y])
        if len(a) < 2:
            continue
        row = dict(x=x, y=y, n=len(a))
        for kind, score in (("final", stats.Run.final_of), ("auc", stats.Run.auc_of)):
            xs, ys = [score(r, metric) for r in a], [score(r, metric) for r in b]
            row[kind] = stats.probability_of_improvement(xs, ys)
            row[f"{kind}_same"] = xs[0] if len(set(xs + ys)) == 1 else None
        rows.append(row)
    return rows


# the page's first table: the method against its baseline and against its own ablation, per algorithm
HEADLINE = [("U-MAPPO", "MAPPO"), ("U-MAPPO", "U-MAPPO w/o CGI"), ("U-QMIX", "QMIX"), ("U-QMIX", "U-QMIX w/o CGI")]


def glance(runs: Sequence[stats.Run], plans: Dict[str, MapPlan], comps: Dict[str, Dict[str, List[Dict]]]) -> List[str]:
    """The page's summary: per map, P(X > Y) of the AUC for the headline comparisons, read only at
    the study's planned seeds. A map where no run won reads the mean return instead, and says so."""
    head = " | ".join(f"{x} > {y}" for x, y in HEADLINE)
    lines = [
        "## At a glance",
        "",
        "P(X > Y) of the area under the greedy win-rate curve, with its 95% interval, over the seeds both have",
        f"(read from {PLANNED_SEEDS} shared seeds on; the map sections below have every comparison). On a map",
        "where no run has won, the mean greedy return over the budget stands in, marked (return).",
        "",
        f"| map | budget | {head} |",
        "|---|---|" + "---|" * len(HEADLINE),
    ]
    for map_name, plan in plans.items():
        won = _anyone_won(runs, map_name)
        metric = "win" if won else "return"
        by_pair = {(c["x"], c["y"]): c for c in comps[map_name][metric]}
        groups = stats.by_variant(runs, map_name)
        cells = []
        for x, y in HEADLINE:
            c = by_pair.get((x, y))
            shared = len(stats.shared_seeds(groups.get(x, []), groups.get(y, []))[0])
            if not shared:
                cells.append("no shared seed yet")
            elif c is None or c["n"] < PLANNED_SEEDS:
                cells.append(f"{_count(shared, 'shared seed')} so far")
            else:
                mark = "" if won else " (return)"
                cells.append(f"{interval_text(c['auc'])}: {_verdict(c['auc'])}{mark}")
        lines.append(f"| {map_name} | {plan.budget:,} | " + " | ".join(cells) + " |")
    return lines + [""]


def comparison_lines(comps: Sequence[Dict], metric: str) -> List[str]:
    """The comparisons' table and the sentences that read it."""
    if not comps:
        return ["No comparison yet: a comparison needs at least 2 seeds of both variants.", ""]
    final_word, auc_word = METRIC_WORDS[metric]
    lines = [f"| comparison | shared seeds | P(X > Y), {final_word} | P(X > Y), {auc_word} |", "|---|---|---|---|"]
    for c in comps:
        lines.append(f"| {c['x']} > {c['y']} | {c['n']} | {interval_text(c['final'])} | {interval_text(c['auc'])} |")
    lines += ["", "What the data shows on this map:" if metric == "win" else "What the returns show:", ""]
    early = [c for c in comps if c["n"] < PLANNED_SEEDS]
    for c in comps:
        if c["n"] >= PLANNED_SEEDS:
            lines.append(
                f"- {reading(c['x'], c['y'], c['final'], final_word, c['n'], c['final_same'])} "
                f"{reading(c['x'], c['y'], c['auc'], auc_word, c['n'], c['auc_same'])}"
            )
    if early:
        # from 2 seeds whose order agrees the interval is [1.00, 1.00], so these get no sentence of their own
        pairs = ", ".join(f"{c['x']} > {c['y']} ({c['n']})" for c in early)
        lines.append(
            f"- Not read yet, fewer than {PLANNED_SEEDS} shared seeds (how many in brackets): {pairs}. "
            "Their rows above are what those seeds give."
        )
    return lines + [""]


def plot_map(
    runs: Sequence[stats.Run], map_name: str, path: Path, plan: MapPlan, references: Sequence[Dict[str, str]] = ()
) -> None:
    """Two rows: the greedy win rate and the greedy return against env steps, one column per algorithm;
    the scripted references as dashed lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = stats.by_variant(runs, map_name)
    x = np.arange(0, plan.budget + 1, plan.eval_every)
    fig, axes = plt.subplots(2, 2, figsize=(12, 8), sharey="row", sharex=True)
    for row, (metric, ylabel, ylim) in enumerate(
        (("win", "greedy win rate", (-0.02, 1.02)), ("return", "greedy team return (20: a clean win)", (-0.4, 22.0)))
    ):
        for ax, algo in zip(axes[row], ("MAPPO", "QMIX")):
            for name in MAIN_VARIANTS:
                if algo not in name or name not in groups:
                    continue
                mean, low, high = stats.mean_band(groups[name], x, metric)
                (line,) = ax.plot(x, mean, label=f"{name} ({_count(len(groups[name]), 'seed')})")
                ax.fill_between(x, low, high, color=line.get_color(), alpha=0.15)
            for ref, style in zip(references, ("--", ":")):
                level = float(ref["win_rate" if metric == "win" else "return_mean"])
                ax.axhline(level, color="grey", linestyle=style, linewidth=1, label=f"scripted {ref['policy']}")
            ax.set(title=f"{map_name}: {algo} family", ylim=ylim)
            ax.grid(alpha=0.3)
            if ax.lines:
                ax.legend(fontsize=8, loc="lower right")
        axes[row][0].set_ylabel(f"{ylabel}\n(mean, 95% bootstrap band)")
    for ax in axes[1]:
        ax.set_xlabel("env steps")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def sweep_points(runs: Sequence[stats.Run]) -> Dict[str, List[Tuple[float, List[stats.Run]]]]:
    groups = stats.by_variant(runs, SWEEP_MAP)
    out: Dict[str, List[Tuple[float, List[stats.Run]]]] = {}
    for base in ("U-MAPPO", "U-QMIX"):
        pts = [(lam, groups[sweep_name(base, lam)]) for lam in LAMBDAS if sweep_name(base, lam) in groups]
        if pts:
            out[base] = pts
    return out


def plot_sweep(points, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    for ax, key in zip(axes, ("final", "auc")):
        for base, pts in points.items():
            est = stats.iqm_interval({str(lam): [getattr(r, key) for r in rs] for lam, rs in pts})
            xs = np.arange(len(pts))
            mid = np.array([est[str(lam)][0] for lam, _ in pts])
            err = np.array([[mid[i] - est[str(lam)][1], est[str(lam)][2] - mid[i]] for i, (lam, _) in enumerate(pts)])
            ax.errorbar(xs, mid, yerr=err.T, marker="o", capsize=3, label=base)
            ax.set_xticks(xs, [f"{lam:g}" for lam, _ in pts])
        ax.set(
            title=f"{SWEEP_MAP}: {'final win rate' if key == 'final' else 'AUC'} (IQM, 95% CI)",
            xlabel="lambda_I",
            ylim=(-0.02, 1.02),
        )
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def family(variant: str) -> str:
    """The algorithm family a variant belongs to ("MAPPO" or "QMIX"), as the page groups cell costs."""
    return "MAPPO" if "MAPPO" in variant else "QMIX"


def walls_by_kind(rows: Dict[str, Dict[str, str]]) -> Dict[Tuple[str, str], List[float]]:
    """{(map, family): [wall_s of each finished cell]} from manifest rows."""
    walls: Dict[Tuple[str, str], List[float]] = {}
    for row in rows.values():
        walls.setdefault((row["map"], family(row["variant"])), []).append(float(row["wall_s"]))
    return walls


def cell_cost(finished_rows: Dict[str, Dict[str, str]], map_name: str) -> str:
    """What a finished cell of the map cost in wall time (its manifest row's), per algorithm: one line."""
    walls = {fam: w for (m, fam), w in walls_by_kind(finished_rows).items() if m == map_name}
    parts = [
        f"{fam} family {np.median(w):,.0f} s ({min(w):,.0f}-{max(w):,.0f} s, {len(w)} cells)"
        for fam, w in sorted(walls.items())
    ]
    return (
        "Wall time per finished cell (the manifest's `wall_s`: one CPU per cell, with whatever else the "
        "machine ran), median (range): " + "; ".join(parts) + "."
    )


def time_left(missing: Sequence[Tuple[str, str, float]], rows: Dict[str, Dict[str, str]], concurrent: int) -> str:
    """One line: the wall time the missing cells should take, `concurrent` at a time. `missing`:
    (map, variant, fraction of the budget still to train) per cell; each costs the median finished
    cell of its map and family times that fraction. Cells of a kind with none finished are counted
    apart, not guessed."""
    walls = walls_by_kind(rows)
    known, unknown = 0.0, 0
    for map_name, variant, fraction in missing:
        w = walls.get((map_name, family(variant)))
        if w:
            known += float(np.median(w)) * fraction
        else:
            unknown += 1
    counted = len(missing) - unknown
    line = (
        f"estimated wall time left: {known / 3600 / max(concurrent, 1):.1f} h for {counted} cells, "
        f"{concurrent} at a time (each the median finished cell of its map and algorithm, less its checkpoint)"
    )
    if unknown:
        line += f"; {unknown} {'cell' if unknown == 1 else 'cells'} of a map and algorithm with no finished cell"
        line += " yet not counted"
    return line + "."


def _withdrawn(out: Path) -> List[str]:
    """The page's line on cells withdrawn from the study (kept beside it in `study_invalidated/`)."""
    manifest = out.parent / "study_invalidated" / "manifest.csv"
    if not manifest.exists():
        return []
    withdrawn = read_manifest(manifest.parent)
    again = len(withdrawn.keys() & read_manifest(out).keys())  # finished again since, with the fix
    missing = len(withdrawn) - again
    rerun = (
        [
            f"{again} of them have run again with the fix and are in the tables below; the other",
            f"{missing} are missing until they do.",
        ]
        if missing
        else ["All of them have run again with the fix and are in the tables below."]
    )
    return [
        f"**Withdrawn: {len(withdrawn)} cells** of the variants without the unified action space (MAPPO, MAPPO",
        "group, QMIX, QMIX group), run before af6a56f, which fixed a bug that showed those variants each",
        "step's own action as its last action in training (`benchmarks/results/study_invalidated/README.md`).",
        *rerun,
        "",
    ]


def render(
    out: Path, plots_dir: Optional[Path], plot_link: str = "results", plans: Optional[Dict[str, MapPlan]] = None
) -> str:
    """The page's markdown; draws the plots into `plots_dir` unless it is None. `plans` replaces the
    study's maps and plans (tests)."""
    plans = plans or PLANS
    runs = stats.load_runs(out)
    references = read_references(out)
    commits = sorted({r.commit for r in runs})
    # the manifest rows of the cells whose curve (CSV) is here, as load_runs reads them
    finished_rows = {name: row for name, row in read_manifest(out).items() if (out / f"{name}.csv").exists()}
    resumed = sum(int(row.get("resumes") or 0) > 0 for row in finished_rows.values())
    went_on = f" ({resumed} of them went on from a checkpoint after their run was stopped)" if resumed else ""
    lines = [
        "# Results: does a unified action space help global parameter sharing?",
        "",
        "Generated by `python benchmarks/study.py report` from the finished cells' CSVs in",
        "`benchmarks/results/study/` (one per map, variant and seed); do not edit by hand: a test",
        "regenerates this page from the committed CSVs and compares. How the study runs, its settings and",
        "its statistics: `docs/study.md`.",
        "",
        f"Cells finished: {len(runs)}{went_on}; code version(s) they ran on: {', '.join(commits) or 'none'}.",
        "",
        *_withdrawn(out),
        "**What these numbers are.** The embedded engine's battles (not StarCraft II's); the greedy",
        "policy's win rate over 32 evaluation episodes (whole rounds, one episode per env); final =",
        "the evaluation at the map's budget of simulated env steps; AUC = the area under the win-rate",
        "curve over the budget (1.0: every evaluation won from step 0). The same evaluations' team return",
        "(SMAC's scaled reward) is read the same way in a second table per map. Per variant, the interquartile",
        "mean (IQM) over seeds with a 95% stratified-bootstrap interval (rliable). P(X > Y) is the",
        "probability that a run of X beats a run of Y, over the seeds both have, with its 95% interval;",
        'an interval that contains 0.5 does not separate the two. "reproduce" is the command and "ran at"',
        "the commit(s) to run it at (`+dirty`: with the change `docs/study.md` names).",
        "",
    ]
    comps = {m: {metric: comparison_rows(runs, m, metric) for metric in stats.METRICS} for m in plans}
    lines += glance(runs, plans, comps)
    for map_name, plan in plans.items():
        groups = stats.by_variant(runs, map_name)
        planned = grid([map_name], MAIN_VARIANTS, range(PLANNED_SEEDS), sweep=map_name == SWEEP_MAP, plans=plans)
        done = len(finished(planned, out))
        if not groups:
            lines += [f"## {map_name}", "", f"Not run yet (0 of {len(planned)} planned cells).", ""]
            continue
        lines += [
            f"## {map_name}",
            "",
            f"{done} of {len(planned)} planned cells finished (8 variants x 5 seeds"
            + (", and the lambda_I sweep" if map_name == SWEEP_MAP else "")
            + f"); budget "
            f"{plan.budget:,} env steps, greedy evaluation every {plan.eval_every:,}.",
            "",
            cell_cost(finished_rows, map_name),
            "",
            *TABLE_HEAD,
            *variant_rows(runs, map_name, MAIN_VARIANTS),
            "",
        ]
        if map_name in references:
            lines += [reference_line(references[map_name]), ""]
        lines += battle_lines(runs, map_name, MAIN_VARIANTS)
        if not _anyone_won(runs, map_name):
            lines += [
                f"No run of any variant won a greedy evaluation battle on {map_name} within the budget, so",
                "its win-rate rows separate nothing; the returns below rank the runs by damage and kills.",
                "",
            ]
        lines += comparison_lines(comps[map_name]["win"], "win")
        lines += [
            "Greedy team return over the same evaluations: SMAC's scaled reward, damage dealt plus kills,",
            "20 for a battle won against no healing or shield regeneration. SMAC scores each step's absolute",
            "value, so a step in which the enemies heal or regenerate more than they lose scores too: won",
            "battles can pass 20, and longer ones score more. Among variants that all win, return ranks",
            "battle length, not skill.",
            "",
            *RETURN_HEAD,
            *variant_rows(runs, map_name, MAIN_VARIANTS, "return"),
            "",
            *comparison_lines(comps[map_name]["return"], "return"),
        ]
        if plots_dir is not None:
            plot_map(runs, map_name, plots_dir / f"{map_name}.png", plan, references.get(map_name, ()))
        lines += [f"![{map_name}: greedy win rate and return vs env steps]({plot_link}/{map_name}.png)", ""]
    points = sweep_points(runs)
    if points:
        names = list(dict.fromkeys(sweep_name(b, lam) for b in points for lam in LAMBDAS))
        lines += [
            f"## lambda_I sweep on {SWEEP_MAP}",
            "",
            "lambda_I 0 is the variant without CGI and 0.1 the default; both are the main table's cells.",
            "",
            *TABLE_HEAD,
            *variant_rows(runs, SWEEP_MAP, names),
            "",
        ]
        if plots_dir is not None:
            plot_sweep(points, plots_dir / "lambda_sweep.png")
        lines += [f"![lambda_I sweep]({plot_link}/lambda_sweep.png)", ""]
    lines += [
        "## What this does not show",
        "",
        "- StarCraft II: every battle here is the embedded engine's. Its rules follow SMAC's, but",
        "  policies and win rates on StarCraft II can differ.",
        "- Larger budgets: the papers train 2-10M env steps on the harder maps; a map's row says",
        "  nothing past its budget.",
        "- Other settings: every variant of an algorithm uses the same settings (`docs/study.md`),",
        "  tuned for none of them; another setting could rank them differently.",
        "- Winning from return: return rewards damage and kills along the way, so a variant with the",
        "  higher return is closer to winning only in that sense; on a map where none wins, the return",
        "  rows rank partial progress, not the claim the study tests.",
        "- Maps not yet run: a map without rows has no result, not a null result.",
        "",
    ]
    return "\n".join(lines)


def write_report(out: Path, page: Path) -> Path:
    """Render `out`'s cells into `page` and its plots; a folder that holds no study (a typo in --out)
    raises ValueError before anything is written, so a committed page is never replaced by an empty one."""
    from rllib_uas.study.run import require_results

    require_results(out)
    plots = page.parent / "results"
    plots.mkdir(parents=True, exist_ok=True)
    page.write_text(render(out, plots))
    return page
