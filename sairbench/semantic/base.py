"""The interface every semantic encoder answers: a frozen image -> low-res embedding-grid map."""

from __future__ import annotations

import torch
from torch import Tensor

from sairbench.errors import SairbenchError


class SemanticEncoder(torch.nn.Module):
    """Frozen dense semantic encoder: image -> low-res grid of embeddings.

    Attributes (set by subclasses):
      embed_dim:    C, channels of the output grid.
      stride:       input pixels per output cell at the encoder's working resolution
                    (16 for a ViT-B/16 fed at its own input size).
      name:         identifier recorded with every result, e.g. ``"clip-vit-b16-openai"``.
      text_aligned: True when :meth:`class_embeddings` is meaningful (same space as the grid).

    The encoder is frozen: parameters have ``requires_grad=False`` and ``train()`` keeps it in
    eval mode (no dropout, no patch dropout), so it can sit inside a trainable model.
    """

    embed_dim: int
    stride: int
    name: str
    text_aligned: bool = False

    def forward(self, image: Tensor, mask: Tensor | None = None) -> Tensor:
        """image (B,3,H,W) in [0,1] (the MASKED image: holes already zeroed by the caller),
        mask (B,1,H,W) 1=missing or None -> (B, C, h, w) embeddings."""
        raise NotImplementedError

    def class_embeddings(self, class_names: list[str]) -> Tensor:
        """(L, C) L2-normalised embeddings of the class names, in the space of ``forward``."""
        raise SairbenchError(
            f"semantic encoder {getattr(self, 'name', type(self).__name__)!r} is not text-aligned: "
            "it has no class embeddings (the mIoU probe needs a text-aligned encoder such as dense CLIP)"
        )

    # -- freezing -------------------------------------------------------------------------
    def freeze(self) -> "SemanticEncoder":
        """Turn off gradients of every parameter and put the module in eval mode."""
        for p in self.parameters():
            p.requires_grad_(False)
        return super().train(False)

    def train(self, mode: bool = True) -> "SemanticEncoder":  # noqa: ARG002 - frozen on purpose
        """Frozen encoder: stays in eval mode whatever ``mode`` is asked for."""
        return super().train(False)

    @property
    def device(self) -> torch.device:
        for p in self.parameters():
            return p.device
        for b in self.buffers():
            return b.device
        return torch.device("cpu")

    def extra_repr(self) -> str:
        return f"name={getattr(self, 'name', '?')!r}, embed_dim={getattr(self, 'embed_dim', '?')}"


def check_image(image: Tensor, mask: Tensor | None = None) -> None:
    """Validate the (image, mask) pair of :meth:`SemanticEncoder.forward`; raise SairbenchError."""
    if not isinstance(image, Tensor) or image.ndim != 4 or image.shape[1] != 3:
        shape = tuple(image.shape) if isinstance(image, Tensor) else type(image).__name__
        raise SairbenchError(f"semantic encoder expects an image of shape (B,3,H,W), got {shape}")
    if mask is not None:
        if mask.ndim != 4 or mask.shape[1] != 1 or mask.shape[0] != image.shape[0] \
                or mask.shape[-2:] != image.shape[-2:]:
            raise SairbenchError(
                f"semantic encoder expects a mask of shape (B,1,H,W) matching the image "
                f"{tuple(image.shape)}, got {tuple(mask.shape)}"
            )
