"""Hole masks: hole-ratio buckets, a seeded irregular-mask generator, the Liu et al. 2018 mask
folder loader, and mask sets on disk (PNGs + manifest.json with sha256).

Every mask here is a bool array (H, W) with True = hole (missing pixel). On disk, 255 = hole.

Reproducibility: the generator uses only ``np.random.Generator.integers`` / ``.random`` and
OpenCV rasterisation of integer coordinates (directions come from a fixed integer table), so the
same seed gives bit-identical masks on any machine. The manifest stores both the sha256 of each
PNG file (checked on read) and ``mask_sha256``, the sha256 of the raw (H, W) uint8 0/255 array,
which is independent of the PNG encoder.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from sairbench.errors import SairbenchError
from sairbench.io import read_mask

BUCKETS: tuple[tuple[str, float, float], ...] = (("0-20%", 0.0, 0.2), ("20-40%", 0.2, 0.4), ("40-60%", 0.4, 0.6))
MANIFEST = "manifest.json"
FORMAT = "sairbench-mask-set/1"


@dataclass
class MaskItem:
    """A named mask: bool (H, W), True = hole; ``ratio`` = hole fraction; ``bucket`` = its BUCKETS label."""

    name: str
    mask: np.ndarray
    ratio: float
    bucket: str


# ---------------------------------------------------------------- ratios and buckets


def hole_ratio(mask: np.ndarray) -> float:
    """Fraction of hole pixels (non-zero / True) in a (H, W) mask."""
    return float(np.count_nonzero(mask)) / float(mask.size)


def bucket_of(ratio: float) -> str | None:
    """BUCKETS label with lo <= ratio < hi (the last bucket includes 0.6); None for 0, > 0.6 or NaN."""
    if not 0.0 < ratio <= BUCKETS[-1][2]:
        return None
    for k, (label, lo, hi) in enumerate(BUCKETS):
        if lo <= ratio < hi or (k == len(BUCKETS) - 1 and ratio == hi):
            return label
    return None


def check_mask(mask: np.ndarray, image_shape: tuple[int, ...], source: str) -> np.ndarray:
    """Check a mask against an image of shape (H, W, ...) and return it as bool (H, W).

    Accepts bool, 0/1 or 0/255 masks of shape (H, W) or (H, W, 1); anything else raises
    SairbenchError naming ``source``.
    """
    mask = np.asarray(mask)
    if mask.ndim == 3 and mask.shape[2] == 1:
        mask = mask[..., 0]
    h, w = int(image_shape[0]), int(image_shape[1])
    if mask.ndim != 2:
        raise SairbenchError(f"mask {source} has shape {mask.shape}; save it as a single-channel (H, W) image.")
    if mask.shape != (h, w):
        raise SairbenchError(
            f"mask {source} is {mask.shape[1]}x{mask.shape[0]} but image is {w}x{h}; "
            f"resize the mask to {w}x{h} (nearest neighbour) or load it with the image size."
        )
    if mask.dtype == bool:
        return mask
    values = np.unique(mask)
    if not (np.all(np.isin(values, (0, 1))) or np.all(np.isin(values, (0, 255)))):
        shown = ", ".join(str(v) for v in values[:5].tolist()) + (", ..." if len(values) > 5 else "")
        raise SairbenchError(f"mask {source} is not binary (values {shown}); save it with only 0 and 255 (255 = hole).")
    return mask != 0


# ---------------------------------------------------------------- generator

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


def sample_training_mask(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """A training mask: bucket drawn uniformly, target ratio uniform in it (from 0.05 up to 0.6)."""
    _, lo, hi = BUCKETS[int(rng.integers(0, len(BUCKETS)))]
    lo = max(lo, 0.05)
    return generate_irregular_mask(rng, size, lo + (hi - lo) * float(rng.random()))


def _slug(bucket: str) -> str:
    return bucket.rstrip("%")


def generate_mask_set(per_bucket: int, size: tuple[int, int], seed: int = 0, max_attempts: int | None = None) -> list[MaskItem]:
    """Exactly ``per_bucket`` generated masks in each bucket, bucket by bucket.

    Bucket k uses its own stream ``default_rng([seed, k])`` and keeps the masks whose ratio lands
    in it, so a set with more masks per bucket starts with the masks of a smaller one.
    Names: ``gen-<lo>-<hi>-<nnnn>`` (e.g. ``gen-20-40-0003``).
    """
    if isinstance(per_bucket, bool) or not isinstance(per_bucket, (int, np.integer)) or per_bucket < 1:
        raise SairbenchError(f"per_bucket {per_bucket!r} is not valid; pass a positive number of masks per bucket.")
    size = (int(size[0]), int(size[1]))
    limit = max_attempts if max_attempts is not None else 50 * int(per_bucket) + 200
    items: list[MaskItem] = []
    for k, (label, lo, hi) in enumerate(BUCKETS):
        rng = np.random.default_rng([int(seed), k])
        kept = 0
        for _ in range(limit):
            target = max(lo, 0.01) + (hi - max(lo, 0.01)) * float(rng.random())
            mask = generate_irregular_mask(rng, size, target)
            ratio = hole_ratio(mask)
            if bucket_of(ratio) == label:
                items.append(MaskItem(f"gen-{_slug(label)}-{kept:04d}", mask, ratio, label))
                kept += 1
                if kept == per_bucket:
                    break
        if kept < per_bucket:
            raise SairbenchError(
                f"mask generator filled bucket {label} with only {kept} of {per_bucket} masks at "
                f"{size[1]}x{size[0]} in {limit} attempts; use a larger mask size or fewer masks per bucket."
            )
    return items


# ---------------------------------------------------------------- Liu et al. 2018 folder


def load_mask_folder(
    folder: str | os.PathLike,
    size: tuple[int, int],
    hole_value: int = 255,
    per_bucket: int | None = None,
    seed: int = 0,
) -> list[MaskItem]:
    """Load a folder (searched recursively) of mask PNGs, e.g. the Liu et al. 2018 irregular masks.

    Each mask is resized to ``size`` (H, W) by nearest neighbour and thresholded at 128;
    ``hole_value`` is the grey level of holes in the files (255 = white holes, as in the NVIDIA
    testing set used by EdgeConnect and others; 0 = black holes). Ratio and bucket are those of
    the mask as applied; masks outside all buckets (empty or > 60 %) are dropped. With
    ``per_bucket``, a seeded sample of that many masks per bucket is kept (file order inside a
    bucket). Names are the file paths relative to ``folder`` without ".png" ("/" -> "__").
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise SairbenchError(f"{folder}: no such mask folder; pass a folder of mask PNGs.")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() == ".png" and p.is_file() and not p.name.startswith("."))
    if not files:
        raise SairbenchError(f"{folder}: no mask PNGs in this folder; unzip the mask set (e.g. Liu et al. 2018 mask.zip) into it.")
    size = (int(size[0]), int(size[1]))
    keep_all = per_bucket is None
    found: dict[str, list[tuple[str, Path, float, np.ndarray | None]]] = {b[0]: [] for b in BUCKETS}
    ratios = None
    if not keep_all:  # the mask-set index: each file's hole ratio at this size, read once (sairbench.cache)
        from sairbench.cache import cached_json

        stats = [(p.relative_to(folder).as_posix(), p.stat().st_size, p.stat().st_mtime_ns) for p in files]
        key = {"folder": str(folder.resolve()), "files": stats, "size": size, "hole_value": hole_value}
        ratios = cached_json("mask-index", key, lambda: [hole_ratio(read_mask(p, size=size, hole_value=hole_value))
                                                         for p in files])
    for k, path in enumerate(files):
        mask = read_mask(path, size=size, hole_value=hole_value) if keep_all else None
        ratio = hole_ratio(mask) if keep_all else float(ratios[k])
        bucket = bucket_of(ratio)
        if bucket is not None:
            name = path.relative_to(folder).with_suffix("").as_posix().replace("/", "__")
            found[bucket].append((name, path, ratio, mask))
    if not any(found.values()):
        kind = "white" if hole_value >= 128 else "black"
        raise SairbenchError(
            f"{folder}: none of the {len(files)} masks has a hole ratio in 0-60% at {size[1]}x{size[0]} "
            f"with hole_value={hole_value} ({kind} = hole); check hole_value."
        )
    items: list[MaskItem] = []
    rng = np.random.default_rng(int(seed))
    for label, _, _ in BUCKETS:
        pool = found[label]
        if per_bucket is not None:
            if len(pool) < per_bucket:
                raise SairbenchError(
                    f"{folder}: bucket {label} has only {len(pool)} masks at {size[1]}x{size[0]} but "
                    f"{per_bucket} were asked for; lower per_bucket to at most {len(pool)} or add masks."
                )
            chosen = np.sort(rng.choice(len(pool), size=int(per_bucket), replace=False))
            pool = [pool[i] for i in chosen.tolist()]
        for name, path, ratio, mask in pool:
            if mask is None:
                mask = read_mask(path, size=size, hole_value=hole_value)
            items.append(MaskItem(name, mask, ratio, label))
    return items


