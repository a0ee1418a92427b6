"""CoordFill (Liu et al., AAAI 2023) as a peer inside the suite: its generator written here from the
paper and the public description of the released model, loading the released encoder state dict
(``encoder-epoch-*.pth``, a plain ``torch.save`` of the ``CoordFill`` module's ``state_dict()``)
safely. Registered as ``coordfill``.

**Architecture (the released configuration: attffc, scale injection, mask prediction).**
``refine`` is the parameter generator's convolutional stream on a fixed 256x256 input:
``refine.dowm`` = ReflectionPad2d(3), FFC 4->64 7x7, three FFC 4x4 stride-2 convolutions
64->128->256->512 (the last splits 128 local / 384 global), then six attentive FFC blocks
``refine.block1..6`` of three FFCs each: ``mask`` (512 -> 1, sigmoid), ``minus`` ([local, global,
mask] 513 -> 512) and ``add`` (512 -> 512, global->global a spectral transform); the block returns
x - minus + add(x - minus) per branch. Unlike LaMa, CoordFill's FFCs keep their BN layers in the
file but do not apply them, and the spectral transform's first 1x1 convolution has no BN.
``asap.lowres_stream.out_para.0`` (Linear 513 -> 12995) maps each of the 32x32 feature cells,
concatenated with the scale 32 / S (S: the full-resolution side), to the weights of one MLP:
4 -> 64 -> 64 -> 64 -> 64 -> 3 (leaky ReLU 0.01, tanh), each layer stored as its bias then its
(in, out) weight matrix. 272 tensors, 31.6 M parameters.

**Resolution handling (what is implemented).** The image is normalised to [-1, 1] and the mask
made 1 = known. The masked image is resized to 256x256 (bilinear, align_corners False, no
antialias), the mask to 256x256 (nearest), and the stream above gives a 32x32 grid of MLPs. The
MLPs are queried at full resolution: the S x S image is cut into 32x32 tiles of k = S / 32 pixels a
side, and the MLP of a cell answers its tile's pixels from a 4-d positional code of the pixel's
place in the tile (the release's ``_get_coords``, reproduced exactly, including its y channels
being computed from the x code). Only tiles holding a hole pixel are queried (the release's
``mask_predict``); the output is composited. The release requires S = H = W, a multiple of 32,
and S >= 64 (k = 1 divides 0 by 0 in ``_get_coords``): other images are padded on the bottom and
right to the square of side max(64, ceil32(max(H, W))) by mirroring (edge repeated), and the
output is cropped back. Deviation: the release resized the *unmasked* test image to 256x256 (the
hole's content reaches its low-resolution boundary pixels); here the hole is zeroed first, as for
every model of the suite.
"""

from __future__ import annotations

import math
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

from sairbench_baselines.lama import FFCBlock, Pair
from sairbench_baselines.peer_files import load_peer, register_peer
from sairbench_baselines.released import PeerInpainter, pad_symmetric

ENV = "SAIRBENCH_COORDFILL_CHECKPOINT"
DOWNLOAD = ("download the Places2 CoordFill model (encoder-epoch-*.pth) from the 'Models' link of "
            "github.com/NiFangBaAGe/CoordFill (--checkpoint coordfill=encoder-epoch-last.pth)")
LAYOUT = "CoordFill (attffc, scale injection) encoder"
LR_SIZE = 256  # the parameter generator's fixed input side
MLP = (4, 64, 64, 64, 64, 3)  # the pixel-query MLP: positional code -> RGB
QUERY_CHUNK = 1 << 18  # pixels per batched MLP pass (bounds memory at any resolution)


def mlp_splits(channels: tuple[int, ...] = MLP) -> tuple[list[tuple[int, int, int, int]], int]:
    """[(bias start, weight start, in, out) per layer], total parameters (12995 for ``MLP``)."""
    splits, idx = [], 0
    for cin, cout in zip(channels[:-1], channels[1:]):
        splits.append((idx, idx + cout, cin, cout))
        idx += cout + cin * cout
    return splits, idx


