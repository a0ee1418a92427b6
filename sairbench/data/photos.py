"""``photos``: real photographs that ship inside installed packages (no download, no labels).

Sources, each used only when its file is present locally: scikit-image's bundled data files,
matplotlib's ``sample_data/grace_hopper.jpg`` and scikit-learn's ``china.jpg`` / ``flower.jpg``.
Grayscale photos are replicated to RGB. The split argument is ignored.
"""

from __future__ import annotations

from pathlib import Path

from sairbench.data.base import ImageDataset, Sample, apply_limit
from sairbench.errors import SairbenchError
from sairbench.io import read_image

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


def find_photos() -> list[tuple[str, Path]]:
    """(name, path) of every bundled photograph found on this machine, in a fixed order."""
    return _skimage_files() + _matplotlib_files() + _sklearn_files()


class Photos(ImageDataset):
    name = "photos"

    def __init__(self, size: int = 64, limit: int | None = None, split: str = "test"):
        super().__init__(size, split)
        self.classes = []
        found = find_photos()
        if not found:
            raise SairbenchError(
                "photos: found no bundled photographs; install scikit-image, matplotlib or scikit-learn "
                "(pip install scikit-image matplotlib scikit-learn)."
            )
        self._files = found[: apply_limit(len(found), limit)]

    def __len__(self) -> int:
        return len(self._files)

    def _name(self, i: int) -> str:
        return self._files[i][0]

    def _load(self, i: int) -> Sample:
        name, path = self._files[i]
        return self.make_sample(name, read_image(path), None)
