"""All the metrics of a batch in one call: :func:`score_batch`, each by its registry record's scorer."""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from sairbench.errors import SairbenchError
from sairbench.metrics.conventions import _check_ssim_convention, _check_uint8_batches
from sairbench.metrics.lpips_scorer import LPIPSScorer
from sairbench.metrics.registry import IMAGE_METRICS, METRICS, ScoreContext


def score_batch(
    preds: np.ndarray,
    gts: np.ndarray,
    metrics: Sequence[str] | Iterable[str] = IMAGE_METRICS,
    lpips_scorer: LPIPSScorer | None = None,
    ssim_convention: str = "skimage",
    device: str = "cpu",
) -> dict[str, np.ndarray]:
    """Per-image metrics of uint8 (N, H, W, 3) ``preds`` against ``gts``.

    Each metric is its :data:`~sairbench.metrics.registry.METRICS` record's ``fn`` over the whole
    batch: PSNR, SSIM and L1 equal to the per-image functions (:func:`psnr_batch`,
    :func:`ssim_batch`, :func:`l1_batch`); LPIPS by ``lpips_scorer`` or
    ``default_lpips_scorer(device)`` (NaN when the VGG16 weights are absent).

    Returns:
        {metric: float64 (N,)} for each requested metric, in the order asked.
    """
    metrics = list(metrics)
    unknown = [m for m in metrics if m not in IMAGE_METRICS]
    if unknown:
        raise SairbenchError(f"unknown metric(s) {', '.join(unknown)}; known: {', '.join(IMAGE_METRICS)}.")
    _check_ssim_convention(ssim_convention)
    preds, gts = _check_uint8_batches(preds, gts, "score_batch")
    context = ScoreContext(ssim_convention, lpips_scorer, device)
    return {m: METRICS[m].fn(preds, gts, context) for m in metrics}
