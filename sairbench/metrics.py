"""Per-image image-quality metrics: PSNR, SSIM, L1 and LPIPS, under one stated convention.

The convention follows the SAIR paper's own test code (see ``CONVENTIONS``): metrics are computed
per image on the *composited* output (prediction inside the hole, input elsewhere) at the
evaluation size (256x256 for the paper's datasets, the dataset size otherwise), then averaged.

* PSNR and SSIM: scikit-image on uint8 RGB (H, W, 3), ``data_range=255``, ``channel_axis=-1``;
  SSIM with the default 7x7 uniform window (``ssim_convention="skimage"``) or, as an option, the
  LaMa-style 11x11 Gaussian window with sigma 1.5 (``ssim_convention="lama"``). A table never
  mixes the two.
* L1: mean absolute error over the whole image (all pixels, all channels) with values in [0, 1].
* LPIPS: the ``lpips`` package, VGG trunk with its v0.1 linear layers, inputs scaled to [-1, 1].
  The VGG16 trunk needs torchvision's ImageNet weights, which are *never* downloaded here; without
  them LPIPS is NaN (with one clear warning), never a stand-in value.

All images given to the metric functions are uint8 arrays (H, W, 3); use :func:`to_uint8` to turn
model outputs (float in [0, 1]) into that form. :func:`psnr`, :func:`ssim` and :func:`l1` score one
image with scikit-image / numpy and are the reference definitions; :func:`score_batch` scores a
batch (N, H, W, 3) with :func:`psnr_batch`, :func:`ssim_batch` and :func:`l1_batch`, which compute
the same values over the whole batch (PSNR and L1 exactly, SSIM to ~1e-15).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import warnings
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from sairbench.errors import SairbenchError

log = logging.getLogger(__name__)

METRICS: tuple[str, ...] = ("psnr", "ssim", "l1", "lpips")
HIGHER_IS_BETTER: dict[str, bool] = {"psnr": True, "ssim": True, "l1": False, "lpips": False}
SSIM_CONVENTIONS: tuple[str, ...] = ("skimage", "lama")

#: PSNR of two identical uint8 images is +inf per image (kept as such in per-image files);
#: any summary (means, confidence intervals, paired tests) first clips PSNR to this many dB.
PSNR_CAP_DB: float = 100.0

#: File name of torchvision's ImageNet VGG16 weights (the LPIPS trunk) in the torch hub cache.
VGG16_FILENAME = "vgg16-397923af.pth"
#: Environment variable naming a local copy of those weights.
VGG16_ENV = "SAIRBENCH_VGG16_WEIGHTS"

CONVENTIONS: dict[str, str] = {
    "common": (
        "Per-image values on the composited output (prediction inside the hole, input elsewhere) "
        "at the evaluation size (256x256, or the dataset's size), averaged per bucket; images "
        "quantised to uint8 RGB by round(clip(x, 0, 1) * 255) with halves rounded up."
    ),
    "psnr": (
        "PSNR in dB: skimage.metrics.peak_signal_noise_ratio on uint8 RGB, data_range=255. "
        f"Identical images give +inf per image; summaries clip PSNR to {PSNR_CAP_DB:g} dB."
    ),
    "ssim": (
        "SSIM: skimage.metrics.structural_similarity on uint8 RGB, data_range=255, "
        "channel_axis=-1, default 7x7 uniform window with sample covariance (ssim_convention="
        "'skimage'); optional ssim_convention='lama': 11x11 Gaussian window, sigma 1.5, "
        "use_sample_covariance=False. One convention per table."
    ),
    "l1": "L1: mean absolute error over the whole image (all pixels and channels), values in [0, 1].",
    "lpips": (
        "LPIPS: lpips package v0.1, VGG16 trunk (torchvision ImageNet weights) with the package's "
        "linear layers, inputs scaled to [-1, 1]; NaN when the VGG16 weights are not present "
        "locally (never downloaded, never replaced by another network)."
    ),
}

_SSIM_TEXT = {
    "skimage": "SSIM: scikit-image, uint8 RGB, data_range=255, channel_axis=-1, 7x7 uniform window, sample covariance.",
    "lama": "SSIM (LaMa-style): scikit-image, uint8 RGB, data_range=255, channel_axis=-1, 11x11 Gaussian window "
    "(sigma 1.5), use_sample_covariance=False.",
}


def conventions_dict(ssim_convention: str = "skimage") -> dict[str, str]:
    """The conventions of one result table, for ``meta.json``: ``CONVENTIONS`` with the SSIM entry
    narrowed to ``ssim_convention`` and an ``ssim_convention`` key added."""
    _check_ssim_convention(ssim_convention)
    out = dict(CONVENTIONS)
    out["ssim"] = _SSIM_TEXT[ssim_convention]
    out["ssim_convention"] = ssim_convention
    return out


def _check_ssim_convention(convention: str) -> None:
    if convention not in SSIM_CONVENTIONS:
        raise SairbenchError(
            f"unknown SSIM convention '{convention}'; use one of {', '.join(SSIM_CONVENTIONS)}."
        )


# --------------------------------------------------------------------------------------------
# conversion
# --------------------------------------------------------------------------------------------


def to_uint8(x) -> np.ndarray:
    """Quantise an image (or a batch) to uint8 RGB, channels last.

    Accepts a torch tensor (3, H, W) or (B, 3, H, W), or a numpy array (H, W, 3) or (B, H, W, 3),
    float in [0, 1]; values are clipped to [0, 1], scaled by 255 and rounded half up
    (``floor(v * 255 + 0.5)``). NaN becomes 0. uint8 numpy input is returned unchanged.

    Returns:
        uint8 (H, W, 3), or (B, H, W, 3) for batched input.
    """
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        torch = None
    if torch is not None and isinstance(x, torch.Tensor):
        if x.dim() not in (3, 4) or x.shape[-3] != 3:
            raise ValueError(f"to_uint8: expected a tensor (3, H, W) or (B, 3, H, W), got {tuple(x.shape)}")
        arr = x.detach().to("cpu", torch.float64).numpy()
        arr = np.moveaxis(arr, -3, -1)
    else:
        arr = np.asarray(x)
        if arr.ndim not in (3, 4) or arr.shape[-1] != 3:
            raise ValueError(f"to_uint8: expected an array (H, W, 3) or (B, H, W, 3), got {arr.shape}")
        if arr.dtype == np.uint8:
            return arr
        arr = arr.astype(np.float64)
    arr = np.nan_to_num(arr, nan=0.0, posinf=1.0, neginf=0.0)
    arr = np.floor(np.clip(arr, 0.0, 1.0) * 255.0 + 0.5)
    return np.ascontiguousarray(arr.astype(np.uint8))


def as_batches(preds, gts, who: str) -> tuple[np.ndarray, np.ndarray]:
    """Two image batches (N, H, W, 3) of one shape; a single (H, W, 3) pair becomes N = 1."""
    preds = np.asarray(preds)
    gts = np.asarray(gts)
    if preds.ndim == 3:
        preds, gts = preds[None], gts[None]
    if preds.shape != gts.shape or preds.ndim != 4 or preds.shape[-1] != 3:
        raise ValueError(f"{who} takes two uint8 (N, H, W, 3) batches of one shape; got {preds.shape} and {gts.shape}")
    return preds, gts


def _check_pair(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(pred)
    gt = np.asarray(gt)
    if pred.dtype != np.uint8 or gt.dtype != np.uint8:
        raise ValueError(f"metrics take uint8 images (use to_uint8); got {pred.dtype} and {gt.dtype}")
    if pred.shape != gt.shape or pred.ndim != 3 or pred.shape[-1] != 3:
        raise ValueError(f"metrics take two uint8 (H, W, 3) images of one shape; got {pred.shape} and {gt.shape}")
    return pred, gt


# --------------------------------------------------------------------------------------------
# PSNR, SSIM, L1
# --------------------------------------------------------------------------------------------


def psnr(pred: np.ndarray, gt: np.ndarray) -> float:
    """PSNR in dB of uint8 (H, W, 3) ``pred`` against ``gt`` (data_range 255).

    ``float('inf')`` for identical images (summaries clip to ``PSNR_CAP_DB``).
    """
    pred, gt = _check_pair(pred, gt)
    diff = pred.astype(np.float64) - gt.astype(np.float64)
    if not np.any(diff):
        return float("inf")
    from skimage.metrics import peak_signal_noise_ratio

    return float(peak_signal_noise_ratio(gt, pred, data_range=255))


def ssim(pred: np.ndarray, gt: np.ndarray, convention: str = "skimage") -> float:
    """SSIM of uint8 (H, W, 3) ``pred`` against ``gt``; ``convention`` is "skimage" or "lama"."""
    _check_ssim_convention(convention)
    pred, gt = _check_pair(pred, gt)
    from skimage.metrics import structural_similarity

    if convention == "skimage":
        value = structural_similarity(gt, pred, data_range=255, channel_axis=-1)
    else:
        value = structural_similarity(
            gt,
            pred,
            data_range=255,
            channel_axis=-1,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
        )
    return float(value)


def l1(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean absolute error of uint8 (H, W, 3) images, in [0, 1] units (all pixels and channels)."""
    pred, gt = _check_pair(pred, gt)
    return float(np.mean(np.abs(pred.astype(np.float64) - gt.astype(np.float64))) / 255.0)


