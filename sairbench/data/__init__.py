"""Datasets: every loader returns ``Sample``s resized to ``size`` x ``size``.

``get_dataset(name, split, size, root, limit, seed)`` is the one entry point; see ``DATASET_NAMES``.
"""

from __future__ import annotations

import os
from pathlib import Path

from sairbench.data.base import DATA_ROOT_ENV, FITS, ImageDataset, Sample, check_fit, default_root
from sairbench.data.classes import ADE20K_CLASSES, CELEBAMASK_CLASSES, IGNORE_INDEX
from sairbench.errors import SairbenchError

DATASET_NAMES: tuple[str, ...] = ("synthetic-faces", "celeba-hq", "ade20k", "folder", "photos")
DEFAULT_DATASET = "synthetic-faces"

# The protocol belongs to the data: each dataset's evaluation size, number of test images (None =
# the whole test split) and fit policy, used unless a protocol file or `sairbench run` overrides them.
PROTOCOL_DEFAULTS: dict[str, dict] = {
    "synthetic-faces": {"size": 64, "limit": 100, "fit": "center-crop"},  # procedural faces are square
    "celeba-hq": {"size": 256, "limit": None, "fit": "center-crop"},  # the paper: 256x256, all 5,000 test images
    "ade20k": {"size": 256, "limit": None, "fit": "center-crop"},  # the paper: 256x256, the 2,000 validation images
    "folder": {"size": 256, "limit": None, "fit": "center-crop"},
    "photos": {"size": 256, "limit": None, "fit": "center-crop"},
}


def protocol_defaults(name: str) -> dict:
    """The evaluation defaults of dataset ``name`` (size, limit, fit); see ``PROTOCOL_DEFAULTS``."""
    if name not in PROTOCOL_DEFAULTS:
        raise SairbenchError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASET_NAMES)}.")
    return dict(PROTOCOL_DEFAULTS[name])


def get_dataset(
    name: str = DEFAULT_DATASET,
    split: str = "test",
    size: int = 64,
    root: str | os.PathLike | None = None,
    limit: int | None = None,
    seed: int = 0,
    fit: str = "center-crop",
    labels: bool = True,
    **options,
) -> ImageDataset:
    """Open dataset ``name`` (one of ``DATASET_NAMES``) at ``size`` x ``size``.

    ``root``: the dataset folder; None -> ``$SAIRBENCH_DATA_ROOT/<official folder name>``
    (CelebAMask-HQ, ADEChallengeData2016); required for "folder"; unused by the built-ins.
    ``limit``: keep the first ``limit`` samples of the split. ``seed``: synthetic-faces only.
    ``labels``: False skips reading label files (for models that need none; CelebAMask-HQ's 18
    part PNGs per image are most of its loading time).
    ``fit``: how a non-square image becomes ``size`` x ``size`` (``sairbench.data.base.FITS``).
    ``options``: "folder" takes ``label_root`` and ``classes``; "synthetic-faces" takes ``length``
    and ``cache_size``.
    """
    check_fit(fit)
    dataset = _open(name, split, size, root, limit, seed, options)
    dataset.fit = fit
    dataset.with_labels = labels
    return dataset


def _open(name, split, size, root, limit, seed, options) -> ImageDataset:
    if name == "synthetic-faces":
        from sairbench.data.synthetic_faces import SyntheticFaces

        return SyntheticFaces(split=split, size=size, seed=seed, limit=limit, **_only(name, options, "length", "cache_size"))
    if name == "celeba-hq":
        from sairbench.data.celeba import FOLDER_NAME, CelebAHQ

        _only(name, options)
        return CelebAHQ(default_root(root, FOLDER_NAME, name), split=split, size=size, limit=limit)
    if name == "ade20k":
        from sairbench.data.ade20k import ADE20K, FOLDER_NAME

        _only(name, options)
        return ADE20K(default_root(root, FOLDER_NAME, name), split=split, size=size, limit=limit)
    if name == "folder":
        from sairbench.data.folder import ImageFolder

        if root is None:
            raise SairbenchError("dataset 'folder' needs --root <folder of images> (optionally with images/ and labels/ inside).")
        return ImageFolder(Path(root).expanduser(), size=size, limit=limit, split=split, **_only(name, options, "label_root", "classes"))
    if name == "photos":
        from sairbench.data.photos import Photos

        _only(name, options)
        return Photos(size=size, limit=limit, split=split, root=root, seed=seed)
    raise SairbenchError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASET_NAMES)}.")


def _only(name: str, options: dict, *allowed: str) -> dict:
    extra = sorted(set(options) - set(allowed))
    if extra:
        raise SairbenchError(f"dataset {name!r} takes no option {extra[0]!r}" + (f"; it takes {', '.join(allowed)}." if allowed else "."))
    return options


__all__ = [
    "ADE20K_CLASSES",
    "CELEBAMASK_CLASSES",
    "DATASET_NAMES",
    "DATA_ROOT_ENV",
    "FITS",
    "PROTOCOL_DEFAULTS",
    "IGNORE_INDEX",
    "ImageDataset",
    "Sample",
    "get_dataset",
    "protocol_defaults",
]
