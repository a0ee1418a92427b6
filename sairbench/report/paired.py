"""Paired tests between models on the same images and masks, and their tables.

:func:`paired_table` runs :func:`sairbench.stats.paired_test` per bucket and pair;
:func:`paired_model` turns its result into a :class:`~sairbench.report.table.Table`, which the
renderers of :mod:`sairbench.report.render` write as LaTeX or Markdown.
"""

from __future__ import annotations

import itertools
from typing import Sequence

import numpy as np
import pandas as pd

from sairbench.errors import SairbenchError
from sairbench.metrics import summary_values
from sairbench.report.load import PER_IMAGE_KEYS
from sairbench.report.naming import DIRECTION, bucket_sort_key, canonical_bucket
from sairbench.report.render import LatexRenderer, MarkdownRenderer
from sairbench.report.table import ColumnGroup, Difference, Note, Row, Table
from sairbench.stats import paired_test

PAIRED_COLUMNS = ["metric", "bucket", "model_a", "model_b", "n", "mean_diff", "ci_low", "ci_high", "p_wilcoxon", "better"]

def paired_table(
    per_image_df: pd.DataFrame,
    metric: str,
    pairs: Sequence[tuple[str, str]] | None = None,
    *,
    n_boot: int = 2000,
    seed: int = 0,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Paired tests between models on the same images and masks, per bucket and over all.

    Args:
        per_image_df: rows ``image, mask, bucket, model, <metric>`` (one per image x mask x model).
        metric: the column to compare (PSNR is clipped as in summaries).
        pairs: (model_a, model_b) tuples; None = every pair of models, in order of appearance.
        n_boot, seed: bootstrap settings of :func:`sairbench.stats.paired_test`.
        alpha: level for the ``better`` column.

    Returns:
        DataFrame with ``metric, bucket, model_a, model_b, n, mean_diff (a - b), ci_low, ci_high,
        p_wilcoxon, better`` — ``better`` names the better model when the Wilcoxon p-value is below
        ``alpha`` and the bootstrap CI excludes 0, else is empty. Buckets in order, then "all".
    """
    if per_image_df is None or not len(per_image_df):
        return pd.DataFrame(columns=PAIRED_COLUMNS)
    if metric not in per_image_df.columns:
        raise SairbenchError(f"per-image results have no '{metric}' column; columns: {', '.join(map(str, per_image_df.columns))}.")
    missing = [c for c in PER_IMAGE_KEYS if c not in per_image_df.columns]
    if missing:
        raise SairbenchError(f"per-image results lack columns {missing}.")
    df = per_image_df[list(PER_IMAGE_KEYS) + [metric]].copy()
    df["image"] = df["image"].astype(str)
    df["mask"] = df["mask"].astype(str)
    dup = df.duplicated(["image", "mask", "model"])
    if dup.any():
        first = df[dup].iloc[0]
        raise SairbenchError(
            f"per-image results hold model '{first['model']}' twice for image {first['image']} and mask {first['mask']}; "
            "report runs of one model separately (or load them with load_results, which names them apart)."
        )
    df[metric] = summary_values(metric, df[metric].to_numpy())
    models = list(pd.unique(df["model"]))
    if pairs is None:
        pairs = list(itertools.combinations(models, 2))
    for a, b in pairs:
        for m in (a, b):
            if m not in models:
                raise SairbenchError(f"no per-image results for model '{m}'; models here: {', '.join(models)}.")
    hib = DIRECTION.get(metric)
    buckets = sorted(pd.unique(df["bucket"]), key=bucket_sort_key)
    groups = [(b, df[df["bucket"] == b]) for b in buckets if canonical_bucket(b) != "all"] + [("all", df)]
    out = []
    for bucket, sub in groups:
        wide = sub.pivot(index=["image", "mask"], columns="model", values=metric)
        for a, b in pairs:
            if a in wide.columns and b in wide.columns:
                res = paired_test(wide[a].to_numpy(), wide[b].to_numpy(), n_boot=n_boot, seed=seed)
            else:
                res = paired_test([], [], n_boot=n_boot, seed=seed)
            better = ""
            if hib is not None and significant(res["p_wilcoxon"], res["ci_low"], res["ci_high"], alpha):
                better = a if (res["mean_diff"] > 0) == hib else b
            out.append({"metric": metric, "bucket": bucket, "model_a": a, "model_b": b, **res, "better": better})
    return pd.DataFrame(out, columns=PAIRED_COLUMNS)


def significant(p: float, ci_low: float, ci_high: float, alpha: float = 0.05) -> bool:
    """A paired difference counts when its Wilcoxon p is below ``alpha`` and its interval excludes 0."""
    return bool(np.isfinite(p) and p < alpha and np.isfinite(ci_low) and (ci_low > 0 or ci_high < 0))


def default_pairs(per_image: pd.DataFrame, metric: str, max_all: int = 4) -> list[tuple[str, str]]:
    """Every pair for up to ``max_all`` models; beyond that, each model against the best one."""
    models = list(pd.unique(per_image["model"]))
    if len(models) <= max_all:
        return list(itertools.combinations(models, 2))
    means = {m: np.nanmean(summary_values(metric, per_image.loc[per_image["model"] == m, metric])) for m in models}
    finite = {m: v for m, v in means.items() if np.isfinite(v)}
    if not finite:
        return []
    hib = DIRECTION.get(metric, True)
    top = max(finite, key=finite.get) if hib else min(finite, key=finite.get)
    return [(top, m) for m in models if m != top]


def paired_model(table: pd.DataFrame, caption: str, label: str = "") -> Table:
    """A :func:`paired_table` (one metric) as a table model: rows are pairs in order of
    appearance, one column per bucket in order of appearance, cells :class:`Difference` (None
    where a pair has no row for a bucket), significant when ``better`` names a model."""
    metric = str(table["metric"].iloc[0])
    buckets = list(pd.unique(table["bucket"]))
    rows = []
    for (a, b), sub in table.groupby(["model_a", "model_b"], sort=False):
        cells = []
        for bucket in buckets:
            hit = sub[sub["bucket"] == bucket]
            if not len(hit):
                cells.append(None)
                continue
            res = hit.iloc[0].to_dict()
            cells.append(Difference(res["mean_diff"], res["ci_low"], res["ci_high"], res["p_wilcoxon"], metric,
                                    bool(res["better"])))
        rows.append(Row((a, b), tuple(cells)))
    groups = tuple(ColumnGroup(bucket, (metric,)) for bucket in buckets)
    return Table("paired", caption, label, groups, tuple(rows), (Note("paired", metric=metric),))


def render_paired_latex(table: pd.DataFrame, caption: str, label: str, placement: str = "htbp") -> str:
    """A :func:`paired_table` as a booktabs table: rows = pairs, per bucket the mean difference
    a - b with its bootstrap 95% CI and the Wilcoxon p-value; significant differences in bold.
    Returns the LaTeX, ``""`` for an empty table."""
    if not len(table):
        return ""
    return LatexRenderer(placement).render(paired_model(table, caption, label))


def render_paired_markdown(table: pd.DataFrame, caption: str) -> str:
    """A :func:`paired_table` as GitHub Markdown (cells: ``Δ [95% CI], p``; significant in bold).
    Returns the Markdown, ``""`` for an empty table."""
    if not len(table):
        return ""
    return MarkdownRenderer().render(paired_model(table, caption))
