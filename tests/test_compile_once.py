"""The engine compiled once per checkout: the lock other processes wait on, the background compile the
CLI starts, and which experiments it starts one for."""

import os
import subprocess
import sys
import time

import pytest

from rllib_uas.envs.engine import compile_once
from rllib_uas.experiment import engine_battles
from rllib_uas.file_lock import open_lock

BUILD = "from rllib_uas.envs.engine.vec_smac import VectorizedSMAC; VectorizedSMAC('3m', n_envs=2); print('built')"


def test_a_process_builds_its_first_battle_only_once_the_compile_lock_is_free():
    with compile_lock_held():
        proc = subprocess.Popen([sys.executable, "-c", BUILD], stdout=subprocess.PIPE, text=True)
        # with a warm cache the build takes about a second; held, it must still wait after three
        deadline = time.time() + 3.0
        while time.time() < deadline:
            assert proc.poll() is None, "built while another process held the compile lock"
            time.sleep(0.2)
    out, _ = proc.communicate(timeout=300)  # released: it goes on (compiling if the cache is cold)
    assert proc.returncode == 0 and out.strip() == "built"


class compile_lock_held:
    """The lock, held by this test process (a separate open file, so the test's own builds are not
    what is tested)."""

    def __enter__(self):
        self._cm = compile_once.compile_lock()
        self._cm.__enter__()

    def __exit__(self, *exc):
        self._cm.__exit__(*exc)


def test_without_a_usable_lock_file_the_battle_is_built_anyway(tmp_path):
    with compile_once.compile_lock(str(tmp_path / "missing-dir" / "x.lock")):
        pass  # neither created nor opened: no lock, no error
    assert open_lock(str(tmp_path / "missing-dir" / "x.lock")) is None


def test_the_dry_run_calls_every_kernel_of_a_step_and_the_features_part_skips_the_battle_kernel(monkeypatch):
    from rllib_uas.envs.engine import battle

    monkeypatch.setattr(compile_once, "_ready", {(False, "shared")})  # as main() does: no nested dry run
    calls = []
    real = battle.step_envs
    monkeypatch.setattr(battle, "step_envs", lambda *a: calls.append(1) or real(*a))
    compile_once.dry_run("3m", part="features")
    assert calls == []
    compile_once.dry_run("3m")
    assert len(calls) == 3  # the stop orders first (the longest compile), then the two steps


def test_each_kind_of_battle_takes_the_lock_once_per_process(monkeypatch):
    runs = []
    monkeypatch.setattr(compile_once, "_ready", set())
    monkeypatch.setattr(compile_once, "dry_run", lambda *a: runs.append(a))
    for name in ("3m", "MMM2", "3m", "terran_5_vs_5", "protoss_5_vs_5"):
        compile_once.ensure_compiled(name)
    compile_once.ensure_compiled("3m", streams="per_env")
    # every fixed map shares its kernels; scenarios and per-env streams compile their own versions
    assert [a[0] for a in runs] == ["3m", "terran_5_vs_5", "3m"]


def test_a_failed_dry_run_is_tried_again_by_the_next_battle(monkeypatch):
    monkeypatch.setattr(compile_once, "_ready", set())

    def fail(*a):
        raise RuntimeError("no disk")

    monkeypatch.setattr(compile_once, "dry_run", fail)
    with pytest.raises(RuntimeError):
        compile_once.ensure_compiled("3m")
    assert compile_once._ready == set()


def test_the_module_refuses_an_odd_argument_list_with_exit_2():
    res = subprocess.run(
        [sys.executable, "-m", "rllib_uas.envs.engine.compile_once", "3m"], capture_output=True, text=True
    )
    assert res.returncode == 2 and "usage" in res.stderr