#: Pixels (H * W) per chunk of the batched metrics: small enough that the temporaries stay a few MB.
DIFF_CHUNK_PIXELS = 2**18
SSIM_CHUNK_PIXELS = 2**16


def _check_uint8_batches(preds, gts, who: str) -> tuple[np.ndarray, np.ndarray]:
    preds, gts = as_batches(preds, gts, who)
    if preds.dtype != np.uint8 or gts.dtype != np.uint8:
        raise ValueError(f"{who} takes uint8 batches (use to_uint8); got {preds.dtype} and {gts.dtype}")
    return preds, gts


def _chunks(n: int, pixels_per_image: int, budget: int) -> Iterable[slice]:
    """Slices of ``range(n)`` holding about ``budget`` pixels each (at least one image)."""
    step = max(1, budget // max(1, pixels_per_image))
    return (slice(s, min(n, s + step)) for s in range(0, n, step))


def _error_sums(preds: np.ndarray, gts: np.ndarray, power: int) -> np.ndarray:
    """Exact per-image sums of ``|pred - gt| ** power`` (power 1 or 2) over uint8 (N, H, W, 3)
    batches; int64 (N,)."""
    n, h, w, _ = preds.shape
    out = np.empty(n, dtype=np.int64)
    for sl in _chunks(n, h * w, DIFF_CHUNK_PIXELS):
        p, g = preds[sl], gts[sl]
        d = np.maximum(p, g)
        d -= np.minimum(p, g)
        if power == 2:
            d = d.astype(np.uint16)
            d *= d  # 255 ** 2 fits uint16
        out[sl] = d.reshape(len(d), -1).sum(axis=1, dtype=np.int64)
    return out


def psnr_batch(preds: np.ndarray, gts: np.ndarray) -> np.ndarray:
    """PSNR in dB per image of uint8 (N, H, W, 3) ``preds`` against ``gts``; float64 (N,).

    Equal to :func:`psnr` image by image (``inf`` for identical images): the squared errors are
    summed exactly in integers, then the same float64 expression as scikit-image is applied.
    """
    preds, gts = _check_uint8_batches(preds, gts, "psnr_batch")
    sq = _error_sums(preds, gts, 2)
    mse = sq / float(preds[0].size if len(preds) else 1)
    out = np.full(len(preds), np.inf)
    nz = sq > 0
    out[nz] = 10 * np.log10((255**2) / mse[nz])
    return out


def l1_batch(preds: np.ndarray, gts: np.ndarray) -> np.ndarray:
    """Mean absolute error per image of uint8 (N, H, W, 3) batches, in [0, 1] units; float64 (N,).
    Equal to :func:`l1` image by image."""
    preds, gts = _check_uint8_batches(preds, gts, "l1_batch")
    return _error_sums(preds, gts, 1) / float(preds[0].size if len(preds) else 1) / 255.0


def _ssim_window(convention: str) -> tuple[tuple, float, float]:
    """1-D window taps, moment scale and covariance factor of an SSIM convention.

    "skimage": 7 taps of 1 (window *sums*, exact in int32; scale 49), sample covariance 49/48.
    "lama": scipy's Gaussian taps (sigma 1.5, truncate 3.5: 11 taps summing to 1; scale 1),
    population covariance.
    """
    if convention == "skimage":
        return (1,) * 7, 49.0, 49.0 / 48.0
    radius = int(3.5 * 1.5 + 0.5)
    x = np.arange(-radius, radius + 1)
    phi = np.exp(-0.5 / 1.5**2 * x.astype(np.float64) ** 2)
    return tuple(float(v) for v in phi / phi.sum()), 1.0, 1.0


def _window_filter(q, taps: tuple, dim: int):
    """Valid 1-D correlation of tensor ``q`` with ``taps`` along ``dim``: that dimension shrinks
    from L to L - len(taps) + 1."""
    size = q.shape[dim] - len(taps) + 1
    out = q.narrow(dim, 0, size) * taps[0]
    for i, t in enumerate(taps[1:], 1):
        out.add_(q.narrow(dim, i, size), alpha=t)
    return out


def _ssim_moments(preds: np.ndarray, gts: np.ndarray, taps: tuple):
    """Window moments of uint8 (B, H, W, 3) images x = gts, y = preds.

    Returns:
        float64 tensor (5, B, H - k + 1, W - k + 1, 3): windowed x, y, x*x, y*y, x*y, with k the
        number of taps (int32 arithmetic, hence exact, when the taps are integers).
    """
    import torch

    dtype = torch.int32 if isinstance(taps[0], int) else torch.float64
    q = torch.empty((5,) + gts.shape, dtype=dtype)
    q[0].copy_(torch.from_numpy(gts))
    q[1].copy_(torch.from_numpy(preds))
    torch.mul(q[0], q[0], out=q[2])
    torch.mul(q[1], q[1], out=q[3])
    torch.mul(q[0], q[1], out=q[4])
    return _window_filter(_window_filter(q, taps, 2), taps, 3).to(torch.float64)


def _ssim_from_moments(m, scale: float, cov_norm: float):
    """Mean SSIM per image from window moments ``m`` (float64 (5, B, h, w, 3), window *sums*
    scaled by ``scale`` relative to means); float64 tensor (B,).

    The skimage formula with both numerator and denominator multiplied by ``scale ** 4``.
    """
    mx, my, mxx, myy, mxy = m.unbind(0)
    s2 = scale * scale
    c1, c2 = (0.01 * 255) ** 2 * s2, (0.03 * 255) ** 2 * s2
    pxy = mx * my
    sq = mx * mx + my * my
    a1 = pxy * 2 + c1
    a2 = (mxy * scale - pxy).mul_(2 * cov_norm).add_(c2)
    b2 = (mxx + myy).mul_(scale).sub_(sq).mul_(cov_norm).add_(c2)
    b1 = sq.add_(c1)
    ssim_map = a1.mul_(a2).div_(b1.mul_(b2))
    return ssim_map.mean(dim=(1, 2, 3))


def ssim_batch(preds: np.ndarray, gts: np.ndarray, convention: str = "skimage") -> np.ndarray:
    """SSIM per image of uint8 (N, H, W, 3) ``preds`` against ``gts``; float64 (N,).

    Equal (to ~1e-15) to :func:`ssim`, i.e. scikit-image's ``structural_similarity``: the same
    windows over the valid region (the border scikit-image crops), evaluated with separable torch
    filters a few images at a time. Raises ValueError, as scikit-image does, when an image side
    is shorter than the window.
    """
    _check_ssim_convention(convention)
    preds, gts = _check_uint8_batches(preds, gts, "ssim_batch")
    taps, scale, cov_norm = _ssim_window(convention)
    n, h, w, _ = preds.shape
    if min(h, w) < len(taps):
        raise ValueError(f"SSIM's {len(taps)}x{len(taps)} window exceeds the image extent ({h}x{w})")
    out = np.empty(n, dtype=np.float64)
    for sl in _chunks(n, h * w, SSIM_CHUNK_PIXELS):
        m = _ssim_moments(preds[sl], gts[sl], taps)
        out[sl] = _ssim_from_moments(m, scale, cov_norm).numpy()
    return out


def summary_values(metric: str, values) -> np.ndarray:
    """Per-image values made ready for a summary: float64 (N,), PSNR clipped to ``PSNR_CAP_DB``."""
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    if metric == "psnr":
        arr = np.where(np.isnan(arr), np.nan, np.minimum(arr, PSNR_CAP_DB))
    return arr


# --------------------------------------------------------------------------------------------
# LPIPS
# --------------------------------------------------------------------------------------------

_WARNED: set[str] = set()


def _warn_once(message: str) -> None:
    if message in _WARNED:
        return
    _WARNED.add(message)
    log.warning(message)
    warnings.warn(message, RuntimeWarning, stacklevel=3)


def find_vgg16_weights(backbone_weights: str | os.PathLike | None = None) -> tuple[Path | None, str]:
    """Locate torchvision's VGG16 ImageNet weights without downloading anything.

    Looks, in order, at ``backbone_weights``, the ``SAIRBENCH_VGG16_WEIGHTS`` environment variable
    and ``torch.hub.get_dir()/checkpoints/vgg16-397923af.pth``.

    Returns:
        (path, "") when found, else (None, reason).
    """
    if backbone_weights is not None:
        p = Path(backbone_weights).expanduser()
        if p.is_file():
            return p, ""
        return None, f"VGG16 weights file {p} (backbone_weights) does not exist"
    env = os.environ.get(VGG16_ENV)
    if env:
        p = Path(env).expanduser()
        if p.is_file():
            return p, ""
        return None, f"VGG16 weights file {p} (from ${VGG16_ENV}) does not exist"
    import torch

    p = Path(torch.hub.get_dir()) / "checkpoints" / VGG16_FILENAME
    if p.is_file():
        return p, ""
    return None, f"torchvision's VGG16 ImageNet weights are not in the torch hub cache ({p})"


def _vgg16_trunk_shapes() -> dict[str, tuple[int, ...]]:
    """lpips' VGG16 trunk parameters (``sliceK.N.weight|bias``) and their shapes; N is the index
    in torchvision's ``vgg16().features`` (convolutions of configuration "D")."""
    cfg = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
    slice_starts = (0, 4, 9, 16, 23, 30)  # lpips slices features[0:4], [4:9], [9:16], [16:23], [23:30]
    shapes, idx, cin = {}, 0, 3
    for v in cfg:
        if v == "M":
            idx += 1
            continue
        k = next(i for i in range(5) if slice_starts[i] <= idx < slice_starts[i + 1]) + 1
        shapes[f"slice{k}.{idx}.weight"] = (v, cin, 3, 3)
        shapes[f"slice{k}.{idx}.bias"] = (v,)
        cin = v
        idx += 2  # conv + ReLU
    return shapes


def _vgg16_trunk_state(path: Path) -> dict:
    """Read a torchvision VGG16 state dict (``features.N.weight`` ...) and rename it to lpips' trunk
    keys (``sliceK.N.weight`` ...). Raises ValueError on an unreadable file or a wrong layout."""
    import torch

    try:
        try:  # memory-map: the 528 MB file is mostly classifier weights we do not need
            state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError:  # legacy (non-zip) serialisation cannot be memory-mapped
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unreadable / not a torch file
        raise ValueError(f"cannot read {path} as a torch state dict ({type(exc).__name__}: {exc})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError(f"{path} does not hold a state dict")
    out = {}
    for key, shape in _vgg16_trunk_shapes().items():
        _, idx, kind = key.split(".")
        src = f"features.{idx}.{kind}"
        if src not in state:
            raise ValueError(f"{path} is not a torchvision VGG16 state dict (no '{src}')")
        tensor = state[src]
        if tuple(tensor.shape) != tuple(shape):
            raise ValueError(f"{path}: '{src}' has shape {tuple(tensor.shape)}, expected {tuple(shape)}")
        out[key] = tensor.float()
    return out


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
        self.model = None
        self.available = False
        self.reason = ""

        path, why = find_vgg16_weights(backbone_weights)
        if path is None and not allow_random_backbone:
            self.reason = (
                f"{why}. Place torchvision's {VGG16_FILENAME} there, or point "
                f"${VGG16_ENV} (or backbone_weights=) at a local copy; sairbench never downloads it."
            )
            _warn_once(f"LPIPS is NaN: {self.reason}")
            return
        trunk = None
        if path is not None:
            try:
                trunk = _vgg16_trunk_state(path)
            except ValueError as exc:
                self.reason = f"{exc}; give a torchvision VGG16 state dict ({VGG16_FILENAME})."
                _warn_once(f"LPIPS is NaN: {self.reason}")
                return

        import copy

        model = copy.deepcopy(_lpips_template())
        if trunk is not None:
            model.net.load_state_dict(trunk, strict=True)
            self.weights_path = path
        else:
            _random_trunk_(model.net, seed)
            self.random_backbone = True
            _warn_once(
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


# --------------------------------------------------------------------------------------------
# batches
# --------------------------------------------------------------------------------------------


def score_batch(
    preds: np.ndarray,
    gts: np.ndarray,
    metrics: Sequence[str] | Iterable[str] = METRICS,
    lpips_scorer: LPIPSScorer | None = None,
    ssim_convention: str = "skimage",
    device: str = "cpu",
) -> dict[str, np.ndarray]:
    """Per-image metrics of uint8 (N, H, W, 3) ``preds`` against ``gts``.

    PSNR, SSIM and L1 are computed over the batch at once (:func:`psnr_batch`,
    :func:`ssim_batch`, :func:`l1_batch`), equal to the per-image functions.

    Returns:
        {metric: float64 (N,)} for each requested metric. LPIPS uses ``lpips_scorer`` or
        ``default_lpips_scorer(device)`` (NaN when the VGG16 weights are absent).
    """
    metrics = list(metrics)
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise SairbenchError(f"unknown metric(s) {', '.join(unknown)}; known: {', '.join(METRICS)}.")
    _check_ssim_convention(ssim_convention)
    preds, gts = _check_uint8_batches(preds, gts, "score_batch")
    out: dict[str, np.ndarray] = {}
    batched = {"psnr": psnr_batch, "l1": l1_batch, "ssim": lambda p, g: ssim_batch(p, g, ssim_convention)}
    for m in metrics:
        if m == "lpips":
            scorer = lpips_scorer if lpips_scorer is not None else default_lpips_scorer(device)
            out[m] = scorer(preds, gts)
        else:
            out[m] = batched[m](preds, gts)
    return out

