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
"""

from __future__ import annotations

import numpy as np
import torch

from sairbench.errors import SairbenchError
from sairbench.inpainter import Inpainter
from sairbench.registry import register_model


class _ClassicalInpainter(Inpainter):
    """Per-image classical inpainting at the input size; subclasses implement ``_fill``."""

    any_size = False

    def _fill(self, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        """image float64 (H, W, 3) in [0, 1], hole bool (H, W) with at least one known pixel ->
        float (H, W, 3) in [0, 1]."""
        raise NotImplementedError

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
        imgs = image.detach().to("cpu", torch.float64).clamp(0, 1).permute(0, 2, 3, 1).numpy()
        holes = (mask.detach().to("cpu").float() > 0.5)[:, 0].numpy()
        out = np.empty_like(imgs)
        for i in range(b):
            hole = holes[i]
            if not hole.any():
                out[i] = imgs[i]
            elif hole.all():
                out[i] = 0.5
            else:
                filled = np.clip(np.asarray(self._fill(imgs[i], hole), dtype=np.float64), 0.0, 1.0)
                out[i] = np.where(hole[..., None], filled, imgs[i])
        result = torch.from_numpy(out).permute(0, 3, 1, 2).to(torch.float32)
        return result.contiguous().to(image.device)


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

    def _fill(self, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        import cv2

        u8 = np.floor(image * 255.0 + 0.5).astype(np.uint8)
        m8 = hole.astype(np.uint8) * 255
        filled = cv2.inpaint(np.ascontiguousarray(u8), m8, self.radius, self.flag)
        return filled.astype(np.float64) / 255.0


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
