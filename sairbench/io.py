"""File I/O helpers: atomic writes and image/mask reading with clear errors."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np

from sairbench.errors import SairbenchError


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the same folder; rename it onto ``path`` only on success.

    A crash or exception leaves any earlier file at ``path`` untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as uint8 RGB (H, W, 3). Grayscale is replicated, alpha dropped."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise SairbenchError(f"{path}: no such image file; check the path.")
    try:
        with Image.open(path) as im:
            im.load()
            arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise SairbenchError(
            f"{path}: not a readable image ({type(exc).__name__}); replace or remove the file."
        ) from None
    return arr


def read_mask(
    path: str | os.PathLike,
    size: tuple[int, int] | None = None,
    hole_value: int = 255,
    threshold: int = 128,
    strict_size: bool = False,
    strict_binary: bool = False,
) -> np.ndarray:
    """Read a mask PNG as bool (H, W), True = missing pixel.

    ``hole_value`` is the grey level that marks holes in the file (255 = white holes, 0 = black
    holes). With ``size`` (H, W) the mask is resized (nearest) to it unless ``strict_size``,
    which raises instead. ``strict_binary`` rejects masks with values other than 0 and 255.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise SairbenchError(f"{path}: no such mask file; check the path.")
    try:
        with Image.open(path) as im:
            im.load()
            gray = np.asarray(im.convert("L"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise SairbenchError(f"{path}: not a readable mask image ({type(exc).__name__}); replace the file.") from None
    if strict_binary:
        values = np.unique(gray)
        if not np.all(np.isin(values, (0, 255))):
            raise SairbenchError(
                f"{path}: mask is not binary (values {values[:5].tolist()}...); save it with only 0 and 255."
            )
    if size is not None and gray.shape != tuple(size):
        if strict_size:
            raise SairbenchError(
                f"{path}: mask is {gray.shape[1]}x{gray.shape[0]} but the image is {size[1]}x{size[0]}; "
                "resize the mask to the image size."
            )
        gray = np.asarray(Image.fromarray(gray).resize((size[1], size[0]), Image.NEAREST))
    if hole_value >= threshold:
        return gray >= threshold
    return gray < threshold


def write_png(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write a uint8 (H, W) or (H, W, 3) array, or a bool mask (as 0/255), atomically as PNG."""
    from PIL import Image

    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp, format="PNG")
