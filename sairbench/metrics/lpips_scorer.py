"""LPIPS (lpips package v0.1, VGG16 trunk) of uint8 image batches: :class:`LPIPSScorer` and the
process-wide :func:`default_lpips_scorer`. Without local VGG16 weights the values are NaN."""

from __future__ import annotations

import contextlib
import math
import os
import warnings
from pathlib import Path

import numpy as np

from sairbench.digest import weights_digest
from sairbench.errors import SairbenchError, warn_once
from sairbench.metrics.conventions import as_batches
from sairbench.metrics.vgg16_weights import (
    VGG16_ENV,
    VGG16_FILENAME,
    _vgg16_trunk_shapes,
    _vgg16_trunk_state,
    find_vgg16_weights,
)



_TEMPLATE = None


def _lpips_template():
    """One lpips.LPIPS(net="vgg") per process with the package's linear layers and an untrained
    trunk (``pnet_rand=True``: nothing is downloaded); scorers take deep copies of it."""
    global _TEMPLATE
    if _TEMPLATE is None:
        import lpips
        import torch

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torchvision's 'pretrained' deprecation notice
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                model = lpips.LPIPS(pretrained=True, net="vgg", version="0.1", pnet_rand=True, verbose=False)
        got = {k: tuple(v.shape) for k, v in model.net.state_dict().items()}
        if got != _vgg16_trunk_shapes():  # pragma: no cover - a different lpips release
            raise RuntimeError("this lpips release lays out its VGG trunk differently; update sairbench.metrics")
        for p in model.parameters():
            p.requires_grad_(False)
        _TEMPLATE = model.eval()
    return _TEMPLATE


def _random_trunk_(net, seed: int) -> None:
    """Re-initialise the trunk's convolutions as torchvision does for an untrained VGG
    (Kaiming normal, fan_out, zero bias), from ``seed``."""
    import torch

    gen = torch.Generator().manual_seed(int(seed))
    with torch.no_grad():
        for mod in net.modules():
            if isinstance(mod, torch.nn.Conv2d):
                fan_out = mod.out_channels * mod.kernel_size[0] * mod.kernel_size[1]
                std = math.sqrt(2.0 / fan_out)
                mod.weight.copy_(torch.randn(mod.weight.shape, generator=gen) * std)
                mod.bias.zero_()


