"""All the metrics of a batch in one call: :func:`score_batch`, each by its registry record's scorer."""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from sairbench.errors import SairbenchError
from sairbench.metrics.conventions import _check_ssim_convention, _check_uint8_batches
from sairbench.metrics.lpips_scorer import LPIPSScorer
from sairbench.metrics.registry import METRICS, ScoreContext, default_metrics, image_metrics


def score_batch(
    preds: np.ndarray,
    gts: np.ndarray,
    metrics: Sequence[str] | Iterable[str] | None = None,
    lpips_scorer: LPIPSScorer | None = None,
    ssim_convention: str = "skimage",
    device: str = "cpu",
    masks: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Per-image metrics of uint8 (N, H, W, 3) ``preds`` against ``gts`` (``metrics``: None = the
    default ones, psnr, ssim, l1, lpips), with the hole ``masks`` (bool (N, H, W), True = missing)
    given to every scorer in its context (the in-hole metrics need them).

    Each metric is its :data:`~sairbench.metrics.registry.METRICS` record's ``fn`` over the whole
    batch: PSNR, SSIM and L1 equal to the per-image functions (:func:`psnr_batch`,
    :func:`ssim_batch`, :func:`l1_batch`); LPIPS by ``lpips_scorer`` or
    ``default_lpips_scorer(device)`` (NaN when the VGG16 weights are absent).

    Returns:
        {metric: float64 (N,)} for each requested metric, in the order asked.
    """
    metrics = default_metrics() if metrics is None else list(metrics)
    known = image_metrics()
    unknown = [m for m in metrics if m not in known]
    if unknown:
        over_sets = ("; fid and kid are scored over sets by `sairbench run` only: drop them from the protocol's "
                     "metrics names") if {"fid", "kid"} & set(unknown) else ""
        raise SairbenchError(f"unknown metric(s) {', '.join(unknown)}; known: {', '.join(known)}{over_sets}.")
    _check_ssim_convention(ssim_convention)
    preds, gts = _check_uint8_batches(preds, gts, "score_batch")
    if masks is not None:
        masks = np.asarray(masks).astype(bool, copy=False).reshape(preds.shape[:3])
    context = ScoreContext(ssim_convention, lpips_scorer, device, masks)
    out = {}
    for m in metrics:
        values = np.asarray(METRICS[m].fn(preds, gts, context), dtype=np.float64).reshape(-1)
        if values.shape != (len(preds),):
            raise SairbenchError(f"metric '{m}' gave {values.size} values for a batch of {len(preds)} images; "
                                 "its fn must return one float per image (float64 (N,)).")
        out[m] = values
    return out