@pytest.mark.parametrize(
    "spec, battles",
    [
        ({"run": "U-MAPPO", "config": {"env_config": {"map_name": "3m1m_vs_4m"}}}, [("3m1m_vs_4m", "shared")]),
        ({"run": "U-QMIX", "config": {}}, [("3m", "shared")]),  # the env's default map
        (
            {
                "run": "U-MAPPO",
                "env": "smac",
                "config": {"env_config": {"map_name": "MMM", "engine_streams": "per_env"}},
            },
            [("MMM", "per_env")],
        ),
        ({"run": "U-MAPPO", "config": {"env_config": {"map_name": "3m", "backend": "sc2"}}}, []),
        ({"run": "U-MAPPO", "config": {"env_config": {"map_name": {"grid_search": ["3m", "MMM"]}}}}, []),
        ({"run": "PPO", "env": "CartPole-v1", "config": {}}, []),
    ],
)
def test_the_cli_compiles_ahead_only_for_fixed_embedded_battles(spec, battles):
    assert engine_battles([spec]) == battles


KERNEL_RUN = """
import sys
sys.path.insert(0, sys.argv[1])
if sys.argv[2] == "drop":
    from rllib_uas.envs.engine.compile_once import drop_stale_kernels
    drop_stale_kernels(cache_dir=sys.argv[1] + "/kern/__pycache__", package_dir=sys.argv[1] + "/kern")
from kern.kernel import value
print(value())
"""


def _kernel_value(root, mode):
    out = subprocess.run(
        [sys.executable, "-c", KERNEL_RUN, str(root), mode], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    return int(out.stdout.strip())


def test_a_cached_kernel_is_recompiled_when_only_a_file_it_inlines_changed(tmp_path):
    # the engine's layout in small: a kernel in one file inlining a helper from another (as the step
    # kernel inlines ai.py's enemy_decide), both cached by numba next to the sources
    pkg = tmp_path / "kern"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    helper = "from rllib_uas.envs.engine.jit import inline\n\n@inline\ndef helper():\n    return {}\n"
    (pkg / "helper.py").write_text(helper.format(1))
    kernel = "from rllib_uas.envs.engine.jit import njit\nfrom kern.helper import helper\n\n"
    (pkg / "kernel.py").write_text(kernel + "@njit\ndef value():\n    return helper()\n")
    assert _kernel_value(tmp_path, "plain") == 1
    (pkg / "helper.py").write_text(helper.format(2))
    # numba alone checks the kernel against kernel.py's stamp only, and runs the old helper
    assert _kernel_value(tmp_path, "plain") == 1
    assert _kernel_value(tmp_path, "drop") == 2  # the cache of older sources dropped: compiled anew
    assert (pkg / "__pycache__" / "kernel_sources.sha1").read_text().strip() == compile_once.sources_digest(str(pkg))
    cached = {p.name: p.stat().st_mtime_ns for p in (pkg / "__pycache__").iterdir() if p.suffix in (".nbi", ".nbc")}
    assert cached
    assert _kernel_value(tmp_path, "drop") == 2  # sources unchanged: the cache is kept and loaded ...
    kept = {p.name: p.stat().st_mtime_ns for p in (pkg / "__pycache__").iterdir() if p.suffix in (".nbi", ".nbc")}
    assert kept == cached  # ... not deleted, not rewritten


def test_the_engine_checks_its_sources_before_its_first_battle(monkeypatch):
    checks = []
    monkeypatch.setattr(compile_once, "_ready", set())
    monkeypatch.setattr(compile_once, "dry_run", lambda *a: None)
    monkeypatch.setattr(compile_once, "drop_stale_kernels", lambda: checks.append(1))
    compile_once.ensure_compiled("3m")
    assert checks == [1]


def test_the_sources_check_looks_where_numba_caches(tmp_path):
    code = "from rllib_uas.envs.engine.compile_once import kernel_cache_dir; print(kernel_cache_dir())"
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().startswith(str(tmp_path))
    assert compile_once.kernel_cache_dir() == os.path.join(os.path.dirname(compile_once.__file__), "__pycache__")