class LPIPSScorer:
    """LPIPS (lpips package, VGG trunk, inputs in [-1, 1]) for uint8 image batches.

    The package ships its linear layers; the VGG16 trunk needs torchvision's ImageNet weights,
    which this class loads from a local file only (see :func:`find_vgg16_weights`) and never
    downloads. Without them ``available`` is False, ``reason`` says why, one warning is issued,
    and every call returns NaN.

    Args:
        net: only "vgg" (the paper's convention).
        device: torch device for the network.
        backbone_weights: path of torchvision's ``vgg16-397923af.pth`` (or any torchvision VGG16
            state dict holding the ``features.*`` keys).
        allow_random_backbone: for tests only: with no weights found, keep a randomly initialised
            trunk (seeded by ``seed``) instead of returning NaN; ``random_backbone`` is then True
            and the values are *not* LPIPS.
        seed: seed of the random trunk.
        batch_size: images per forward pass.
        channels_last: run the network in channels-last memory format (faster on the CPU and
            with TF32 on CUDA; the values are the same to float32 rounding).
        allow_tf32: on CUDA, let the convolutions use TF32: about 5x faster on an H200, but the
            values then differ from the CPU's by ~5e-5 relative. Off by default: CUDA runs full
            float32 and matches the CPU to ~1e-7.
    """

    def __init__(
        self,
        net: str = "vgg",
        device: str = "cpu",
        backbone_weights: str | os.PathLike | None = None,
        allow_random_backbone: bool = False,
        seed: int = 0,
        batch_size: int = 8,
        channels_last: bool = True,
        allow_tf32: bool = False,
    ):
        if net != "vgg":
            raise SairbenchError(f"LPIPS net '{net}' is not supported; the benchmark convention is net='vgg'.")
        self.net = net
        self.device = device
        self.batch_size = int(batch_size)
        self.channels_last = bool(channels_last)
        self.allow_tf32 = bool(allow_tf32)
        self.random_backbone = False
        self.weights_path: Path | None = None
        self.weights_sha256: str | None = None
        self.model = None
        self.available = False
        self.reason = ""

        path, why = find_vgg16_weights(backbone_weights)
        if path is None and not allow_random_backbone:
            self.reason = (
                f"{why}. Place torchvision's {VGG16_FILENAME} there, or point "
                f"${VGG16_ENV} (or backbone_weights=) at a local copy; sairbench never downloads it."
            )
            warn_once(f"LPIPS is NaN: no VGG16 weights here; set ${VGG16_ENV} to {VGG16_FILENAME}")  # meta.json: why
            return
        trunk = None
        if path is not None:
            try:
                trunk = _vgg16_trunk_state(path)
            except ValueError as exc:
                self.reason = f"{exc}; give a torchvision VGG16 state dict ({VGG16_FILENAME})."
                warn_once(f"LPIPS is NaN: {self.reason}")
                return

        import copy

        model = copy.deepcopy(_lpips_template())
        if trunk is not None:
            model.net.load_state_dict(trunk, strict=True)
            self.weights_path = path
            self.weights_sha256 = weights_digest(trunk)  # pins the VGG16 weights in meta.json
        else:
            _random_trunk_(model.net, seed)
            self.random_backbone = True
            warn_once(
                f"LPIPS scorer uses a RANDOM VGG16 trunk (seed {seed}) for testing; {why}. "
                "Its values are not LPIPS."
            )
        import torch

        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        self.model = model.eval().to(device=device, memory_format=fmt)
        self.available = True
        self.reason = "random VGG16 trunk (test mode)" if self.random_backbone else ""

    def _to_tensor(self, batch: np.ndarray):
        """uint8 (B, H, W, 3) -> float32 (B, 3, H, W) in [-1, 1] on the scorer's device, in its
        memory format (the uint8 batch is what crosses to the device)."""
        import torch

        t = torch.from_numpy(np.ascontiguousarray(batch)).to(self.device)
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        t = t.permute(0, 3, 1, 2).float().contiguous(memory_format=fmt)
        return t / 127.5 - 1.0

    def _precision(self):
        """Context of the forward passes: on CUDA without ``allow_tf32``, cuDNN convolutions in
        full float32."""
        import torch

        if self.allow_tf32 or torch.device(self.device).type != "cuda":
            return contextlib.nullcontext()
        return _cudnn_tf32(False)

    def __call__(self, preds: np.ndarray, gts: np.ndarray) -> np.ndarray:
        """LPIPS per image of uint8 (N, H, W, 3) ``preds`` against ``gts``; float64 (N,)."""
        preds, gts = as_batches(preds, gts, "LPIPS")
        if preds.dtype != np.uint8 or gts.dtype != np.uint8:
            raise ValueError(f"LPIPS takes uint8 batches (use to_uint8); got {preds.dtype} and {gts.dtype}")
        n = preds.shape[0]
        if not self.available:
            return np.full(n, np.nan, dtype=np.float64)
        import torch

        out = np.empty(n, dtype=np.float64)
        with torch.inference_mode(), self._precision():
            for start in range(0, n, self.batch_size):
                stop = min(n, start + self.batch_size)
                d = self.model(self._to_tensor(preds[start:stop]), self._to_tensor(gts[start:stop]))
                out[start:stop] = d.reshape(-1).double().cpu().numpy()
        return out


@contextlib.contextmanager
def _cudnn_tf32(allowed: bool):
    """Context setting cuDNN's TF32 permission for convolutions, restoring it after."""
    import torch

    before = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = allowed
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32 = before


_DEFAULT_SCORERS: dict[str, LPIPSScorer] = {}


def default_lpips_scorer(device: str = "cpu") -> LPIPSScorer:
    """A process-wide LPIPS scorer per ``device`` ("cpu", "cuda", "cuda:1", ...) with the weights
    found locally (or NaN-only)."""
    key = str(device)
    if key not in _DEFAULT_SCORERS:
        _DEFAULT_SCORERS[key] = LPIPSScorer(device=key)
    return _DEFAULT_SCORERS[key]
