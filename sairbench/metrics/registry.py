"""Every metric sairbench reports, one :class:`Metric` record each, in the registry :data:`METRICS`.

A record holds all that the rest of the package reads about a metric: its column name in per-image
files and summaries, its display title, its direction (higher or lower is better), the decimals a
table prints, the convention text written into meta.json, whether a protocol scores it when it
names no metrics, the protocol kind that produces it, the cap its per-image values get before a
summary, and ``fn``, its batch scorer. Scoring (:func:`~sairbench.metrics.score.score_batch`), the
report (best-value direction, decimals, titles), the terminal summary table, meta.json's
conventions and the protocol check of metric names all look metrics up here.

The mIoU metrics of the SIR probe (``miou``, ``miou_hole``) are computed over a whole set of
images by :mod:`sairbench.probe`, not per image: their ``fn`` is None; so are ``fid`` and ``kid``
(:mod:`sairbench.metrics.set_level`, scored only when a protocol names them).

A scorer gets the batch's predictions, ground truths and, in its :class:`ScoreContext`, the hole
masks (``context.hole()``: bool (N, H, W), True = missing). ``psnr_hole`` and ``l1_hole`` score the
hole alone; they are not scored unless a protocol names them. Plugins add metrics with
:func:`register_metric` (entry points ``sairbench.metrics``, loaded once by
:func:`load_metric_plugins` when a metric is looked up); docs/plugins.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional

import numpy as np

from sairbench.errors import SairbenchError
from sairbench.metrics.conventions import PSNR_CAP_DB, _check_ssim_convention
from sairbench.metrics.pixel import l1_batch, l1_hole_batch, psnr_batch, psnr_hole_batch, ssim_batch

#: Directions a metric may have.
DIRECTIONS = ("higher", "lower")


@dataclass(frozen=True)
class ScoreContext:
    """What a batch scorer may need besides the images: the SSIM convention, the LPIPS scorer
    (``lpips_scorer``, else the process-wide one of ``device``, made on first use) and the hole
    masks of the batch (``masks``: bool (N, H, W), True = missing; :meth:`hole`)."""

    ssim_convention: str = "skimage"
    lpips_scorer: object = None
    device: str = "cpu"
    masks: Any = None

    def hole(self):
        """The batch's hole masks, bool (N, H, W) (True = missing); SairbenchError when the caller
        gave none (``score_batch(..., masks=...)``: every evaluation of the suite does)."""
        if self.masks is None:
            raise SairbenchError("this metric reads the hole masks, and none were given; pass masks= (bool N x H x W, "
                                 "True = missing) to score_batch.")
        return self.masks

    def lpips(self):
        """The LPIPS scorer to use: ``lpips_scorer`` or ``default_lpips_scorer(device)``."""
        if self.lpips_scorer is not None:
            return self.lpips_scorer
        from sairbench.metrics.lpips_scorer import default_lpips_scorer

        return default_lpips_scorer(self.device)


#: A batch scorer: ``fn(preds, gts, context)`` -> float64 (N,), preds and gts uint8 (N, H, W, 3),
#: ``context.hole()`` the hole masks bool (N, H, W).
BatchScorer = Callable[[np.ndarray, np.ndarray, ScoreContext], np.ndarray]


@dataclass(frozen=True)
class Metric:
    """One metric.

    name: column name in per_image.parquet and summary.csv (``"psnr"``). title: display name
    (``"PSNR"``). direction: ``"higher"`` or ``"lower"`` is better. decimals: printed decimals in
    tables. convention: how it is computed, as meta.json states it. default: scored when a
    protocol names no metrics. fn: batch scorer (:data:`BatchScorer`), None for a metric computed
    over a whole set. kind: the protocol kind that produces it (``"inpainting"``, ``"sir-miou"``).
    cap: per-image values are clipped to at most this before any summary (None: no cap).
    unit: unit of a value, for axis labels ("" for none).
    """

    name: str
    direction: str
    decimals: int
    convention: str
    default: bool
    fn: Optional[BatchScorer]
    title: str = ""
    kind: str = "inpainting"
    cap: Optional[float] = None
    unit: str = ""

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS:
            raise ValueError(f"metric {self.name}: direction {self.direction!r} is not one of {DIRECTIONS}")

    @property
    def higher_is_better(self) -> bool:
        return self.direction == "higher"

    @property
    def arrow(self) -> str:
        """``"↑"`` when higher is better, else ``"↓"``."""
        return "↑" if self.higher_is_better else "↓"

    @property
    def label(self) -> str:
        """Axis label: ``"PSNR (dB) ↑"``, ``"LPIPS ↓"``."""
        return f"{self.title}{f' ({self.unit})' if self.unit else ''} {self.arrow}"


#: What every per-image metric of a result table shares.
COMMON_CONVENTION = (
    "Per-image values on the composited output (prediction inside the hole, input elsewhere) "
    "at the evaluation size (256x256, or the dataset's size), averaged per bucket; images "
    "quantised to uint8 RGB by round(clip(x, 0, 1) * 255) with halves rounded up."
)

#: The SSIM convention text of one table, per ``ssim_convention``.
SSIM_CONVENTION_TEXT: dict[str, str] = {
    "skimage": "SSIM: scikit-image, uint8 RGB, data_range=255, channel_axis=-1, 7x7 uniform window, sample covariance.",
    "skimage-gaussian": "SSIM (scikit-image Gaussian): scikit-image, uint8 RGB, data_range=255, channel_axis=-1, "
    "11x11 Gaussian window (sigma 1.5), use_sample_covariance=False, mean over the valid region (5-pixel border "
    "cropped).",
    "lama": "SSIM (LaMa's evaluator): the formula of advimman/lama saicinpainting/evaluation/losses/ssim.py "
    "(class SSIM, one value per image as SSIMScore uses it) on uint8 RGB / 255: 11x11 Gaussian window (sigma 1.5) "
    "per channel with zero padding of 5 pixels, C1 = 0.01^2, C2 = 0.03^2, population (co)variances, the SSIM map "
    "averaged over channels and every pixel (border included); float64.",
}

#: The mIoU convention of the SIR probe (both regions).
MIOU_CONVENTION = (
    "mmsegmentation's: one set of per-class counts for the whole set (intersection I_c and union "
    "U_c = #pred_c + #label_c - I_c over every image), pixels with label 255 (ignore) and pixels "
    "outside the region left out; IoU_c = I_c / U_c; classes with U_c = 0 are NaN and skipped "
    "(nanmean); a class predicted but absent from the label counts with IoU 0. Region 'all' = every "
    "pixel, 'hole' = missing pixels only. ci95 = half width of the 2.5-97.5 percentile interval of a "
    "seeded bootstrap over images (1000 resamples); n = images."
)

#: What FID and KID share (sairbench.metrics.fid_inception, sairbench.metrics.fid).
SET_COMMON = (
    "per bucket and over all buckets, over the composited outputs vs the ground truth of the same pairs; "
    "Inception-v3 pool3 features (2048-d) of pytorch-fid's FID Inception weights "
    "(pt_inception-2015-12-05-6726825d.pth, local file only, never downloaded; its FIDInceptionA/C/E blocks), "
    "uint8 RGB / 255 resized bilinearly (align_corners=False) to 299x299 and scaled to [-1, 1]. ci95 = half "
    "width of the 2.5-97.5 percentile interval of a seeded bootstrap over pairs (200 resamples); n = pairs; "
    "NaN without the weights or with fewer than 2 pairs."
)

METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric(
        "psnr", "higher", 2,
        "PSNR in dB: skimage.metrics.peak_signal_noise_ratio on uint8 RGB, data_range=255. "
        f"Identical images give +inf per image; summaries clip PSNR to {PSNR_CAP_DB:g} dB.",
        True, lambda p, g, ctx: psnr_batch(p, g), title="PSNR", cap=PSNR_CAP_DB, unit="dB",
    ),
    Metric(
        "ssim", "higher", 3,
        "SSIM: skimage.metrics.structural_similarity on uint8 RGB, data_range=255, "
        "channel_axis=-1, default 7x7 uniform window with sample covariance (ssim_convention="
        "'skimage'); optional ssim_convention='skimage-gaussian': the same with an 11x11 Gaussian "
        "window, sigma 1.5, use_sample_covariance=False; optional ssim_convention='lama': LaMa's "
        "evaluator (saicinpainting/evaluation/losses/ssim.py: zero-padded 11x11 Gaussian window, "
        "whole map averaged). One convention per table.",
        True, lambda p, g, ctx: ssim_batch(p, g, ctx.ssim_convention), title="SSIM",
    ),
    Metric(
        "l1", "lower", 3,
        "L1: mean absolute error over the whole image (all pixels and channels), values in [0, 1].",
        True, lambda p, g, ctx: l1_batch(p, g), title="L1",
    ),
    Metric(
        "lpips", "lower", 3,
        "LPIPS: lpips package v0.1, VGG16 trunk (torchvision ImageNet weights) with the package's "
        "linear layers, inputs scaled to [-1, 1]; NaN when the VGG16 weights are not present "
        "locally (never downloaded, never replaced by another network).",
        True, lambda p, g, ctx: ctx.lpips()(p, g), title="LPIPS",
    ),
    Metric(
        "psnr_hole", "higher", 2,
        "PSNR inside the hole, in dB: MSE = sum over the hole pixels and the 3 channels of (pred - gt)^2 / "
        "(3 x hole pixels) on uint8 RGB, PSNR = 10 log10(255^2 / MSE); on the composited output this is "
        f"PSNR + 10 log10(hole ratio). +inf when the hole is answered exactly (summaries clip to {PSNR_CAP_DB:g} dB), "
        "NaN for an image without hole.",
        False, lambda p, g, ctx: psnr_hole_batch(p, g, ctx.hole()), title="PSNR (hole)", cap=PSNR_CAP_DB, unit="dB",
    ),
    Metric(
        "l1_hole", "lower", 3,
        "L1 inside the hole: mean absolute error over the hole pixels and the 3 channels, values in [0, 1] "
        "(uint8 / 255); NaN for an image without hole.",
        False, lambda p, g, ctx: l1_hole_batch(p, g, ctx.hole()), title="L1 (hole)",
    ),
    Metric("miou", "higher", 2, MIOU_CONVENTION, True, None, title="mIoU", kind="sir-miou"),
    Metric("miou_hole", "higher", 2, MIOU_CONVENTION, False, None, title="mIoU (hole)", kind="sir-miou"),
    Metric("fid", "lower", 2, "FID: ||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)) of the Gaussian fits (covariances "
           "with n - 1), tr (S1 S2)^(1/2) as the sum of singular values of Xc Yc^T / (n - 1) (equal to pytorch-fid's "
           "scipy.linalg.sqrtm value), " + SET_COMMON, False, None, title="FID"),
    Metric("kid", "lower", 4, "KID: unbiased MMD^2 with k(x, y) = (x.y / 2048 + 1)^3, the U-statistic over distinct "
           "pairs i != j (no matched output-ground-truth term), averaged over 100 subsets of min(1000, n) pairs drawn "
           "without replacement (seeded by the protocol seed), " + SET_COMMON, False, None, title="KID"),
)}

#: The built-in metrics scored per image by :func:`~sairbench.metrics.score.score_batch`, in table
#: order (:func:`image_metrics`: with the plugins' ones).
IMAGE_METRICS: tuple[str, ...] = tuple(n for n, m in METRICS.items() if m.fn is not None)
#: Columns of per-image tables that a metric cannot be called.
RESERVED_NAMES = frozenset({"image", "mask", "bucket", "ratio", "model", "metric", "mean", "ci95", "n", "all",
                            "inception_pred", "inception_gt"})
_METRIC_NAME = re.compile(r"[a-z][a-z0-9_]*")
PLUGIN_GROUP = "sairbench.metrics"


def load_metric_plugins() -> None:
    """Register the metrics of the ``sairbench.metrics`` entry points, once (``sairbench.plugins``):
    an entry point names a :class:`Metric` record or a module that calls :func:`register_metric`."""
    from sairbench.plugins import load_group

    load_group(PLUGIN_GROUP, lambda name, obj: register_metric(obj, entry=name))


def register_metric(metric: Metric, entry: str | None = None) -> Metric:
    """Add ``metric`` (a per-image :class:`Metric` with a scorer ``fn``) to :data:`METRICS`: then a
    protocol may name it in ``[metrics] names``, runs and ``sairbench eval`` score it, summaries cap
    it (``cap``), and reports show it with its title, direction and decimals. One line when it is
    not a per-image Metric, its name is not a column name (lower-case letters, digits, '_') or is
    taken. ``entry``: the entry point it came from, which must carry the metric's name."""
    if not isinstance(metric, Metric):
        raise SairbenchError(f"{metric!r} is not a sairbench.metrics.Metric record")
    if entry is not None and entry != metric.name:
        raise SairbenchError(f"entry point '{entry}' names metric '{metric.name}'; call the entry point '{metric.name}'")
    if not _METRIC_NAME.fullmatch(metric.name) or metric.name in RESERVED_NAMES:
        raise SairbenchError(f"metric name {metric.name!r}: use lower-case letters, digits and '_' (not one of "
                             f"{', '.join(sorted(RESERVED_NAMES))})")
    if METRICS.get(metric.name, metric) is not metric:
        raise SairbenchError(f"metric '{metric.name}' is registered already; give it another name")
    if not callable(metric.fn) or metric.kind != "inpainting":
        raise SairbenchError(f"metric '{metric.name}': a plugin metric is scored per image (kind 'inpainting') "
                             "and needs fn(preds, gts, context) -> float64 (N,)")
    if isinstance(metric.decimals, bool) or not isinstance(metric.decimals, int) or not 0 <= metric.decimals <= 12:
        raise SairbenchError(f"metric '{metric.name}': decimals {metric.decimals!r} is not a whole number from 0 to 12")
    METRICS[metric.name] = metric
    return metric


