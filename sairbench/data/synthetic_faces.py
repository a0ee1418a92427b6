"""``synthetic-faces``: procedurally drawn, seeded, face-like images with CelebAMask-HQ label maps.

Each sample is drawn at twice the requested size with OpenCV (anti-aliased fills for the image,
hard fills for the label map), then shrunk 2x (area for the image, nearest for the label).
Randomised per sample: head position, scale, roll and yaw; skin, hair, eye, lip and clothing
colours; hair style (short, long, bob, bun, buzz), fringe, optional hat and glasses; background
texture (gradient, stripes, smooth noise, blobs); a lighting gradient and sensor noise.

Sample ``i`` of a split depends only on ``(seed, split, i)``: its generator is
``np.random.default_rng([seed, SPLIT_IDS[split], i])``, so train/val/test use disjoint seed
streams and a sample never depends on how many others were drawn.

Label values are CelebAMask-HQ indices (``CELEBAMASK_CLASSES``). Drawn classes: background, skin,
nose, eye_g (glasses rims), l_eye, r_eye, l_brow, r_brow, l_ear, r_ear, mouth (open mouths),
u_lip, l_lip, hair, hat, neck, cloth. ``l_*`` is the part on the image's left side.
Eyes are a few pixels across (about 0.2-0.6 % of the image each) so large holes swallow them.
"""

from __future__ import annotations

from collections import OrderedDict

import cv2
import numpy as np

from sairbench.data.base import ImageDataset, Sample, check_size
from sairbench.data.classes import CELEBAMASK_CLASSES
from sairbench.errors import SairbenchError

C = {name: k for k, name in enumerate(CELEBAMASK_CLASSES)}
SPLIT_IDS = {"train": 0, "test": 1, "val": 2}
DEFAULT_LENGTHS = {"train": 20000, "test": 1000, "val": 1000}
MAX_SIZE = 256

_SHIFT = 4  # OpenCV fixed-point bits: coordinates are multiplied by 16
_F = 1 << _SHIFT

_SKIN = np.array(
    [[255, 224, 196], [241, 194, 160], [224, 172, 135], [198, 134, 96], [161, 102, 68], [117, 74, 50], [88, 56, 40]],
    dtype=np.float64,
)
_HAIR = np.array(
    [[20, 16, 14], [45, 30, 22], [85, 55, 35], [130, 90, 55], [200, 160, 100], [225, 200, 140], [150, 60, 30],
     [160, 160, 160], [235, 235, 230]],
    dtype=np.float64,
)
_HAIR_P = np.array([0.22, 0.2, 0.18, 0.1, 0.08, 0.06, 0.07, 0.05, 0.04])
_EYES = np.array([[70, 45, 25], [110, 75, 40], [60, 110, 170], [80, 130, 90], [120, 130, 135], [30, 25, 20]], dtype=np.float64)


class _Draws:
    """Hands out pre-drawn uniforms (one rng call per sample keeps generation fast)."""

    def __init__(self, rng: np.random.Generator, n: int = 192):
        self.rng = rng
        self.u = rng.random(n)
        self.k = 0

    def __call__(self, lo: float = 0.0, hi: float = 1.0) -> float:
        if self.k == len(self.u):
            self.u = np.concatenate([self.u, self.rng.random(64)])
        v = self.u[self.k]
        self.k += 1
        return lo + (hi - lo) * v

    def choice(self, n: int, p: np.ndarray | None = None) -> int:
        v = self()
        if p is None:
            return min(int(v * n), n - 1)
        return min(int(np.searchsorted(np.cumsum(p), v * p.sum())), n - 1)

    def chance(self, p: float) -> bool:
        return self() < p

    def color(self, palette: np.ndarray, jitter: float, p: np.ndarray | None = None) -> np.ndarray:
        base = palette[self.choice(len(palette), p)]
        return np.clip(base * self(1 - jitter, 1 + jitter) + np.array([self(-12, 12), self(-12, 12), self(-12, 12)]), 0, 255)


def _col(c) -> tuple[int, int, int]:
    return (int(c[0]), int(c[1]), int(c[2]))


