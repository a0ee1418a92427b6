"""The report document: result folders (and published tables) -> ``report.tex`` and ``report.md``.

One section per (protocol, dataset) of the runs, each with its main table and paired-test tables;
published tables that belong to no section get one of their own.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from sairbench.errors import SairbenchError
from sairbench.io import atomic_write_text
from sairbench.metrics import METRICS, summary_values
from sairbench.report.load import load_published, load_results, meta_key, published_for
from sairbench.report.naming import (
    DIRECTION,
    METRIC_NAMES,
    PAPER_TABLE,
    PUBLISHED_SOURCE,
    bucket_label,
    bucket_sort_key,
    canonical_bucket,
    latex_escape,
    md_escape,
)
from sairbench.report.paired import paired_table, render_paired_latex, render_paired_markdown
from sairbench.report.render import render_latex, render_markdown

_LATEX_PREAMBLE = r"""\documentclass[10pt]{article}
\usepackage[margin=1.5cm]{geometry}
\usepackage{booktabs}
\usepackage{graphicx}
\usepackage{float}
\begin{document}
"""

def _ordered_metrics(metrics: Iterable[str]) -> list[str]:
    """Distinct ``metrics``: the known ones in the order of METRICS, then the others as given."""
    metrics = list(dict.fromkeys(metrics))
    return [m for m in METRICS if m in metrics] + [m for m in metrics if m not in METRICS]


def _describe(value) -> str:
    """A meta.json value as plain text: dicts as ``k: v; ...``, lists as ``a, b``."""
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_describe(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(_describe(v) for v in value)
    return str(value)


def _footnote(metas: list[dict], summary: pd.DataFrame) -> str:
    """Plain-text footnote of a section: runs, dataset, seeds, images x masks per bucket (from the
    summary's ``n``), the metric conventions and the semantic encoders."""
    parts = []
    m0 = metas[0]
    ds = _describe(m0.get("dataset", "?"))
    runs = ", ".join(m["_run"] for m in metas)
    seeds = sorted({str(m.get("seed", "?")) for m in metas})
    parts.append(f"Runs: {runs}. Dataset: {ds}. Seed: {', '.join(seeds)}.")
    if len(summary) and "n" in summary.columns:
        ns = []
        for b in sorted(pd.unique(summary["bucket"]), key=bucket_sort_key):
            n = pd.to_numeric(summary.loc[summary["bucket"] == b, "n"], errors="coerce").max()
            if np.isfinite(n):
                ns.append(f"{bucket_label(b, 'md')}: {int(n)}")
        if ns:
            parts.append("Images x masks per bucket: " + ", ".join(ns) + ".")
    conv = m0.get("conventions") or {}
    if conv:
        parts.append("Conventions: " + (" ".join(str(v) for k, v in conv.items() if k != "ssim_convention")
                                        if isinstance(conv, dict) else str(conv)))
    parts.append("Semantic encoder: " + _describe_encoders(metas) + ".")
    return " ".join(parts)


def _describe_encoders(metas: list[dict]) -> str:
    """``"none (telea, biharmonic); dense-clip (sair)"`` from meta.json's ``semantic_encoder``,
    which is a name, None, or a {model: name or None} mapping."""
    by_encoder: dict[str, list[str]] = {}
    plain: list[str] = []
    for meta in metas:
        enc = meta.get("semantic_encoder")
        if isinstance(enc, dict):
            for model, name in enc.items():
                by_encoder.setdefault(_describe(name) if name else "none", []).append(str(model))
        else:
            plain.append(_describe(enc) if enc else "none")
    parts = [f"{enc} ({', '.join(dict.fromkeys(models))})" for enc, models in by_encoder.items()]
    parts += [p for p in dict.fromkeys(plain) if p not in by_encoder]
    return "; ".join(parts) or "none"


def _default_pairs(per_image: pd.DataFrame, metric: str, max_all: int = 4) -> list[tuple[str, str]]:
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


def _section_buckets(summary: pd.DataFrame, wanted: Sequence[str] | None, protocol: str, dataset: str) -> list[str]:
    """The buckets of a section's ``summary`` in order, restricted to ``wanted`` (any spelling)
    when given; SairbenchError when none of ``wanted`` is there."""
    buckets = sorted(pd.unique(summary["bucket"]), key=bucket_sort_key)
    if not wanted:
        return buckets
    want = [canonical_bucket(b) for b in wanted]
    chosen = sorted([b for b in buckets if canonical_bucket(b) in want], key=bucket_sort_key)
    if not chosen:
        raise SairbenchError(
            f"none of the buckets {list(wanted)} is in the results of {protocol} on {dataset}; "
            f"buckets there: {', '.join(buckets)}."
        )
    return chosen


def _paired_sections(per_image: pd.DataFrame, metrics: list[str], title: str, label: str, pairs, n_boot: int,
                     seed: int) -> tuple[list[str], list[str]]:
    """(LaTeX tables, Markdown tables): one paired-test table per metric with any finite per-image
    value, for ``pairs`` or :func:`_default_pairs`."""
    tex, md = [], []
    for metric in metrics:
        if metric not in per_image.columns or not np.isfinite(pd.to_numeric(per_image[metric], errors="coerce")).any():
            continue
        metric_pairs = pairs if pairs is not None else _default_pairs(per_image, metric)
        if not metric_pairs:
            continue
        table = paired_table(per_image, metric, metric_pairs, n_boot=n_boot, seed=seed)
        caption = f"Paired differences in {METRIC_NAMES.get(metric, metric)}: {title}."
        tex.append(render_paired_latex(table, caption, f"{label}-paired-{metric}", placement="H"))
        md.append(render_paired_markdown(table, caption))
    return tex, md


def write_report(
    result_dirs,
    out_dir,
    include_published: list[str] | None = None,
    *,
    pairs: Sequence[tuple[str, str]] | None = None,
    show_ci: bool = False,
    published_folder: str | Path | None = None,
    buckets: Sequence[str] | None = None,
    n_boot: int = 2000,
    seed: int = 0,
) -> list[Path]:
    """Render result folders (and published tables) into ``out_dir/report.tex`` and ``report.md``.

    One section per (protocol, dataset) of the runs: the main table (models x buckets x metrics,
    best bold, the conventions and semantic encoder in a footnote; ``buckets`` restricts the
    column groups, default every bucket in the results) and, when per-image results exist, one
    paired-test table per metric (``pairs``, or every pair for up to four models and otherwise
    each model against the best one). Published tables in ``include_published`` (CSV stems of
    ``results/published``) become dagger rows of the sections they belong to (see
    :data:`~sairbench.report.load.PROTOCOL_TABLES`; they must share a bucket and a metric; a table
    of the section's own dataset is preferred over others); the rest get a section of their own. Runs of one protocol
    and dataset with different metric conventions are refused (never mixed in one table). Both
    files are written atomically.

    Returns:
        [path of report.tex, path of report.md].
    """
    if isinstance(result_dirs, (str, Path)):
        result_dirs = [result_dirs]
    result_dirs = list(result_dirs or [])
    include_published = list(include_published or [])
    if not result_dirs and not include_published:
        raise SairbenchError("nothing to report: give result folders (written by `sairbench run`) or published tables.")
    summary, per_image, metas = load_results(result_dirs) if result_dirs else (pd.DataFrame(), pd.DataFrame(), [])
    published = {name: load_published(name, published_folder or "results/published") for name in include_published}
    used_published: set[str] = set()

    tex: list[str] = [_LATEX_PREAMBLE, "\\section*{sairbench report}\n"]
    md: list[str] = ["# sairbench report", ""]

    groups: dict[tuple[str, str], list[dict]] = {}
    for meta in metas:
        groups.setdefault((meta_key(meta, "protocol"), meta_key(meta, "dataset")), []).append(meta)

    for gi, ((protocol, dataset), gmetas) in enumerate(groups.items(), start=1):
        if len({json.dumps(m.get("conventions"), sort_keys=True, default=str) for m in gmetas}) > 1:
            raise SairbenchError(
                f"result folders {', '.join(m['_dir'] for m in gmetas)} (protocol {protocol}, dataset {dataset}) use "
                "different metric conventions; report them separately (a table never mixes conventions)."
            )
        runs = [m["_run"] for m in gmetas]
        gsum = summary[summary["run"].isin(runs)]
        gper = per_image[per_image["run"].isin(runs)] if len(per_image) else per_image
        section_buckets = _section_buckets(gsum, buckets, protocol, dataset)
        metrics = _ordered_metrics(gsum["metric"])
        eligible = published_for(published, protocol, dataset, section_buckets, metrics)
        used_published.update(eligible)
        pub = pd.concat([published[name] for name in eligible], ignore_index=True) if eligible else None
        title = f"{protocol or 'results'} on {dataset or 'unknown data'}"
        caption = f"sairbench: {title}. Best value per column in bold."
        footnote, label = _footnote(gmetas, gsum), f"tab:{protocol}-{dataset}"
        table_args = (gsum, section_buckets, metrics, caption, label, pub, footnote)
        tex += [f"\\subsection*{{{latex_escape(title)}}}\n",
                render_latex(*table_args, show_ci=show_ci, dataset=dataset, placement="H")]
        md += [f"## {md_escape(title)}", "", render_markdown(*table_args, show_ci=show_ci, dataset=dataset)]
        if len(gper):
            paired_tex, paired_md = _paired_sections(gper, metrics, title, label, pairs, n_boot, seed)
            tex += paired_tex
            md += paired_md
        tex.append("\\clearpage\n" if gi < len(groups) else "")

    for name, pdf in published.items():
        if name in used_published:
            continue
        table_buckets = sorted(pd.unique(pdf["bucket"]), key=bucket_sort_key)
        table_args = (None, table_buckets, _ordered_metrics(pdf["metric"]))
        table_name = PAPER_TABLE.get(str(pdf["table"].iloc[0]), name) if len(pdf) else name
        ds = str(pdf["dataset"].iloc[0]) if len(pdf) else ""
        caption = f"Published reference: {table_name} of {PUBLISHED_SOURCE} ({ds}). Best published value in bold."
        tex += [f"\\subsection*{{{latex_escape('Published: ' + name)}}}\n",
                render_latex(*table_args, caption, f"tab:published-{name}", pdf, placement="H")]
        md += [f"## Published: {md_escape(name)}", "", render_markdown(*table_args, caption, f"tab:published-{name}", pdf)]

    tex.append("\\end{document}\n")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tex_path, md_path = out / "report.tex", out / "report.md"
    atomic_write_text(tex_path, "\n".join(tex))
    atomic_write_text(md_path, "\n".join(md))
    return [tex_path, md_path]
