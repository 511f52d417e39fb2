"""Ground pathfinding on the walkability grid: all-pairs geodesic distances and steering.

SC2 units path around cliffs and walls; straight-line movement would pin them against the first
obstacle (e.g. 2c_vs_64zg's ravine bar). Maps whose walkable area is convex skip this entirely.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Optional

import numpy as np

from rllib_uas.envs.engine.jit import njit
from rllib_uas.envs.engine.maps import load_terrain

NEIGHBOURS = np.array([(1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (1, -1), (-1, 1), (-1, -1)])
DETOUR_SLACK = 0.5  # cells: a geodesic this much longer than the free-grid distance means an obstacle


def _octile(dx, dy):
    """Shortest 8-connected grid distance with no obstacles."""
    dx, dy = np.abs(dx), np.abs(dy)
    return np.maximum(dx, dy) + (np.sqrt(2) - 1) * np.minimum(dx, dy)


@dataclass(frozen=True)
class Geodesic:
    dist: np.ndarray  # [N + 1, N + 1] float32 cell-to-cell geodesic distance; index N = "no cell" (inf)
    nbr: np.ndarray  # [N, 8] neighbour cell indices, N where not walkable / off-map
    size_y: int


def build_geodesic(grid: np.ndarray) -> Optional[Geodesic]:
    """Geodesic distances over 8-connected walkable cells, or None if not needed.

    Diagonal steps between walkable cells are allowed even past blocked corners, as unit movement
    (which only checks the destination cell) allows them: SMAC's corridor choke is such a diagonal.
    """
    if is_full_rectangle(grid):
        return None  # most SMAC maps: a band of open ground, where the octile path never leaves it
    return _dijkstra_geodesic(grid)


def is_full_rectangle(grid: np.ndarray) -> bool:
    """Whether the walkable cells fill their bounding box (then every straight path between two of them
    stays on walkable ground, so no geodesic is needed)."""
    cells = np.argwhere(grid)
    if cells.size == 0:
        return False
    (x0, y0), (x1, y1) = cells.min(0), cells.max(0)
    return bool(grid[x0 : x1 + 1, y0 : y1 + 1].all())


def _dijkstra_geodesic(grid: np.ndarray) -> Optional[Geodesic]:
    """build_geodesic's general case: all-pairs shortest paths over the walkable cells."""
    # imported here: scipy.sparse brings about 20 MiB of modules that a battle never uses after this
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import shortest_path

    X, Y = grid.shape
    N = X * Y
    xs, ys = np.meshgrid(np.arange(X), np.arange(Y), indexing="ij")
    xs, ys = xs.ravel(), ys.ravel()
    walk = grid.ravel()
    nbr = np.full((N, 8), N, dtype=np.int64)
    rows, cols, w = [], [], []
    for k, (dx, dy) in enumerate(NEIGHBOURS):
        nx, ny = xs + dx, ys + dy
        ok = (nx >= 0) & (ny >= 0) & (nx < X) & (ny < Y)
        ok[ok] &= walk[ok] & grid[nx[ok], ny[ok]]
        nbr[ok, k] = nx[ok] * Y + ny[ok]
        src = np.flatnonzero(ok)
        rows.append(src)
        cols.append(nbr[src, k])
        w.append(np.full(src.size, np.hypot(dx, dy)))
    graph = coo_matrix((np.concatenate(w), (np.concatenate(rows), np.concatenate(cols))), shape=(N, N)).tocsr()
    dist = shortest_path(graph, method="D", directed=False).astype(np.float32)
    widx = np.flatnonzero(walk)
    sub = dist[np.ix_(widx, widx)]
    straight = _octile(xs[widx][:, None] - xs[widx][None, :], ys[widx][:, None] - ys[widx][None, :])
    if not np.any(np.isfinite(sub) & (sub > straight + DETOUR_SLACK)):
        return None  # convex walkable area: straight lines are always free
    padded = np.full((N + 1, N + 1), np.inf, dtype=np.float32)
    padded[:N, :N] = dist
    return Geodesic(padded, nbr, Y)


@njit
def steer(dist, nbr, size_y, x, y, gx, gy, dx, dy):
    """Direction (dx, dy) for a unit at (x, y) heading to (gx, gy): straight, or to the next cell of the
    geodesic when the straight line is blocked. `dist`, `nbr`, `size_y` are a Geodesic's fields."""
    X = nbr.shape[0] // size_y
    cx, cy = min(max(np.int64(x), 0), X - 1), min(max(np.int64(y), 0), size_y - 1)
    tx, ty = min(max(np.int64(gx), 0), X - 1), min(max(np.int64(gy), 0), size_y - 1)
    c, g = cx * size_y + cy, tx * size_y + ty
    d = dist[g, c]
    ox, oy = abs(cx - tx), abs(cy - ty)
    octile = max(ox, oy) + (np.sqrt(2.0) - 1) * min(ox, oy)
    if not (np.isfinite(d) and d > octile + DETOUR_SLACK):
        return dx, dy
    best, best_d = nbr[c, 0], dist[g, nbr[c, 0]]
    for k in range(1, 8):
        v = dist[g, nbr[c, k]]
        if v < best_d:
            best, best_d = nbr[c, k], v
    return (np.float32(best // size_y + 0.5 - np.float64(x)), np.float32(best % size_y + 0.5 - np.float64(y)))


@lru_cache(maxsize=None)
def geodesic_for_terrain(terrain: str) -> Optional[Geodesic]:
    return build_geodesic(load_terrain(terrain))