class _Canvas:
    """An RGB image and a label map drawn together; geometry in float pixels of the 2x canvas."""

    def __init__(self, image: np.ndarray, label: np.ndarray):
        self.img = image
        self.lab = label

    @staticmethod
    def _pt(p) -> tuple[int, int]:
        return (int(p[0] * _F + 0.5), int(p[1] * _F + 0.5))

    def ellipse(self, c, axes, angle, color, cls=None, start=0.0, end=360.0, thickness=-1):
        ax = (max(_F, int(axes[0] * _F)), max(_F, int(axes[1] * _F)))
        t = thickness if thickness < 0 else max(1, int(round(thickness)))
        cv2.ellipse(self.img, self._pt(c), ax, angle, start, end, _col(color), t, cv2.LINE_AA, _SHIFT)
        if cls is not None:
            cv2.ellipse(self.lab, self._pt(c), ax, angle, start, end, int(cls), t, cv2.LINE_8, _SHIFT)

    def poly(self, pts, color, cls=None):
        p = (np.asarray(pts) * _F).round().astype(np.int32)[None]
        cv2.fillPoly(self.img, p, _col(color), cv2.LINE_AA, _SHIFT)
        if cls is not None:
            cv2.fillPoly(self.lab, p, int(cls), cv2.LINE_8, _SHIFT)

    def line(self, p, q, color, thickness, cls=None):
        t = max(1, int(round(thickness)))
        cv2.line(self.img, self._pt(p), self._pt(q), _col(color), t, cv2.LINE_AA, _SHIFT)
        if cls is not None:
            cv2.line(self.lab, self._pt(p), self._pt(q), int(cls), t, cv2.LINE_8, _SHIFT)