# ---------------------------------------------------------------- mask sets on disk


def _png_bytes(mask: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(mask.astype(np.uint8) * 255).save(buf, format="PNG")
    return buf.getvalue()


def mask_digest(mask: np.ndarray) -> str:
    """sha256 of the mask as a C-order uint8 (H, W) array of 0/255 (encoder independent)."""
    return hashlib.sha256(np.ascontiguousarray(mask.astype(np.uint8) * 255).tobytes()).hexdigest()


def write_mask_set(folder: str | os.PathLike, items: list[MaskItem], meta: dict | None = None, overwrite: bool = False) -> Path:
    """Write ``{name}.png`` (255 = hole) per item and ``manifest.json``; return the manifest path.

    The set is written to a temporary sibling folder and renamed into place, so a failure never
    leaves a half-written set. An existing non-empty ``folder`` is replaced only with ``overwrite``.
    """
    folder = Path(folder).expanduser()
    if folder.exists() and not folder.is_dir():
        raise SairbenchError(f"{folder}: exists and is not a folder; choose another output folder.")
    if folder.is_dir() and any(folder.iterdir()) and not overwrite:
        raise SairbenchError(f"{folder}: folder is not empty; choose a new folder or pass --overwrite to replace it.")
    names = [it.name for it in items]
    for name in names:
        if not name or "/" in name or "\\" in name or name.startswith("."):
            raise SairbenchError(f"mask name {name!r} cannot be a file name; use letters, digits, '-' and '_'.")
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise SairbenchError(f"mask name {dup!r} appears twice; mask names in a set must be unique.")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
    try:
        entries = []
        for it in items:
            mask = np.asarray(it.mask).astype(bool)
            data = _png_bytes(mask)
            (tmp / f"{it.name}.png").write_bytes(data)
            entries.append({
                "name": it.name, "file": f"{it.name}.png", "ratio": hole_ratio(mask), "bucket": it.bucket,
                "height": int(mask.shape[0]), "width": int(mask.shape[1]),
                "sha256": hashlib.sha256(data).hexdigest(), "mask_sha256": mask_digest(mask),
            })
        manifest = {"format": FORMAT, "hole_value": 255, "meta": dict(meta or {}), "masks": entries}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=False) + "\n", encoding="utf-8")
        if folder.exists():
            old = folder.with_name(f".{folder.name}.old-{uuid.uuid4().hex[:8]}")
            os.replace(folder, old)
            os.replace(tmp, folder)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return folder / MANIFEST


