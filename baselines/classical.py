"""Classical inpainting baselines that need no weights: OpenCV Telea and Navier-Stokes, and
scikit-image biharmonic. Registered on import as "telea", "navier-stokes" and "biharmonic".

They answer the input size only. Conventions:

* OpenCV works on 8-bit 3-channel images, so the input is quantised to uint8 (round half up)
  before ``cv2.inpaint`` and the filled values come back in steps of 1/255. ``radius`` (the
  neighbourhood OpenCV considers around each filled pixel) is 3 pixels at every image size, the
  value of OpenCV's own examples; pass ``radius=`` to change it.
* Biharmonic works in float64 on the [0, 1] image, per channel (``channel_axis=-1``).
* Known pixels are returned exactly as given (the hole is filled, nothing else changes); a mask
  with every pixel missing leaves nothing to propagate and gives a uniform 0.5 grey image.
* Memory: images above the pixel budget (``sairbench.tiling``: 16 megapixels unless raised with
  ``--max-pixels`` or ``$SAIRBENCH_MAX_PIXELS``) are refused in one line; OpenCV works on a uint8
  copy (no float64 image), so a budget-size image needs about 1 GB.
"""

from __future__ import annotations

import numpy as np
import torch

from sairbench.errors import SairbenchError
from sairbench.inpainter import Inpainter
from sairbench.registry import register_model
from sairbench.tiling import check_pixels


class _ClassicalInpainter(Inpainter):
    """Per-image classical inpainting at the input size; subclasses implement ``_fill`` (float64)
    or ``_fill_u8`` (uint8, which bounds memory: no float64 copy of the image is made)."""

    any_size = False

    def _fill(self, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        """image float64 (H, W, 3) in [0, 1], hole bool (H, W) with at least one known pixel ->
        float (H, W, 3) in [0, 1]."""
        raise NotImplementedError

    def _fill_u8(self, image: torch.Tensor, hole: np.ndarray) -> np.ndarray | None:
        """image float32 (3, H, W) in [0, 1] -> filled uint8 (H, W, 3), or None to use ``_fill``."""
        return None

    def inpaint(
        self, image: torch.Tensor, mask: torch.Tensor, size: tuple[int, int] | None = None
    ) -> torch.Tensor:
        """Fill the hole of each image.

        Args:
            image: (B, 3, H, W) float in [0, 1].
            mask: (B, 1, H, W) float or bool, 1 (> 0.5) = missing.
            size: None or (H, W); any other size raises SairbenchError.

        Returns:
            (B, 3, H, W) float32 in [0, 1] on ``image``'s device; known pixels unchanged.

        Images of more pixels than the pixel budget (``sairbench.tiling.max_pixels``, 16 MP by
        default) are refused in one line.
        """
        if image.dim() != 4 or image.shape[1] != 3:
            raise SairbenchError(f"model {self.name}: image must be (B, 3, H, W); got {tuple(image.shape)}.")
        b, _, h, w = image.shape
        if mask.dim() != 4 or mask.shape[0] != b or mask.shape[1] != 1 or tuple(mask.shape[2:]) != (h, w):
            raise SairbenchError(
                f"model {self.name}: mask must be (B, 1, H, W) = ({b}, 1, {h}, {w}); got {tuple(mask.shape)}."
            )
        if size is not None and tuple(int(s) for s in size) != (h, w):
            raise SairbenchError(
                f"model {self.name} answers the input size only ({h}x{w}), not {tuple(size)}; "
                "use an implicit model (e.g. liif, sair) for other output sizes, or size=None."
            )
        check_pixels(h, w, f"model {self.name}: the input")
        out = image.detach().to("cpu", torch.float32).clamp(0, 1)  # a copy: known pixels as given
        for i in range(b):
            m = mask[i, 0].detach().to("cpu")
            hole = (m if m.dtype == torch.bool else m > 0.5).numpy()
            if not hole.any():
                continue
            if hole.all():
                out[i] = 0.5
                continue
            filled = self._fill_u8(out[i], hole)
            if filled is None:
                img = out[i].permute(1, 2, 0).numpy().astype(np.float64)
                filled = np.clip(np.asarray(self._fill(img, hole), dtype=np.float64), 0.0, 1.0)
                values = filled[hole]
                del img, filled
            else:
                values = filled[hole].astype(np.float64) / 255.0
                del filled
            out[i].permute(1, 2, 0)[torch.from_numpy(hole)] = torch.from_numpy(values.astype(np.float32))
        return out.contiguous().to(image.device)


class OpenCVInpainter(_ClassicalInpainter):
    """``cv2.inpaint`` with the Telea (fast marching) or Navier-Stokes method on uint8 images."""

    def __init__(self, method: str = "telea", radius: float = 3.0):
        import cv2

        flags = {"telea": cv2.INPAINT_TELEA, "navier-stokes": cv2.INPAINT_NS}
        if method not in flags:
            raise SairbenchError(f"unknown OpenCV inpainting method '{method}'; use 'telea' or 'navier-stokes'.")
        if not radius > 0:
            raise SairbenchError(f"model {method}: radius must be positive, got {radius}.")
        self.name = method
        self.flag = flags[method]
        self.radius = float(radius)

    def _fill_u8(self, image: torch.Tensor, hole: np.ndarray) -> np.ndarray:
        import cv2

        h, w = hole.shape
        u8 = np.empty((h, w, 3), np.uint8)
        step = max(1, (1 << 20) // max(w, 1))  # quantise in blocks of rows: no float64 copy of the image
        for r in range(0, h, step):
            block = image[:, r:r + step].permute(1, 2, 0).numpy().astype(np.float64)
            u8[r:r + step] = np.floor(block * 255.0 + 0.5)
        return cv2.inpaint(u8, hole.astype(np.uint8) * 255, self.radius, self.flag)


class BiharmonicInpainter(_ClassicalInpainter):
    """``skimage.restoration.inpaint_biharmonic`` per channel, float64."""

    name = "biharmonic"

    def _fill(self, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        from skimage.restoration import inpaint_biharmonic

        return inpaint_biharmonic(image, hole, channel_axis=-1)


def make_telea(radius: float = 3.0) -> OpenCVInpainter:
    """OpenCV Telea (fast marching) inpainting, radius 3 px by default."""
    return OpenCVInpainter("telea", radius)


def make_navier_stokes(radius: float = 3.0) -> OpenCVInpainter:
    """OpenCV Navier-Stokes inpainting, radius 3 px by default."""
    return OpenCVInpainter("navier-stokes", radius)


def make_biharmonic() -> BiharmonicInpainter:
    """scikit-image biharmonic inpainting."""
    return BiharmonicInpainter()


register_model(
    "telea",
    make_telea,
    description="OpenCV Telea fast-marching inpainting (cv2.INPAINT_TELEA, radius 3)",
    needs="nothing",
    kind="classical",
)
register_model(
    "navier-stokes",
    make_navier_stokes,
    description="OpenCV Navier-Stokes inpainting (cv2.INPAINT_NS, radius 3)",
    needs="nothing",
    kind="classical",
)
register_model(
    "biharmonic",
    make_biharmonic,
    description="scikit-image biharmonic inpainting (skimage.restoration.inpaint_biharmonic)",
    needs="nothing",
    kind="classical",
)
