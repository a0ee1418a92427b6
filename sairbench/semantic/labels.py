"""The ground-truth label map as a semantic source: the oracle of the semantic-headroom study.

A label map is turned into the same kind of embedding grid a semantic encoder gives: each pixel
takes its class's embedding (one row of ``class_table``), and a cell of the grid averages its
pixels' embeddings (stride 4, as the in-domain encoder). The class table is the text-aligned
class embedding of the semantic encoder it stands in for (the in-domain encoder's learned class
embeddings, or CLIP's text embeddings of the class names), so the oracle speaks that encoder's
embedding space and is as wide as SIR's output: a gap between them is about which pixel gets
which class, not about the space.

``reveal_hole`` False hides the labels of the missing pixels (their cells average only the known
pixels, a cell with none is zero), so SIR completes them; True is the oracle: labels everywhere.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sairbench.errors import SairbenchError
from sairbench.semantic.base import SemanticEncoder, check_image

IGNORE = 255  # label value of unlabelled pixels (CelebAMask-HQ background-free parts, ADE20K "other")


class LabelEmbedding(SemanticEncoder):
    """Label map (B, H, W) int -> embeddings (B, embed_dim, ceil(H/stride), ceil(W/stride)).

    Args:
        classes: class names, in label order (label k is ``classes[k]``).
        embed_dim: C. stride: pixels per output cell along each side.
        reveal_hole: True: every pixel's label is used (the oracle); False: the missing pixels'
            labels are hidden (the labels outside the hole, for SIR to complete).
        source: what the class table was taken from (recorded, e.g. ``"indomain-synthetic-faces"``).
        name: identifier recorded with every result.
    """

    text_aligned = True
    reads_labels = True

    @staticmethod
    def embed_dim_for(embed_dim: int = 64, **_) -> int:
        return embed_dim

    def __init__(self, classes: list[str], embed_dim: int = 64, stride: int = 4, reveal_hole: bool = False,
                 source: str = "", name: str = "labels"):
        super().__init__()
        if not classes:
            raise SairbenchError("label-embedding: no classes; the dataset must name its label classes.")
        self.classes, self.embed_dim, self.stride = list(classes), int(embed_dim), int(stride)
        self.reveal_hole, self.source, self.name = bool(reveal_hole), source, name
        self.register_buffer("class_table", torch.zeros(len(self.classes), self.embed_dim))

    def set_class_table(self, table: torch.Tensor) -> "LabelEmbedding":
        """table (L, C): one embedding per class (L2-normalised here)."""
        if tuple(table.shape) != tuple(self.class_table.shape):
            raise SairbenchError(f"label-embedding: a class table of shape {tuple(table.shape)} for "
                                 f"{len(self.classes)} classes x {self.embed_dim} channels; take it from an encoder "
                                 "trained on the same classes.")
        self.class_table.copy_(F.normalize(table.detach().float(), dim=-1))
        return self

    def forward(self, image: torch.Tensor, mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None) -> torch.Tensor:
        """image (B, 3, H, W) (its size only), mask (B, 1, H, W) 1 = missing or None, labels (B, H, W)
        int (``IGNORE`` = unlabelled) -> (B, C, h, w)."""
        check_image(image, mask)
        if labels is None:
            raise SairbenchError(f"semantic source '{self.name}' reads the ground-truth label maps, and none were "
                                 "given; run it under the semantic-headroom protocol on a labelled dataset.")
        if labels.shape[0] != image.shape[0] or tuple(labels.shape[-2:]) != tuple(image.shape[-2:]):
            raise SairbenchError(f"label-embedding: label maps {tuple(labels.shape)} do not match the images "
                                 f"{tuple(image.shape)}.")
        labels = labels.long()
        known = (labels >= 0) & (labels < len(self.classes))
        if mask is not None and not self.reveal_hole:
            known &= mask[:, 0] < 0.5
        onehot = F.one_hot(torch.where(known, labels, 0), len(self.classes)).to(self.class_table.dtype)
        onehot = (onehot * known.unsqueeze(-1)).permute(0, 3, 1, 2)  # (B, L, H, W)
        share = F.avg_pool2d(onehot, self.stride, ceil_mode=True)  # (B, L, h, w): class shares of each cell
        return torch.einsum("blhw,lc->bchw", share, self.class_table)

    def class_embeddings(self, class_names: list[str] | None = None) -> torch.Tensor:
        if class_names is None:
            return self.class_table
        missing = [c for c in class_names if c not in self.classes]
        if missing:
            raise SairbenchError(f"label-embedding: class '{missing[0]}' is not one of its classes.")
        return self.class_table[[self.classes.index(c) for c in class_names]]