class AttFFC(nn.Module):
    """Attentive FFC block of width ``dim`` (global 3/4): (x_l (B, dim/4, h, w), x_g (B, 3dim/4, h, w)) -> same."""

    def __init__(self, dim: int):
        super().__init__()
        kw = {"padding": 1, "apply_bn": False, "spectral_bn": False}
        self.add = FFCBlock(dim, dim, 3, 0.75, 0.75, **kw)
        self.minus = FFCBlock(dim + 1, dim, 3, 0, 0.75, **kw)
        self.mask = FFCBlock(dim, 1, 3, 0.75, 0, act="sigmoid", **kw)

    def forward(self, x: Pair) -> Pair:
        x_l, x_g = x
        m, _ = self.mask((x_l, x_g))
        m_l, m_g = self.minus(torch.cat([x_l, x_g, m], dim=1))
        a_l, a_g = self.add((x_l - m_l, x_g - m_g))
        return x_l - m_l + a_l, x_g - m_g + a_g


class Refine(nn.Module):
    """(B, 4, 256, 256) [masked image in [-1, 1], mask 1 = known] -> (B, 8w, 32, 32) features (local first)."""

    def __init__(self, width: int = 64, blocks: int = 6):
        super().__init__()
        kw = {"apply_bn": False, "spectral_bn": False}
        self.dowm = nn.Sequential(
            nn.ReflectionPad2d(3), FFCBlock(4, width, 7, 0, 0, **kw),
            FFCBlock(width, 2 * width, 4, 0, 0, stride=2, padding=1, **kw),
            FFCBlock(2 * width, 4 * width, 4, 0, 0, stride=2, padding=1, **kw),
            FFCBlock(4 * width, 8 * width, 4, 0, 0.75, stride=2, padding=1, **kw))
        self.n_blocks = blocks
        for i in range(blocks):
            setattr(self, f"block{i + 1}", AttFFC(8 * width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dowm(x)
        for i in range(self.n_blocks):
            y = getattr(self, f"block{i + 1}")(y)
        return torch.cat(y, dim=1)


class ParaGen(nn.Module):
    """``out_para``: per feature cell, [features (8w), scale] -> the MLP parameters (12995)."""

    def __init__(self, dim: int, n_params: int):
        super().__init__()
        self.out_para = nn.Sequential(nn.Linear(dim + 1, n_params))


class Asap(nn.Module):
    """Holds ``lowres_stream`` (:class:`ParaGen`); the release's high-resolution stream has no weights."""

    def __init__(self, dim: int, n_params: int):
        super().__init__()
        self.lowres_stream = ParaGen(dim, n_params)


def positional_code(k: int, device=None) -> torch.Tensor:
    """The release's ``_get_coords`` for one k x k tile (k >= 2) -> (k*k, 4), row-major pixels:
    [cos 2pi x, sin 2pi x, cos 2pi y, sin 2pi y] with x = (j mod k)/(k-1) * 7/8 of the column j and
    y = x of the row index times (7/8) / ((k-1)/k) (the release normalises the y code from the x code)."""
    r = torch.arange(k, dtype=torch.float32, device=device).remainder(k) / k
    m = r.max()
    x = r / (m / (7 / 8))
    y = x / (m / (7 / 8))
    cx, sx = torch.cos(2 * math.pi * x), torch.sin(2 * math.pi * x)
    cy, sy = torch.cos(2 * math.pi * y), torch.sin(2 * math.pi * y)
    rows, cols = torch.meshgrid(torch.arange(k, device=device), torch.arange(k, device=device), indexing="ij")
    rows, cols = rows.reshape(-1), cols.reshape(-1)
    return torch.stack([cx[cols], sx[cols], cy[rows], sy[rows]], dim=1)


def query_mlps(params: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
    """params (N, 12995) (one MLP per tile), code (P, 4) -> (N, P, 3) in [-1, 1]."""
    splits, _ = mlp_splits()
    out = code.unsqueeze(0).expand(params.shape[0], -1, -1)
    for i, (b0, w0, cin, cout) in enumerate(splits):
        weight = params[:, w0:w0 + cin * cout].reshape(-1, cin, cout)
        out = torch.baddbmm(params[:, b0:b0 + cout].unsqueeze(1), out, weight)
        out = torch.tanh(out) if i == len(splits) - 1 else F.leaky_relu(out, 0.01)
    return out


class CoordFillNet(nn.Module):
    """The released ``CoordFill`` module (keys ``asap.*``, ``refine.*``); ``width`` 64 is the
    released size (smaller only for tests).

    :meth:`forward`: image (B, 3, S, S) in [-1, 1] with the hole zeroed, known (B, 1, S, S) 1 =
    known, S a multiple of 32 and >= 64 -> (B, 3, S, S) in [-1, 1], composited.
    """

    def __init__(self, width: int = 64):
        super().__init__()
        self.splits, n_params = mlp_splits()
        self.asap = Asap(8 * width, n_params)
        self.refine = Refine(width)

    def forward(self, image: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
        b, _, s, _ = image.shape
        lr_img = F.interpolate(image, size=(LR_SIZE, LR_SIZE), mode="bilinear", align_corners=False)
        lr_known = F.interpolate(known, size=(LR_SIZE, LR_SIZE), mode="nearest")
        feats = self.refine(torch.cat([lr_img * lr_known, lr_known], dim=1))  # (B, 8w, g, g)
        g = feats.shape[-1]
        k = s // g
        feats = feats.permute(0, 2, 3, 1)  # (B, g, g, 8w)
        # tiles (cells) that hold at least one hole pixel: the only ones queried
        need = (known.reshape(b, g, k, g, k).amin(dim=(2, 4)) < 1).nonzero()  # (N, 3): batch, row, col
        out = image.clone()
        tiles = out.view(b, 3, g, k, g, k).permute(0, 2, 4, 3, 5, 1)  # (B, g, g, k, k, 3) view of out
        code = positional_code(k, image.device)
        per = max(1, QUERY_CHUNK // (k * k))
        linear = self.asap.lowres_stream.out_para[0]
        for c in range(0, need.shape[0], per):
            bi, yi, xi = need[c:c + per].unbind(1)
            cell = torch.cat([feats[bi, yi, xi], feats.new_full((bi.shape[0], 1), g / s)], dim=1)
            tiles[bi, yi, xi] = query_mlps(linear(cell), code).reshape(-1, k, k, 3)
        return out * (1 - known) + image * known


class CoordFillInpainter(PeerInpainter):
    """CoordFill behind ``inpaint``: pads to a square of side max(64, multiple of 32) (symmetric,
    bottom/right), maps to [-1, 1], runs :class:`CoordFillNet`, crops; composited."""

    def _fill(self, image: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        """image (B, 3, H, W) in [0, 1], hole zeroed; hole (B, 1, H, W) in {0, 1} -> (B, 3, H, W) in [0, 1]."""
        h, w = image.shape[-2:]
        s = max(64, math.ceil(max(h, w) / 32) * 32)
        known = pad_symmetric(1 - hole, s, s)
        x = pad_symmetric(image, s, s) * 2 - 1
        return (self.net(x * known, known)[..., :h, :w] + 1) / 2


def conventions() -> dict:
    return {"variant": "CoordFill (attffc, scale injection, mask prediction; Places2/CelebA-HQ release layout)",
            "input": "image normalised to [-1,1], hole zeroed; mask 1 = known",
            "resolution": "parameters from a 256x256 resize (bilinear image, nearest mask) -> 32x32 MLPs; queried "
                          "at full resolution S (k = S/32 pixels a tile); padded to a square S = max(64, multiple "
                          "of 32) on the bottom/right (symmetric mirror), cropped back",
            "output": "tanh -> [0,1], only tiles holding hole pixels queried, composited",
            "released_training": "multi-resolution 256-512, tested at 512 (CoordFill configs; not recorded in the file)"}


def make_coordfill(checkpoint: str | None = None, width: int = 64, pretrained: bool = True) -> CoordFillInpainter:
    """CoordFill from a released encoder file (``.pth`` state dict, or its converted ``.safetensors``),
    else ``$SAIRBENCH_COORDFILL_CHECKPOINT``; ``pretrained=False``: random weights (tests, benchmarks)."""
    net = CoordFillNet(width)
    info = load_peer(net, "coordfill", conventions(), checkpoint, pretrained, ENV, DOWNLOAD, LAYOUT)
    return CoordFillInpainter(net, "coordfill", info)


register_peer(
    "coordfill",
    make_coordfill,
    ENV,
    DOWNLOAD,
    description="CoordFill (AAAI 2023): 32x32 grid of pixel MLPs from a 256x256 resize, queried at full "
                "resolution; square sides padded to a multiple of 32 (>= 64), composited",
    needs="the released CoordFill encoder .pth (--checkpoint coordfill=PATH or $SAIRBENCH_COORDFILL_CHECKPOINT)",
)


if __name__ == "__main__":
    from sairbench_baselines.released import convert_main

    sys.exit(convert_main(sys.argv[1:], "coordfill", CoordFillNet, "", LAYOUT))