def image_metrics() -> tuple[str, ...]:
    """Every metric scored per image, built-in then plugins', in table order."""
    load_metric_plugins()
    return tuple(n for n, m in METRICS.items() if m.fn is not None)


class MetricField(Mapping):
    """A live read-only view ``{metric name: one attribute of its record}`` over :data:`METRICS`
    (the plugins' metrics loaded on first use): e.g. ``MetricField("higher_is_better")``."""

    def __init__(self, attribute: str):
        self.attribute = attribute

    def __getitem__(self, name: str):
        if name not in METRICS:
            load_metric_plugins()
        return getattr(METRICS[name], self.attribute)

    def __iter__(self) -> Iterator[str]:
        load_metric_plugins()
        return iter(list(METRICS))

    def __len__(self) -> int:
        load_metric_plugins()
        return len(METRICS)


#: True where higher is better, for every metric (plugins' included).
HIGHER_IS_BETTER: Mapping[str, bool] = MetricField("higher_is_better")
#: meta.json's conventions of an inpainting table scored with the default metrics: the shared text,
#: then one per metric (:func:`conventions_dict` for other metrics).
CONVENTIONS: dict[str, str] = {"common": COMMON_CONVENTION,
                               **{n: m.convention for n, m in METRICS.items() if m.default and m.fn is not None}}


