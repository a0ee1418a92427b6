"""Dataset base class, the ``Sample`` record, and the square crop/resize every loader shares."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from sairbench.errors import SairbenchError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
DATA_ROOT_ENV = "SAIRBENCH_DATA_ROOT"
DATA_CACHE_ENV = "SAIRBENCH_DATA_CACHE"  # "1": decoded samples at the working size cached (sairbench.cache)


@dataclass
class Sample:
    """One dataset item.

    image: uint8 (H, W, 3) RGB. label: int64 (H, W) class indices (255 = ignore) or None.
    """

    name: str
    image: np.ndarray
    label: np.ndarray | None = None


class ImageDataset:
    """A finite, indexable list of ``Sample``s, all ``size`` x ``size``.

    Subclasses set ``name``, ``classes`` (label index -> class name; empty when unlabelled) and
    implement ``__len__``, ``_load(i) -> Sample`` and ``_name(i) -> str`` (``i`` range-checked).
    """

    name: str = "dataset"
    classes: list[str] = []

    def __init__(self, size: int, split: str = "test"):
        self.size = check_size(size)
        self.split = split

    def __len__(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def _load(self, i: int) -> Sample:  # pragma: no cover - abstract
        raise NotImplementedError

    def _name(self, i: int) -> str:
        return self._load(i).name

    def _index(self, i: int) -> int:
        n = len(self)
        if not isinstance(i, (int, np.integer)):
            raise TypeError(f"dataset index must be an int, not {type(i).__name__}")
        i = int(i)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"index {i} out of range for {self.name} ({n} samples)")
        return i

    def __getitem__(self, i: int) -> Sample:
        i = self._index(i)
        if os.environ.get(DATA_CACHE_ENV) != "1":
            return self._load(i)
        sources = self._sources(i)
        if not sources:  # procedural or in-memory data: nothing worth caching
            return self._load(i)
        return self._cached_load(i, sources)

    def _sources(self, i: int) -> list[Path]:
        """The files sample ``i`` is decoded from (keys of the decoded-sample cache); [] = no cache."""
        return []

    def _cached_load(self, i: int, sources: list[Path]) -> Sample:
        """``_load(i)`` through the decoded-sample cache, keyed by the source files (path, size,
        mtime), the dataset, size, fit and whether labels are read."""
        import torch

        from sairbench.cache import cached_tensor

        stats = [(str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for p in sources if p.is_file()]
        key = {"dataset": self.name, "split": self.split, "size": self.size, "fit": self.fit,
               "labels": self.with_labels, "sources": stats}
        holder: dict[str, Sample] = {}

        def decode() -> torch.Tensor:
            sample = holder["s"] = self._load(i)
            label = np.full(sample.image.shape[:2], -1, np.int64) if sample.label is None else sample.label
            return torch.cat([torch.from_numpy(sample.image.astype(np.int64)), torch.from_numpy(label)[..., None]], -1)

        packed = cached_tensor("samples", key, decode)
        if "s" in holder:
            return holder["s"]
        arr = packed.numpy()
        label = None if (arr[..., 3] < 0).all() else arr[..., 3].astype(np.int64)
        return Sample(self._name(i), np.ascontiguousarray(arr[..., :3].astype(np.uint8)), label)

    fit: str = "center-crop"  # how a non-square image becomes size x size: see FITS
    with_labels: bool = True  # False: label files are not read (models that need no labels)

    def make_sample(self, name: str, image: np.ndarray, label: np.ndarray | None) -> Sample:
        """A Sample at ``self.size`` x ``self.size`` under this dataset's ``fit`` policy."""
        return make_sample(name, image, label, self.size, self.fit)

    def sample_name(self, i: int) -> str:
        """``self[i].name`` without reading or drawing the image."""
        return self._name(self._index(i))

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, split={self.split!r}, size={self.size}, len={len(self)})"


def check_size(size: int, maximum: int | None = None) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 8:
        raise SairbenchError(f"image size {size!r} is not valid; pass an integer size of at least 8.")
    if maximum is not None and size > maximum:
        raise SairbenchError(f"image size {size} is too large for this dataset; pass a size of at most {maximum}.")
    return int(size)


