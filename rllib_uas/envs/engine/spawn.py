"""Spawning units as SC2's CreateUnits does: on the requested point when it is free, else at the nearest
free walkable spot (compiled: a SMACv2 reset places every unit anew)."""

from __future__ import annotations

import math
from functools import lru_cache
from typing import List, Tuple

import numpy as np

from rllib_uas.envs.engine.jit import njit
from rllib_uas.envs.engine.units import UnitDataError


@lru_cache(maxsize=1)
def _spawn_offsets():
    """Candidate offsets around a spawn point, nearest first (ties by angle), up to 10 cells."""
    offsets = np.arange(-10.0, 10.0 + 1e-9, 0.125)
    ox, oy = np.meshgrid(offsets, offsets, indexing="ij")
    ox, oy = ox.ravel(), oy.ravel()
    order = np.lexsort((np.arctan2(oy, ox), np.hypot(ox, oy)))
    return ox[order], oy[order]


@njit
def _place_all(points, radius, air, ground, taken, ox, oy, grid):
    """Place units one by one at their `points` [K, 2] (or the first free candidate around, in the order of
    `ox`, `oy`): inside the map, on walkable ground when `ground[k]`, clear of every unit already placed on
    the same layer (`air`), including the `taken` [T, 4] (x, y, radius, air) ones. Returns positions [K, 2]
    and the index of the first unit with no free spot (-1 if all fit)."""
    X, Y = grid.shape
    K, T = points.shape[0], taken.shape[0]
    placed = np.empty((T + K, 4))
    for t in range(T):  # a loop, not a slice copy: numba's shape-mismatch message costs ~3 s of compile
        for c in range(4):
            placed[t, c] = taken[t, c]
    out = np.empty((K, 2))
    for u in range(K):
        px, py, r = points[u, 0], points[u, 1], radius[u]
        found = -1
        for k in range(ox.size):
            cx, cy = px + ox[k], py + oy[k]
            if not (cx >= 0 and cy >= 0 and int(cx) < X and int(cy) < Y):
                continue
            if ground[u] and not grid[int(cx), int(cy)]:
                continue
            clear = True
            for t in range(T + u):
                if (
                    placed[t, 3] == air[u]
                    and math.hypot(cx - placed[t, 0], cy - placed[t, 1]) < placed[t, 2] + r - 1e-6
                ):
                    clear = False
                    break
            if clear:
                found = k
                break
        if found < 0:
            return out, u
        out[u, 0], out[u, 1] = px + ox[found], py + oy[found]
        placed[T + u, 0], placed[T + u, 1], placed[T + u, 2], placed[T + u, 3] = out[u, 0], out[u, 1], r, air[u]
    return out, -1


def place_units(units, points, grid: np.ndarray, taken: List[Tuple[float, float, float, bool]]) -> np.ndarray:
    """SC2's CreateUnits, one unit per point in order: on the point when it is free, else at the nearest
    free walkable spot around it. `taken` (x, y, radius, air) grows with each placed unit."""
    ox, oy = _spawn_offsets()
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    radius = np.array([u.radius for u in units], dtype=np.float64)
    air = np.array([float(u.air) for u in units])
    ground = np.array([not (u.air or u.cliff_walker) for u in units])
    prior = np.array([(x, y, r, float(a)) for x, y, r, a in taken], dtype=np.float64).reshape(-1, 4)
    positions, failed = _place_all(pts, radius, air, ground, prior, ox, oy, grid)
    if failed >= 0:
        raise UnitDataError(f"no free spot to spawn {units[failed].name!r} near {tuple(pts[failed])}")
    for u, (x, y) in zip(units, positions):
        taken.append((float(x), float(y), u.radius, u.air))
    return positions
