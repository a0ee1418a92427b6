"""An in-domain dense semantic encoder, for machines that cannot download CLIP.

A small CNN maps an image to a grid of embeddings (stride 4) that are aligned with one learned
embedding per class: training minimises cross-entropy over scaled cosine similarities between
each pixel's (bilinearly upsampled) embedding and the class embeddings, as in language-driven
segmentation (LSeg). Like CLIP, it is trained on clean images and sees masked images only at use.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from sairbench.layers import ResBlock
from sairbench.semantic.base import SemanticEncoder, check_image


class InDomainEncoder(SemanticEncoder):
    """Image (B, 3, H, W) in [0, 1] -> embeddings (B, embed_dim, H/4, W/4).

    Args:
        classes: class names of the training dataset (their embeddings are learned).
        embed_dim: C. width: CNN width. logit_scale: temperature of the cosine logits.
    """

    text_aligned = True
    stride = 4

    @staticmethod
    def embed_dim_for(embed_dim: int = 64, **_) -> int:
        """C of an encoder built with these args (no weights needed)."""
        return embed_dim

    def __init__(self, classes: list[str], embed_dim: int = 64, width: int = 64, n_resblocks: int = 3,
                 logit_scale: float = 10.0, name: str = "indomain"):
        super().__init__()
        self.classes = list(classes)
        self.embed_dim = embed_dim
        self.name = name
        self.logit_scale = logit_scale
        relu = lambda: nn.ReLU(inplace=True)  # noqa: E731
        self.body = nn.Sequential(
            nn.Conv2d(3, width // 2, 3, 1, 1), relu(),
            nn.Conv2d(width // 2, width, 4, 2, 1), relu(),
            nn.Conv2d(width, width, 4, 2, 1), relu(),
            *[ResBlock(width) for _ in range(n_resblocks)],
            nn.Conv2d(width, embed_dim, 1),
        )
        self.class_table = nn.Parameter(torch.randn(len(self.classes), embed_dim) * 0.1)
        self.trainable = False  # frozen unless a training loop unfreezes it

    def forward(self, image: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        check_image(image, mask)
        return self.body(image * 2 - 1)

    def class_embeddings(self, class_names: list[str] | None = None) -> torch.Tensor:
        table = F.normalize(self.class_table, dim=-1)
        if class_names is None:
            return table
        index = [self.classes.index(c) for c in class_names]
        return table[index]

    def logits(self, emb: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        """emb (B, C, h, w) -> class logits (B, L, H, W) (bilinear upsampling to ``size`` first)."""
        if size is not None and tuple(emb.shape[-2:]) != tuple(size):
            emb = F.interpolate(emb, size=size, mode="bilinear", align_corners=False)
        return self.logit_scale * torch.einsum("bchw,lc->blhw", F.normalize(emb, dim=1), self.class_embeddings())

    def train(self, mode: bool = True):
        return nn.Module.train(self, mode and self.trainable)
