"""Top-down RGB frames of one battle and GIF export (NumPy rasterizer, Pillow for the GIF)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

ALLY = np.array([40, 120, 230], dtype=np.float32)
ENEMY = np.array([220, 50, 40], dtype=np.float32)
HEALER_TINT = np.array([80, 230, 230], dtype=np.float32)
WALK, WALL = np.array([205, 200, 180], np.uint8), np.array([70, 65, 60], np.uint8)


def render_frame(engine, env_index: int = 0, scale: int = 16) -> np.ndarray:
    """[H, W, 3] uint8 image; y grows upwards as in SC2, the healthier a unit the brighter its disc."""
    t = engine.tables
    grid = t.grid  # [x, y]
    img = np.where(grid.T[::-1, :, None], WALK, WALL).repeat(scale, 0).repeat(scale, 1).copy()
    H, W = img.shape[:2]
    yy, xx = np.mgrid[0:H, 0:W]
    wx, wy = (xx + 0.5) / scale, (H - yy - 0.5) / scale
    e = env_index
    for u in range(engine.n_units):
        if not engine.alive[e, u]:
            continue
        x, y, r = engine.x[e, u], engine.y[e, u], max(float(t.radius[u]), 0.3)
        x0, x1 = int(max((x - r) * scale, 0)), int(min((x + r) * scale + 1, W))
        y0, y1 = int(max(H - (y + r) * scale, 0)), int(min(H - (y - r) * scale + 1, H))
        sub = (wx[y0:y1, x0:x1] - x) ** 2 + (wy[y0:y1, x0:x1] - y) ** 2 <= r * r
        base = ENEMY if t.is_enemy[u] else ALLY
        if t.is_healer[u]:
            base = (base + HEALER_TINT) / 2
        life = (engine.hp[e, u] + engine.sh[e, u]) / (t.hp_max[u] + t.sh_max[u])
        colour = (base * (0.35 + 0.65 * life)).astype(np.uint8)
        img[y0:y1, x0:x1][sub] = colour
    return img


def save_gif(frames: Sequence[np.ndarray], path: str | Path, fps: int = 8) -> Path:
    """Write frames as an animated GIF (loops forever)."""
    from PIL import Image

    if not frames:
        raise ValueError("save_gif: no frames to write; render at least one step first")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images = [Image.fromarray(f) for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
    return path
