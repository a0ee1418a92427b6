"""Image quantisation and the input checks shared by the metrics.

The SSIM conventions and the PSNR cap, how model outputs become uint8 (H, W, 3) images
(:func:`to_uint8`), and the shape / dtype checks of image pairs and batches. What each metric is
(direction, decimals, convention text, scorer) is in :mod:`sairbench.metrics.registry`.
"""

from __future__ import annotations

import numpy as np

from sairbench.errors import SairbenchError

#: SSIM conventions: "skimage" (the default: scikit-image's 7x7 uniform window), "skimage-gaussian"
#: (scikit-image's 11x11 Gaussian window on the valid region) and "lama" (LaMa's evaluator:
#: zero-padded 11x11 Gaussian window, whole map); see ``SSIM_CONVENTION_TEXT`` in the registry.
SSIM_CONVENTIONS: tuple[str, ...] = ("skimage", "skimage-gaussian", "lama")

#: PSNR of two identical uint8 images is +inf per image (kept as such in per-image files);
#: any summary (means, confidence intervals, paired tests) first clips PSNR to this many dB.
PSNR_CAP_DB: float = 100.0


def _check_ssim_convention(convention: str) -> None:
    if convention not in SSIM_CONVENTIONS:
        raise SairbenchError(
            f"unknown SSIM convention '{convention}'; use one of {', '.join(SSIM_CONVENTIONS)}."
        )


# --------------------------------------------------------------------------------------------
# conversion
# --------------------------------------------------------------------------------------------


def to_uint8(x) -> np.ndarray:
    """Quantise an image (or a batch) to uint8 RGB, channels last.

    Accepts a torch tensor (3, H, W) or (B, 3, H, W), or a numpy array (H, W, 3) or (B, H, W, 3),
    float in [0, 1]; values are clipped to [0, 1], scaled by 255 and rounded half up
    (``floor(v * 255 + 0.5)``). NaN becomes 0. uint8 numpy input is returned unchanged.

    Returns:
        uint8 (H, W, 3), or (B, H, W, 3) for batched input.
    """
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        torch = None
    if torch is not None and isinstance(x, torch.Tensor):
        if x.dim() not in (3, 4) or x.shape[-3] != 3:
            raise ValueError(f"to_uint8: expected a tensor (3, H, W) or (B, 3, H, W), got {tuple(x.shape)}")
        arr = x.detach().to("cpu", torch.float64).numpy()
        arr = np.moveaxis(arr, -3, -1)
    else:
        arr = np.asarray(x)
        if arr.ndim not in (3, 4) or arr.shape[-1] != 3:
            raise ValueError(f"to_uint8: expected an array (H, W, 3) or (B, H, W, 3), got {arr.shape}")
        if arr.dtype == np.uint8:
            return arr
        arr = arr.astype(np.float64)
    arr = np.nan_to_num(arr, nan=0.0, posinf=1.0, neginf=0.0)
    arr = np.floor(np.clip(arr, 0.0, 1.0) * 255.0 + 0.5)
    return np.ascontiguousarray(arr.astype(np.uint8))


def as_batches(preds, gts, who: str) -> tuple[np.ndarray, np.ndarray]:
    """Two image batches (N, H, W, 3) of one shape; a single (H, W, 3) pair becomes N = 1."""
    preds = np.asarray(preds)
    gts = np.asarray(gts)
    if preds.ndim == 3:
        preds, gts = preds[None], gts[None]
    if preds.shape != gts.shape or preds.ndim != 4 or preds.shape[-1] != 3:
        raise ValueError(f"{who} takes two uint8 (N, H, W, 3) batches of one shape; got {preds.shape} and {gts.shape}")
    return preds, gts


def _check_pair(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(pred)
    gt = np.asarray(gt)
    if pred.dtype != np.uint8 or gt.dtype != np.uint8:
        raise ValueError(f"metrics take uint8 images (use to_uint8); got {pred.dtype} and {gt.dtype}")
    if pred.shape != gt.shape or pred.ndim != 3 or pred.shape[-1] != 3:
        raise ValueError(f"metrics take two uint8 (H, W, 3) images of one shape; got {pred.shape} and {gt.shape}")
    return pred, gt


def _check_uint8_batches(preds, gts, who: str) -> tuple[np.ndarray, np.ndarray]:
    preds, gts = as_batches(preds, gts, who)
    if preds.dtype != np.uint8 or gts.dtype != np.uint8:
        raise ValueError(f"{who} takes uint8 batches (use to_uint8); got {preds.dtype} and {gts.dtype}")
    return preds, gts