def default_metrics(kind: str = "inpainting") -> list[str]:
    """The metrics a protocol of ``kind`` scores when it names none (``["psnr", "ssim", "l1", "lpips"]``)."""
    load_metric_plugins()
    return [n for n, m in METRICS.items() if m.default and m.kind == kind]


def get_metric(name: str) -> Metric:
    """The record of metric ``name``; SairbenchError naming the known ones when there is none."""
    if name not in METRICS:
        load_metric_plugins()
    if name not in METRICS:
        raise SairbenchError(f"unknown metric {name!r}; known: {', '.join(METRICS)}.")
    return METRICS[name]


def check_metric_names(names, kind: str = "inpainting", where: str = "") -> list[str]:
    """``names`` as a list when every one is a metric a protocol of ``kind`` produces; else a
    SairbenchError (prefixed with ``where``) naming the unknown ones and the allowed names."""
    names = list(names)
    load_metric_plugins()
    allowed = [n for n, m in METRICS.items() if m.kind == kind]
    unknown = [n for n in names if n not in allowed]
    if unknown:
        raise SairbenchError(f"{where}unknown metric(s) {', '.join(map(repr, unknown))} for a protocol of kind {kind}; "
                             f"known: {', '.join(allowed)}.")
    return names


def conventions_dict(ssim_convention: str = "skimage", metrics=None) -> dict[str, str]:
    """The conventions of one result table, for ``meta.json``: ``CONVENTIONS`` (the default
    metrics') plus those of the other ``metrics`` scored, the SSIM entry narrowed to
    ``ssim_convention`` and an ``ssim_convention`` key added."""
    _check_ssim_convention(ssim_convention)
    out = dict(CONVENTIONS)
    for name in metrics or ():
        if name not in out:
            out[name] = get_metric(name).convention
    out["ssim"] = SSIM_CONVENTION_TEXT[ssim_convention]
    out["ssim_convention"] = ssim_convention
    return out


def summary_values(metric: str, values) -> np.ndarray:
    """Per-image values made ready for a summary: float64 (N,), clipped to the metric's ``cap``
    (PSNR to ``PSNR_CAP_DB``), NaN kept."""
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    if metric not in METRICS:
        load_metric_plugins()
    record = METRICS.get(metric)
    if record is not None and record.cap is not None:
        arr = np.where(np.isnan(arr), np.nan, np.minimum(arr, record.cap))
    return arr
