"""``celeba-hq``: CelebA-HQ images with CelebAMask-HQ labels, in the official folder layout.

    <root>/CelebA-HQ-img/{i}.jpg                                   i = 0..29999 (1024x1024)
    <root>/CelebAMask-HQ-mask-anno/{i // 2000}/{i:05d}_{part}.png   512x512, non-zero = part present

``root`` defaults to ``$SAIRBENCH_DATA_ROOT/CelebAMask-HQ``. Parts are merged as the official
``g_mask.py`` does: start from background (0) and paint parts in ``CELEBAMASK_CLASSES`` order, so
later classes overwrite earlier ones. Without the anno folder, labels are None (plain CelebA-HQ).

Split (the paper's 25,000 / 5,000): image index < 25000 -> "train", >= 25000 -> "test" ("val" is
an alias of "test"). A partial copy is split by the same rule.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sairbench.data.base import IMAGE_EXTENSIONS, ImageDataset, Sample, apply_limit, check_label_matches
from sairbench.data.classes import CELEBAMASK_CLASSES
from sairbench.errors import SairbenchError
from sairbench.io import read_image, read_mask

FOLDER_NAME = "CelebAMask-HQ"
IMAGE_DIR = "CelebA-HQ-img"
ANNO_DIR = "CelebAMask-HQ-mask-anno"
TRAIN_COUNT = 25000
FIX = "download CelebAMask-HQ (github.com/switchablenorms/CelebAMask-HQ), unzip it and pass --data-root <path to CelebAMask-HQ>"


def _split_of(index: int) -> str:
    return "train" if index < TRAIN_COUNT else "test"


def _numbered_images(folder: Path) -> list[tuple[int, Path]]:
    return [(int(p.stem), p) for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.stem.isdigit()]


def merge_parts(anno_dir: Path, index: int) -> np.ndarray | None:
    """int64 (512, 512) label map of image ``index``; None when it has no part files at all."""
    folder = anno_dir / str(index // 2000)
    label = None
    for k, part in enumerate(CELEBAMASK_CLASSES[1:], start=1):
        path = folder / f"{index:05d}_{part}.png"
        if not path.is_file():
            continue
        present = read_mask(path, hole_value=255, threshold=1)  # official: any non-zero value
        if label is None:
            label = np.zeros(present.shape, np.int64)
        elif present.shape != label.shape:
            raise SairbenchError(f"{path}: part mask is {present.shape[1]}x{present.shape[0]}, other parts of image {index} are {label.shape[1]}x{label.shape[0]}; replace the file.")
        label[present] = k
    return label


class CelebAHQ(ImageDataset):
    name = "celeba-hq"

    def __init__(self, root: Path, split: str = "test", size: int = 64, limit: int | None = None):
        super().__init__(size, split)
        if split not in ("train", "test", "val"):
            raise SairbenchError(f"celeba-hq has no split {split!r}; use train or test.")
        want = "test" if split == "val" else split
        self.root = root
        img_dir, anno = root / IMAGE_DIR, root / ANNO_DIR
        if not img_dir.is_dir() and root.is_dir() and _numbered_images(root):
            img_dir, anno = root, root.parent / ANNO_DIR  # root is the image folder itself
        if not img_dir.is_dir():
            raise SairbenchError(f"expected {FOLDER_NAME}/{IMAGE_DIR}/*.jpg under {root}, but there is no {IMAGE_DIR} folder; {FIX}.")
        entries = _numbered_images(img_dir)
        if not entries:
            raise SairbenchError(f"expected {FOLDER_NAME}/{IMAGE_DIR}/{{0..29999}}.jpg under {root}, but {img_dir} has no such images; {FIX}.")
        entries.sort()
        entries = [e for e in entries if _split_of(e[0]) == want]
        if not entries:
            rule = f"index < {TRAIN_COUNT}" if want == "train" else f"index >= {TRAIN_COUNT}"
            raise SairbenchError(f"{img_dir}: no {want} images ({rule}, the paper's 25,000/5,000 split); add them or choose the other split.")
        self._entries = entries[: apply_limit(len(entries), limit)]
        self.anno_dir = anno if anno.is_dir() else None
        self.classes = list(CELEBAMASK_CLASSES) if self.anno_dir else []

    def __len__(self) -> int:
        return len(self._entries)

    def _name(self, i: int) -> str:
        return str(self._entries[i][0])

    def _sources(self, i: int) -> list[Path]:
        index, path = self._entries[i]
        parts = sorted((self.anno_dir / str(index // 2000)).glob(f"{index:05d}_*.png")) if (
            self.anno_dir is not None and self.with_labels) else []
        return [path, *parts]

    def _load(self, i: int) -> Sample:
        index, path = self._entries[i]
        image = read_image(path)
        label = None
        if self.anno_dir is not None and self.with_labels:
            label = merge_parts(self.anno_dir, index)
            if label is None:
                raise SairbenchError(
                    f"{self.anno_dir / str(index // 2000)}: no part masks {index:05d}_*.png for image {path}; "
                    "restore the annotation files or remove the image."
                )
            check_label_matches(label, image, self.anno_dir / str(index // 2000) / f"{index:05d}_*.png", path)
        return self.make_sample(str(index), image, label)