_GRIDS: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _grid(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(y, x) float32 (n, 1) and (1, n) coordinates in [0, 1)."""
    if n not in _GRIDS:
        t = (np.arange(n, dtype=np.float32) + 0.5) / n
        _GRIDS[n] = (t[:, None], t[None, :])
    return _GRIDS[n]


def _background(d: _Draws, rng: np.random.Generator, n: int) -> np.ndarray:
    """uint8 (n, n, 3) textured background (n even; the texture is computed at n / 2 and enlarged)."""
    grey = d(30, 230)
    sat = d(0.15, 0.9)
    c1 = np.array([grey + sat * (d(0, 255) - grey) for _ in range(3)], dtype=np.float32)
    c2 = np.clip(c1 + np.array([d(-140, 140), d(-140, 140), d(-140, 140)], dtype=np.float32), 0, 255)
    m = n // 2
    y, x = _grid(m)
    kind = d.choice(4)
    phi = d(0, 2 * np.pi)
    if kind == 0:  # linear gradient
        t = np.clip(0.5 + (x - 0.5) * np.cos(phi) + (y - 0.5) * np.sin(phi), 0, 1)
    elif kind == 1:  # stripes, soft or hard
        period = d(0.06, 0.3)
        s = np.sin(2 * np.pi * ((x * np.cos(phi) + y * np.sin(phi)) / period) + d(0, 6.3))
        t = 0.5 + 0.5 * (np.sign(s) if d.chance(0.5) else s)
    elif kind == 2:  # smooth noise
        k = 2 + d.choice(5)
        t = cv2.resize(rng.random((k, k), dtype=np.float32), (m, m), interpolation=cv2.INTER_CUBIC)
    else:  # flat with blobs drawn below
        t = np.zeros((1, 1), np.float32)
    t = np.broadcast_to(t, (m, m))[..., None]
    bg = cv2.resize((c1 + (c2 - c1) * t).astype(np.uint8), (n, n), interpolation=cv2.INTER_LINEAR)
    if kind == 3:
        for _ in range(3 + d.choice(5)):
            c = np.clip(c1 + np.array([d(-120, 120), d(-120, 120), d(-120, 120)]), 0, 255)
            center = (int(d(0, n)), int(d(0, n)))
            if d.chance(0.5):
                cv2.circle(bg, center, int(d(0.05, 0.3) * n), _col(c), -1, cv2.LINE_AA)
            else:
                r = int(d(0.05, 0.3) * n)
                cv2.rectangle(bg, (center[0] - r, center[1] - r), (center[0] + r, center[1] + int(d(0.05, 0.3) * n)), _col(c), -1)
    return bg


def render_face(seed: int, split: str, index: int, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Draw sample ``index`` of ``split``: uint8 (size, size, 3) image, uint8 (size, size) label."""
    rng = np.random.default_rng([seed, SPLIT_IDS[split], index])
    d = _Draws(rng)
    n = 2 * size
    img = _background(d, rng, n)
    lab = np.zeros((n, n), np.uint8)
    cv = _Canvas(img, lab)

    # ---- head geometry: local (u, v) in head half-axes -> canvas pixels
    a = n * d(0.15, 0.25)  # head half-width
    b = a * d(1.15, 1.4)  # head half-height
    cx = n * (0.5 + d(-0.1, 0.1))
    cy = n * (0.46 + d(-0.07, 0.07))
    roll = d(-22, 22)
    yaw = d(-0.35, 0.35)
    cr, sr = np.cos(np.radians(roll)), np.sin(np.radians(roll))

    def P(u: float, v: float) -> tuple[float, float]:
        x, y = u * a, v * b
        return (cx + x * cr - y * sr, cy + x * sr + y * cr)

    skin = d.color(_SKIN, 0.08)
    hair = d.color(_HAIR, 0.12, _HAIR_P)
    shade = skin * 0.82
    style = d.choice(5)  # 0 short, 1 long, 2 bob, 3 bun, 4 buzz
    if d.chance(0.12):
        style = 4

    # ---- body: neck, then clothes with a neckline
    nw = a * d(0.42, 0.6)
    neck_top = cy + 0.5 * b
    bx = cx + sr * b * 0.6  # body sits below the (rolled) chin
    shoulders = cy + b * d(1.05, 1.3)
    if style in (1, 2):  # long hair behind the neck and shoulders
        hb = d(1.3, 1.8) if style == 1 else d(0.9, 1.1)
        hw = d(1.15, 1.35)
        cv.ellipse(P(0, (hb - 1.05) / 2), (hw * a, (hb + 1.05) / 2 * b), roll, hair, C["hair"])
    cv.poly([(cx - nw, neck_top), (cx + nw, neck_top), (bx + nw * 1.1, shoulders + b * 0.2), (bx - nw * 1.1, shoulders + b * 0.2)], shade, C["neck"])
    cloth = np.array([d(0, 255), d(0, 255), d(0, 255)])
    cv.ellipse((bx, shoulders + b * d(0.9, 1.2)), (a * d(1.7, 2.6), b * d(0.9, 1.2)), d(-6, 6), cloth, C["cloth"])
    if d.chance(0.7):  # neckline (round or V)
        depth = b * d(0.1, 0.35)
        if d.chance(0.5):
            cv.ellipse((bx, shoulders - b * 0.05), (nw * 1.3, depth), 0, shade, C["neck"], 0, 180)
        else:
            cv.poly([(bx - nw * 1.2, shoulders - b * 0.1), (bx + nw * 1.2, shoulders - b * 0.1), (bx, shoulders + depth)], shade, C["neck"])

    # ---- hair volume behind the head
    if style == 3:  # bun
        cv.ellipse(P(d(-0.3, 0.3), -1.05), (a * d(0.3, 0.45), a * d(0.3, 0.4)), roll, hair, C["hair"])
    if style != 4:
        cv.ellipse(P(0, -d(0.08, 0.18)), (a * d(1.04, 1.14), b * d(0.98, 1.06)), roll, hair, C["hair"])

    # ---- ears (the far one hides when the head turns)
    ev = d(-0.05, 0.12)
    ear_axes = (a * d(0.12, 0.17), b * d(0.16, 0.22))
    ear_col = skin * 0.92
    if yaw < 0.22:
        cv.ellipse(P(-0.98 + 0.2 * max(yaw, 0), ev), ear_axes, roll, ear_col, C["l_ear"])
    if yaw > -0.22:
        cv.ellipse(P(0.98 + 0.2 * min(yaw, 0), ev), ear_axes, roll, ear_col, C["r_ear"])

    # ---- head
    cv.ellipse((cx, cy), (a, b), roll, skin, C["skin"])
    if d.chance(0.4):  # cheeks
        blush = skin * 0.75 + np.array([220, 90, 90]) * 0.25
        for s in (-1, 1):
            cv.ellipse(P(s * 0.5 + yaw * 0.3, 0.28), (a * 0.18, b * 0.1), roll, blush)

    # ---- hair on top: fringe (a chord of an ellipse), or a thin cap for buzz cuts
    hat = d.chance(0.07)
    if style == 4:
        cv.ellipse(P(0, -0.04), (a * 1.02, b * 1.0), roll + d(-6, 6), hair * 0.6 + skin * 0.4, C["hair"], 200, 340)
    elif not hat:
        delta = d(12, 40)
        tilt = d(-14, 14)
        cv.ellipse(P(0, -0.03), (a * 1.03, b * 1.0), roll + tilt, hair, C["hair"], 180 + delta, 360 - delta)
    if hat:
        hat_col = np.array([d(0, 255), d(0, 255), d(0, 255)])
        cv.ellipse(P(0, -0.25), (a * 1.12, b * 0.9), roll, hat_col, C["hat"], 180 + d(8, 25), 360 - d(8, 25))
        cv.ellipse(P(0, -0.52), (a * d(1.2, 1.5), b * d(0.06, 0.12)), roll, hat_col * 0.8, C["hat"])

    # ---- eyes (whole sclera labelled), brows
    eye_v = d(-0.12, 0.02)
    eye_u = d(0.34, 0.44)
    ew = a * d(0.13, 0.19)
    eh = max(1.6, ew * d(0.38, 0.58))
    iris = d.color(_EYES, 0.15)
    sclera = np.array([d(215, 250)] * 3) * np.array([1.0, d(0.95, 1.0), d(0.9, 1.0)])
    brow_col = hair * 0.7 if style != 4 else hair * 0.5
    brow_v = eye_v - d(0.16, 0.25)
    brow_t = max(2.0, a * d(0.05, 0.1))
    brow_arch = d(0.15, 0.45)
    for s, eye_cls, brow_cls in ((-1, C["l_eye"], C["l_brow"]), (1, C["r_eye"], C["r_brow"])):
        squeeze = float(np.clip(1 - s * yaw * 0.9, 0.55, 1.3))  # the far eye looks narrower
        ec = P(s * eye_u + yaw * 0.35, eye_v)
        cv.ellipse(ec, (ew * squeeze, eh), roll, sclera, eye_cls)
        look = d(-0.3, 0.3) * ew
        ic = (ec[0] + look * cr, ec[1] + look * sr)
        cv.ellipse(ic, (min(eh, ew * 0.55) * squeeze, eh * 0.98), roll, iris)
        cv.ellipse(ic, (max(0.6, eh * 0.4 * squeeze), max(0.6, eh * 0.4)), roll, (15, 12, 12))
        cv.ellipse(ec, (ew * squeeze, eh), roll, skin * 0.45, None, 190, 350, thickness=max(1.0, eh * 0.35))
        bc = P(s * eye_u + yaw * 0.35 + s * d(0.0, 0.05), brow_v)
        cv.ellipse((bc[0] - sr * brow_arch * ew, bc[1] + cr * brow_arch * ew), (ew * 1.3 * squeeze, ew * (0.5 + brow_arch)),
                   roll + s * d(-10, 10), brow_col, brow_cls, 200, 340, thickness=brow_t)

    if d.chance(0.1):  # glasses: rims labelled eye_g
        frame = np.array([d(0, 90)] * 3)
        rt = max(1.5, a * 0.035)
        for s in (-1, 1):
            cv.ellipse(P(s * eye_u + yaw * 0.35, eye_v), (ew * 1.7, eh * 2.4), roll, frame, C["eye_g"], thickness=rt)
        cv.line(P(-eye_u + yaw * 0.35 + ew * 1.7 / a, eye_v), P(eye_u + yaw * 0.35 - ew * 1.7 / a, eye_v), frame, rt, C["eye_g"])

    # ---- nose
    nu = yaw * 0.45
    nv = d(0.14, 0.24)
    nose_w = a * d(0.09, 0.14)
    cv.ellipse(P(nu, nv), (nose_w, b * d(0.1, 0.16)), roll, skin * 0.9, C["nose"])
    cv.line(P(nu - 0.05 + yaw * 0.1, nv - 0.25), P(nu - 0.04, nv), skin * 0.78, max(1.0, a * 0.03), C["nose"])
    for s in (-1, 1):
        cv.ellipse(P(nu + s * 0.06, nv + 0.06), (nose_w * 0.3, nose_w * 0.2), roll, skin * 0.4)

    # ---- mouth: upper and lower lips, optional open mouth between them
    mv = d(0.46, 0.58)
    mw = a * d(0.2, 0.32)
    lip = skin * d(0.55, 0.75) + np.array([200, 70, 80]) * d(0.1, 0.35)
    gap = b * d(0.02, 0.07) if d.chance(0.35) else 0.0
    mc = P(yaw * 0.35, mv)
    up = (mc[0] + sr * gap / 2, mc[1] - cr * gap / 2)
    lo = (mc[0] - sr * gap / 2, mc[1] + cr * gap / 2)
    if gap > 0:
        cv.ellipse(mc, (mw * 0.95, gap / 2 + 0.5), roll, (60, 20, 25), C["mouth"])
    cv.ellipse(up, (mw, max(1.2, a * d(0.04, 0.07))), roll, lip * 0.92, C["u_lip"], 180, 360)
    cv.ellipse(lo, (mw * 0.9, max(1.4, a * d(0.05, 0.09))), roll, lip, C["l_lip"], 0, 180)

    # ---- shrink 2x, then lighting, hair texture and sensor noise at the output size
    out = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32)
    label = np.ascontiguousarray(lab[::2, ::2])
    y, x = _grid(size)
    light = 1 + d(-0.45, 0.45) * (x - 0.5) + d(-0.45, 0.45) * (y - 0.5)
    hair_px = label == C["hair"]
    if hair_px.any():
        phi = np.radians(roll + d(-25, 25))  # strands run roughly down the head
        wobble = cv2.resize(rng.random((4, 4), dtype=np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
        proj = x * np.cos(phi) + y * np.sin(phi) + wobble * d(0.02, 0.08)
        strands = np.sin(proj * (size * 2 * np.pi / d(2.2, 4.5)) + d(0, 6.3))
        light = light + hair_px * strands * d(0.03, 0.1)
    out *= light[..., None]
    out += rng.standard_normal(out.shape, dtype=np.float32) * np.float32(d(0.5, 4.0))
    return np.clip(out, 0, 255).astype(np.uint8), label


class SyntheticFaces(ImageDataset):
    """Built-in labelled face-like dataset; samples are drawn lazily and a few thousand are cached."""

    name = "synthetic-faces"

    def __init__(self, split: str = "test", size: int = 64, seed: int = 0, length: int | None = None,
                 limit: int | None = None, cache_size: int = 4096):
        if split not in SPLIT_IDS:
            raise SairbenchError(f"synthetic-faces has no split {split!r}; use one of {', '.join(SPLIT_IDS)}.")
        super().__init__(check_size(size, MAX_SIZE), split)
        self.classes = list(CELEBAMASK_CLASSES)
        self.seed = int(seed)
        n = DEFAULT_LENGTHS[split] if length is None else int(length)
        self._len = n if limit is None else min(n, int(limit))
        self._cache: OrderedDict[int, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._cache_size = int(cache_size)

    def __len__(self) -> int:
        return self._len

    def _name(self, i: int) -> str:
        return f"{self.name}-{self.split}-{i:05d}"

    def _load(self, i: int) -> Sample:
        hit = self._cache.get(i)
        if hit is None:
            hit = render_face(self.seed, self.split, i, self.size)
            self._cache[i] = hit
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(i)
        image, label = hit
        return Sample(self._name(i), image.copy(), label.astype(np.int64))
