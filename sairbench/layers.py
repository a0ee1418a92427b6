"""Small building blocks shared by model parts of different packages."""

from __future__ import annotations

import torch.nn as nn


class ResBlock(nn.Module):
    """conv3x3 - ReLU - conv3x3, plus the input (scaled by ``res_scale``)."""

    def __init__(self, ch: int, res_scale: float = 1.0):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(ch, ch, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(ch, ch, 3, padding=1))
        self.res_scale = res_scale

    def forward(self, x):
        return x + self.body(x) * self.res_scale
