"""The table model: what a table says, in no output format.

A :class:`Table` is column groups (one per bucket, one column per metric in each), rows (a model,
or a pair of models for paired differences) whose cells are numbers with their best-per-column
mark already decided, and footnotes as :class:`Note` data. The renderers in
:mod:`sairbench.report.render` turn it into LaTeX or Markdown; :func:`results_table` builds the
main table (models x buckets x metrics) from summaries and published tables.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence, Union

import numpy as np
import pandas as pd

from sairbench.errors import SairbenchError
from sairbench.report.load import SUMMARY_COLUMNS
from sairbench.report.naming import DIRECTION, PAPER_TABLE, PUBLISHED_SOURCE, canonical_bucket, loose_name, rounded


@dataclass(frozen=True)
class Value:
    """A mean in a results table: ``metric`` sets its decimals; ``ci`` is the half width of its
    95 % interval to print next to it (NaN: none shown); ``best`` marks the best value of its column."""

    mean: float
    ci: float
    metric: str
    best: bool = False


@dataclass(frozen=True)
class Difference:
    """A paired difference a - b in ``metric``: its mean, bootstrap 95 % interval, Wilcoxon
    p-value, and ``significant`` (p below alpha and the interval excludes 0)."""

    mean_diff: float
    ci_low: float
    ci_high: float
    p: float
    metric: str
    significant: bool = False


#: A cell: a value, a paired difference, or None for no result.
Cell = Union[Value, Difference, None]


@dataclass(frozen=True)
class ColumnGroup:
    """Columns under one bucket title: one per metric, in order."""

    bucket: str
    metrics: tuple[str, ...]


@dataclass(frozen=True)
class Row:
    """One table row: ``names`` is one model, or (model_a, model_b) for the difference a - b;
    ``cells`` line up with :meth:`Table.columns`; ``published`` marks a reference row taken from a
    paper (dagger, set apart, never counted for the best unless asked)."""

    names: tuple[str, ...]
    cells: tuple[Cell, ...]
    published: bool = False


@dataclass(frozen=True)
class Note:
    """A footnote as data. ``kind``: ``"published"`` (``text`` on the published rows, marked with a
    dagger), ``"text"`` (plain ``text``), ``"ci"`` (the standard sentence on the intervals shown) or
    ``"paired"`` (the standard sentence on the paired tests of ``metric``)."""

    kind: str
    text: str = ""
    metric: str = ""


@dataclass(frozen=True)
class Table:
    """A whole table: ``kind`` is ``"results"`` (rows are models, cells :class:`Value`) or
    ``"paired"`` (rows are pairs, cells :class:`Difference`); ``caption`` is plain text, ``label``
    a cross-reference name ("" for none)."""

    kind: str
    caption: str
    label: str
    groups: tuple[ColumnGroup, ...]
    rows: tuple[Row, ...]
    notes: tuple[Note, ...] = ()

    def columns(self) -> list[tuple[str, str]]:
        """Every column as (bucket, metric), group by group: the order of each row's cells."""
        return [(g.bucket, m) for g in self.groups for m in g.metrics]


# --------------------------------------------------------------------------------------------
# the main table: models x buckets x metrics
# --------------------------------------------------------------------------------------------


def _check_inputs(summary_df, buckets, metrics) -> None:
    """SairbenchError unless there is a bucket, a metric, and a summary with the needed columns."""
    if not buckets:
        raise SairbenchError("a table needs at least one bucket.")
    if not metrics:
        raise SairbenchError("a table needs at least one metric.")
    if summary_df is not None and len(summary_df):
        missing = [c for c in ("model", "bucket", "metric", "mean") if c not in summary_df.columns]
        if missing:
            raise SairbenchError(f"summary table lacks columns {missing}; expected {list(SUMMARY_COLUMNS)}.")


def _model_rows(df: pd.DataFrame | None, published: bool, buckets: list[str], metrics: list[str]) -> list[tuple]:
    """Rows of one frame (a summary, or published tables) as ``(label, published, {(bucket, metric):
    (mean, ci95)}, score)``; published rows of several paper tables get the table's name in their
    label. ``score`` ranks the row (:func:`_rank`): its mean of ``metrics[0]`` in the ``"all"``
    bucket (shown or not), else the mean over the shown buckets of that metric, else NaN."""
    if df is None or not len(df):
        return []
    want = [canonical_bucket(b) for b in buckets]
    df = df.assign(_b=[canonical_bucket(b) for b in df["bucket"]])
    val_col = "mean" if "mean" in df.columns else "value"
    tables = list(pd.unique(df["table"])) if published and "table" in df.columns else [None]
    keys = (
        [(t, m) for t in tables for m in pd.unique(df.loc[df["table"] == t, "model"])]
        if tables != [None] else [(None, m) for m in pd.unique(df["model"])]
    )
    rows = []
    for table, model in keys:
        sub = df[df["model"] == model] if table is None else df[(df["model"] == model) & (df["table"] == table)]
        label = str(model)
        if len(tables) > 1:
            label += f" ({PAPER_TABLE.get(str(table), str(table))})"
        cells = {}
        for b, orig in zip(want, buckets):
            for m in metrics:
                hit = sub[(sub["_b"] == b) & (sub["metric"] == m)]
                if len(hit):
                    ci = float(hit["ci95"].iloc[0]) if "ci95" in hit.columns and pd.notna(hit["ci95"].iloc[0]) else float("nan")
                    cells[(orig, m)] = (float(hit[val_col].iloc[0]), ci)
        overall = pd.to_numeric(sub.loc[(sub["_b"] == "all") & (sub["metric"] == metrics[0]), val_col], errors="coerce")
        shown = [v for (_, m), (v, _) in cells.items() if m == metrics[0] and np.isfinite(v)]
        if len(overall) and np.isfinite(overall.iloc[0]):
            score = float(overall.iloc[0])
        else:
            score = float(np.mean(shown)) if shown else float("nan")
        rows.append((label, published, cells, score))
    return rows


