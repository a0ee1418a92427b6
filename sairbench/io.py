"""File I/O helpers: atomic writes and image/mask reading with clear errors.

Images of every PIL mode are converted to uint8 explicitly (``read_image``) or refused in one line;
masks (``read_mask``) go through the same conversion and give one warning line (logger
``sairbench.io``) when they are not binary or when every pixel is a hole.
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np

from sairbench.errors import SairbenchError

log = logging.getLogger("sairbench.io")

# modes PIL converts to RGB by a documented formula; alpha (A, a) is dropped, never composited
_PIL_RGB_MODES = {"1", "L", "P", "RGB", "RGBX", "RGBA", "RGBa", "LA", "PA", "YCbCr", "HSV"}
_16BIT_MODES = {"I;16", "I;16L", "I;16B", "I;16N"}
_warned: set[tuple[str, str]] = set()


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
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; a written file follows the umask
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextmanager
def write_errors(path: str | os.PathLike, then: str = "run the command again (nothing was changed there)"
                 ) -> Iterator[None]:
    """Inside the block, an OSError (disk full, read-only folder, no permission) becomes one line
    naming ``path`` (the block's own clean-up, e.g. ``atomic_path``'s, has run by then); ``then``:
    what to do once the disk is fixed. ``FileExistsError`` passes through (callers pick another name)."""
    try:
        yield
    except FileExistsError:
        raise
    except OSError as exc:
        raise write_error(path, exc, then) from None


def write_error(path: str | os.PathLike, exc: OSError, then: str = "run the command again (nothing was changed "
                "there)") -> SairbenchError:
    """The one line for a failed write of ``path``: why, how to fix the disk, then ``then``."""
    import errno

    why = os.strerror(exc.errno) if exc.errno else type(exc).__name__
    full = exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))
    return SairbenchError(f"{path}: could not write ({why}); {'free space on that disk' if full else 'make the folder writable'}"
                          f", then {then}.")


def _umask() -> int:
    """The process umask (read by setting it and restoring it at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def warn_once(path: str | os.PathLike, kind: str, message: str) -> None:
    """One warning line (logger ``sairbench.io``) per file and kind in this process."""
    key = (str(Path(path).resolve()), kind)
    if key not in _warned:
        _warned.add(key)
        log.warning(" ".join(message.split()))


def _scale16(values: np.ndarray) -> np.ndarray:
    """0..65535 -> 0..255, rounded to nearest (65535 -> 255, 32768 -> 128)."""
    return ((values.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def _high_depth_gray(im, path: Path) -> np.ndarray | None:
    """(H, W) uint8 of a single-channel image of more than 8 bits (modes I;16*, I, F); None otherwise.

    * I;16 (16-bit PNG/TIFF): scaled by 255/65535, rounded.
    * I (32-bit integer; a 16-bit PNG in older Pillow): values in [0, 255] are taken as 8-bit,
      values in [0, 65535] (or any 16-bit PNG) as 16-bit; anything else is refused.
    * F (32-bit float): values in [0, 1] are scaled by 255, values in [0, 255] taken as they are
      (both rounded); NaN, infinity or any other range is refused. [0, 1] wins when both fit.
    """
    mode = im.mode
    if mode in _16BIT_MODES:
        return _scale16(np.asarray(im))
    if mode not in ("I", "F"):
        return None
    arr = np.asarray(im)
    if arr.size == 0:
        return arr.astype(np.uint8)
    if mode == "F" and not np.isfinite(arr).all():
        raise SairbenchError(f"{path}: float image (mode F) holds NaN or infinite values; save it as 8-bit RGB.")
    lo, hi = float(arr.min()), float(arr.max())
    if mode == "I":
        if lo >= 0 and hi <= 65535 and (hi > 255 or im.format == "PNG"):
            return _scale16(arr)
        if lo >= 0 and hi <= 255:
            return arr.astype(np.uint8)
        raise SairbenchError(f"{path}: 32-bit integer image (mode I) with values in [{lo:g}, {hi:g}], outside "
                             "0..65535; save it as 8-bit or 16-bit.")
    if lo >= 0 and hi <= 1:
        return np.floor(arr.astype(np.float64) * 255 + 0.5).astype(np.uint8)
    if lo >= 0 and hi <= 255:
        return np.floor(arr.astype(np.float64) + 0.5).astype(np.uint8)
    raise SairbenchError(f"{path}: float image (mode F) with values in [{lo:g}, {hi:g}]; scale it to [0, 1] or "
                         "[0, 255] (or save it as 8-bit), the range is not guessed.")


def _to_rgb(im, path: Path) -> np.ndarray:
    """uint8 (H, W, 3) of an opened image of any supported mode (see ``read_image``)."""
    gray = _high_depth_gray(im, path)
    if gray is not None:
        return np.repeat(gray[..., None], 3, axis=2)
    if im.mode == "CMYK":
        return _cmyk_to_rgb(im)
    if im.mode not in _PIL_RGB_MODES:
        raise SairbenchError(f"{path}: image mode {im.mode} is not supported; save it as 8-bit RGB or grayscale.")
    if im.mode == "RGB":
        return np.asarray(im, dtype=np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PIL's "palette images with transparency" notice: alpha is dropped
        return np.asarray(im.convert("RGB"), dtype=np.uint8)


def _cmyk_to_rgb(im) -> np.ndarray:
    """CMYK -> RGB through the embedded ICC profile when there is one (to sRGB), else PIL's
    formula R = round((255 - C)(255 - K)/255) (likewise G from M, B from Y)."""
    icc = im.info.get("icc_profile")
    if icc:
        try:
            import io

            from PIL import ImageCms

            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            return np.asarray(ImageCms.profileToProfile(im, src, ImageCms.createProfile("sRGB"), outputMode="RGB"),
                              dtype=np.uint8)
        except Exception:  # a broken profile: the formula below
            pass
    return np.asarray(im.convert("RGB"), dtype=np.uint8)


def _open(path: Path, what: str, max_pixels: int | None):
    """Opened and loaded PIL image; size checked against ``max_pixels`` before decoding."""
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise SairbenchError(f"{path}: no such {what} file; check the path.")
    try:
        im = Image.open(path)
    except Image.DecompressionBombError:
        raise SairbenchError(f"{path}: over {2 * (Image.MAX_IMAGE_PIXELS or 0) / 1e6:.0f} megapixels, refused as a "
                             "possible decompression bomb; downscale the image.") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise SairbenchError(f"{path}: not a readable {what} ({type(exc).__name__}); replace or remove the file.") from None
    try:
        w, h = im.size
        if max_pixels is not None and w * h > max_pixels:
            mp = lambda n: f"{n / 1e6:.1f} megapixels" if n >= 100_000 else f"{n} pixels"  # noqa: E731
            raise SairbenchError(
                f"{path}: {w}x{h} = {mp(w * h)} is above the pixel budget of {mp(max_pixels)}; downscale the "
                "image, or raise the budget with --max-pixels or $SAIRBENCH_MAX_PIXELS (peak memory grows with it).")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the budget above decides
            im.load()
        im = _upright(im)
    except SairbenchError:
        im.close()
        raise
    except (OSError, SyntaxError, ValueError) as exc:
        im.close()
        raise SairbenchError(f"{path}: not a readable {what} ({type(exc).__name__}); replace or remove the file.") from None
    return im


def _upright(im):
    """``im`` turned as its EXIF orientation tag says (2..8: mirrored and/or rotated), else itself."""
    from PIL import ImageOps

    try:
        orientation = im.getexif().get(0x0112, 1)
    except Exception:  # an unreadable EXIF block: no orientation
        return im
    if orientation not in (2, 3, 4, 5, 6, 7, 8):
        return im
    turned = ImageOps.exif_transpose(im)
    turned.format = im.format  # the decoding rules of _high_depth_gray look at it
    im.close()
    return turned


def read_image(path: str | os.PathLike, max_pixels: int | None = None) -> np.ndarray:
    """Read an image file as uint8 RGB (H, W, 3), whatever its PIL mode.

    * RGB, L (grayscale, replicated), 1 (bilevel: 0/255), P (palette: its colours), YCbCr, HSV:
      PIL's conversion.
    * RGBA, LA, PA, RGBa, RGBX: the alpha channel is **dropped**, not composited: the colour
      values stored under transparent pixels are used as they are.
    * CMYK: through the embedded ICC profile to sRGB when there is one, else PIL's formula
      R = round((255-C)(255-K)/255), likewise G from M and B from Y.
    * I;16 (16-bit grayscale), I (32-bit integer) and F (float): scaled explicitly to 8 bits, or
      refused when the range is ambiguous (see ``_high_depth_gray``). 16-bit RGB PNGs are read by
      PIL as RGB (the high byte of each sample).
    * Any other mode (LAB, ...) is refused in one line.

    An EXIF orientation tag is applied (the image as viewers show it; masks likewise).
    ``max_pixels``: refuse (before decoding, from the header) an image with more pixels than that.
    """
    path = Path(path)
    im = _open(path, "image", max_pixels)
    with im:
        try:
            return _to_rgb(im, path)
        except (OSError, ValueError) as exc:
            raise SairbenchError(f"{path}: mode {im.mode} could not be converted to RGB ({type(exc).__name__}); "
                                 "save it as 8-bit RGB.") from None


def _to_gray(im, path: Path) -> np.ndarray:
    gray = _high_depth_gray(im, path)
    if gray is not None:
        return gray
    if im.mode in ("1", "L"):
        return np.asarray(im.convert("L"), dtype=np.uint8)
    return np.asarray(_to_image(_to_rgb(im, path)).convert("L"), dtype=np.uint8)


def _alpha_drawn(im, path: Path) -> np.ndarray | None:
    """The alpha channel of a mask whose colour is constant and whose alpha is not (a shape drawn on
    a transparent layer); None for every other mask."""
    if im.mode not in ("RGBA", "RGBa", "LA", "La", "PA") and not (im.mode == "P" and "transparency" in im.info):
        return None
    rgba = np.asarray(im.convert("RGBA"), dtype=np.uint8)
    rgb, alpha = rgba[..., :3], rgba[..., 3]
    if rgb.size == 0 or rgb.min() != rgb.max() or alpha.min() == alpha.max():
        return None
    warn_once(path, "alpha", f"warning: {path}: the mask is drawn in the alpha channel (colour constant); its alpha "
                             "is read as the mask (opaque = 255).")
    return np.ascontiguousarray(alpha)


def _to_image(arr: np.ndarray):
    from PIL import Image

    return Image.fromarray(arr)


def read_mask(
    path: str | os.PathLike,
    size: tuple[int, int] | None = None,
    hole_value: int = 255,
    threshold: int = 128,
    strict_size: bool = False,
    strict_binary: bool = False,
    warn: bool = True,
    max_pixels: int | None = None,
) -> np.ndarray:
    """Read a mask image as bool (H, W), True = missing pixel.

    The file is converted to 8-bit grey as ``read_image`` converts images (EXIF orientation applied,
    16-bit and float masks scaled, colour masks by luminance, alpha dropped), except that a mask drawn
    in the alpha channel (colour constant, alpha not) is read from its alpha (opaque = 255), with
    one warning line. The pixel count is checked from the header before decoding: at most
    ``max_pixels``, None = the pixel budget in force (``sairbench.tiling.max_pixels``,
    $SAIRBENCH_MAX_PIXELS, default 16 megapixels). ``hole_value`` is the grey level that marks
    holes in the file (255 = white holes, 0 = black holes). With ``size`` (H, W) the mask is resized
    (nearest) to it unless ``strict_size``, which raises instead. ``strict_binary`` rejects masks
    with values other than 0 and 255; otherwise (with ``warn``) a mask with grey pixels gives one
    warning line naming the file, the number of grey pixels and the threshold, and a mask where
    every pixel is a hole gives one warning line (the output is invented). Warnings go to the
    logger ``sairbench.io``, once per file and kind.
    """
    from PIL import Image

    path = Path(path)
    if max_pixels is None:
        from sairbench.tiling import max_pixels as budget_in_force

        max_pixels = budget_in_force()
    im = _open(path, "mask image", max_pixels)
    with im:
        try:
            gray = _alpha_drawn(im, path)
            gray = _to_gray(im, path) if gray is None else gray
        except (OSError, ValueError) as exc:
            raise SairbenchError(f"{path}: mode {im.mode} could not be read as a mask ({type(exc).__name__}); "
                                 "save it as 8-bit grayscale.") from None
    grey = int(np.count_nonzero((gray != 0) & (gray != 255)))
    if strict_binary and grey:
        values = np.unique(gray)
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
    hole = gray >= threshold if hole_value >= threshold else gray < threshold
    if warn and grey:
        rule = f">= {threshold}" if hole_value >= threshold else f"< {threshold}"
        warn_once(path, "grey", f"warning: {path}: mask is not binary: {grey} of {gray.size} pixels are grey "
                                f"(neither 0 nor 255); thresholded at {threshold} (grey {rule} = hole).")
    if warn and hole.size and hole.all():
        warn_once(path, "all-hole", f"warning: {path}: every pixel is missing: the output is invented "
                                    "(no known pixel to inpaint from).")
    return hole


def write_png(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write a uint8 (H, W) or (H, W, 3) array, or a bool mask (as 0/255), atomically as PNG.

    A write that fails (disk full, read-only folder) is one line naming ``path``; the temporary
    file is removed and an earlier file at ``path`` stays as it was."""
    from PIL import Image

    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    with write_errors(path), atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp, format="PNG")
