"""The report document: result folders (and published tables) -> ``report.tex``, ``report.md`` and,
on request, a self-contained ``report.html``.

:func:`build_report` makes the :class:`Report` (format-free): one :class:`Section` per group of runs
with equal settings (:func:`~sairbench.report.settings.group_runs`: a table never mixes runs of
different protocol, run kind, dataset, size, limit, masks, seed or metric conventions; titled in
words by :func:`~sairbench.report.settings.group_title`), each with its main table (each model's
rows from the newest run that has it, older runs named as superseded in its notes,
:mod:`~sairbench.report.latest`, unless ``all_runs``; captioned with what its run kind
measures, ``sairbench.protocol.KINDS``, when that is not inpainting) and paired-test tables (for
the metrics with finite per-image values: none for the SIR mIoU probe, whose mIoU is one number
per set); published tables that belong to no section get one of their own. :func:`write_documents` renders it; :func:`write_report` does both.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from sairbench.errors import SairbenchError
from sairbench.io import atomic_write_text
from sairbench.metrics import METRICS
from sairbench.protocol import KINDS, load_ref
from sairbench.report.latest import superseded_lines
from sairbench.report.load import load_published, load_results, published_for
from sairbench.report.naming import (
    METRIC_NAMES,
    PAPER_TABLE,
    PUBLISHED_SOURCE,
    bucket_sort_key,
    canonical_bucket,
    latex_escape,
    md_escape,
)
from sairbench.report.paired import default_pairs, paired_model, paired_table
from sairbench.report.render import LatexRenderer, MarkdownRenderer
from sairbench.report.settings import RunGroup, group_footnote, group_runs, group_title
from sairbench.report.table import Note, Table, results_table

_LATEX_PREAMBLE = r"""\documentclass[10pt]{article}
\usepackage[margin=1.5cm]{geometry}
\usepackage{booktabs}
\usepackage{graphicx}
\usepackage{float}
\begin{document}
"""


@dataclass
class Section:
    """One part of the report: ``table`` (the main :class:`Table`), ``paired`` (paired-test tables,
    one per metric), ``group`` (its runs; None for a published table of its own) and ``per_image``
    (the group's per-image rows, image x mask x model; empty without runs)."""

    title: str
    label: str
    table: Table
    paired: list[Table] = field(default_factory=list)
    group: RunGroup | None = None
    per_image: pd.DataFrame = field(default_factory=pd.DataFrame)


@dataclass
class Report:
    """A whole report: ``sections`` in order; ``skipped`` names incomplete runs left out (every
    output says so)."""

    sections: list[Section]
    skipped: list[str] = field(default_factory=list)


def _ordered_metrics(metrics: Iterable[str]) -> list[str]:
    """Distinct ``metrics``: the known ones in the order of METRICS, then the others as given."""
    metrics = list(dict.fromkeys(metrics))
    return [m for m in METRICS if m in metrics] + [m for m in metrics if m not in METRICS]


def _section_buckets(summary: pd.DataFrame, wanted: Sequence[str] | None, title: str) -> list[str]:
    """The buckets of a section's ``summary`` in order, restricted to ``wanted`` (any spelling)
    when given; SairbenchError when none of ``wanted`` is there."""
    buckets = sorted(pd.unique(summary["bucket"]), key=bucket_sort_key)
    if not wanted:
        return buckets
    want = [canonical_bucket(b) for b in wanted]
    chosen = sorted([b for b in buckets if canonical_bucket(b) in want], key=bucket_sort_key)
    if not chosen:
        raise SairbenchError(f"none of the buckets {list(wanted)} is in the results of {title}; "
                             f"buckets there: {', '.join(buckets)}.")
    return chosen


def _paired_tables(per_image: pd.DataFrame, metrics: list[str], title: str, label: str, pairs, n_boot: int,
                   seed: int) -> list[Table]:
    """One paired-test table per metric with any finite per-image value, for ``pairs`` or
    :func:`~sairbench.report.paired.default_pairs`."""
    tables = []
    for metric in metrics:
        if metric not in per_image.columns or not np.isfinite(pd.to_numeric(per_image[metric], errors="coerce")).any():
            continue
        metric_pairs = pairs if pairs is not None else default_pairs(per_image, metric)
        if not metric_pairs:
            continue
        df = paired_table(per_image, metric, metric_pairs, n_boot=n_boot, seed=seed)
        if len(df):
            caption = f"Paired differences in {METRIC_NAMES.get(metric, metric)}: {title}."
            tables.append(paired_model(df, caption, f"{label}-paired-{metric}"))
    return tables


def build_report(
    result_dirs,
    include_published: list[str] | None = None,
    *,
    pairs: Sequence[tuple[str, str]] | None = None,
    show_ci: bool = False,
    published_folder: str | Path | None = None,
    buckets: Sequence[str] | None = None,
    n_boot: int = 2000,
    seed: int = 0,
    skipped: Sequence[str] = (),
    all_runs: bool = False,
) -> Report:
    """The :class:`Report` of result folders and published tables (arguments as :func:`write_report`)."""
    if isinstance(result_dirs, (str, Path)):
        result_dirs = [result_dirs]
    result_dirs = list(result_dirs or [])
    include_published = list(include_published or [])
    if not result_dirs and not include_published:
        raise SairbenchError("nothing to report: give result folders (written by `sairbench run`) or published tables.")
    loaded = load_results(result_dirs, latest=not all_runs) if result_dirs else (pd.DataFrame(), pd.DataFrame(), [])
    summary, per_image, metas = loaded
    published = {name: load_published(name, published_folder or "results/published") for name in include_published}
    used_published: set[str] = set()
    sections = []
    groups = group_runs(metas)
    for gi, group in enumerate(groups, start=1):
        gsum = summary[summary["run"].isin(group.runs)]
        gper = per_image[per_image["run"].isin(group.runs)] if len(per_image) else per_image
        title = group_title(group, gsum, gper)
        section_buckets = _section_buckets(gsum, buckets, title)
        metrics = _ordered_metrics(gsum["metric"])
        eligible = published_for(published, group.protocol, group.dataset, section_buckets, metrics, group.kind)
        used_published.update(eligible)
        pub = pd.concat([published[name] for name in eligible], ignore_index=True) if eligible else None
        label = f"tab:{group.protocol}-{group.dataset}" + (f"-{gi}" if group.differs else "")
        what = f" ({KINDS[group.kind].description})" if group.kind != "inpainting" and group.kind in KINDS else ""
        table = results_table(gsum, section_buckets, metrics, f"sairbench: {title}{what}. Best value per column in bold.",
                              label, pub, group_footnote(group, gsum), show_ci=show_ci, dataset=group.dataset)
        superseded = tuple(Note("superseded", line) for line in superseded_lines(group.metas))
        table = replace(table, notes=table.notes + superseded)
        paired = _paired_tables(gper, metrics, title, label, pairs, n_boot, seed) if len(gper) else []
        if len(gper) and group.kind in KINDS and KINDS[group.kind].report:  # the kind's own tables (headroom)
            paired += load_ref(KINDS[group.kind].report)(gper, title, label)
        sections.append(Section(title, label, table, paired, group, gper))

    for name, pdf in published.items():
        if name in used_published:
            continue
        table_name = PAPER_TABLE.get(str(pdf["table"].iloc[0]), name) if len(pdf) else name
        ds = str(pdf["dataset"].iloc[0]) if len(pdf) else ""
        caption = f"Published reference: {table_name} of {PUBLISHED_SOURCE} ({ds}). Best published value in bold."
        table = results_table(None, sorted(pd.unique(pdf["bucket"]), key=bucket_sort_key),
                              _ordered_metrics(pdf["metric"]), caption, f"tab:published-{name}", pdf)
        sections.append(Section(f"Published: {name}", f"tab:published-{name}", table))
    return Report(sections, list(skipped))


def _skipped_line(report: Report) -> str:
    """``"Skipped incomplete runs (no summary.csv or meta.json): a, b."`` or ``""``."""
    return f"Skipped incomplete runs (no summary.csv or meta.json): {', '.join(report.skipped)}." if report.skipped else ""


def render_tex(report: Report) -> str:
    """The whole report as a LaTeX document (booktabs tables, float ``H``)."""
    latex = LatexRenderer("H")
    tex = [_LATEX_PREAMBLE, "\\section*{sairbench report}\n"]
    if report.skipped:
        tex.append(latex_escape(_skipped_line(report)) + "\n")
    for i, section in enumerate(report.sections):
        tex += [f"\\subsection*{{{latex_escape(section.title)}}}\n", latex.render(section.table)]
        tex += [latex.render(t) for t in section.paired]
        nxt = report.sections[i + 1] if i + 1 < len(report.sections) else None
        tex.append("\\clearpage\n" if section.group is not None and nxt is not None and nxt.group is not None else "")
    tex.append("\\end{document}\n")
    return "\n".join(tex)


def render_md(report: Report) -> str:
    """The whole report as GitHub Markdown."""
    markdown = MarkdownRenderer()
    md = ["# sairbench report", ""]
    if report.skipped:
        md += [md_escape(_skipped_line(report)), ""]
    for section in report.sections:
        md += [f"## {md_escape(section.title)}", "", markdown.render(section.table)]
        md += [markdown.render(t) for t in section.paired]
    return "\n".join(md)


def write_documents(report: Report, out_dir, html: bool = False) -> list[Path]:
    """Write ``report`` as ``out_dir/report.tex``, ``report.md`` and (``html``) ``report.html``
    (self-contained: :func:`~sairbench.report.html.render_html`), each atomically; returns the paths."""
    texts = {"report.tex": render_tex(report), "report.md": render_md(report)}
    if html:
        from sairbench.report.html import render_html

        texts["report.html"] = render_html(report)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise SairbenchError(f"--out {out}: is a file, not a folder; pass a folder for report.tex, report.md (and .html).")
    out.mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        atomic_write_text(out / name, text)
    return [out / name for name in texts]


def write_report(
    result_dirs,
    out_dir,
    include_published: list[str] | None = None,
    *,
    html: bool = False,
    **options: Any,
) -> list[Path]:
    """Render result folders (and published tables) into ``out_dir/report.tex`` and ``report.md``
    (and ``report.html`` with ``html``). ``options`` are those of :func:`build_report`: ``pairs``,
    ``show_ci``, ``published_folder``, ``buckets``, ``n_boot``, ``seed``, ``skipped``, ``all_runs``.

    One section per group of runs with equal settings (protocol, dataset with its size and limit,
    masks, seed, metric conventions: :mod:`~sairbench.report.settings`; titled in words,
    :func:`~sairbench.report.settings.group_title`, groups sharing a protocol and dataset also by
    what differs, e.g. "· limit 3"; each footnote states its own settings): the main table (each
    model's rows from the newest run of the group that has it, the older runs named as superseded
    under the table, :mod:`~sairbench.report.latest`; every run's rows with ``all_runs``, a model
    of several runs then named ``"model [run]"``; models best first, best per column bold;
    ``buckets`` restricts the column groups, default every bucket in the results) and, when
    per-image results exist, one
    paired-test table per metric (``pairs``, or every pair for up to four models and otherwise
    each model against the best one). Published tables in ``include_published`` (CSV stems of
    ``results/published``) become dagger rows of the sections they belong to (see
    :data:`~sairbench.report.load.PROTOCOL_TABLES`; they must share a bucket and a metric; a table
    of the section's own dataset is preferred over others); the rest get a section of their own.
    ``skipped`` names incomplete runs left out, said at the top of every output. Nothing is
    written when anything fails.

    Returns:
        [report.tex, report.md] paths, then report.html with ``html``.
    """
    report = build_report(result_dirs, include_published, **options)
    return write_documents(report, out_dir, html)
