"""Datasets: every loader returns ``Sample``s resized to ``size`` x ``size``.

``get_dataset(name, split, size, root, limit, seed)`` is the one entry point. Each dataset is one
row of :data:`DATASETS` (:mod:`sairbench.data.registry`: defaults, loader, options, official
folder name, labels); ``DATASET_NAMES`` and :func:`protocol_defaults` are read from it.
"""

from __future__ import annotations

import os

from sairbench.data.base import DATA_ROOT_ENV, FITS, ImageDataset, Sample, check_fit, default_root
from sairbench.data.classes import ADE20K_CLASSES, CELEBAMASK_CLASSES, IGNORE_INDEX
from sairbench.data.registry import (DATASETS, DEFAULT_DATASET, DatasetDefaults, DatasetRow, dataset_row, labelled_datasets,
                                     register_dataset)

DATASET_NAMES: tuple[str, ...] = tuple(DATASETS)

#: Each dataset's evaluation size, number of test images (None = the whole test split) and fit
#: policy, used unless a protocol file or `sairbench run` overrides them (the rows' defaults).
PROTOCOL_DEFAULTS: dict[str, dict] = {name: row.protocol_defaults() for name, row in DATASETS.items()}


def protocol_defaults(name: str) -> dict:
    """The evaluation defaults of dataset ``name`` (size, limit, fit), a new dict; see ``DATASETS``."""
    return dataset_row(name).protocol_defaults()


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
    ``options``: those of the dataset's row (``DATASETS[name].options``): "folder" takes
    ``label_root`` and ``classes``; "synthetic-faces" takes ``length`` and ``cache_size``.
    """
    check_fit(fit)
    dataset = dataset_row(name).open(split, size, root, limit, seed, options)
    dataset.fit = fit
    dataset.with_labels = labels
    return dataset


__all__ = [
    "ADE20K_CLASSES",
    "CELEBAMASK_CLASSES",
    "DATASETS",
    "DATASET_NAMES",
    "DEFAULT_DATASET",
    "DATA_ROOT_ENV",
    "FITS",
    "PROTOCOL_DEFAULTS",
    "IGNORE_INDEX",
    "DatasetDefaults",
    "DatasetRow",
    "ImageDataset",
    "Sample",
    "dataset_row",
    "default_root",
    "get_dataset",
    "labelled_datasets",
    "register_dataset",
    "protocol_defaults",
]
