"""What the appearance encoder sees inside the hole: zeros (the paper) or a pull-push fill.

Pull-push (Gortler et al. 1996, "The Lumigraph", Sec. 3.3): a mask-weighted image pyramid is built
by averaging 2x2 blocks (pull); from the coarsest level down, each level keeps its own known share
and takes the rest from the bilinearly upsampled level below (push). Every hole pixel gets a smooth
guess from the nearest known colours at whatever distance, so a CNN with a small receptive field
still sees the colours around a large hole. It is fixed (no weights) and deterministic.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

PREFILLS = ("zero", "pull-push")


def pull_push(values: torch.Tensor, missing: torch.Tensor) -> torch.Tensor:
    """values (B, C, H, W), missing (B, 1, H, W) in {0, 1} (1 = missing) -> (B, C, H, W) with the known
    pixels unchanged and the missing ones filled. A batch item with no known pixel is filled with 0."""
    known = 1 - missing.to(values.dtype)
    levels = [(values * known, known)]
    v, w = levels[0]
    while max(v.shape[-2:]) > 1:  # down to one cell, so that every cell of the top level has a value
        k = (2 if v.shape[-2] > 1 else 1, 2 if v.shape[-1] > 1 else 1)
        v = F.avg_pool2d(v, k, k, ceil_mode=True)
        w = F.avg_pool2d(w, k, k, ceil_mode=True)
        levels.append((v, w))
    v, w = levels[-1]
    fill = v / w.clamp_min(1e-8)
    for v, w in reversed(levels[:-1]):
        up = F.interpolate(fill, size=v.shape[-2:], mode="bilinear", align_corners=False)
        # premultiplied: a cell's mean over its known share, plus the coarser guess for the rest
        fill = v + (1 - w) * up
    return fill


def apply_prefill(kind: str, values: torch.Tensor, missing: torch.Tensor) -> torch.Tensor:
    """values (B, C, H, W) with holes already zeroed, missing (B, 1, H, W) -> the encoder's input values."""
    if kind == "zero":
        return values
    if kind == "pull-push":
        return pull_push(values, missing)
    raise ValueError(f"prefill {kind!r}: use one of {PREFILLS}")
