"""``photos``: real photographs that ship inside installed packages (no download, no labels).

Sources, each used only when its file is present locally: scikit-image's bundled data files,
matplotlib's ``sample_data/grace_hopper.jpg`` and scikit-learn's ``china.jpg`` / ``flower.jpg``.
Grayscale photos are replicated to RGB. With ``$SAIRBENCH_PHOTOS_DIR`` (or ``--data-root``) set to
a folder filled by ``sairbench photos fetch``, the Debian photo corpus joins them
(``sairbench.data.photo_corpus``). Train, validation and test are split by photograph, never by crop.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from sairbench.data.base import ImageDataset, Sample, apply_limit
from sairbench.errors import SairbenchError
from sairbench.io import read_image

TEST_EVERY = 4  # a quarter of the photographs (by name) are the test split
TEST_CROPS = 4  # per test photograph: the whole photograph fitted, and 3 fixed half-scale crops
TRAIN_CROPS = 2000  # random crops per training photograph (the train split's length)
MAX_SIDE = 1536  # photographs are decoded once and kept at most this long

# photographs among scikit-image's bundled files (name -> file); synthetic figures are left out
SKIMAGE_PHOTOS = {
    "astronaut": "astronaut.png", "camera": "camera.png", "chelsea": "chelsea.png", "coffee": "coffee.png",
    "coins": "coins.png", "moon": "moon.png", "rocket": "rocket.jpg", "motorcycle": "motorcycle_left.png",
    "hubble_deep_field": "hubble_deep_field.jpg", "retina": "retina.jpg", "immunohistochemistry": "ihc.png",
    "page": "page.png", "brick": "brick.png", "grass": "grass.png", "gravel": "gravel.png",
}


def _package_dir(name: str) -> Path | None:
    """Folder of an installed package, found without importing it (sklearn takes ~1 s to import)."""
    from importlib.util import find_spec

    try:
        spec = find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _skimage_files() -> list[tuple[str, Path]]:
    pkg = _package_dir("skimage")
    if pkg is None:
        return []
    base = pkg / "data"
    return [(f"skimage-{n}", base / f) for n, f in SKIMAGE_PHOTOS.items() if (base / f).is_file()]


def _matplotlib_files() -> list[tuple[str, Path]]:
    pkg = _package_dir("matplotlib")
    if pkg is None:
        return []
    path = pkg / "mpl-data" / "sample_data" / "grace_hopper.jpg"
    if not path.is_file():  # unusual installs: ask matplotlib itself
        try:
            import matplotlib

            path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
        except ImportError:
            return []
    return [("matplotlib-grace_hopper", path)] if path.is_file() else []


def _sklearn_files() -> list[tuple[str, Path]]:
    pkg = _package_dir("sklearn")
    if pkg is None:
        return []
    base = pkg / "datasets" / "images"
    return [(f"sklearn-{n}", base / f"{n}.jpg") for n in ("china", "flower") if (base / f"{n}.jpg").is_file()]


def find_photos() -> list[tuple[str, Path, str]]:
    """(name, path, source) of every bundled photograph found on this machine, in a fixed order."""
    return [(n, p, "bundled") for n, p in _skimage_files() + _matplotlib_files() + _sklearn_files()]


def split_of(name: str, source: str = "bundled") -> str:
    """The split of a photograph, fixed by its name (never by crop): 'test' for a quarter of them;
    of the others, those of the validation packages are 'val', the rest 'train'."""
    from sairbench.data.photo_corpus import VALIDATION_PACKAGES

    if int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) % TEST_EVERY == 0:
        return "test"
    return "val" if source in VALIDATION_PACKAGES else "train"


def all_photos(root: str | os.PathLike | None = None) -> list[tuple[str, Path, str]]:
    """(name, path, source) of the bundled photographs, plus the indexed Debian corpus of ``root`` or
    ``$SAIRBENCH_PHOTOS_DIR`` (source: its package)."""
    from sairbench.data.photo_corpus import PHOTOS_DIR_ENV, indexed_photos

    found = find_photos()
    folder = root or os.environ.get(PHOTOS_DIR_ENV)
    if folder:
        found += indexed_photos(folder)
    return found


class Photos(ImageDataset):
    """Real photographs, split by photograph (:func:`split_of`).

    ``split="test"`` (and ``"val"``): each photograph fitted to ``size`` (the dataset's fit policy),
    then ``TEST_CROPS - 1`` fixed half-scale crops of it. ``split="train"``: ``TRAIN_CROPS`` random crops
    per training photograph at scales from ``size`` pixels to the whole short side (as
    super-resolution training draws from DIV2K); crop ``i`` depends only on (seed, i).
    ``split="all"``: every photograph once, fitted (no split).
    """

    name = "photos"

    def __init__(self, size: int = 64, limit: int | None = None, split: str = "test", root=None, seed: int = 0):
        super().__init__(size, split)
        if split not in ("train", "val", "test", "all"):
            raise SairbenchError(f"photos has no split {split!r}; use train, val, test or all.")
        self.classes, self.seed = [], seed
        found = all_photos(root)
        if not found:
            raise SairbenchError(
                "photos: found no bundled photographs; install scikit-image, matplotlib or scikit-learn "
                "(pip install scikit-image matplotlib scikit-learn)."
            )
        self._files = found if split == "all" else [f for f in found if split_of(f[0], f[2]) == split]
        if split == "val" and not self._files:
            raise SairbenchError("photos: the validation split comes from the Debian photo corpus; fetch it with "
                                 "`sairbench photos fetch -o DIR` and set SAIRBENCH_PHOTOS_DIR=DIR (or --data-root DIR).")
        self._per = {"train": TRAIN_CROPS, "val": TEST_CROPS, "test": TEST_CROPS, "all": 1}[split]
        self._n = apply_limit(len(self._files) * self._per, limit)
        self._decoded: dict[int, np.ndarray] = {}
        if split == "train":
            self.sampling = (f"random square crops of {len(self._files)} training photographs, side log-uniform from "
                             f"{size} px to the short side, random horizontal flips")

    def __len__(self) -> int:
        return self._n

    def _name(self, i: int) -> str:
        name = self._files[i // self._per][0]
        return name if self._per == 1 else f"{name}@{i % self._per}"

    def _photo(self, k: int) -> np.ndarray:
        """Photograph ``k``, decoded once and kept with its long side at most MAX_SIDE pixels."""
        if k not in self._decoded:
            image = read_image(self._files[k][1])
            h, w = image.shape[:2]
            if max(h, w) > MAX_SIDE:
                import cv2

                f = MAX_SIDE / max(h, w)
                image = cv2.resize(image, (round(w * f), round(h * f)), interpolation=cv2.INTER_AREA)
            self._decoded[k] = image
        return self._decoded[k]

    def _load(self, i: int) -> Sample:
        k, j = divmod(i, self._per)
        image = self._photo(k)
        if self.split == "train":
            image = self._random_crop(image, np.random.default_rng([self.seed, i]))
        elif j > 0:  # fixed half-scale crops of a test photograph: top-left, centre, bottom-right
            h, w = image.shape[:2]
            s = min(h, w) // 2
            top, left = [(0, 0), ((h - s) // 2, (w - s) // 2), (h - s, w - s)][(j - 1) % 3]
            image = image[top:top + s, left:left + s]
        return self.make_sample(self._name(i), image, None)

    def _random_crop(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        h, w = image.shape[:2]
        short = min(h, w)
        lo = min(short, self.size)
        side = int(round(np.exp(rng.uniform(np.log(lo), np.log(short)))))  # log-uniform scale
        top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        crop = image[top:top + side, left:left + side]
        return crop[:, ::-1] if rng.random() < 0.5 else crop
