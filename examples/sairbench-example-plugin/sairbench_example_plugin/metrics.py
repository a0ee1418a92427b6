"""``mae_hole``: mean absolute error inside the hole, on the 0-255 scale (lower is better)."""

import numpy as np

from sairbench.metrics import Metric


def mae_hole(preds: np.ndarray, gts: np.ndarray, context) -> np.ndarray:
    """preds, gts uint8 (N, H, W, 3); context.hole() bool (N, H, W), True = missing -> float64 (N,)."""
    hole = context.hole()
    error = np.abs(preds.astype(np.float64) - gts.astype(np.float64)).mean(axis=3)  # (N, H, W)
    pixels = hole.sum(axis=(1, 2))
    total = (error * hole).sum(axis=(1, 2))
    return np.where(pixels > 0, total / np.maximum(pixels, 1), np.nan)  # NaN: no hole


MAE_HOLE = Metric(
    name="mae_hole",
    direction="lower",
    decimals=2,
    convention="MAE inside the hole: mean over hole pixels and RGB channels of |pred - gt| on uint8 values (0-255).",
    default=False,  # scored when a protocol names it in [metrics] names
    fn=mae_hole,
    title="MAE (hole)",
)
