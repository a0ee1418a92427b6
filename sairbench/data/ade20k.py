"""``ade20k``: ADE20K SceneParsing (``ADEChallengeData2016``) with its 150 classes.

    <root>/images/{training,validation}/*.jpg
    <root>/annotations/{training,validation}/*.png    same stem; 0 = other, k = class k - 1

``root`` defaults to ``$SAIRBENCH_DATA_ROOT/ADEChallengeData2016``. Split "train" -> training,
"test" or "val" -> validation. Label 0 ("other") becomes 255 (ignore), k becomes k - 1.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sairbench.data.base import ImageDataset, Sample, apply_limit, check_label_matches, list_images, read_label
from sairbench.data.classes import ADE20K_CLASSES, IGNORE_INDEX
from sairbench.errors import SairbenchError
from sairbench.io import read_image

FOLDER_NAME = "ADEChallengeData2016"
SPLIT_DIRS = {"train": "training", "test": "validation", "val": "validation"}
FIX = "download ADEChallengeData2016.zip (the MIT SceneParsing benchmark), unzip it and pass --data-root <path to ADEChallengeData2016>"


def reduce_zero_label(raw: np.ndarray) -> np.ndarray:
    """ADE annotation (0 = other, 1..150) -> int64 class indices 0..149 with 255 = ignore."""
    raw = raw.astype(np.int64)
    return np.where(raw == 0, IGNORE_INDEX, raw - 1)


class ADE20K(ImageDataset):
    name = "ade20k"

    def __init__(self, root: Path, split: str = "test", size: int = 64, limit: int | None = None):
        super().__init__(size, split)
        if split not in SPLIT_DIRS:
            raise SairbenchError(f"ade20k has no split {split!r}; use train or test (= validation).")
        self.root = root
        self.classes = list(ADE20K_CLASSES)
        sub = SPLIT_DIRS[split]
        img_dir, ann_dir = root / "images" / sub, root / "annotations" / sub
        for folder in (img_dir, ann_dir):
            if not folder.is_dir():
                raise SairbenchError(f"expected {FOLDER_NAME}/images/{sub}/*.jpg and annotations/{sub}/*.png under {root}, but {folder} is missing; {FIX}.")
        images = list_images(img_dir)
        if not images:
            raise SairbenchError(f"expected {FOLDER_NAME}/images/{sub}/*.jpg under {root}, but {img_dir} has no images; {FIX}.")
        images = images[: apply_limit(len(images), limit)]
        self._pairs = [(p, ann_dir / f"{p.stem}.png") for p in images]

    def __len__(self) -> int:
        return len(self._pairs)

    def _name(self, i: int) -> str:
        return self._pairs[i][0].stem

    def _sources(self, i: int) -> list[Path]:
        img_path, ann_path = self._pairs[i]
        return [img_path, ann_path] if self.with_labels else [img_path]

    def _load(self, i: int) -> Sample:
        img_path, ann_path = self._pairs[i]
        image = read_image(img_path)
        if not self.with_labels:
            return self.make_sample(img_path.stem, image, None)
        label = reduce_zero_label(read_label(ann_path))
        check_label_matches(label, image, ann_path, img_path)
        return self.make_sample(img_path.stem, image, label)
