"""The study's grid: (map, variant, seed) cells, each map's budget, and the settings every cell uses.

Variants of one algorithm share every setting but their switches (`rllib_uas.variants`): the study
tunes nothing per variant. Where an algorithm's defaults are not used, the table below says so, and
the same change applies to all its variants on that map.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, NamedTuple, Optional, Sequence

from rllib_uas.variants import VARIANTS, Variant, variant

MAIN_VARIANTS = ("U-MAPPO", "U-MAPPO w/o CGI", "MAPPO", "MAPPO group", "U-QMIX", "U-QMIX w/o CGI", "QMIX", "QMIX group")
LAMBDAS = (0.0, 0.01, 0.1, 0.5, 1.0)
SWEEP_MAP = "3m1m_vs_4m"
PLANNED_SEEDS = 5  # seeds per (map, variant) cell; the results page reads a comparison only from this many


@dataclass(frozen=True)
class MapPlan:
    budget: int  # simulated env steps per cell
    eval_every: int  # env steps between greedy evaluations (one at step 0 too)
    eval_episodes: int = 32
    # per algorithm ("mappo" / "qmix"), config changes from its defaults for every variant
    settings: Dict[str, Dict[str, Any]] = field(default_factory=dict)


# U-MAPPO on the small map: the quick start's batch (1,600 steps, 10 epochs, 16 envs) instead of
# MAPPO's SMAC default (3,200 steps, 5 epochs), with which no MAPPO variant wins within 60k steps
# there (BENCHMARKS.md); U-QMIX keeps PyMARL2's tuned defaults on every map
SMALL_MAPPO = dict(train_batch_size_per_learner=1600, minibatch_size=1600, num_epochs=10, num_envs_per_env_runner=16)
PLANS: Dict[str, MapPlan] = {
    "3m1m_vs_4m": MapPlan(150_000, 10_000, settings={"mappo": SMALL_MAPPO}),
    "MMM": MapPlan(1_000_000, 50_000, settings={"mappo": dict(num_epochs=15, num_envs_per_env_runner=32)}),
    "6m2m_vs_15m": MapPlan(1_000_000, 50_000, settings={"mappo": dict(num_envs_per_env_runner=32)}),
    "MMM2": MapPlan(2_000_000, 100_000, settings={"mappo": dict(num_epochs=15, num_envs_per_env_runner=32)}),
}
STUDY_MAPS = tuple(PLANS)


@functools.lru_cache(maxsize=None)
def _default_lambda(base: str) -> float:
    """The variant's lambda_I, from its algorithm's defaults (building a config costs milliseconds)."""
    return VARIANTS[base].config().cgi_coeff


def sweep_name(base: str, lam: float) -> str:
    """The lambda_I sweep reuses the main cells at 0 (w/o CGI) and 0.1 (the default)."""
    if lam == 0.0:
        return f"{base} w/o CGI"
    if lam == _default_lambda(base):
        return base
    return f"{base} lambda_I={lam:g}"


def sweep_variant(name: str) -> Variant:
    """A named variant, or a sweep point 'U-MAPPO lambda_I=0.5'."""
    if " lambda_I=" in name:
        base, lam = name.split(" lambda_I=")
        return Variant(name, variant(base).algorithm, {**variant(base).switches, "cgi_coeff": float(lam)})
    return variant(name)


@dataclass(frozen=True)
class Cell:
    map_name: str
    variant: str
    seed: int
    # the map's plan travels with the cell into Tune's worker processes (tests give a tiny one)
    plan: MapPlan = field(default=None, compare=False)

    def __post_init__(self):
        if self.plan is None:
            object.__setattr__(self, "plan", plan_for(self.map_name, PLANS))

    @property
    def name(self) -> str:
        return f"{self.map_name}__{sweep_variant(self.variant).slug}__seed{self.seed}"

    def config(self):
        """The cell's AlgorithmConfig: the variant on the map with the plan's settings, in-process."""
        v = sweep_variant(self.variant)
        settings = dict(self.plan.settings.get(v.algorithm, {}))
        envs = settings.pop("num_envs_per_env_runner", None)
        config = (
            v.config()
            .environment(env_config={"map_name": self.map_name})
            .env_runners(num_env_runners=0)
            .learners(num_learners=0, num_cpus_per_learner=1)
            .training(**settings)
            .debugging(seed=self.seed)
        )
        if envs is not None:
            config.env_runners(num_envs_per_env_runner=envs)
        return config

    def fingerprint(self) -> str:
        """What makes two runs of this cell comparable: plan and switches (not the code version,
        which the manifest records separately)."""
        v = sweep_variant(self.variant)
        plan = self.plan
        blob = json.dumps(
            dict(
                budget=plan.budget,
                eval_every=plan.eval_every,
                eval_episodes=plan.eval_episodes,
                settings=plan.settings.get(v.algorithm, {}),
                switches=v.switches,
                algorithm=v.algorithm,
            ),
            sort_keys=True,
        )
        return hashlib.sha1(blob.encode()).hexdigest()[:12]


def plan_for(map_name: str, plans: Dict[str, MapPlan]) -> MapPlan:
    if map_name not in plans:
        raise ValueError(f"map {map_name!r} has no study plan; study maps: {', '.join(plans)}")
    return plans[map_name]


def grid(
    maps: Sequence[str],
    variants: Sequence[str],
    seeds: Sequence[int],
    sweep: bool = False,
    plans: Optional[Dict[str, MapPlan]] = None,
) -> List[Cell]:
    """Seed-major order: every variant's seed k before any seed k+1, so a partial grid compares
    variants on the same seeds. `plans` replaces the study's map plans (tests)."""
    plans = plans or PLANS
    for m in maps:
        plan_for(m, plans)  # unknown maps fail before any cell
    names = list(variants)
    for name in names:
        sweep_variant(name)  # unknown names fail here
    cells: List[Cell] = []
    for seed in seeds:
        for m in maps:
            extra = (
                [sweep_name(base, lam) for base in ("U-MAPPO", "U-QMIX") for lam in LAMBDAS]
                if sweep and m == SWEEP_MAP
                else []
            )
            for name in dict.fromkeys(names + extra):
                cells.append(Cell(m, name, int(seed), plans[m]))
    return cells


class CellKey(NamedTuple):
    map_name: str
    variant: str
    seed: int


def parse_cell(name: str) -> Optional[CellKey]:
    """(map, variant, seed) of the cell a CSV file stem names, or None."""
    parts = name.split("__")
    if len(parts) != 3 or not parts[2].startswith("seed"):
        return None
    by_slug = _variants_by_slug()
    if parts[1] not in by_slug:
        return None
    return CellKey(parts[0], by_slug[parts[1]], int(parts[2][4:]))


@functools.lru_cache(maxsize=None)
def _variants_by_slug() -> Dict[str, str]:
    """File-name slug -> variant name, for every named variant and sweep point."""
    names = list(VARIANTS) + [sweep_name(b, lam) for b in ("U-MAPPO", "U-QMIX") for lam in LAMBDAS]
    return {sweep_variant(v).slug: v for v in names}
