"""Hole masks: hole-ratio buckets, a seeded irregular-mask generator, the Liu et al. 2018 mask
folder loader, and mask sets on disk (PNGs + manifest.json with sha256).

Every mask here is a bool array (H, W) with True = hole (missing pixel). On disk, 255 = hole.

Reproducibility: the generator (its drawing in ``sairbench.mask_draw``) uses only
``np.random.Generator.integers`` / ``.random`` and OpenCV rasterisation of integer coordinates
(directions come from a fixed integer table), so the same seed gives bit-identical masks on any
machine. A run's generated set (:class:`GeneratedMasks`) draws a mask only when a pair uses it.
Mask folders are scanned by ``sairbench.scan.files_in`` (never outside the folder given); a set on
disk is replaced (``--overwrite``) only when its manifest is this module's. The manifest stores
both the sha256 of each PNG file (checked on read) and ``mask_sha256``, the sha256 of the raw
(H, W) uint8 0/255 array, which is independent of the PNG encoder.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sairbench.errors import SairbenchError
from sairbench.io import read_mask, write_error
from sairbench.mask_draw import generate_irregular_mask  # the drawing; re-exported here
from sairbench.scan import files_in

BUCKETS: tuple[tuple[str, float, float], ...] = (("0-20%", 0.0, 0.2), ("20-40%", 0.2, 0.4), ("40-60%", 0.4, 0.6))
MANIFEST = "manifest.json"
FORMAT = "sairbench-mask-set/1"
MASK_FOLDER_DEPTH = 1  # mask/testing_mask_dataset/*.png under the folder given (Liu et al. 2018 mask.zip)


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

def sample_training_mask(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """A training mask: bucket drawn uniformly, target ratio uniform in it (from 0.05 up to 0.6)."""
    _, lo, hi = BUCKETS[int(rng.integers(0, len(BUCKETS)))]
    lo = max(lo, 0.05)
    return generate_irregular_mask(rng, size, lo + (hi - lo) * float(rng.random()))


def _slug(bucket: str) -> str:
    return bucket.rstrip("%")


def generate_mask_set(per_bucket: int, size: tuple[int, int], seed: int = 0, max_attempts: int | None = None) -> list[MaskItem]:
    """Exactly ``per_bucket`` generated masks in each bucket, bucket by bucket (every mask of
    :class:`GeneratedMasks`, drawn now)."""
    return list(GeneratedMasks(per_bucket, size, seed, max_attempts))


class GeneratedMasks(Sequence):
    """The seeded mask set of ``per_bucket`` masks in each bucket, each mask drawn when first used.

    Bucket k uses its own stream ``default_rng([seed, k])`` and keeps the masks whose ratio lands
    in it, in order, so a set with more masks per bucket starts with the masks of a smaller one
    and item ``k * per_bucket + j`` (the j-th mask of bucket k) is the same whether or not the
    other items were drawn. Drawing item j draws masks 0..j of its bucket only: a run of n images
    draws at most n masks per bucket (``pairs.build_pairs`` uses mask i % per_bucket for image i).
    A bucket gives up after ``max_attempts`` draws (default 50 per mask asked for + 200; for the
    j-th mask at most 50 (j + 1) + 5000). Names: ``gen-<lo>-<hi>-<nnnn>`` (e.g. ``gen-20-40-0003``).
    """

    def __init__(self, per_bucket: int, size: tuple[int, int], seed: int = 0, max_attempts: int | None = None):
        if isinstance(per_bucket, bool) or not isinstance(per_bucket, (int, np.integer)) or per_bucket < 1:
            raise SairbenchError(f"per_bucket {per_bucket!r} is not valid; pass a positive number of masks per bucket.")
        self.per_bucket, self.size, self.seed = int(per_bucket), (int(size[0]), int(size[1])), int(seed)
        self.limit = max_attempts if max_attempts is not None else 50 * self.per_bucket + 200
        self._drawn: dict[int, tuple[np.random.Generator, list[MaskItem], list[int]]] = {}

    def __len__(self) -> int:
        return len(BUCKETS) * self.per_bucket

    def bucket_indices(self) -> dict[str, range]:
        """{bucket label: the indices of its masks}, without drawing any."""
        return {label: range(k * self.per_bucket, (k + 1) * self.per_bucket) for k, (label, _, _) in enumerate(BUCKETS)}

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        i = int(index) + (len(self) if int(index) < 0 else 0)
        if not 0 <= i < len(self):
            raise IndexError(f"mask index {index} out of range ({len(self)} masks)")
        k, j = divmod(i, self.per_bucket)
        label, lo, hi = BUCKETS[k]
        rng, kept, attempts = self._drawn.setdefault(k, (np.random.default_rng([self.seed, k]), [], [0]))
        limit = min(self.limit, 50 * (j + 1) + 5000)
        while len(kept) <= j and attempts[0] < limit:
            attempts[0] += 1
            target = max(lo, 0.01) + (hi - max(lo, 0.01)) * float(rng.random())
            mask = generate_irregular_mask(rng, self.size, target)
            ratio = hole_ratio(mask)
            if bucket_of(ratio) == label:
                kept.append(MaskItem(f"gen-{_slug(label)}-{len(kept):04d}", mask, ratio, label))
        if len(kept) <= j:
            raise SairbenchError(
                f"mask generator filled bucket {label} with only {len(kept)} of {self.per_bucket} masks at "
                f"{self.size[1]}x{self.size[0]} in {attempts[0]} attempts; use a larger mask size or fewer masks per bucket."
            )
        return kept[j]

    def stream(self) -> Iterator[MaskItem]:
        """Every mask in order, each forgotten once yielded (one mask in memory; for writing a set)."""
        fresh = GeneratedMasks(self.per_bucket, self.size, self.seed, self.limit)
        for i in range(len(fresh)):
            yield fresh[i]
            k, j = divmod(i, fresh.per_bucket)
            fresh._drawn[k][1][j] = None


# ---------------------------------------------------------------- Liu et al. 2018 folder


def load_mask_folder(
    folder: str | os.PathLike,
    size: tuple[int, int],
    hole_value: int = 255,
    per_bucket: int | None = None,
    seed: int = 0,
) -> list[MaskItem]:
    """Load a folder of mask PNGs, e.g. the Liu et al. 2018 irregular masks: the PNGs in it and in its
    sub-folders one level down (``sairbench.scan.files_in``: never outside it, links out skipped).

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
    files = files_in(folder, (".png",), depth=MASK_FOLDER_DEPTH, what="mask folder")
    if not files:
        raise SairbenchError(f"{folder}: no mask PNGs in this folder or its sub-folders (one level down); unzip the "
                             "mask set (e.g. Liu et al. 2018 mask.zip) into it.")
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


