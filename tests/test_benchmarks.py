"""The engine benchmark's harness: the workload's random policy, the engine it drives, and bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from rllib_uas.envs.engine import bench
from rllib_uas.envs.engine.vec_smac import VectorizedSMAC

ROOT = Path(__file__).resolve().parents[1]


def test_random_valid_actions_are_uniform_over_the_available_ones():
    avail = np.zeros((20_000, 7), np.int32)
    avail[:, [1, 3, 4]] = 1
    drawn = bench.random_valid_actions(avail, np.random.default_rng(0))
    counts = np.bincount(drawn, minlength=7)
    assert counts[[0, 2, 5, 6]].sum() == 0
    assert np.allclose(counts[[1, 3, 4]] / 20_000, 1 / 3, atol=0.015)  # about 5 standard errors


def test_the_harness_drives_the_engine_it_is_given():
    built = []

    class Recording(VectorizedSMAC):
        def __init__(self, *args, **kwargs):
            built.append(kwargs)
            super().__init__(*args, **kwargs)

    wall, cpu = bench.engine_throughput(
        "3m", 4, seconds=0.2, engine=SimpleNamespace(VectorizedSMAC=Recording), streams="per_env"
    )
    assert wall > 0 and cpu > 0
    assert built == [dict(n_envs=4, seed=0, engine_streams="per_env", engine_threads=1)]


def test_a_smax_python_without_jaxmarl_is_refused_before_any_row():
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "engine_throughput.py"), "--smax-python", sys.executable],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert "cannot import jaxmarl" in out.stderr and "pip install jaxmarl" in out.stderr
    assert "| map |" not in out.stdout
