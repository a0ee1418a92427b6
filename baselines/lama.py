"""LaMa (Suvorov et al., WACV 2022) as a peer inside the suite: the big-lama generator, written here
from the paper and the public description of its configuration, loading the released
``big-lama/models/best.ckpt`` (a PyTorch Lightning checkpoint) safely. Registered as ``lama``.

The generator (``configs/training/big-lama.yaml``: ``ffc_resnet``, ngf 64, 3 downsamplings,
18 blocks, global ratio 0.75, no LFU, sigmoid output) is one ``nn.Sequential`` called ``model``;
its ``state_dict()`` keys are the released ``generator.*`` keys without the prefix::

    model.0   ReflectionPad2d(3)
    model.1   FFC 4 -> 64, 7x7, all local               model.1.ffc.convl2l.weight (64, 4, 7, 7), bn_l
    model.2-4 FFC 3x3 stride 2: 64->128, 128->256, 256->512 (model.4 splits its output 128 local / 384 global)
    model.5-22 FFC residual blocks (conv1, conv2), 512 = 128 local + 384 global; the global->global
              path is a spectral transform: conv1 (1x1 384->192, BN, ReLU), Fourier unit (rfft2, 1x1
              conv 384->384 over [re, im], BN, ReLU, irfft2), conv2 (1x1 192->384) of (x + fu(x))
    model.23  concatenation (local, global)
    model.24-32 3 x [ConvTranspose2d 3x3 stride 2 (output padding 1), BN, ReLU]: 512->256->128->64
    model.33-35 ReflectionPad2d(3), Conv2d 64 -> 3 7x7 (bias), Sigmoid

All FFC convolutions are bias-free with reflect padding; every FFC is followed by BN and ReLU per
branch. 989 tensors, 51.1 M parameters (the paper's "Big LaMa: 51M").

Input conventions (as LaMa's ``bin/predict.py``): image in [0, 1] with the hole zeroed,
concatenated with the binary mask (1 = hole) -> 4 channels; the image and mask are padded on the
bottom and right to a multiple of 8 by mirroring with the edge repeated (``np.pad(...,
'symmetric')``, LaMa's ``pad_img_to_modulo``); the output is composited (prediction in the hole)
and cropped back. No resizing: LaMa runs at the input resolution.
"""

from __future__ import annotations

import math
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

from sairbench_baselines.peer_files import load_peer, register_peer
from sairbench_baselines.released import PeerInpainter, pad_symmetric

ENV = "SAIRBENCH_LAMA_CHECKPOINT"
DOWNLOAD = ("download big-lama.zip (the 'big-lama' model of github.com/advimman/lama, README 'Models'), unzip it "
            "and use big-lama/models/best.ckpt (--checkpoint lama=big-lama/models/best.ckpt)")
LAYOUT = "big-lama generator"
PREFIX = "generator."
MULTIPLE = 8  # LaMa's pad_out_to_modulo


# ---------------------------------------------------------------- fast Fourier convolution blocks


class FourierUnit(nn.Module):
    """(B, C, H, W) -> (B, C_out, H, W): real 2-D FFT (ortho), a 1x1 convolution over the (re, im)
    channel pairs (channel 2c is the real part of channel c, 2c+1 its imaginary part), BN
    (``apply_bn``), ReLU, inverse FFT at (H, W). ``bn`` is always registered (CoordFill keeps it
    in its files without applying it)."""

    def __init__(self, cin: int, cout: int, apply_bn: bool = True):
        super().__init__()
        self.conv_layer = nn.Conv2d(2 * cin, 2 * cout, 1, bias=False)
        self.bn = nn.BatchNorm2d(2 * cout)
        self.apply_bn = apply_bn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        f = torch.fft.rfftn(x.float(), dim=(-2, -1), norm="ortho")  # (B, C, H, W//2+1) complex
        f = torch.stack((f.real, f.imag), dim=2).reshape(b, 2 * c, h, f.shape[-1])
        f = self.conv_layer(f)
        f = F.relu(self.bn(f) if self.apply_bn else f)
        f = f.reshape(b, -1, 2, h, f.shape[-1])
        return torch.fft.irfftn(torch.complex(f[:, :, 0], f[:, :, 1]), s=(h, w), dim=(-2, -1), norm="ortho")