def _rank(rows: list[tuple], metric: str) -> list[tuple]:
    """``rows`` of :func:`_model_rows` in table order: run rows before published ones, each best
    first by their score in ``metric`` (higher first unless lower is better), rows without a
    score last, ties in their original order."""
    hib = DIRECTION.get(metric, True)

    def key(item):
        i, (_, pub, _, score) = item
        finite = bool(np.isfinite(score))
        return (pub, not finite, (-score if hib else score) if finite else 0.0, i)

    return [row for _, row in sorted(enumerate(rows), key=key)]


def _best_values(rows: list[tuple], buckets: list[str], metrics: list[str], bold_published: bool) -> dict:
    """``{(bucket, metric): best value at printed precision, or None}`` over the rows that count:
    run rows, plus published rows when ``bold_published`` or when there are no run rows."""
    any_run = any(not pub for _, pub, *_ in rows)
    best = {}
    for b in buckets:
        for m in metrics:
            hib = DIRECTION.get(m)
            if hib is None:
                best[(b, m)] = None
                continue
            vals = [
                rounded(cells[(b, m)][0], m)
                for _, pub, cells, *_ in rows
                if (b, m) in cells and (not pub or bold_published or not any_run)
                and not math.isnan(cells[(b, m)][0])
            ]
            best[(b, m)] = (max(vals) if hib else min(vals)) if vals else None
    return best


def published_note(published_df: pd.DataFrame | None, dataset: str | None, any_run: bool = True) -> str:
    """Plain-text note on published rows: which paper tables, a warning when none is on ``dataset``,
    and (``any_run``) that they are not counted for the best; ``""`` without published rows."""
    if published_df is None or not len(published_df):
        return ""
    parts = []
    for (table, ds), _ in published_df.groupby(["table", "dataset"], sort=False):
        parts.append(f"{PAPER_TABLE.get(str(table), str(table))}, {ds}")
    text = f"As published in {PUBLISHED_SOURCE} ({'; '.join(parts)}); not recomputed here"
    datasets = {loose_name(d) for d in published_df["dataset"]}
    if dataset and loose_name(dataset) not in datasets:
        text += f", on a different dataset than this table's ({dataset}): for reference only, not comparable"
    return text + ("; excluded from the bold best values." if any_run else ".")


def results_table(
    summary_df: pd.DataFrame | None,
    buckets: Sequence[str],
    metrics: Sequence[str],
    caption: str,
    label: str,
    published_df: pd.DataFrame | None = None,
    footnote: str = "",
    *,
    show_ci: bool = False,
    bold_published: bool = False,
    dataset: str | None = None,
    sort: bool = True,
) -> Table:
    """The main table: rows are the models of ``summary_df`` (then published rows), column groups
    are ``buckets``, one column per metric.

    The best value per column is marked: max for higher-is-better, min otherwise, compared at the
    printed precision, NaN ignored, published rows excluded unless ``bold_published`` (or unless
    there are no run rows). ``show_ci`` keeps the run rows' interval half widths and adds the
    interval note. Notes, in order: published rows (naming ``dataset``), ``footnote``, intervals.
    ``sort`` orders the rows best first by ``metrics[0]`` in the "all" bucket (:func:`_rank`; run
    rows, then published rows); without it they keep the order of the frames.
    """
    _check_inputs(summary_df, buckets, metrics)
    buckets, metrics = list(buckets), list(metrics)
    raw = _model_rows(summary_df, False, buckets, metrics) + _model_rows(published_df, True, buckets, metrics)
    if sort:
        raw = _rank(raw, metrics[0])
    best = _best_values(raw, buckets, metrics, bold_published)
    any_run = any(not pub for _, pub, *_ in raw)
    rows = []
    for model, pub, cells, _ in raw:
        may_bold = not pub or bold_published or not any_run
        out = []
        for b in buckets:
            for m in metrics:
                mean, ci = cells.get((b, m), (float("nan"), float("nan")))
                is_best = may_bold and best[(b, m)] is not None and bool(np.isfinite(mean)) and rounded(mean, m) == best[(b, m)]
                out.append(Value(mean, ci if show_ci and not pub else float("nan"), m, is_best))
        rows.append(Row((model,), tuple(out), pub))
    notes = []
    pub_note = published_note(published_df, dataset, any_run)
    if pub_note:
        notes.append(Note("published", pub_note))
    if footnote:
        notes.append(Note("text", footnote))
    if show_ci:
        notes.append(Note("ci"))
    groups = tuple(ColumnGroup(b, tuple(metrics)) for b in buckets)
    return Table("results", caption, label, groups, tuple(rows), tuple(notes))
