"""Scripted reference policies on the study's maps: what a win rate or a return of the study means.

A learned policy's return of 6 says little until it sits beside what a fixed script scores on the
same map. `python benchmarks/study.py references` plays each study map with the scripted policies
of `rllib_uas.envs.scripted` (focus fire, which wins 3m1m_vs_4m and MMM every time, and uniform
random valid actions) through the StarCraft2Env API and writes `references.csv` beside the study's
CSVs; the results page reads it (it never plays a battle itself, so it stays a function of the
committed files).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np

EPISODES = 32  # as many as each greedy evaluation of the study
SEED = 0
FIELDS = [
    "map",
    "policy",
    "episodes",
    "seed",
    "win_rate",
    "return_mean",
    "dead_enemies_mean",
    "battle_length_mean",
    "commit",
]
FILE = "references.csv"


def _policies():
    from rllib_uas.envs.scripted import focus_fire_policy, random_policy

    return {"focus fire": focus_fire_policy, "random": random_policy}


POLICY_NAMES = ("focus fire", "random")


def play(map_name: str, policy: str, episodes: int = EPISODES, seed: int = SEED) -> Dict[str, float]:
    """One policy's `episodes` battles in a row on one env seeded `seed` (the policy's own draws from
    a generator seeded alike): win rate and the means of return, enemies killed and battle length."""
    from rllib_uas.envs.scripted import run_episode
    from rllib_uas.envs.smac_api import StarCraft2Env

    env = StarCraft2Env(map_name=map_name, seed=seed)
    rng = np.random.default_rng(seed)
    results = [run_episode(env, _policies()[policy], rng) for _ in range(episodes)]
    env.close()
    return dict(
        win_rate=float(np.mean([bool(r.get("battle_won", False)) for r in results])),
        return_mean=float(np.mean([r["return"] for r in results])),
        dead_enemies_mean=float(np.mean([r["dead_enemies"] for r in results])),
        battle_length_mean=float(np.mean([r["length"] for r in results])),
    )


def write_references(out: Path, maps: Sequence[str], commit: str) -> Path:
    """Play every (map, policy) and write `out/references.csv` whole (a temporary file renamed into
    place, so an interrupted run leaves the old file as it was)."""
    rows = [
        dict(map=m, policy=p, episodes=EPISODES, seed=SEED, commit=commit, **play(m, p))
        for m in maps
        for p in POLICY_NAMES
    ]
    out.mkdir(parents=True, exist_ok=True)
    path = out / FILE
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)
    return path


def read_references(out: Path) -> Dict[str, List[Dict[str, str]]]:
    """{map: [rows in file order]}; empty when the file is not there."""
    path = out / FILE
    if not path.exists():
        return {}
    refs: Dict[str, List[Dict[str, str]]] = {}
    for row in csv.DictReader(path.open()):
        refs.setdefault(row["map"], []).append(row)
    return refs


def reference_line(rows: Sequence[Dict[str, str]]) -> str:
    """The page's sentence for one map's references."""
    parts = [
        f"{r['policy']} wins {float(r['win_rate']):.2f} with return {float(r['return_mean']):.2f}, "
        f"{float(r['dead_enemies_mean']):.2f} enemies killed and battles of {float(r['battle_length_mean']):.1f} steps"
        for r in rows
    ]
    first = rows[0]
    return (
        f"Scripted references ({first['episodes']} battles from seed {first['seed']}, `rllib_uas.envs.scripted`, "
        f"at {first['commit']}): " + "; ".join(parts) + "."
    )
