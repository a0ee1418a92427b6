"""The irregular-mask drawing of the seeded generator (``sairbench.masks``): random walks of thick
strokes and, now and then, an ellipse or a box, in integer geometry only (OpenCV rasterisation of
integer coordinates, directions from a fixed integer table), so the same generator state gives
bit-identical masks on any machine."""

from __future__ import annotations

import cv2
import numpy as np

from sairbench.errors import SairbenchError

_DIR_SCALE = 1024
_N_DIRS = 32
# integer unit vectors (x1024) of 32 evenly spaced directions; rounding is far from ties
_DIRS = np.round(
    np.stack([np.cos(2 * np.pi * np.arange(_N_DIRS) / _N_DIRS), np.sin(2 * np.pi * np.arange(_N_DIRS) / _N_DIRS)], 1)
    * _DIR_SCALE
).astype(np.int64)


def _scaled(value: float, scale: float, minimum: int) -> int:
    return max(minimum, int(value * scale + 0.5))


def _draw_stroke(canvas: np.ndarray, rng: np.random.Generator, scale: float, difficulty: float) -> None:
    """One random walk of thick line segments with round joints (integer geometry only)."""
    h, w = canvas.shape
    w_lo = _scaled(5, scale, 2)
    w_hi = max(w_lo + 1, _scaled(10 + 34 * difficulty, scale, 3))
    l_lo = _scaled(8, scale, 2)
    l_hi = max(l_lo + 1, _scaled(40 + 40 * difficulty, scale, 4))
    x, y, d, width, n = rng.integers([0, 0, 0, w_lo, 2], [w, h, _N_DIRS, w_hi + 1, 9]).tolist()
    turns = rng.integers(-5, 6, size=n).tolist()
    lengths = rng.integers(l_lo, l_hi + 1, size=n).tolist()
    dw = rng.integers(-(width // 4), width // 4 + 1, size=n).tolist()
    for turn, length, dwidth in zip(turns, lengths, dw):
        d = (d + turn) % _N_DIRS
        nx = x + (int(_DIRS[d, 0]) * length) // _DIR_SCALE
        ny = y + (int(_DIRS[d, 1]) * length) // _DIR_SCALE
        if not (0 <= nx < w and 0 <= ny < h):  # bounce off the border
            d = (d + _N_DIRS // 2) % _N_DIRS
            nx, ny = min(max(nx, 0), w - 1), min(max(ny, 0), h - 1)
        t = max(1, width + dwidth)
        cv2.line(canvas, (x, y), (nx, ny), 1, t, cv2.LINE_8)
        cv2.circle(canvas, (nx, ny), t // 2, 1, -1, cv2.LINE_8)
        x, y = nx, ny


def _draw_shape(canvas: np.ndarray, rng: np.random.Generator, scale: float, difficulty: float) -> None:
    """An ellipse or an axis-aligned box, sized with the difficulty."""
    h, w = canvas.shape
    lo = _scaled(6, scale, 2)
    hi = max(lo + 1, _scaled(20 + 50 * difficulty, scale, 3))
    kind, x, y, ax, ay, angle = rng.integers([0, 0, 0, lo, lo, 0], [2, w, h, hi + 1, hi + 1, 180]).tolist()
    if kind == 0:
        cv2.ellipse(canvas, (x, y), (ax, ay), angle, 0, 360, 1, -1, cv2.LINE_8)
    else:
        cv2.rectangle(canvas, (x - ax, y - ay), (x + ax, y + ay), 1, -1, cv2.LINE_8)


def generate_irregular_mask(rng: np.random.Generator, size: tuple[int, int], target: float | None = None) -> np.ndarray:
    """Draw strokes (and now and then an ellipse or box) until the hole ratio reaches ``target``.

    size: (H, W). target: hole ratio to reach; None draws one uniformly in [0.05, 0.6).
    The last stroke may overshoot the target. Stroke widths and lengths scale with min(H, W) / 256
    and grow with the target. Returns bool (H, W), True = hole.
    """
    h, w = int(size[0]), int(size[1])
    if h < 4 or w < 4:
        raise SairbenchError(f"mask size {w}x{h} is too small; use at least 4x4.")
    if target is None:
        target = 0.05 + 0.55 * float(rng.random())
    scale = min(h, w) / 256.0
    canvas = np.zeros((h, w), np.uint8)
    need = target * h * w
    with_shapes = bool(rng.random() < 0.35)
    for _ in range(2000):
        if np.count_nonzero(canvas) >= need:
            break
        if with_shapes and rng.random() < 0.15:
            _draw_shape(canvas, rng, scale, target)
        else:
            _draw_stroke(canvas, rng, scale, target)
    return canvas.astype(bool)
