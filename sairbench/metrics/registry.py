"""Every metric sairbench reports, one :class:`Metric` record each, in the registry :data:`METRICS`.

A record holds all that the rest of the package reads about a metric: its column name in per-image
files and summaries, its display title, its direction (higher or lower is better), the decimals a
table prints, the convention text written into meta.json, whether a protocol scores it when it
names no metrics, the protocol kind that produces it, the cap its per-image values get before a
summary, and ``fn``, its batch scorer. Scoring (:func:`~sairbench.metrics.score.score_batch`), the
report (best-value direction, decimals, titles), the terminal summary table, meta.json's
conventions and the protocol check of metric names all look metrics up here.

The mIoU metrics of the SIR probe (``miou``, ``miou_hole``) are computed over a whole set of
images by :mod:`sairbench.probe`, not per image: their ``fn`` is None.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from sairbench.errors import SairbenchError
from sairbench.metrics.conventions import PSNR_CAP_DB, _check_ssim_convention
from sairbench.metrics.pixel import l1_batch, psnr_batch, ssim_batch

#: Directions a metric may have.
DIRECTIONS = ("higher", "lower")


@dataclass(frozen=True)
class ScoreContext:
    """What a batch scorer may need besides the images: the SSIM convention, and the LPIPS scorer
    (``lpips_scorer``, else the process-wide one of ``device``, made on first use)."""

    ssim_convention: str = "skimage"
    lpips_scorer: object = None
    device: str = "cpu"

    def lpips(self):
        """The LPIPS scorer to use: ``lpips_scorer`` or ``default_lpips_scorer(device)``."""
        if self.lpips_scorer is not None:
            return self.lpips_scorer
        from sairbench.metrics.lpips_scorer import default_lpips_scorer

        return default_lpips_scorer(self.device)


#: A batch scorer: ``fn(preds, gts, context)`` -> float64 (N,), preds and gts uint8 (N, H, W, 3).
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
    Metric("miou", "higher", 2, MIOU_CONVENTION, True, None, title="mIoU", kind="sir-miou"),
    Metric("miou_hole", "higher", 2, MIOU_CONVENTION, False, None, title="mIoU (hole)", kind="sir-miou"),
)}

#: Metrics scored per image by :func:`~sairbench.metrics.score.score_batch`, in table order.
IMAGE_METRICS: tuple[str, ...] = tuple(n for n, m in METRICS.items() if m.fn is not None)
#: True where higher is better, for every metric.
HIGHER_IS_BETTER: dict[str, bool] = {n: m.higher_is_better for n, m in METRICS.items()}
#: meta.json's conventions of an inpainting table: the shared text, then one per per-image metric.
CONVENTIONS: dict[str, str] = {"common": COMMON_CONVENTION, **{n: METRICS[n].convention for n in IMAGE_METRICS}}


def default_metrics(kind: str = "inpainting") -> list[str]:
    """The metrics a protocol of ``kind`` scores when it names none (``["psnr", "ssim", "l1", "lpips"]``)."""
    return [n for n, m in METRICS.items() if m.default and m.kind == kind]


def get_metric(name: str) -> Metric:
    """The record of metric ``name``; SairbenchError naming the known ones when there is none."""
    if name not in METRICS:
        raise SairbenchError(f"unknown metric {name!r}; known: {', '.join(METRICS)}.")
    return METRICS[name]


def check_metric_names(names, kind: str = "inpainting", where: str = "") -> list[str]:
    """``names`` as a list when every one is a metric a protocol of ``kind`` produces; else a
    SairbenchError (prefixed with ``where``) naming the unknown ones and the allowed names."""
    names = list(names)
    allowed = [n for n, m in METRICS.items() if m.kind == kind]
    unknown = [n for n in names if n not in allowed]
    if unknown:
        raise SairbenchError(f"{where}unknown metric(s) {', '.join(map(repr, unknown))} for a protocol of kind {kind}; "
                             f"known: {', '.join(allowed)}.")
    return names


def conventions_dict(ssim_convention: str = "skimage") -> dict[str, str]:
    """The conventions of one result table, for ``meta.json``: ``CONVENTIONS`` with the SSIM entry
    narrowed to ``ssim_convention`` and an ``ssim_convention`` key added."""
    _check_ssim_convention(ssim_convention)
    out = dict(CONVENTIONS)
    out["ssim"] = SSIM_CONVENTION_TEXT[ssim_convention]
    out["ssim_convention"] = ssim_convention
    return out


def summary_values(metric: str, values) -> np.ndarray:
    """Per-image values made ready for a summary: float64 (N,), clipped to the metric's ``cap``
    (PSNR to ``PSNR_CAP_DB``), NaN kept."""
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    record = METRICS.get(metric)
    if record is not None and record.cap is not None:
        arr = np.where(np.isnan(arr), np.nan, np.minimum(arr, record.cap))
    return arr
