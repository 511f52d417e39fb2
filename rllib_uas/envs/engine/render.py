"""Top-down RGB frames of one battle and GIF export (NumPy rasterizer, Pillow for text and the GIF).

`render_frame` is the map alone (what `StarCraft2Env.render()` returns): terrain, units as discs in
their side's colour (dimmer as they lose health), each marked with its type's letters, and health
and shield bars above them. `annotated_frame` adds what a person watching a replay needs: the map
name and step counter on top, a legend of the markers below, and on an episode's last frame a
banner with the outcome.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional, Sequence

import numpy as np

ALLY = np.array([40, 120, 230], dtype=np.float32)
ENEMY = np.array([220, 50, 40], dtype=np.float32)
HEALER_TINT = np.array([80, 230, 230], dtype=np.float32)
WALK, WALL = np.array([205, 200, 180], np.uint8), np.array([70, 65, 60], np.uint8)
HEALTH_BAR, SHIELD_BAR, BAR_BACK = (60, 200, 60), (90, 200, 240), (40, 40, 40)
TEXT, PANEL = (20, 20, 20), (245, 243, 235)
OUTCOMES = {
    "won": ((40, 150, 60), "VICTORY"),
    "lost": ((190, 40, 40), "DEFEAT"),
    "draw": ((120, 120, 120), "DRAW"),
    "timeout": ((200, 140, 30), "TIME OUT"),
}


def _font(size: int):
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


# SC2's own hotkey letters for the shipped units (the Medivac as a healer's cross)
UNIT_MARKS = {
    "marine": "M",
    "marauder": "R",
    "medivac": "+",
    "stalker": "S",
    "zealot": "Z",
    "colossus": "C",
    "hydralisk": "H",
    "zergling": "z",
    "baneling": "B",
    "spine_crawler": "SC",
}


def type_markers(names: Sequence[str]) -> Dict[str, str]:
    """Short marks per unit type: the shipped units' `UNIT_MARKS`; for other types the first letter, or
    the first two where it is taken."""
    names = sorted(set(names))
    marks: Dict[str, str] = {n: UNIT_MARKS[n] for n in names if n in UNIT_MARKS}
    for name in (n for n in names if n not in UNIT_MARKS):
        if name[0].upper() not in marks.values() and all(n[0] != name[0] for n in names if n != name):
            marks[name] = name[0].upper()
            continue
        for ch in name[1:]:
            mark = name[0].upper() + ch
            if mark not in marks.values():
                marks[name] = mark
                break
        else:
            marks[name] = name[:3]
    return marks


def render_frame(engine, env_index: int = 0, scale: int = 16) -> np.ndarray:
    """[H, W, 3] uint8 image of the map; y grows upwards as in SC2."""
    from PIL import Image, ImageDraw

    t = engine.tables_of(env_index)
    grid = t.grid  # [x, y]
    img = np.where(grid.T[::-1, :, None], WALK, WALL).repeat(scale, 0).repeat(scale, 1).copy()
    H, W = img.shape[:2]
    yy, xx = np.mgrid[0:H, 0:W]
    wx, wy = (xx + 0.5) / scale, (H - yy - 0.5) / scale
    e = env_index
    live = [u for u in range(engine.n_units) if engine.alive[e, u]]
    for u in live:
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
    image = Image.fromarray(img)
    draw = ImageDraw.Draw(image)
    marks = type_markers([unit.name for unit in t.units])
    font = _font(max(8, int(scale * 0.6)))
    for u in live:
        cx, cy, r = engine.x[e, u] * scale, H - engine.y[e, u] * scale, max(float(t.radius[u]), 0.3) * scale
        draw.text((cx, cy), marks[t.units[u].name], fill=(255, 255, 255), font=font, anchor="mm")
        # bars above the disc: health, and shields above it for units that have them
        width, top = max(2 * r, scale * 0.8), cy - r - 4
        bars = ((engine.hp[e, u], t.hp_max[u], HEALTH_BAR), (engine.sh[e, u], t.sh_max[u], SHIELD_BAR))
        for value, cap, fill in bars:
            if cap <= 0:
                continue
            left = cx - width / 2
            draw.rectangle([left, top - 2, left + width, top], fill=BAR_BACK)
            draw.rectangle([left, top - 2, left + width * float(value) / float(cap), top], fill=fill)
            top -= 4
    return np.asarray(image)


def outcome_of(won: bool, timed_out: bool, dead_allies: int, dead_enemies: int, n_agents: int, n_enemies: int) -> str:
    """'won', 'timeout', 'draw' (both sides wiped out) or 'lost': the banner of a finished episode."""
    if won:
        return "won"
    if timed_out:
        return "timeout"
    if dead_allies >= n_agents and dead_enemies >= n_enemies:
        return "draw"
    return "lost"


def annotated_frame(
    engine, env_index: int = 0, step: int = 0, outcome: Optional[str] = None, scale: int = 16
) -> np.ndarray:
    """The map frame with a header (map, step counter, units alive per side), a legend of the unit
    markers and bars, and, when `outcome` is given, a banner with the episode's result."""
    from PIL import Image, ImageDraw

    t = engine.tables_of(env_index)
    frame = render_frame(engine, env_index, scale)
    H, W = frame.shape[:2]
    marks = type_markers([unit.name for unit in t.units])
    font, big = _font(12), _font(max(18, W // 12))
    sides = ((False, ALLY, "allies"), (True, ENEMY, "enemies"))
    legend_rows = [
        sorted({u.name for i, u in enumerate(t.units) if bool(t.is_enemy[i]) == enemy}) for enemy, _, _ in sides
    ]
    header, row_h = 20, 16
    footer = row_h * (len(sides) + 1) + 6
    canvas = Image.new("RGB", (W, H + header + footer), PANEL)
    canvas.paste(Image.fromarray(frame), (0, header))
    draw = ImageDraw.Draw(canvas)
    alive = engine.alive[env_index]
    n_a = t.n_agents
    draw.text((6, 4), f"{engine.spec.name}   step {step}", fill=TEXT, font=font)
    counts = f"alive: {int(alive[:n_a].sum())}/{n_a} allies, {int(alive[n_a:].sum())}/{t.n_enemies} enemies"
    draw.text((W - 6, 4), counts, fill=TEXT, font=font, anchor="ra")
    y = H + header + 4
    for (_, colour, label), names in zip(sides, legend_rows):
        draw.ellipse([6, y + 2, 16, y + 12], fill=tuple(int(c) for c in colour))
        draw.text((22, y), f"{label}: " + ", ".join(f"{marks[n]} = {n}" for n in names), fill=TEXT, font=font)
        y += row_h
    draw.rectangle([6, y + 5, 22, y + 8], fill=HEALTH_BAR)
    draw.text((26, y), "health", fill=TEXT, font=font)
    draw.rectangle([76, y + 5, 92, y + 8], fill=SHIELD_BAR)
    draw.text((96, y), "shields   (discs dim as units lose health; tinted discs heal)", fill=TEXT, font=font)
    if outcome is not None:
        colour, text = OUTCOMES[outcome]
        box = draw.textbbox((W / 2, header + H / 2), text, font=big, anchor="mm")
        draw.rectangle([box[0] - 14, box[1] - 10, box[2] + 14, box[3] + 10], fill=colour)
        draw.text((W / 2, header + H / 2), text, fill=(255, 255, 255), font=big, anchor="mm")
    return np.asarray(canvas)


def save_gif(frames: Sequence[np.ndarray], path: str | Path, fps: int = 8) -> Path:
    """Write frames as an animated GIF (loops forever); the last frame stays up for 2 s."""
    from PIL import Image

    if not frames:
        raise ValueError("save_gif: no frames to write; render at least one step first")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images = [Image.fromarray(f) for f in frames]
    durations = [int(1000 / fps)] * (len(images) - 1) + [2000]
    images[0].save(path, save_all=True, append_images=images[1:], duration=durations, loop=0)
    return path
