"""PSNR, SSIM and L1 of uint8 RGB images: per image (scikit-image / numpy, the reference
definitions) and over a batch (N, H, W, 3) at once with the same values (PSNR and L1 exactly,
SSIM to ~1e-15). SSIM's "lama" convention (LaMa's evaluator, not a scikit-image function) is
computed by :func:`ssim_batch` alone."""

from __future__ import annotations

from typing import Iterable

import numpy as np

from sairbench.metrics.conventions import _check_pair, _check_ssim_convention, _check_uint8_batches


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
    """SSIM of uint8 (H, W, 3) ``pred`` against ``gt`` under ``convention`` (``SSIM_CONVENTIONS``).

    "skimage" and "skimage-gaussian": scikit-image's ``structural_similarity`` (7x7 uniform window
    with sample covariance; 11x11 Gaussian window, sigma 1.5, population covariance), mean over the
    valid region. "lama": LaMa's evaluator formula (zero-padded Gaussian window, mean over the whole
    map), computed by :func:`ssim_batch` on a batch of one.
    """
    _check_ssim_convention(convention)
    pred, gt = _check_pair(pred, gt)
    if convention == "lama":
        return float(ssim_batch(pred[None], gt[None], convention)[0])
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


def _chunks(n: int, pixels_per_image: int, budget: int) -> Iterable[slice]:
    """Slices of ``range(n)`` holding about ``budget`` pixels each (at least one image)."""
    step = max(1, budget // max(1, pixels_per_image))
    return (slice(s, min(n, s + step)) for s in range(0, n, step))


def _error_sums(preds: np.ndarray, gts: np.ndarray, power: int, masks: np.ndarray | None = None) -> np.ndarray:
    """Exact per-image sums of ``|pred - gt| ** power`` (power 1 or 2) over uint8 (N, H, W, 3)
    batches, over the pixels where bool (N, H, W) ``masks`` is True when given; int64 (N,)."""
    n, h, w, _ = preds.shape
    out = np.empty(n, dtype=np.int64)
    for sl in _chunks(n, h * w, DIFF_CHUNK_PIXELS):
        p, g = preds[sl], gts[sl]
        d = np.maximum(p, g)
        d -= np.minimum(p, g)
        if power == 2:
            d = d.astype(np.uint16)
            d *= d  # 255 ** 2 fits uint16
        if masks is not None:
            d *= masks[sl][..., None]
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


def _hole_sizes(preds: np.ndarray, masks, what: str) -> tuple[np.ndarray, np.ndarray]:
    """``masks`` as bool (N, H, W) matching uint8 (N, H, W, 3) ``preds``, and the hole values per
    image (hole pixels x 3 channels), float64 (N,)."""
    masks = np.asarray(masks)
    if masks.shape != preds.shape[:3]:
        raise ValueError(f"{what}: masks have shape {masks.shape}, the images need {preds.shape[:3]} (N, H, W)")
    masks = masks.astype(bool, copy=False)
    return masks, masks.reshape(len(masks), -1).sum(axis=1).astype(np.float64) * preds.shape[3]


def psnr_hole_batch(preds: np.ndarray, gts: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """PSNR in dB over the hole alone, per image: MSE = sum over the hole pixels (``masks`` True,
    bool (N, H, W)) and the 3 channels of (pred - gt)^2 / (3 * hole pixels), PSNR = 10 log10(255^2 /
    MSE) on uint8 values; ``inf`` when the hole is answered exactly, NaN for an image without hole.

    On a composited output (the input outside the hole) it equals ``psnr + 10 log10(ratio)``, with
    ``ratio`` the hole's fraction of the image (:func:`psnr_hole_from_psnr`)."""
    preds, gts = _check_uint8_batches(preds, gts, "psnr_hole_batch")
    masks, n = _hole_sizes(preds, masks, "psnr_hole_batch")
    sq = _error_sums(preds, gts, 2, masks).astype(np.float64)
    out = np.full(len(preds), np.nan)
    exact, nz = (sq == 0) & (n > 0), (sq > 0) & (n > 0)
    out[exact] = np.inf
    out[nz] = 10 * np.log10((255**2) / (sq[nz] / n[nz]))
    return out


def psnr_hole_from_psnr(psnr_values, ratio) -> np.ndarray:
    """In-hole PSNR of composited outputs from their whole-image PSNR and hole ratio: the squared
    error lies in the hole alone, so PSNR_hole = PSNR + 10 log10(ratio) (what ``psnr_hole`` gives)."""
    ratio = np.asarray(ratio, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ratio > 0, np.asarray(psnr_values, dtype=np.float64) + 10 * np.log10(ratio), np.nan)


def l1_hole_batch(preds: np.ndarray, gts: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Mean absolute error over the hole alone, per image, in [0, 1] units: sum over the hole pixels
    (``masks`` True, bool (N, H, W)) and the 3 channels of |pred - gt| / (3 * hole pixels * 255);
    NaN for an image without hole. float64 (N,)."""
    preds, gts = _check_uint8_batches(preds, gts, "l1_hole_batch")
    masks, n = _hole_sizes(preds, masks, "l1_hole_batch")
    total = _error_sums(preds, gts, 1, masks).astype(np.float64)
    out = np.full(len(preds), np.nan)
    out[n > 0] = total[n > 0] / n[n > 0] / 255.0
    return out


def _ssim_window(convention: str) -> tuple[tuple, float, float, int]:
    """1-D window taps, moment scale, covariance factor and zero padding (pixels per side) of an
    SSIM convention.

    "skimage": 7 taps of 1 (window *sums*, exact in int32; scale 49), sample covariance 49/48, no
    padding (the valid region). "skimage-gaussian": scipy's Gaussian taps (sigma 1.5, truncate
    3.5: 11 taps summing to 1; scale 1), population covariance, no padding. "lama": the taps of
    LaMa's ``SSIM._gaussian`` (exp(-(x - 5)^2 / (2 * 1.5^2)) for x = 0..10, divided by their sum),
    population covariance, zero padding of 5 so that the map has the image's size.
    """
    if convention == "skimage":
        return (1,) * 7, 49.0, 49.0 / 48.0, 0
    if convention == "lama":
        x = np.arange(11, dtype=np.float64) - 5
        g = np.exp(-(x**2) / (2 * 1.5**2))
        return tuple(float(v) for v in g / g.sum()), 1.0, 1.0, 5
    radius = int(3.5 * 1.5 + 0.5)
    x = np.arange(-radius, radius + 1)
    phi = np.exp(-0.5 / 1.5**2 * x.astype(np.float64) ** 2)
    return tuple(float(v) for v in phi / phi.sum()), 1.0, 1.0, 0


def _window_filter(q, taps: tuple, dim: int):
    """Valid 1-D correlation of tensor ``q`` with ``taps`` along ``dim``: that dimension shrinks
    from L to L - len(taps) + 1."""
    size = q.shape[dim] - len(taps) + 1
    out = q.narrow(dim, 0, size) * taps[0]
    for i, t in enumerate(taps[1:], 1):
        out.add_(q.narrow(dim, i, size), alpha=t)
    return out


def _ssim_moments(preds: np.ndarray, gts: np.ndarray, taps: tuple, pad: int = 0):
    """Window moments of uint8 (B, H, W, 3) images x = gts, y = preds, each image (and each
    product) surrounded by ``pad`` pixels of zeros first.

    Returns:
        float64 tensor (5, B, H + 2 pad - k + 1, W + 2 pad - k + 1, 3): windowed x, y, x*x, y*y,
        x*y, with k the number of taps (int32 arithmetic, hence exact, when the taps are integers).
    """
    import torch

    dtype = torch.int32 if isinstance(taps[0], int) else torch.float64
    b, h, w, c = gts.shape
    q = torch.empty((5, b, h + 2 * pad, w + 2 * pad, c), dtype=dtype)
    if pad:
        q.zero_()
    inner = q[:, :, pad:pad + h, pad:pad + w]
    inner[0].copy_(torch.from_numpy(np.ascontiguousarray(gts)))  # views with negative strides too
    inner[1].copy_(torch.from_numpy(np.ascontiguousarray(preds)))
    torch.mul(inner[0], inner[0], out=inner[2])
    torch.mul(inner[1], inner[1], out=inner[3])
    torch.mul(inner[0], inner[1], out=inner[4])
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

    "skimage" and "skimage-gaussian": equal (to ~1e-15) to :func:`ssim`, i.e. scikit-image's
    ``structural_similarity``: the same windows over the valid region (the border scikit-image
    crops); a ValueError, as scikit-image raises, when an image side is shorter than the window.

    "lama": LaMa's evaluator (advimman/lama, ``saicinpainting/evaluation/losses/ssim.py``, class
    ``SSIM`` as ``SSIMScore`` calls it: one value per image): the 11x11 Gaussian window (sigma 1.5)
    applied per channel with 5 pixels of zero padding, C1 = 0.01^2, C2 = 0.03^2 on [0, 1] values,
    the SSIM map (channels x H x W, border included) averaged. Computed on the uint8 values with
    C1 = (0.01 * 255)^2 and C2 = (0.03 * 255)^2, which is the same formula multiplied through by
    255^4, in float64 (LaMa's code runs in float32; the two agree to ~1e-5). Any image size.

    Every convention is evaluated with separable torch filters a few images at a time.
    """
    _check_ssim_convention(convention)
    preds, gts = _check_uint8_batches(preds, gts, "ssim_batch")
    taps, scale, cov_norm, pad = _ssim_window(convention)
    n, h, w, _ = preds.shape
    if min(h, w) + 2 * pad < len(taps):
        raise ValueError(f"SSIM's {len(taps)}x{len(taps)} window exceeds the image extent ({h}x{w})")
    out = np.empty(n, dtype=np.float64)
    for sl in _chunks(n, h * w, SSIM_CHUNK_PIXELS):
        m = _ssim_moments(preds[sl], gts[sl], taps, pad)
        out[sl] = _ssim_from_moments(m, scale, cov_norm).numpy()
    return out
