"""All the metrics of a batch in one call: :func:`score_batch`."""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from sairbench.errors import SairbenchError
from sairbench.metrics.conventions import METRICS, _check_ssim_convention, _check_uint8_batches
from sairbench.metrics.lpips_scorer import LPIPSScorer, default_lpips_scorer
from sairbench.metrics.pixel import l1_batch, psnr_batch, ssim_batch


def score_batch(
    preds: np.ndarray,
    gts: np.ndarray,
    metrics: Sequence[str] | Iterable[str] = METRICS,
    lpips_scorer: LPIPSScorer | None = None,
    ssim_convention: str = "skimage",
    device: str = "cpu",
) -> dict[str, np.ndarray]:
    """Per-image metrics of uint8 (N, H, W, 3) ``preds`` against ``gts``.

    PSNR, SSIM and L1 are computed over the batch at once (:func:`psnr_batch`,
    :func:`ssim_batch`, :func:`l1_batch`), equal to the per-image functions.

    Returns:
        {metric: float64 (N,)} for each requested metric. LPIPS uses ``lpips_scorer`` or
        ``default_lpips_scorer(device)`` (NaN when the VGG16 weights are absent).
    """
    metrics = list(metrics)
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise SairbenchError(f"unknown metric(s) {', '.join(unknown)}; known: {', '.join(METRICS)}.")
    _check_ssim_convention(ssim_convention)
    preds, gts = _check_uint8_batches(preds, gts, "score_batch")
    out: dict[str, np.ndarray] = {}
    batched = {"psnr": psnr_batch, "l1": l1_batch, "ssim": lambda p, g: ssim_batch(p, g, ssim_convention)}
    for m in metrics:
        if m == "lpips":
            scorer = lpips_scorer if lpips_scorer is not None else default_lpips_scorer(device)
            out[m] = scorer(preds, gts)
        else:
            out[m] = batched[m](preds, gts)
    return out