class SpectralTransform(nn.Module):
    """The global->global path, (B, C, H, W) -> (B, C_out, H, W): ``conv1`` (1x1 to C_out/2, BN
    when ``conv1_bn``, ReLU), ``fu`` (:class:`FourierUnit`), ``conv2`` (1x1 to C_out) of x + fu(x)."""

    def __init__(self, cin: int, cout: int, conv1_bn: bool = True, fu_bn: bool = True):
        super().__init__()
        half = cout // 2
        layers = [nn.Conv2d(cin, half, 1, bias=False)] + ([nn.BatchNorm2d(half)] if conv1_bn else []) + [nn.ReLU()]
        self.conv1 = nn.Sequential(*layers)
        self.fu = FourierUnit(half, half, fu_bn)
        self.conv2 = nn.Conv2d(half, cout, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        return self.conv2(x + self.fu(x))


Pair = tuple[torch.Tensor, "torch.Tensor | None"]


class FFC(nn.Module):
    """Fast Fourier convolution: input split ``ratio_gin`` global / rest local, output split
    ``ratio_gout``; local<->local/global are k x k convolutions (bias-free, reflect padding),
    global->global a :class:`SpectralTransform`. Paths with an empty side are absent (no keys).

    (x_l (B, Cl, H, W), x_g (B, Cg, H, W) or None) -> (y_l or None, y_g or None), at H/stride.
    """

    def __init__(self, cin: int, cout: int, k: int, ratio_gin: float, ratio_gout: float, stride: int = 1,
                 padding: int = 0, spectral_bn: bool = True):
        super().__init__()
        in_g, out_g = int(cin * ratio_gin), int(cout * ratio_gout)
        in_l, out_l = cin - in_g, cout - out_g

        def conv(a: int, b: int) -> nn.Conv2d | None:
            return nn.Conv2d(a, b, k, stride, padding, bias=False, padding_mode="reflect") if a and b else None

        self.convl2l, self.convl2g, self.convg2l = conv(in_l, out_l), conv(in_l, out_g), conv(in_g, out_l)
        self.convg2g = SpectralTransform(in_g, out_g, spectral_bn, spectral_bn) if in_g and out_g else None
        self.out_l, self.out_g = out_l, out_g

    def forward(self, x: Pair) -> Pair:
        x_l, x_g = x
        y_l = y_g = None
        if self.out_l:
            y_l = sum(p(v) for p, v in ((self.convl2l, x_l), (self.convg2l, x_g)) if p is not None and v is not None)
        if self.out_g:
            y_g = sum(p(v) for p, v in ((self.convl2g, x_l), (self.convg2g, x_g)) if p is not None and v is not None)
        return y_l, y_g


class FFCBlock(nn.Module):
    """``FFC_BN_ACT``: :class:`FFC`, then per branch BN (``bn_l``/``bn_g``, registered for
    non-empty branches; applied when ``apply_bn``) and the activation (``'relu'`` or ``'sigmoid'``).

    x: (B, C, H, W) or (x_l, x_g) -> (y_l, y_g) (None for an empty branch)."""

    def __init__(self, cin: int, cout: int, k: int, ratio_gin: float, ratio_gout: float, stride: int = 1,
                 padding: int = 0, act: str = "relu", apply_bn: bool = True, spectral_bn: bool = True):
        super().__init__()
        self.ffc = FFC(cin, cout, k, ratio_gin, ratio_gout, stride, padding, spectral_bn)
        out_g = int(cout * ratio_gout)
        self.bn_l = nn.BatchNorm2d(cout - out_g) if ratio_gout != 1 else None
        self.bn_g = nn.BatchNorm2d(out_g) if ratio_gout != 0 else None
        self.apply_bn = apply_bn
        self.act = torch.sigmoid if act == "sigmoid" else F.relu

    def forward(self, x) -> Pair:
        y_l, y_g = self.ffc(x if isinstance(x, tuple) else (x, None))
        if self.apply_bn:
            y_l = self.bn_l(y_l) if y_l is not None else None
            y_g = self.bn_g(y_g) if y_g is not None else None
        return (self.act(y_l) if y_l is not None else None), (self.act(y_g) if y_g is not None else None)


class FFCResBlock(nn.Module):
    """Two 3x3 :class:`FFCBlock` (``conv1``, ``conv2``) with a residual per branch; (x_l, x_g) -> same shapes."""

    def __init__(self, dim: int, ratio: float = 0.75):
        super().__init__()
        self.conv1 = FFCBlock(dim, dim, 3, ratio, ratio, padding=1)
        self.conv2 = FFCBlock(dim, dim, 3, ratio, ratio, padding=1)

    def forward(self, x: Pair) -> Pair:
        y_l, y_g = self.conv2(self.conv1(x))
        return x[0] + y_l, x[1] + y_g


class ConcatPair(nn.Module):
    """(x_l (B, Cl, H, W), x_g (B, Cg, H, W)) -> (B, Cl + Cg, H, W), local first."""

    def forward(self, x: Pair) -> torch.Tensor:
        return x[0] if x[1] is None else torch.cat(x, dim=1)


# ---------------------------------------------------------------- the generator


class LamaGenerator(nn.Module):
    """big-lama's FFC ResNet generator: (B, 4, H, W) (masked image, mask), H and W multiples of 8
    -> (B, 3, H, W) in [0, 1]. ``ngf`` 64 and ``n_blocks`` 18 are the released sizes (smaller ones
    only for tests)."""

    def __init__(self, ngf: int = 64, n_blocks: int = 18, ratio: float = 0.75, max_features: int = 1024):
        super().__init__()
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), FFCBlock(4, ngf, 7, 0, 0)]
        for i in range(3):
            cin, cout = min(max_features, ngf * 2 ** i), min(max_features, ngf * 2 ** (i + 1))
            layers.append(FFCBlock(cin, cout, 3, 0, ratio if i == 2 else 0, stride=2, padding=1))
        dim = min(max_features, ngf * 8)
        layers += [FFCResBlock(dim, ratio) for _ in range(n_blocks)]
        layers.append(ConcatPair())
        for i in range(3):
            cin, cout = min(max_features, ngf * 2 ** (3 - i)), min(max_features, ngf * 2 ** (2 - i))
            layers += [nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1), nn.BatchNorm2d(cout),
                       nn.ReLU()]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, 3, 7), nn.Sigmoid()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


