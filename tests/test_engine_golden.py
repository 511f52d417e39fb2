"""The engine reproduces the golden trajectories recorded from the NumPy reference engine.

Integers (masks, terminations, dead counts) exactly; obs, state and rewards within 1e-5. The
fixtures and how to regenerate them: tests/golden_trajectories.py.
"""

import numpy as np
import pytest
from golden_trajectories import GOLDEN_DIR, SHIPPED_MAPS, load, play_focus, play_random

EXACT = ("avail", "terminated", "won", "dead_allies", "dead_enemies", "reset_step")


def _compare(kind: str, golden: dict, got: dict) -> None:
    assert got["obs"].shape[0] == golden["terminated"].shape[0]
    got = {**got, "obs": got["obs"][golden["obs_steps"]]}
    for k, want in golden.items():
        if k in ("actions", "obs_steps"):
            continue
        have = got[k]
        assert have.shape == want.shape, f"{kind}/{k}: shape {have.shape} != {want.shape}"
        if k in EXACT or k in ("timeout", "reset_env", "reset_avail") or want.dtype.kind in "biu":
            bad = np.argwhere(have != want)
            assert bad.size == 0, f"{kind}/{k} differs first at index {bad[0].tolist()}"
        else:
            err = np.abs(have.astype(np.float64) - want)
            assert err.max(initial=0.0) <= 1e-5, (
                f"{kind}/{k} differs by {err.max():.3g} first at index {np.argwhere(err > 1e-5)[0].tolist()}"
            )


@pytest.mark.parametrize("map_name", SHIPPED_MAPS)
def test_golden_trajectories(map_name):
    golden = load(map_name)
    _compare("random", golden["random"], play_random(map_name, golden["random"]["actions"]))
    _compare("focus", golden["focus"], play_focus(map_name, golden["focus"]["actions"]))


def test_fixtures_cover_resets_deaths_time_outs_and_wins():
    """What the fixtures must contain for the check above to mean something."""
    no_enemy_deaths = []
    assert sorted(p.stem for p in GOLDEN_DIR.glob("*.npz")) == SHIPPED_MAPS
    for m in SHIPPED_MAPS:
        r, f = load(m)["random"], load(m)["focus"]
        assert r["timeout"].sum() >= 1 and len(r["reset_step"]) >= 2, m  # time-outs, partial resets
        assert max(r["dead_allies"].max(), f["dead_allies"].max()) > 0, m
        if max(r["dead_enemies"].max(), f["dead_enemies"].max()) == 0:
            no_enemy_deaths.append(m)
    assert no_enemy_deaths == ["2m_vs_1z", "2s_vs_1sc"]  # kiting maps: neither policy kills there
    assert sum(int(load(m)["focus"]["won"].sum()) for m in ("3m", "8m", "MMM", "bane_vs_bane")) >= 10
