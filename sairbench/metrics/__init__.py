"""Per-image image-quality metrics: PSNR, SSIM, L1 and LPIPS, under one stated convention.

Every metric (these four, and the SIR probe's mIoU) is one :class:`Metric` record in the registry
:data:`METRICS` (:mod:`sairbench.metrics.registry`): direction, decimals, convention text, whether
it is scored by default, and its batch scorer.

The default convention (see ``CONVENTIONS``) scores as the SAIR release's ``test.py``
(tsingqguo/sair) does: scikit-image PSNR (summaries cap it at 100 dB, as ``min(100, psnr)`` there)
and SSIM (default window, ``data_range=255``) on uint8 RGB, LPIPS VGG on [-1, 1], per image, then
averaged. Two differences: images are quantised by rounding (``test.py`` truncates with
``astype(np.uint8)``), and L1 is taken on the quantised images (``test.py``: on the clamped float
images). Metrics are computed per image on the *composited* output (prediction inside the hole,
input elsewhere) at the evaluation size (256x256 for the paper's datasets, the dataset size
otherwise), then averaged.

* PSNR and SSIM: scikit-image on uint8 RGB (H, W, 3), ``data_range=255``, ``channel_axis=-1``;
  SSIM with the default 7x7 uniform window (``ssim_convention="skimage"``) or, as options,
  scikit-image's 11x11 Gaussian window with sigma 1.5 on the valid region
  (``"skimage-gaussian"``), or LaMa's evaluator formula (``"lama"``: advimman/lama
  ``saicinpainting/evaluation/losses/ssim.py``, the same Gaussian window with zero padding and
  the whole map averaged). A table never mixes conventions.
* L1: mean absolute error over the whole image (all pixels, all channels) with values in [0, 1].
* ``psnr_hole``, ``l1_hole`` (scored only when a protocol names them): PSNR and L1 over the hole's
  pixels alone (every channel), from the hole masks the evaluator hands every scorer; on the
  composited output ``psnr_hole = psnr + 10 log10(hole ratio)`` (:func:`psnr_hole_from_psnr`).
* LPIPS: the ``lpips`` package, VGG trunk with its v0.1 linear layers, inputs scaled to [-1, 1].
  The VGG16 trunk needs torchvision's ImageNet weights, which are *never* downloaded here; without
  them LPIPS is NaN (with one clear warning), never a stand-in value.

All images given to the metric functions are uint8 arrays (H, W, 3); use :func:`to_uint8` to turn
model outputs (float in [0, 1]) into that form. :func:`psnr`, :func:`ssim` and :func:`l1` score one
image with scikit-image / numpy and are the reference definitions; :func:`score_batch` scores a
batch (N, H, W, 3) with :func:`psnr_batch`, :func:`ssim_batch` and :func:`l1_batch`, which compute
the same values over the whole batch (PSNR and L1 exactly, SSIM to ~1e-15).
"""

from sairbench.metrics.conventions import PSNR_CAP_DB, SSIM_CONVENTIONS, as_batches, to_uint8
from sairbench.metrics.lpips_scorer import LPIPSScorer, default_lpips_scorer
from sairbench.metrics.pixel import (l1, l1_batch, l1_hole_batch, psnr, psnr_batch, psnr_hole_batch, psnr_hole_from_psnr,
                                     ssim, ssim_batch)
from sairbench.metrics.registry import (
    CONVENTIONS,
    HIGHER_IS_BETTER,
    IMAGE_METRICS,
    METRICS,
    Metric,
    MetricField,
    ScoreContext,
    check_metric_names,
    conventions_dict,
    default_metrics,
    get_metric,
    image_metrics,
    load_metric_plugins,
    register_metric,
    summary_values,
)
from sairbench.metrics.score import score_batch
from sairbench.metrics.vgg16_weights import VGG16_ENV, VGG16_FILENAME, find_vgg16_weights

__all__ = [
    "CONVENTIONS",
    "HIGHER_IS_BETTER",
    "IMAGE_METRICS",
    "METRICS",
    "Metric",
    "MetricField",
    "PSNR_CAP_DB",
    "SSIM_CONVENTIONS",
    "VGG16_ENV",
    "VGG16_FILENAME",
    "LPIPSScorer",
    "ScoreContext",
    "as_batches",
    "check_metric_names",
    "conventions_dict",
    "default_lpips_scorer",
    "default_metrics",
    "find_vgg16_weights",
    "l1",
    "l1_batch",
    "l1_hole_batch",
    "image_metrics",
    "load_metric_plugins",
    "get_metric",
    "psnr",
    "psnr_batch",
    "psnr_hole_batch",
    "psnr_hole_from_psnr",
    "register_metric",
    "score_batch",
    "ssim",
    "ssim_batch",
    "summary_values",
    "to_uint8",
]