def write_mask_set(folder: str | os.PathLike, items: Iterable[MaskItem], meta: dict | None = None, overwrite: bool = False) -> Path:
    """Write ``{name}.png`` (255 = hole) per item and ``manifest.json``; return the manifest path.

    The set is written to a temporary sibling folder and renamed into place, so a failure (a full
    or read-only disk included: one line naming the path) never leaves a half-written set and the
    temporary folder is removed. ``items`` is read once, in order. An existing non-empty
    ``folder`` is replaced only with ``overwrite``, and only when it is a mask set this function
    wrote and holds nothing else (``_check_owned``): other files are never deleted.
    """
    folder = Path(folder).expanduser()
    if folder.exists() and not folder.is_dir():
        raise SairbenchError(f"{folder}: exists and is not a folder; choose another output folder.")
    if folder.is_dir() and any(folder.iterdir()):
        if not overwrite:
            raise SairbenchError(f"{folder}: folder is not empty; choose a new folder or pass --overwrite to replace it.")
        _check_owned(folder)
    tmp = None
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
        entries, seen = [], set()
        for it in items:
            if not it.name or "/" in it.name or "\\" in it.name or it.name.startswith("."):
                raise SairbenchError(f"mask name {it.name!r} cannot be a file name; use letters, digits, '-' and '_'.")
            if it.name in seen:
                raise SairbenchError(f"mask name {it.name!r} appears twice; mask names in a set must be unique.")
            seen.add(it.name)
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
            try:
                os.replace(tmp, folder)
            except OSError:
                os.replace(old, folder)  # the earlier set stays
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, folder)
    except OSError as exc:
        raise write_error(folder, exc) from None
    finally:
        if tmp is not None and tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return folder / MANIFEST


def _check_owned(folder: Path) -> None:
    """Refuse to replace ``folder`` unless its manifest.json is this module's (FORMAT) and every
    other entry in it is a file that manifest lists."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        listed = {MANIFEST, *(e["file"] for e in manifest["masks"])} if manifest.get("format") == FORMAT else None
    except (OSError, ValueError, UnicodeDecodeError, KeyError, TypeError, AttributeError):
        listed = None
    if listed is None:
        raise SairbenchError(f"{folder}: not a mask set written by sairbench (no {MANIFEST} of its own), so --overwrite "
                             "will not replace it; choose an empty folder.")
    other = sorted(p.name for p in folder.iterdir() if p.name not in listed)
    if other:
        raise SairbenchError(f"{folder / other[0]}: not part of the mask set in {folder} ({len(other)} such entries); "
                             "--overwrite replaces only the set's own files: move them out or choose an empty folder.")


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
