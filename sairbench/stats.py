"""Summary statistics for per-image metric values: confidence intervals and paired tests."""

from __future__ import annotations

import math
import warnings

import numpy as np


def mean_ci95(values) -> tuple[float, float]:
    """Mean and half width of the two-sided 95% Student-t confidence interval of the mean.

    Args:
        values: array-like (N,) of floats; NaN entries are ignored.

    Returns:
        (mean, half_width). With no values both are NaN; with one value the half width is NaN;
        with zero spread it is 0. Infinite values give an infinite mean and a NaN half width
        (clip PSNR first, see :func:`sairbench.metrics.summary_values`).
    """
    from scipy import stats

    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    arr = arr[~np.isnan(arr)]
    n = arr.size
    if n == 0:
        return float("nan"), float("nan")
    mean = float(np.mean(arr))
    if n == 1 or not np.all(np.isfinite(arr)):
        return mean, float("nan")
    sd = float(np.std(arr, ddof=1))
    half = float(stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n))
    return mean, half


def _bootstrap_means(diff: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = diff.size
    means = np.empty(n_boot, dtype=np.float64)
    chunk = max(1, min(n_boot, 4_000_000 // max(n, 1)))  # bound memory at ~32 MB of indices
    for start in range(0, n_boot, chunk):
        stop = min(n_boot, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = diff[idx].mean(axis=1)
    return means


def paired_test(a, b, n_boot: int = 2000, seed: int = 0) -> dict:
    """Paired comparison of per-image values ``a`` and ``b`` (same images and masks, same order).

    Args:
        a, b: array-like (N,) of floats. Pairs where either value is NaN or infinite are dropped.
        n_boot: bootstrap resamples for the confidence interval.
        seed: seed of the bootstrap (same seed, same interval).

    Returns:
        dict with ``mean_diff`` (mean of a - b), ``ci_low`` / ``ci_high`` (2.5 and 97.5
        percentiles of the bootstrap distribution of the mean difference), ``p_wilcoxon``
        (two-sided Wilcoxon signed-rank p-value; 1.0 when every difference is 0, NaN with no
        pairs) and ``n`` (pairs used).
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1)
    b = np.asarray(b, dtype=np.float64).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"paired_test needs two arrays of one length; got {a.size} and {b.size}")
    keep = np.isfinite(a) & np.isfinite(b)
    diff = a[keep] - b[keep]
    n = int(diff.size)
    nan = float("nan")
    if n == 0:
        return {"mean_diff": nan, "ci_low": nan, "ci_high": nan, "p_wilcoxon": nan, "n": 0}
    mean_diff = float(np.mean(diff))
    if n == 1:
        ci_low = ci_high = nan
    else:
        means = _bootstrap_means(diff, int(n_boot), seed)
        ci_low, ci_high = (float(v) for v in np.percentile(means, [2.5, 97.5]))
    if not np.any(diff != 0):
        p = 1.0
    else:
        from scipy import stats

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # small-sample / ties notices
            try:
                p = float(stats.wilcoxon(diff, zero_method="wilcox", alternative="two-sided").pvalue)
            except ValueError:
                p = nan
    return {"mean_diff": mean_diff, "ci_low": ci_low, "ci_high": ci_high, "p_wilcoxon": p, "n": n}
