"""Digests that pin external weights (CLIP, SAM, VGG16) to what a checkpoint or a result used."""

from __future__ import annotations

import hashlib

import torch


def _feed(h, t: torch.Tensor, prefix: str = "") -> None:
    """Add ``prefix``, a tensor's dtype and shape, and its bytes to the hash ``h``."""
    t = t.detach().cpu().contiguous()
    h.update(f"{prefix}{t.dtype}|{tuple(t.shape)}|".encode())
    h.update(t.reshape(-1).view(torch.uint8).numpy())


def weights_digest(sd: dict[str, torch.Tensor]) -> str:
    """sha256 of a state dict (names, dtypes, shapes, bytes, in name order): identifies a set of
    weights whatever file or download holds them."""
    h = hashlib.sha256()
    for key in sorted(sd):
        _feed(h, sd[key], f"{key}|")
    return h.hexdigest()


def tensor_digest(t: torch.Tensor) -> str:
    """sha256 of a tensor's dtype, shape and bytes."""
    h = hashlib.sha256()
    _feed(h, t)
    return h.hexdigest()
