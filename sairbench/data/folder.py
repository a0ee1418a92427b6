"""``folder``: any folder of images, with an optional folder of label PNGs matched by file stem.

Layouts: ``root/*.{png,jpg,jpeg,bmp,webp}``; or ``root/images/`` + ``root/labels/``; or any image
folder plus ``label_root``. Labels are single-channel PNGs of class indices (255 = ignore).
Class names come from ``classes`` or, when present, ``classes.txt`` (one name a line) in root.
"""

from __future__ import annotations

from pathlib import Path

from sairbench.data.base import IMAGE_EXTENSIONS, ImageDataset, Sample, apply_limit, check_label_matches, list_images, read_label
from sairbench.errors import SairbenchError
from sairbench.io import read_image


class ImageFolder(ImageDataset):
    name = "folder"

    def __init__(self, root: Path, size: int = 64, limit: int | None = None, label_root: str | Path | None = None,
                 classes: list[str] | None = None, split: str = "test"):
        super().__init__(size, split)
        if not root.is_dir():
            raise SairbenchError(f"{root}: no such image folder; pass --data-root <folder of images>.")
        self.root = root
        img_dir = root
        if label_root is None and (root / "images").is_dir():
            img_dir = root / "images"
            if (root / "labels").is_dir():
                label_root = root / "labels"
        images = list_images(img_dir)
        if not images:
            raise SairbenchError(
                f"{img_dir}: no images ({'/'.join(e.lstrip('.') for e in IMAGE_EXTENSIONS)}) in this folder; "
                "put the images directly in it (or in images/, with labels/ beside it) and pass it as --data-root."
            )
        self._images = images[: apply_limit(len(images), limit)]
        self.label_root = None if label_root is None else Path(label_root)
        if self.label_root is not None and not self.label_root.is_dir():
            raise SairbenchError(f"{self.label_root}: no such label folder; pass a folder of label PNGs named like the images.")
        if classes is None and (root / "classes.txt").is_file():
            classes = [ln.strip() for ln in (root / "classes.txt").read_text(encoding="utf-8").splitlines() if ln.strip()]
        self.classes = list(classes or [])

    def __len__(self) -> int:
        return len(self._images)

    def _label_path(self, image_path: Path) -> Path:
        assert self.label_root is not None
        for ext in (".png", image_path.suffix):
            candidate = self.label_root / f"{image_path.stem}{ext}"
            if candidate.is_file():
                return candidate
        raise SairbenchError(f"{self.label_root / (image_path.stem + '.png')}: missing label for image {image_path}; add it or remove the image.")

    def _name(self, i: int) -> str:
        return self._images[i].stem

    def _sources(self, i: int) -> list[Path]:
        path = self._images[i]
        return [path, self._label_path(path)] if (self.label_root is not None and self.with_labels) else [path]

    def _load(self, i: int) -> Sample:
        path = self._images[i]
        image = read_image(path)
        label = None
        if self.label_root is not None and self.with_labels:
            label_path = self._label_path(path)
            label = read_label(label_path)
            check_label_matches(label, image, label_path, path)
        return self.make_sample(path.stem, image, label)