# ---------------------------------------------------------------- the inpainter


class LamaInpainter(PeerInpainter):
    """big-lama behind ``inpaint``: pads to a multiple of 8 (symmetric, bottom/right), runs the
    generator on [image x (1 - mask), mask], crops; :class:`PeerInpainter` composites."""

    budget_factor = 8  # Fourier units see the whole image: no tiling, 1/8 of the pixel budget

    def _fill(self, image: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        """image (B, 3, H, W) in [0, 1], hole zeroed; hole (B, 1, H, W) in {0, 1} -> (B, 3, H, W)."""
        h, w = image.shape[-2:]
        ph, pw = math.ceil(h / MULTIPLE) * MULTIPLE, math.ceil(w / MULTIPLE) * MULTIPLE
        x = pad_symmetric(torch.cat([image, hole], dim=1), ph, pw)
        return self.net(x)[..., :h, :w]


def conventions() -> dict:
    return {"variant": "big-lama (ffc_resnet, ngf 64, 18 blocks, global ratio 0.75)",
            "input": "image in [0,1] with the hole zeroed + mask (1 = hole): 4 channels",
            "resolution": "native; padded to a multiple of 8 on the bottom/right (symmetric mirror), cropped back",
            "output": "sigmoid in [0,1], composited in the hole",
            "released_training": "Places-Challenge, 256x256 crops (LaMa paper; not recorded in the file)"}


def make_lama(checkpoint: str | None = None, ngf: int = 64, n_blocks: int = 18, pretrained: bool = True) -> LamaInpainter:
    """LaMa from a released big-lama file (``best.ckpt``, its converted ``.safetensors``), else from
    ``$SAIRBENCH_LAMA_CHECKPOINT``; ``pretrained=False``: random weights (tests, benchmarks)."""
    net = LamaGenerator(ngf, n_blocks)
    info = load_peer(net, "lama", conventions(), checkpoint, pretrained, ENV, DOWNLOAD, LAYOUT, PREFIX)
    return LamaInpainter(net, "lama", info)


register_peer(
    "lama",
    make_lama,
    ENV,
    DOWNLOAD,
    description="LaMa (big-lama, WACV 2022): FFC ResNet on (masked image, mask); native resolution, padded to a "
                "multiple of 8 (symmetric), composited",
    needs="the released big-lama best.ckpt (--checkpoint lama=big-lama/models/best.ckpt or $SAIRBENCH_LAMA_CHECKPOINT)",
)


if __name__ == "__main__":
    from sairbench_baselines.released import convert_main

    sys.exit(convert_main(sys.argv[1:], "lama", LamaGenerator, PREFIX, LAYOUT))
