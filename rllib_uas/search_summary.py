"""A search's result per searched value, over its seeds: mean, 95% interval, the best value named.

Trials that differ only in `seed` are one value of the search. The table is ordered by mean (best
first); values whose every trial has no finite result come last. Ties in the mean are broken by the
higher lower bound of the interval, then by the order the values were searched in, and the line naming
the best says when it won a tie.
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Sequence, Tuple

from scipy import stats

SEED_KEYS = ("seed", "env_config.seed")


def mean_interval(values: Sequence[float], level: float = 0.95) -> Tuple[float, float, float]:
    """(mean, low, high) with Student's t interval over the finite values; low/high are NaN below 2."""
    finite = [float(v) for v in values if math.isfinite(float(v))]
    if not finite:
        return math.nan, math.nan, math.nan
    n = len(finite)
    mean = sum(finite) / n
    if n < 2:
        return mean, math.nan, math.nan
    sd = math.sqrt(sum((v - mean) ** 2 for v in finite) / (n - 1))
    half = stats.t.ppf(0.5 + level / 2, n - 1) * sd / math.sqrt(n)
    return mean, mean - half, mean + half


def group_by_value(trials: Sequence[Tuple[Dict[str, Any], float]], keys: Sequence[str]) -> List[Dict[str, Any]]:
    """[{value: {key: v}, n, finite, mean, low, high}] per distinct value of `keys` (seeds pooled), best first."""
    groups: Dict[Tuple, List[float]] = {}
    for params, result in trials:
        groups.setdefault(tuple(params.get(k) for k in keys), []).append(result)
    rows = []
    for order, (value, results) in enumerate(groups.items()):
        mean, low, high = mean_interval(results)
        rows.append(
            {
                "value": dict(zip(keys, value)),
                "n": len(results),
                "order": order,
                "finite": sum(math.isfinite(float(r)) for r in results),
                "mean": mean,
                "low": low,
                "high": high,
            }
        )

    def rank(row):
        nan = not math.isfinite(row["mean"])
        low = row["low"] if math.isfinite(row["low"]) else -math.inf
        return (nan, -row["mean"] if not nan else 0.0, -low, row["order"])

    return sorted(rows, key=rank)


def format_table(rows: List[Dict[str, Any]], metric: str) -> List[str]:
    """The table's lines, and a last line naming the best value (and whether it won a tie)."""
    if not rows:
        return []
    keys = list(rows[0]["value"])
    header = keys + ["trials", f"mean {metric}", "95% t-interval"]
    body = []
    for r in rows:
        interval = f"[{r['low']:.3f}, {r['high']:.3f}]" if math.isfinite(r["low"]) else "-"
        mean = f"{r['mean']:.3f}" if math.isfinite(r["mean"]) else "nan"
        body.append([_short(r["value"][k]) for k in keys] + [f"{r['finite']}/{r['n']}", mean, interval])
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(b, widths)) for b in body]
    best = rows[0]
    if math.isfinite(best["mean"]):
        named = ", ".join(f"{k}={_short(v)}" for k, v in best["value"].items())
        tied = [r for r in rows[1:] if r["mean"] == best["mean"]]
        note = " (tied on the mean; the higher interval bound, then the search order decided)" if tied else ""
        lines.append(f"best: {named}, mean {metric} {best['mean']:.3f} over {best['finite']} seed(s){note}")
    return lines


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