def read_manifest(folder: str | os.PathLike) -> dict:
    """The parsed manifest.json of a mask set written by ``write_mask_set``."""
    folder = Path(folder).expanduser()
    path = folder / MANIFEST
    if not path.is_file():
        raise SairbenchError(
            f"{path}: no such file; {folder} is not a mask set written by `sairbench masks generate` "
            "(for a plain folder of mask PNGs use the mask-folder source)."
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(manifest, dict) or not isinstance(manifest.get("masks"), list):
            raise ValueError("no 'masks' list")
    except (ValueError, UnicodeDecodeError) as exc:
        raise SairbenchError(f"{path}: not a valid mask-set manifest ({exc}); regenerate the mask set.") from None
    return manifest


def read_mask_set(folder: str | os.PathLike) -> list[MaskItem]:
    """Read a mask set back, verifying every PNG against the sha256 in manifest.json."""
    from PIL import Image

    folder = Path(folder).expanduser()
    items = []
    for entry in read_manifest(folder)["masks"]:
        try:
            path = folder / entry["file"]
            name, digest = entry["name"], entry["sha256"]
        except (KeyError, TypeError):
            raise SairbenchError(f"{folder / MANIFEST}: a mask entry lacks name/file/sha256; regenerate the mask set.") from None
        if not path.is_file():
            raise SairbenchError(f"{path}: listed in {MANIFEST} but missing; restore it or regenerate the mask set.")
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != digest:
            raise SairbenchError(f"{path}: sha256 does not match {MANIFEST} (file changed or corrupt); restore it or regenerate the mask set.")
        with Image.open(io.BytesIO(data)) as im:
            mask = np.asarray(im.convert("L")) >= 128
        ratio = hole_ratio(mask)
        items.append(MaskItem(name, mask, ratio, entry.get("bucket") or bucket_of(ratio)))
    return items