def center_square(array: np.ndarray) -> np.ndarray:
    """Centre crop (H, W, ...) to (s, s, ...) with s = min(H, W)."""
    h, w = array.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    return array[top : top + s, left : left + s]


FITS = {
    "center-crop": "the centre square (side min(H, W)) resized to size x size; a non-square image loses its sides",
    "resize": "the whole image resized to size x size; a non-square image is stretched",
}


def check_fit(fit: str) -> str:
    if fit not in FITS:
        raise SairbenchError(f"fit {fit!r}: use one of {', '.join(FITS)} (how a non-square image is brought to size).")
    return fit


def _fitted(array: np.ndarray, fit: str) -> np.ndarray:
    return center_square(array) if fit == "center-crop" else array


def resize_image(image: np.ndarray, size: int, fit: str = "center-crop") -> np.ndarray:
    """uint8 (H, W, 3) -> uint8 (size, size, 3) under ``fit`` (FITS): area when shrinking, bicubic when enlarging."""
    sq = _fitted(image, fit)
    if sq.shape[:2] == (size, size):
        return np.ascontiguousarray(sq)
    interp = cv2.INTER_AREA if min(sq.shape[:2]) > size else cv2.INTER_CUBIC
    return cv2.resize(np.ascontiguousarray(sq), (size, size), interpolation=interp)


def resize_label(label: np.ndarray, size: int, fit: str = "center-crop") -> np.ndarray:
    """Integer (H, W) -> int64 (size, size) under ``fit`` by nearest-neighbour (pixel centres)."""
    sq = _fitted(label, fit)
    rows = ((np.arange(size) * 2 + 1) * sq.shape[0]) // (2 * size)
    cols = ((np.arange(size) * 2 + 1) * sq.shape[1]) // (2 * size)
    return sq[rows[:, None], cols[None, :]].astype(np.int64)


def check_label_matches(label: np.ndarray, image: np.ndarray, label_path: Path, image_path: Path) -> None:
    """Labels may differ in resolution from the image (CelebA-HQ: 1024 vs 512) but not in shape."""
    (lh, lw), (ih, iw) = label.shape[:2], image.shape[:2]
    if abs(lh * iw - lw * ih) > max(lh, lw, ih, iw):
        raise SairbenchError(
            f"{label_path}: label is {lw}x{lh} but image {image_path} is {iw}x{ih} (different aspect "
            "ratio); the label must cover the image pixel for pixel."
        )


def make_sample(name: str, image: np.ndarray, label: np.ndarray | None, size: int, fit: str = "center-crop") -> Sample:
    return Sample(name, resize_image(image, size, fit), None if label is None else resize_label(label, size, fit))


def read_label(path: Path) -> np.ndarray:
    """Read a single-channel class-index PNG (mode L, P, I or I;16) as an integer (H, W) array."""
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise SairbenchError(f"{path}: no such label file; add it or remove the matching image.")
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode not in ("L", "P", "I", "I;16", "1"):
                raise SairbenchError(
                    f"{path}: label image has mode {im.mode}; save labels as single-channel PNGs of class indices."
                )
            return np.asarray(im).astype(np.int64)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise SairbenchError(f"{path}: not a readable label image ({type(exc).__name__}); replace the file.") from None


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name (hidden files skipped; never outside
    the folder: links pointing out of it skipped, see ``sairbench.scan.files_in``)."""
    from sairbench.scan import files_in

    return files_in(folder, IMAGE_EXTENSIONS, what="image folder")


def default_root(root: str | os.PathLike | None, folder_name: str, dataset: str) -> Path:
    """``root`` as a Path, or ``$SAIRBENCH_DATA_ROOT/<folder_name>`` when it is None."""
    if root is not None:
        return Path(root).expanduser()
    base = os.environ.get(DATA_ROOT_ENV)
    if not base:
        raise SairbenchError(
            f"dataset {dataset!r} needs its files: pass --data-root <path to {folder_name}> "
            f"or set {DATA_ROOT_ENV} to the folder that contains {folder_name}/."
        )
    return Path(base).expanduser() / folder_name


def apply_limit(n: int, limit: int | None) -> int:
    if limit is None:
        return n
    if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 0:
        raise SairbenchError(f"limit {limit!r} is not valid; pass a non-negative integer.")
    return min(n, int(limit))
