"""Digests that pin external weights (CLIP, SAM, VGG16) to what a checkpoint or a result used."""

from __future__ import annotations

import hashlib

import torch


def weights_digest(sd: dict[str, torch.Tensor]) -> str:
    """sha256 of a state dict (names, dtypes, shapes, bytes, in name order): identifies a set of
    weights whatever file or download holds them."""
    h = hashlib.sha256()
    for key in sorted(sd):
        t = sd[key].detach().cpu().contiguous()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()
