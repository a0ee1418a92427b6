"""``plain-conv-encoder``: an appearance encoder of plain 3x3 convolutions at full resolution."""

import torch
from torch import nn

from sairbench.parts import register

WIDTH = {"tiny": 16, "paper": 64}  # output channels at each preset size


@register("plain-conv-encoder")
class PlainConvEncoder(nn.Module):
    """(B, 4, H, W) masked image in [-1, 1] + mask -> features (B, width, H, W)."""

    def __init__(self, in_channels: int = 4, width: int = 16, depth: int = 3):
        super().__init__()
        layers = [nn.Conv2d(in_channels, width, 3, padding=1)]
        for _ in range(depth - 1):
            layers += [nn.ReLU(inplace=True), nn.Conv2d(width, width, 3, padding=1)]
        self.body = nn.Sequential(*layers)
        self.out_dim = width  # the decoder reads this many channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    @classmethod
    def describe(cls, size: str) -> dict:
        """What a preset row naming this part needs: its arguments and output width at ``size``."""
        return {"args": {"width": WIDTH[size], "depth": 3 if size == "tiny" else 8}, "out_dim": WIDTH[size]}
