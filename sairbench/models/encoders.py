"""Appearance encoders: the paper's AppEncoder (Tab. 4), its resize-conv variant for photographs
(``app-resize-conv``) and LIIF's EDSR-baseline (no upsampling).

Each takes the 4-channel input that ``ImplicitInpainter.encoder_values`` makes (the masked RGB
mapped to [-1, 1] with holes zeroed, or filled by an input stage such as ``hole-fill``, plus the
mask, 1 = missing) and returns a full-resolution feature map (B, out_dim, H, W).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn

from sairbench.layers import ResBlock
from sairbench.parts import register


def _transposed(c_in: int, c_out: int) -> nn.Module:
    return nn.ConvTranspose2d(c_in, c_out, 4, 2, 1)


def _resize_conv(c_in: int, c_out: int) -> nn.Module:
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c_in, c_out, 3, 1, 1))


@register("app-encoder")
class AppEncoder(nn.Module):
    """The paper's Tab. 4 CNN. widths=(64, 128, 256), n_resblocks=8 is the paper's size.

    Conv(4, w0, 7, 1, 3) - Conv(w0, w1, 4, 2, 1) - Conv(w1, w2, 4, 2, 1) - n x ResBlock(w2)
    - 2 x Conv(w2, w2, 3, 1, 1) - ConvT(w2, w1, 4, 2, 1) - ConvT(w1, w0, 4, 2, 1), ReLU after each
    conv. The last two rows of Tab. 4 ("Conv(256, 128, 4, 2, 1)", "Conv(128, 64, 4, 2, 1)") must
    upsample, since the table's output has the input's size: the paper's reading makes them
    transposed convolutions (``upsample``, the layer builder a subclass replaces). Their four output
    phases have different weights, so where the whole receptive field is hole (constant features)
    they print a period-2 grid on the features and a 2-4 px grid on the fill.

    Input (B, 4, H, W) with H, W divisible by 4; output (B, w0, H, W).
    """

    upsample = staticmethod(_transposed)

    def __init__(self, in_channels: int = 4, widths: Sequence[int] = (64, 128, 256), n_resblocks: int = 8):
        super().__init__()
        w0, w1, w2 = widths
        relu = lambda: nn.ReLU(inplace=True)  # noqa: E731
        up = self.upsample
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, w0, 7, 1, 3), relu(),
            nn.Conv2d(w0, w1, 4, 2, 1), relu(),
            nn.Conv2d(w1, w2, 4, 2, 1), relu(),
            *[ResBlock(w2) for _ in range(n_resblocks)],
            nn.Conv2d(w2, w2, 3, 1, 1), relu(),
            nn.Conv2d(w2, w2, 3, 1, 1), relu(),
            up(w2, w1), relu(),
            up(w1, w0), relu(),
        )
        self.out_dim = w0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


@register("app-resize-conv")
class AppEncoderResizeConv(AppEncoder):
    """The AppEncoder whose two upsampling layers are resize-convolutions (Odena et al. 2016,
    "Deconvolution and checkerboard artifacts"): nearest-neighbour upsampling, then a 3x3
    convolution, so a constant input gives a constant output, no grid. Same arguments and sizes as
    ``app-encoder``; its upsampling layers' weights are ``body.<i>.1.*`` (the convolution)."""

    upsample = staticmethod(_resize_conv)


@register("edsr-baseline")
class EDSRBaseline(nn.Module):
    """EDSR-baseline as LIIF uses it (``no_upsampling=True``): head conv, residual body, global skip.

    The RGB channels (in [-1, 1], as every appearance encoder gets them) have ``RGB_MEAN``, EDSR's
    DIV2K mean on the [0, 1] scale (its ``sub_mean`` at rgb_range 1), subtracted; the mask channel
    passes as is. Paper size: n_resblocks=16, n_feats=64. Input (B, 4, H, W) -> (B, n_feats, H, W).
    """

    RGB_MEAN = (0.4488, 0.4371, 0.4040)

    def __init__(self, in_channels: int = 4, n_resblocks: int = 16, n_feats: int = 64, res_scale: float = 1.0):
        super().__init__()
        self.head = nn.Conv2d(in_channels, n_feats, 3, padding=1)
        self.body = nn.Sequential(*[ResBlock(n_feats, res_scale) for _ in range(n_resblocks)],
                                  nn.Conv2d(n_feats, n_feats, 3, padding=1))
        mean = torch.zeros(1, in_channels, 1, 1)
        mean[0, :3, 0, 0] = torch.tensor(self.RGB_MEAN)
        self.register_buffer("mean", mean, persistent=False)
        self.out_dim = n_feats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(x - self.mean)
        return self.body(x) + x
