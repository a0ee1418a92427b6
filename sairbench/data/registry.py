"""Every dataset, one :class:`DatasetRow` each, in the table :data:`DATASETS`.

A row holds what the rest of sairbench needs to know about a dataset: its evaluation defaults
(size, number of test images, fit policy: the protocol belongs to the data, and a protocol file or
``sairbench run`` overrides them), how to open it (``loader``), the options its loader accepts,
the official folder name looked for under ``$SAIRBENCH_DATA_ROOT``, whether it needs a folder
given with ``--data-root``, and whether it ships label maps. ``sairbench.data.get_dataset``,
``protocol_defaults`` and ``DATASET_NAMES`` are read from it.

Plugins add rows with :func:`register_dataset` (entry points ``sairbench.datasets``, loaded once by
:func:`load_dataset_plugins` the first time a name is not found); docs/plugins.md.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Optional

from sairbench.data.ade20k import ADE20K
from sairbench.data.ade20k import FOLDER_NAME as ADE20K_FOLDER
from sairbench.data.celeba import FOLDER_NAME as CELEBA_FOLDER
from sairbench.data.celeba import CelebAHQ
from sairbench.data.base import ImageDataset, default_root
from sairbench.errors import SairbenchError


@dataclass(frozen=True)
class DatasetDefaults:
    """A dataset's evaluation defaults: ``size`` x ``size`` pixels, the first ``limit`` test
    images (None: the whole split), and ``fit``, how a non-square image becomes square."""

    size: int
    limit: Optional[int]
    fit: str = "center-crop"


#: ``loader(row, root, split, size, limit, seed, options)`` -> the opened dataset; ``root`` is the
#: dataset folder as a Path for a row with a folder name or one that needs a root, else as given.
Loader = Callable[["DatasetRow", Optional[Path], str, int, Optional[int], int, dict], ImageDataset]


@dataclass(frozen=True)
class DatasetRow:
    """One dataset.

    name: the name protocols and ``--dataset`` use. defaults: :class:`DatasetDefaults`.
    loader: opens it (:data:`Loader`). options: keyword options its loader accepts beyond the
    common ones. folder_name: the official folder under ``$SAIRBENCH_DATA_ROOT`` when no root is
    given (None: the data is built in, or its folder must be given). needs_root: a folder must be
    given with ``--data-root``. has_labels: its samples come with label maps (classes).
    description: one line for help texts.
    """

    name: str
    defaults: DatasetDefaults
    loader: Loader
    options: tuple[str, ...] = ()
    folder_name: Optional[str] = None
    needs_root: bool = False
    has_labels: bool = False
    description: str = ""

    def protocol_defaults(self) -> dict:
        """The defaults as ``{"size", "limit", "fit"}`` (a new dict)."""
        return asdict(self.defaults)

    def open(self, split: str, size: int, root, limit: Optional[int], seed: int, options: dict) -> ImageDataset:
        """The dataset at ``size`` x ``size``; SairbenchError for an option it does not take or
        a folder it needs and was not given."""
        extra = sorted(set(options) - set(self.options))
        if extra:
            takes = f"; it takes {', '.join(self.options)}." if self.options else "."
            raise SairbenchError(f"dataset {self.name!r} takes no option {extra[0]!r}{takes}")
        if self.needs_root and root is None:
            raise SairbenchError(f"dataset {self.name!r} needs --data-root <folder of images> "
                                 "(optionally with images/ and labels/ inside).")
        if self.folder_name is not None:
            root = default_root(root, self.folder_name, self.name)
        elif self.needs_root:
            root = Path(root).expanduser()
        return self.loader(self, root, split, size, limit, seed, options)


def _synthetic_faces(row, root, split, size, limit, seed, options) -> ImageDataset:
    from sairbench.data.synthetic_faces import SyntheticFaces

    return SyntheticFaces(split=split, size=size, seed=seed, limit=limit, **options)


def _celeba_hq(row, root, split, size, limit, seed, options) -> ImageDataset:
    return CelebAHQ(root, split=split, size=size, limit=limit)


def _ade20k(row, root, split, size, limit, seed, options) -> ImageDataset:
    return ADE20K(root, split=split, size=size, limit=limit)


def _folder(row, root, split, size, limit, seed, options) -> ImageDataset:
    from sairbench.data.folder import ImageFolder

    return ImageFolder(root, size=size, limit=limit, split=split, **options)


def _photos(row, root, split, size, limit, seed, options) -> ImageDataset:
    from sairbench.data.photos import Photos

    return Photos(size=size, limit=limit, split=split, root=root, seed=seed)


DATASETS: dict[str, DatasetRow] = {row.name: row for row in (
    DatasetRow("synthetic-faces", DatasetDefaults(64, 100), _synthetic_faces, ("length", "cache_size"),
               has_labels=True, description="built-in procedural faces with part labels (square)"),
    DatasetRow("celeba-hq", DatasetDefaults(256, None), _celeba_hq, folder_name=CELEBA_FOLDER, has_labels=True,
               description="CelebAMask-HQ; the paper: 256x256, all 5,000 test images"),
    DatasetRow("ade20k", DatasetDefaults(256, None), _ade20k, folder_name=ADE20K_FOLDER, has_labels=True,
               description="ADE20K (ADEChallengeData2016); the paper: 256x256, the 2,000 validation images"),
    DatasetRow("folder", DatasetDefaults(256, None), _folder, ("label_root", "classes"), needs_root=True,
               description="a folder of images given with --data-root (labels/ beside images/ optional)"),
    DatasetRow("photos", DatasetDefaults(256, None), _photos,
               description="real photographs from Debian packages (`sairbench photos fetch`)"),
)}

DEFAULT_DATASET = "synthetic-faces"
PLUGIN_GROUP = "sairbench.datasets"
_DATASET_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]*")


def load_dataset_plugins() -> None:
    """Register the datasets of the ``sairbench.datasets`` entry points, once (``sairbench.plugins``):
    an entry point names a :class:`DatasetRow` or a module that calls :func:`register_dataset`."""
    from sairbench.plugins import load_group

    load_group(PLUGIN_GROUP, lambda name, obj: register_dataset(obj, entry=name))


def register_dataset(row: DatasetRow, entry: str | None = None) -> DatasetRow:
    """Add ``row`` to :data:`DATASETS`: protocols (``[dataset] name``), ``--dataset`` of run, train,
    masks export and cache build then open it. One line when it is not a DatasetRow, its name is
    not lower-case letters, digits, '.', '_' and '-' or is taken. ``entry``: the entry point it
    came from, which must carry the dataset's name."""
    if not isinstance(row, DatasetRow):
        raise SairbenchError(f"{row!r} is not a sairbench.data.DatasetRow")
    if entry is not None and entry != row.name:
        raise SairbenchError(f"entry point '{entry}' names dataset '{row.name}'; call the entry point '{row.name}'")
    if not isinstance(row.name, str) or not _DATASET_NAME.fullmatch(row.name) or ".." in row.name:
        raise SairbenchError(f"dataset name {row.name!r}: use lower-case letters, digits, '.', '_' and '-'")
    if DATASETS.get(row.name, row) is not row:
        raise SairbenchError(f"dataset '{row.name}' is registered already; give it another name")
    if not isinstance(row.defaults, DatasetDefaults) or not callable(row.loader):
        raise SairbenchError(f"dataset '{row.name}': give DatasetDefaults(size, limit) and a loader(row, root, split, "
                             "size, limit, seed, options)")
    DATASETS[row.name] = row
    return row


def dataset_row(name: str) -> DatasetRow:
    """The row of dataset ``name`` (the plugins' datasets loaded when it is not built in);
    SairbenchError naming the known ones when there is none."""
    if name not in DATASETS:
        load_dataset_plugins()
    if name not in DATASETS:
        raise SairbenchError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}.")
    return DATASETS[name]


def labelled_datasets() -> list[str]:
    """The datasets whose samples always come with label maps."""
    load_dataset_plugins()
    return [name for name, row in DATASETS.items() if row.has_labels]
