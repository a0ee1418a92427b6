"""Result folders -> LaTeX (booktabs) and Markdown tables in the shape of the paper's Table 1.

A result folder, as written by ``sairbench run``, holds:

* ``summary.csv``: long format, columns ``model, bucket, metric, mean, ci95, n`` (bucket may be
  ``"all"``);
* ``per_image.parquet``: one row per image x mask x model, columns ``image, mask, bucket, ratio,
  model`` and one column per metric;
* ``meta.json``: ``protocol, dataset, seed, conventions, semantic_encoder, versions, created``.

``results/published/*.csv`` hold the paper's tables in the long format ``model, bucket, metric,
value, table, dataset, source``; they can be added to a table as reference rows, marked with a
dagger and never counted for the bold "best" value (unless asked).

Bucket names are matched loosely: ``"0-20"``, ``"0-20%"``, ``"0.0-0.2"`` and ``"[0, 20)"`` are the
same bucket; ``"all"`` is every image.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from sairbench.errors import SairbenchError
from sairbench.io import atomic_write_text
from sairbench.metrics import HIGHER_IS_BETTER, METRICS, summary_values
from sairbench.stats import paired_test

PUBLISHED_DIR = Path(__file__).resolve().parents[1] / "results" / "published"
SUMMARY_COLUMNS = ("model", "bucket", "metric", "mean", "ci95", "n")
PER_IMAGE_KEYS = ("image", "mask", "bucket", "model")
PUBLISHED_COLUMNS = ("model", "bucket", "metric", "value", "table", "dataset", "source")

#: Direction of every metric a table may hold (``miou`` comes from the SIR probe).
DIRECTION: dict[str, bool] = {**HIGHER_IS_BETTER, "miou": True, "miou_hole": True}
METRIC_NAMES: dict[str, str] = {"psnr": "PSNR", "ssim": "SSIM", "l1": "L1", "lpips": "LPIPS", "miou": "mIoU", "miou_hole": "mIoU (hole)"}
DECIMALS: dict[str, int] = {"psnr": 2, "ssim": 3, "l1": 3, "lpips": 3, "miou": 2}
#: Where the paper's published tables come from, for the dagger note.
PUBLISHED_SOURCE = "the SAIR paper"
_PAPER_TABLE = {"table1": "Table 1", "table2": "Table 2", "table4": "Table 4", "table6": "Table 6"}


# --------------------------------------------------------------------------------------------
# names and formatting
# --------------------------------------------------------------------------------------------

_BUCKET_RE = re.compile(
    r"^[\[\(]?\s*(\d+(?:\.\d+)?)\s*%?\s*(?:-|–|_|,|to)\s*(\d+(?:\.\d+)?)\s*%?\s*[\]\)]?$"
)


def canonical_bucket(bucket) -> str:
    """``"0-20"`` for every spelling of the 0-20 % bucket (``"0-20%"``, ``"0.0-0.2"``, ``"[0,20)"``),
    ``"all"`` for the whole set; anything else unchanged (as str)."""
    s = str(bucket).strip()
    if s.lower() in ("all", "overall", "all mask ratios", "*"):
        return "all"
    m = _BUCKET_RE.match(s)
    if not m:
        return s
    lo, hi = float(m.group(1)), float(m.group(2))
    if hi <= 1.0 and "%" not in s:
        lo, hi = lo * 100.0, hi * 100.0
    return f"{round(lo, 6):g}-{round(hi, 6):g}"


def bucket_sort_key(bucket) -> tuple:
    """Numeric buckets by their lower bound, then other names, then "all"."""
    c = canonical_bucket(bucket)
    if c == "all":
        return (2, 0.0, c)
    m = _BUCKET_RE.match(c)
    if m:
        return (0, float(m.group(1)), c)
    return (1, 0.0, c)


def bucket_label(bucket, fmt: str = "latex") -> str:
    """Column-group title of a bucket: ``0%-20%`` (LaTeX ``0\\%--20\\%``), ``All mask ratios``."""
    c = canonical_bucket(bucket)
    if c == "all":
        return "All mask ratios"
    m = _BUCKET_RE.match(c)
    if m:
        lo, hi = m.group(1), m.group(2)
        return f"{lo}\\%--{hi}\\%" if fmt == "latex" else f"{lo}–{hi}%"
    return latex_escape(c) if fmt == "latex" else md_escape(c)


def metric_header(metric: str, fmt: str = "latex") -> str:
    name = METRIC_NAMES.get(metric, metric)
    hib = DIRECTION.get(metric)
    if fmt == "latex":
        arrow = "" if hib is None else ("$\\uparrow$" if hib else "$\\downarrow$")
        return latex_escape(name) + arrow
    arrow = "" if hib is None else ("↑" if hib else "↓")
    return md_escape(name) + arrow


_LATEX_SPECIALS = {
    "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
    "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}",
    "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}",
}
_LATEX_UNICODE = {
    "±": r"$\pm$", "×": r"$\times$", "–": "--", "—": "---", "↑": r"$\uparrow$", "↓": r"$\downarrow$",
    "†": r"$^\dagger$", "∞": r"$\infty$", "’": "'", "‘": "`", "“": "``", "”": "''", "…": r"\dots{}",
    "≈": r"$\approx$", "Δ": r"$\Delta$", "σ": r"$\sigma$", "µ": r"$\mu$", "μ": r"$\mu$",
}


def latex_escape(text) -> str:
    """Plain text -> LaTeX-safe text (specials escaped; non-Latin-1 symbols mapped or dropped to '?')."""
    out = []
    for ch in str(text):
        if ch in _LATEX_SPECIALS:
            out.append(_LATEX_SPECIALS[ch])
        elif ch in _LATEX_UNICODE:
            out.append(_LATEX_UNICODE[ch])
        elif ord(ch) < 128:
            out.append(ch if ch.isprintable() or ch == " " else " ")
        elif "\u00c0" <= ch <= "\u00ff" and ch not in "×÷":
            out.append(ch)  # accented Latin letters: pdflatex's utf8 input handles them
        else:
            out.append("?")
    return "".join(out)


def md_escape(text) -> str:
    """Plain text -> text safe inside a GitHub Markdown table cell."""
    s = str(text).replace("\\", "\\\\").replace("|", "\\|")
    for ch in "*_`[]<>":
        s = s.replace(ch, "\\" + ch)
    return s.replace("\n", " ")


def _fmt_number(value: float, metric: str, fmt: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "--" if fmt == "latex" else "n/a"
    value = float(value)
    if math.isinf(value):
        if fmt == "latex":
            return "$\\infty$" if value > 0 else "$-\\infty$"
        return "∞" if value > 0 else "-∞"
    return f"{value:.{DECIMALS.get(metric, 3)}f}"


def _rounded(value: float, metric: str) -> float:
    if value is None or not np.isfinite(value):
        return value
    return round(float(value), DECIMALS.get(metric, 3))


def _label_safe(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9:._\-]", "-", str(label))


# --------------------------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------------------------


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SairbenchError(f"{path}: not readable JSON ({type(exc).__name__}); re-run `sairbench run` to rewrite it.") from None
    if not isinstance(data, dict):
        raise SairbenchError(f"{path}: expected a JSON object; re-run `sairbench run` to rewrite it.")
    return data


def _meta_key(meta: dict, key: str) -> str:
    v = meta.get(key, "")
    if isinstance(v, dict):
        return str(v.get("name", json.dumps(v, sort_keys=True, default=str)))
    return "" if v is None else str(v)


def load_results(dirs) -> tuple[pd.DataFrame, pd.DataFrame, list[dict]]:
    """Read result folders written by ``sairbench run``.

    Args:
        dirs: one folder or a list of folders, each holding summary.csv, per_image.parquet and
            meta.json (per_image.parquet may be absent: no paired tests then).

    Returns:
        (summary_df, per_image_df, metas). Both frames gain the columns ``run`` (folder name),
        ``protocol`` and ``dataset`` (from meta.json) and ``source = "run"``. When one model name
        occurs in several folders of the same protocol and dataset, it becomes ``"model [run]"``
        in both frames so that rows stay distinct. ``metas`` are the meta.json dicts, each with
        ``_dir`` and ``_run`` added.
    """
    if isinstance(dirs, (str, Path)):
        dirs = [dirs]
    dirs = [Path(d) for d in dirs]
    names = [d.name for d in dirs]
    runs = [d.name if names.count(d.name) == 1 else str(d) for d in dirs]
    summaries, per_images, metas = [], [], []
    for d, run in zip(dirs, runs):
        if not d.is_dir():
            raise SairbenchError(
                f"{d}: no such result folder; give a folder written by `sairbench run` "
                "(it holds summary.csv, per_image.parquet and meta.json)."
            )
        meta_path, summary_path, per_image_path = d / "meta.json", d / "summary.csv", d / "per_image.parquet"
        if not summary_path.is_file():
            raise SairbenchError(
                f"{summary_path}: missing; the run did not finish. Resume it with `sairbench run` or drop this folder."
            )
        if not meta_path.is_file():
            raise SairbenchError(f"{meta_path}: missing; results without their conventions cannot be reported. Re-run `sairbench run`.")
        meta = _read_json(meta_path)
        try:
            summary = pd.read_csv(summary_path)
        except (OSError, ValueError, pd.errors.ParserError) as exc:
            raise SairbenchError(f"{summary_path}: not a readable CSV ({type(exc).__name__}); re-run `sairbench run`.") from None
        missing = [c for c in SUMMARY_COLUMNS if c not in summary.columns]
        if missing:
            raise SairbenchError(
                f"{summary_path}: missing columns {missing}; expected {list(SUMMARY_COLUMNS)} (long format). Re-run `sairbench run`."
            )
        protocol, dataset = _meta_key(meta, "protocol"), _meta_key(meta, "dataset")
        summary = summary.assign(run=run, protocol=protocol, dataset=dataset, source="run")
        summary["model"] = summary["model"].astype(str)
        summary["bucket"] = summary["bucket"].astype(str)
        summaries.append(summary)
        if per_image_path.is_file():
            try:
                per_image = pd.read_parquet(per_image_path)
            except Exception as exc:  # pyarrow raises several types
                raise SairbenchError(f"{per_image_path}: not a readable parquet file ({type(exc).__name__}); re-run `sairbench run`.") from None
            missing = [c for c in PER_IMAGE_KEYS if c not in per_image.columns]
            if missing:
                raise SairbenchError(f"{per_image_path}: missing columns {missing}; re-run `sairbench run`.")
            per_image = per_image.assign(run=run, protocol=protocol, dataset=dataset, source="run")
            per_image["model"] = per_image["model"].astype(str)
            per_image["bucket"] = per_image["bucket"].astype(str)
            per_images.append(per_image)
        metas.append({**meta, "_dir": str(d), "_run": run})

    summary_df = pd.concat(summaries, ignore_index=True) if summaries else pd.DataFrame(
        columns=[*SUMMARY_COLUMNS, "run", "protocol", "dataset", "source"])
    per_image_df = pd.concat(per_images, ignore_index=True) if per_images else pd.DataFrame(
        columns=[*PER_IMAGE_KEYS, "run", "protocol", "dataset", "source"])

    # the same model in two runs of one protocol and dataset: keep both, named apart
    if len(summary_df):
        runs_per = summary_df.groupby(["protocol", "dataset", "model"])["run"].nunique()
        clash = {k for k, v in runs_per.items() if v > 1}
        if clash:
            def rename(df: pd.DataFrame) -> pd.DataFrame:
                if not len(df):
                    return df
                keys = list(zip(df["protocol"], df["dataset"], df["model"]))
                df = df.copy()
                df["model"] = [f"{m} [{r}]" if k in clash else m for k, m, r in zip(keys, df["model"], df["run"])]
                return df

            summary_df, per_image_df = rename(summary_df), rename(per_image_df)
    return summary_df, per_image_df, metas


def published_tables(folder: str | Path | None = None) -> list[str]:
    """Names of the published tables (CSV stems) in ``folder``."""
    folder = _published_folder(folder)
    return sorted(p.stem for p in folder.glob("*.csv")) if folder.is_dir() else []


def _published_folder(folder) -> Path:
    if folder is None:
        return PUBLISHED_DIR
    folder = Path(folder)
    if not folder.is_dir() and not folder.is_absolute() and (PUBLISHED_DIR.parents[1] / folder).is_dir():
        return PUBLISHED_DIR.parents[1] / folder  # "results/published" relative to the repository
    return folder


def load_published(table: str, folder: str | Path = "results/published") -> pd.DataFrame:
    """One published table in the long summary format.

    Args:
        table: CSV stem (``"table1_celebahq"``), a unique prefix of one (``"table1"``), or a path.
        folder: where the CSVs live; a relative path that does not exist here is taken relative
            to the repository.

    Returns:
        DataFrame with ``model, bucket, metric, value, table, dataset, source="published"`` plus
        ``mean`` (= value), ``ci95`` (NaN) and ``n`` (NaN), so it concatenates with a summary.
    """
    p = Path(table)
    if p.suffix == ".csv" and p.is_file():
        path = p
    else:
        base = _published_folder(folder)
        names = published_tables(base)
        if table in names:
            path = base / f"{table}.csv"
        else:
            matches = [n for n in names if n.startswith(str(table))]
            if len(matches) != 1:
                raise SairbenchError(
                    f"unknown published table '{table}'; known in {base}: {', '.join(names) or 'none'}."
                )
            path = base / f"{matches[0]}.csv"
    try:
        df = pd.read_csv(path, dtype={"model": str, "bucket": str, "metric": str})
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise SairbenchError(f"{path}: not a readable CSV ({type(exc).__name__}); fix or restore the file.") from None
    missing = [c for c in ("model", "bucket", "metric", "value") if c not in df.columns]
    if missing:
        raise SairbenchError(f"{path}: missing columns {missing}; expected {list(PUBLISHED_COLUMNS)}.")
    if "table" not in df.columns:
        df["table"] = path.stem
    if "dataset" not in df.columns:
        df["dataset"] = "unspecified"
    df["source"] = "published"
    df["value"] = pd.to_numeric(df["value"], errors="coerce")
    df["mean"] = df["value"]
    df["ci95"] = np.nan
    df["n"] = np.nan
    return df


# --------------------------------------------------------------------------------------------
# the table model shared by LaTeX and Markdown
# --------------------------------------------------------------------------------------------


def _rows(summary_df, buckets, metrics, published_df, bold_published):
    """-> (rows, best) where rows = [(model, is_published, {(bucket, metric): (mean, ci)})] and
    best = {(bucket, metric): rounded best value or None}."""
    want = [canonical_bucket(b) for b in buckets]
    rows = []

    def add(df: pd.DataFrame, published: bool):
        if df is None or not len(df):
            return
        df = df.assign(_b=[canonical_bucket(b) for b in df["bucket"]])
        val_col = "mean" if "mean" in df.columns else "value"
        tables = list(pd.unique(df["table"])) if published and "table" in df.columns else [None]
        keys = (
            [(t, m) for t in tables for m in pd.unique(df.loc[df["table"] == t, "model"])]
            if tables != [None] else [(None, m) for m in pd.unique(df["model"])]
        )
        for table, model in keys:
            sub = df[df["model"] == model] if table is None else df[(df["model"] == model) & (df["table"] == table)]
            label = str(model)
            if len(tables) > 1:
                label += f" ({_PAPER_TABLE.get(str(table), str(table))})"
            cells = {}
            for b, orig in zip(want, buckets):
                for m in metrics:
                    hit = sub[(sub["_b"] == b) & (sub["metric"] == m)]
                    if len(hit):
                        ci = float(hit["ci95"].iloc[0]) if "ci95" in hit.columns and pd.notna(hit["ci95"].iloc[0]) else float("nan")
                        cells[(orig, m)] = (float(hit[val_col].iloc[0]), ci)
            rows.append((label, published, cells))

    add(summary_df, False)
    add(published_df, True)
    any_run = any(not pub for _, pub, _ in rows)
    best = {}
    for b in buckets:
        for m in metrics:
            hib = DIRECTION.get(m)
            if hib is None:
                best[(b, m)] = None
                continue
            vals = [
                _rounded(cells[(b, m)][0], m)
                for _, pub, cells in rows
                if (b, m) in cells and (not pub or bold_published or not any_run)
                and not math.isnan(cells[(b, m)][0])
            ]
            best[(b, m)] = (max(vals) if hib else min(vals)) if vals else None
    return rows, best


def _published_note(published_df, dataset, fmt, any_run=True):
    if published_df is None or not len(published_df):
        return ""
    parts = []
    for (table, ds), _ in published_df.groupby(["table", "dataset"], sort=False):
        name = _PAPER_TABLE.get(str(table), str(table))
        parts.append(f"{name}, {ds}")
    text = f"As published in {PUBLISHED_SOURCE} ({'; '.join(parts)}); not recomputed here"
    datasets = {_norm_name(d) for d in published_df["dataset"]}
    if dataset and _norm_name(dataset) not in datasets:
        text += f", on a different dataset than this table's ({dataset}): for reference only, not comparable"
    text += "; excluded from the bold best values." if any_run else "."
    return ("$^\\dagger$" + latex_escape(text)) if fmt == "latex" else ("† " + md_escape(text))


def _check_inputs(summary_df, buckets, metrics):
    if not buckets:
        raise SairbenchError("a table needs at least one bucket.")
    if not metrics:
        raise SairbenchError("a table needs at least one metric.")
    if summary_df is not None and len(summary_df):
        missing = [c for c in ("model", "bucket", "metric", "mean") if c not in summary_df.columns]
        if missing:
            raise SairbenchError(f"summary table lacks columns {missing}; expected {list(SUMMARY_COLUMNS)}.")


def _cell_text(cells, bucket: str, metric: str, fmt: str, with_ci: bool, may_bold: bool, best) -> str:
    """One table cell in ``fmt`` ("latex" or "md"): the value, its CI if asked, bold if it is the best."""
    mean, ci = cells.get((bucket, metric), (float("nan"), float("nan")))
    text = _fmt_number(mean, metric, fmt)
    digits = DECIMALS.get(metric, 3)
    if with_ci and np.isfinite(mean) and np.isfinite(ci):
        text += f"{{\\scriptsize$\\pm${ci:.{digits}f}}}" if fmt == "latex" else f" ± {ci:.{digits}f}"
    if may_bold and np.isfinite(mean) and _rounded(mean, metric) == best[(bucket, metric)]:
        text = f"\\textbf{{{text}}}" if fmt == "latex" else f"**{text}**"
    return text


def render_latex(
    summary_df: pd.DataFrame,
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
    placement: str = "htbp",
) -> str:
    """A booktabs ``table`` in the shape of the paper's Table 1.

    Rows are models (runs first, then published rows marked with a dagger after a rule); column
    groups are ``buckets`` (``\\multicolumn`` + ``\\cmidrule``), each with one column per metric
    (arrows give the direction). The best value per column is bold: max for higher-is-better,
    min otherwise, compared at the printed precision, NaN ignored, published rows excluded unless
    ``bold_published`` (or unless there are no run rows). NaN prints as ``--``.

    Needs ``\\usepackage{booktabs}`` and ``\\usepackage{graphicx}`` (the tabular is shrunk to the
    line width when wider). ``caption`` and ``footnote`` are plain text (escaped here);
    ``dataset`` names this table's dataset for the published-rows note; ``placement`` is the
    float specifier (``"H"`` needs ``\\usepackage{float}``).
    """
    _check_inputs(summary_df, buckets, metrics)
    buckets, metrics = list(buckets), list(metrics)
    rows, best = _rows(summary_df, buckets, metrics, published_df, bold_published)
    any_run = any(not p for _, p, _ in rows)
    k = len(metrics)
    spec = "l" + "".join("@{\\hspace{8pt}}" + "c" * k for _ in buckets)
    lines = [
        f"\\begin{{table}}[{placement}]",
        "\\centering",
        f"\\caption{{{latex_escape(caption)}}}",
        f"\\label{{{_label_safe(label)}}}",
        "\\small",
        "\\resizebox{\\ifdim\\width>\\linewidth\\linewidth\\else\\width\\fi}{!}{%",
        f"\\begin{{tabular}}{{{spec}}}",
        "\\toprule",
    ]
    group = ["Method"] + [f"\\multicolumn{{{k}}}{{c}}{{{bucket_label(b)}}}" for b in buckets]
    lines.append(" & ".join(group) + " \\\\")
    rules = [f"\\cmidrule(lr){{{2 + i * k}-{1 + (i + 1) * k}}}" for i in range(len(buckets))]
    lines.append(" ".join(rules))
    lines.append(" & ".join([""] + [metric_header(m) for _ in buckets for m in metrics]) + " \\\\")
    lines.append("\\midrule")
    prev_pub = None
    for model, pub, cells in rows:
        if prev_pub is False and pub:
            lines.append("\\midrule")
        prev_pub = pub
        name = latex_escape(model) + ("$^\\dagger$" if pub else "")
        out = [name]
        for b in buckets:
            for m in metrics:
                bold = (not pub or bold_published or not any_run) and best[(b, m)] is not None
                out.append(_cell_text(cells, b, m, "latex", show_ci and not pub, bold, best))
        lines.append(" & ".join(out) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}%", "}"]
    notes = []
    pub_note = _published_note(published_df, dataset, "latex", any_run)
    if pub_note:
        notes.append(pub_note)
    if footnote:
        notes.append(latex_escape(footnote))
    if show_ci:
        notes.append(latex_escape("Values are means with the half width of the 95% t confidence interval."))
    if notes:
        lines.append("\\par\\smallskip")
        lines.append("{\\footnotesize\\raggedright " + " \\par ".join(notes) + "\\par}")
    lines.append("\\end{table}")
    return "\n".join(lines) + "\n"


def render_markdown(
    summary_df: pd.DataFrame,
    buckets: Sequence[str],
    metrics: Sequence[str],
    caption: str,
    label: str = "",
    published_df: pd.DataFrame | None = None,
    footnote: str = "",
    *,
    show_ci: bool = False,
    bold_published: bool = False,
    dataset: str | None = None,
) -> str:
    """The table of :func:`render_latex` as GitHub Markdown: one header row whose columns read
    ``PSNR↑ 0–20%``, best values in ``**bold**``, published rows marked ``†``, NaN as ``n/a``."""
    _check_inputs(summary_df, buckets, metrics)
    buckets, metrics = list(buckets), list(metrics)
    rows, best = _rows(summary_df, buckets, metrics, published_df, bold_published)
    any_run = any(not p for _, p, _ in rows)
    lines = []
    if caption:
        anchor = f'<a id="{_label_safe(label)}"></a>' if label else ""
        lines += [f"{anchor}**{md_escape(caption)}**", ""]
    header = ["Method"] + [f"{metric_header(m, 'md')} {bucket_label(b, 'md')}" for b in buckets for m in metrics]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|")
    for model, pub, cells in rows:
        out = [md_escape(model) + (" †" if pub else "")]
        for b in buckets:
            for m in metrics:
                bold = (not pub or bold_published or not any_run) and best[(b, m)] is not None
                out.append(_cell_text(cells, b, m, "md", show_ci and not pub, bold, best))
        lines.append("| " + " | ".join(out) + " |")
    notes = []
    pub_note = _published_note(published_df, dataset, "md", any_run)
    if pub_note:
        notes.append(pub_note)
    if footnote:
        notes.append(md_escape(footnote))
    if show_ci:
        notes.append("Values are means ± the half width of the 95% t confidence interval.")
    if notes:
        lines.append("")
        lines += [f"<sub>{n}</sub>  " if i < len(notes) - 1 else f"<sub>{n}</sub>" for i, n in enumerate(notes)]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# paired tests
# --------------------------------------------------------------------------------------------


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
    cols = ["metric", "bucket", "model_a", "model_b", "n", "mean_diff", "ci_low", "ci_high", "p_wilcoxon", "better"]
    if per_image_df is None or not len(per_image_df):
        return pd.DataFrame(columns=cols)
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
            if (
                hib is not None
                and np.isfinite(res["p_wilcoxon"]) and res["p_wilcoxon"] < alpha
                and np.isfinite(res["ci_low"]) and (res["ci_low"] > 0 or res["ci_high"] < 0)
            ):
                better = a if (res["mean_diff"] > 0) == hib else b
            out.append({"metric": metric, "bucket": bucket, "model_a": a, "model_b": b, **res, "better": better})
    return pd.DataFrame(out, columns=cols)


def _fmt_p(p: float) -> str:
    if not np.isfinite(p):
        return "n/a"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _fmt_diff(res: dict, metric: str) -> tuple[str, str]:
    d = DECIMALS.get(metric, 3) + 1
    if not np.isfinite(res["mean_diff"]):
        return "n/a", "n/a"
    diff = f"{res['mean_diff']:+.{d}f}"
    ci = f"[{res['ci_low']:+.{d}f}, {res['ci_high']:+.{d}f}]" if np.isfinite(res["ci_low"]) else "[n/a]"
    return diff, ci


def render_paired_latex(table: pd.DataFrame, caption: str, label: str, placement: str = "htbp") -> str:
    """A :func:`paired_table` as a booktabs table: rows = pairs, per bucket the mean difference
    a - b with its bootstrap 95% CI and the Wilcoxon p-value; significant differences in bold."""
    if not len(table):
        return ""
    metric = str(table["metric"].iloc[0])
    buckets = list(pd.unique(table["bucket"]))
    lines = [
        f"\\begin{{table}}[{placement}]", "\\centering", f"\\caption{{{latex_escape(caption)}}}",
        f"\\label{{{_label_safe(label)}}}", "\\small",
        "\\resizebox{\\ifdim\\width>\\linewidth\\linewidth\\else\\width\\fi}{!}{%",
        "\\begin{tabular}{l" + "rr" * len(buckets) + "}", "\\toprule",
        " & ".join(["Pair (a $-$ b)"] + [f"\\multicolumn{{2}}{{c}}{{{bucket_label(b)}}}" for b in buckets]) + " \\\\",
        " ".join(f"\\cmidrule(lr){{{2 + 2 * i}-{3 + 2 * i}}}" for i in range(len(buckets))),
        " & ".join([""] + ["$\\Delta$ [95\\% CI]", "$p$"] * len(buckets)) + " \\\\",
        "\\midrule",
    ]
    for (a, b), sub in table.groupby(["model_a", "model_b"], sort=False):
        cells = [f"{latex_escape(a)} $-$ {latex_escape(b)}"]
        for bucket in buckets:
            hit = sub[sub["bucket"] == bucket]
            if not len(hit):
                cells += ["--", "--"]
                continue
            res = hit.iloc[0].to_dict()
            diff, ci = _fmt_diff(res, metric)
            text = f"{diff} {ci}" if diff != "n/a" else "--"
            if res["better"]:
                text = f"\\textbf{{{text}}}"
            cells += [text, _fmt_p(res["p_wilcoxon"]).replace("<", "$<$")]
        lines.append(" & ".join(cells) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}%", "}"]
    note = (f"Paired over the same images and masks: mean of a - b in {METRIC_NAMES.get(metric, metric)} "
            "with a seeded bootstrap 95% CI, two-sided Wilcoxon signed-rank p; bold: p < 0.05 and the CI excludes 0.")
    lines += ["\\par\\smallskip", "{\\footnotesize\\raggedright " + latex_escape(note) + "\\par}", "\\end{table}"]
    return "\n".join(lines) + "\n"


def render_paired_markdown(table: pd.DataFrame, caption: str) -> str:
    """A :func:`paired_table` as GitHub Markdown (cells: ``Δ [95% CI], p``; significant in bold)."""
    if not len(table):
        return ""
    metric = str(table["metric"].iloc[0])
    buckets = list(pd.unique(table["bucket"]))
    lines = [f"**{md_escape(caption)}**", ""]
    lines.append("| Pair (a − b) | " + " | ".join(bucket_label(b, "md") for b in buckets) + " |")
    lines.append("|:---|" + "|".join(["---:"] * len(buckets)) + "|")
    for (a, b), sub in table.groupby(["model_a", "model_b"], sort=False):
        cells = [f"{md_escape(a)} − {md_escape(b)}"]
        for bucket in buckets:
            hit = sub[sub["bucket"] == bucket]
            if not len(hit):
                cells.append("n/a")
                continue
            res = hit.iloc[0].to_dict()
            diff, ci = _fmt_diff(res, metric)
            p = _fmt_p(res["p_wilcoxon"])
            text = "n/a" if diff == "n/a" else f"{diff} {ci}, p{p if p.startswith('<') else '=' + p}"
            cells.append(f"**{text}**" if res["better"] else text)
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"<sub>Paired over the same images and masks: mean of a − b in {METRIC_NAMES.get(metric, metric)}, "
              "seeded bootstrap 95% CI, two-sided Wilcoxon signed-rank p; bold: p < 0.05 and the CI excludes 0.</sub>"]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# whole reports
# --------------------------------------------------------------------------------------------

_LATEX_PREAMBLE = r"""\documentclass[10pt]{article}
\usepackage[margin=1.5cm]{geometry}
\usepackage{booktabs}
\usepackage{graphicx}
\usepackage{float}
\begin{document}
"""


def _ordered_metrics(metrics: Iterable[str]) -> list[str]:
    metrics = list(dict.fromkeys(metrics))
    return [m for m in METRICS if m in metrics] + [m for m in metrics if m not in METRICS]


def _describe(value) -> str:
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_describe(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(_describe(v) for v in value)
    return str(value)


def _footnote(metas: list[dict], summary: pd.DataFrame) -> str:
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


#: Which of the paper's tables a protocol's section may show as published rows; other protocols
#: take every published table that shares a bucket and a metric with them.
PROTOCOL_TABLES: dict[str, set[str]] = {
    "liu2018-masks": {"table1", "table2"},
    "ablations": {"table4", "table6"},
    "sir-miou": {"table6"},
}


def _norm_name(s) -> str:
    return re.sub(r"[^a-z0-9]", "", str(s).lower())


def _published_for(published: dict, protocol: str, dataset: str, buckets, metrics) -> list[str]:
    canon = {canonical_bucket(b) for b in buckets}
    allowed = PROTOCOL_TABLES.get(protocol)
    eligible = []
    for name, pdf in published.items():
        if not len(pdf):
            continue
        if allowed is not None and not set(map(str, pdf["table"])) & allowed:
            continue
        if canon & {canonical_bucket(b) for b in pdf["bucket"]} and set(metrics) & set(pdf["metric"]):
            eligible.append(name)
    same = [n for n in eligible if _norm_name(dataset) in {_norm_name(d) for d in published[n]["dataset"]}]
    return same or eligible


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
    ``PROTOCOL_TABLES``; they must share a bucket and a metric; a table of the section's own
    dataset is preferred over others); the rest get a section of their own. Runs of one protocol and dataset with different metric conventions
    are refused (never mixed in one table). Both files are written atomically.

    Returns:
        [path of report.tex, path of report.md].
    """
    buckets_wanted = list(buckets) if buckets else None
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
        groups.setdefault((_meta_key(meta, "protocol"), _meta_key(meta, "dataset")), []).append(meta)

    for gi, ((protocol, dataset), gmetas) in enumerate(groups.items(), start=1):
        convs = {json.dumps(m.get("conventions"), sort_keys=True, default=str) for m in gmetas}
        if len(convs) > 1:
            dirs = ", ".join(m["_dir"] for m in gmetas)
            raise SairbenchError(
                f"result folders {dirs} (protocol {protocol}, dataset {dataset}) use different metric conventions; "
                "report them separately (a table never mixes conventions)."
            )
        runs = [m["_run"] for m in gmetas]
        gsum = summary[summary["run"].isin(runs)]
        gper = per_image[per_image["run"].isin(runs)] if len(per_image) else per_image
        buckets = sorted(pd.unique(gsum["bucket"]), key=bucket_sort_key)
        metrics = _ordered_metrics(gsum["metric"])
        if buckets_wanted:
            want = [canonical_bucket(b) for b in buckets_wanted]
            buckets = sorted([b for b in buckets if canonical_bucket(b) in want], key=bucket_sort_key)
            if not buckets:
                raise SairbenchError(
                    f"none of the buckets {list(buckets_wanted)} is in the results of {protocol} on {dataset}; "
                    f"buckets there: {', '.join(sorted(pd.unique(gsum['bucket']), key=bucket_sort_key))}."
                )
        eligible = _published_for(published, protocol, dataset, buckets, metrics)
        pub_frames = [published[name] for name in eligible]
        used_published.update(eligible)
        pub = pd.concat(pub_frames, ignore_index=True) if pub_frames else None
        title = f"{protocol or 'results'} on {dataset or 'unknown data'}"
        caption = f"sairbench: {title}. Best value per column in bold."
        footnote = _footnote(gmetas, gsum)
        label = f"tab:{protocol}-{dataset}"
        tex.append(f"\\subsection*{{{latex_escape(title)}}}\n")
        tex.append(render_latex(gsum, buckets, metrics, caption, label, pub, footnote, show_ci=show_ci, dataset=dataset,
                                placement="H"))
        md += [f"## {md_escape(title)}", ""]
        md.append(render_markdown(gsum, buckets, metrics, caption, label, pub, footnote, show_ci=show_ci, dataset=dataset))
        if len(gper):
            for metric in metrics:
                if metric not in gper.columns or not np.isfinite(pd.to_numeric(gper[metric], errors="coerce")).any():
                    continue
                gpairs = pairs if pairs is not None else _default_pairs(gper, metric)
                if not gpairs:
                    continue
                table = paired_table(gper, metric, gpairs, n_boot=n_boot, seed=seed)
                cap = f"Paired differences in {METRIC_NAMES.get(metric, metric)}: {title}."
                tex.append(render_paired_latex(table, cap, f"tab:{protocol}-{dataset}-paired-{metric}", placement="H"))
                md.append(render_paired_markdown(table, cap))
        tex.append("\\clearpage\n" if gi < len(groups) else "")

    for name, pdf in published.items():
        if name in used_published:
            continue
        buckets = sorted(pd.unique(pdf["bucket"]), key=bucket_sort_key)
        metrics = _ordered_metrics(pdf["metric"])
        table_name = _PAPER_TABLE.get(str(pdf["table"].iloc[0]), name) if len(pdf) else name
        ds = str(pdf["dataset"].iloc[0]) if len(pdf) else ""
        caption = f"Published reference: {table_name} of {PUBLISHED_SOURCE} ({ds}). Best published value in bold."
        tex.append(f"\\subsection*{{{latex_escape('Published: ' + name)}}}\n")
        tex.append(render_latex(None, buckets, metrics, caption, f"tab:published-{name}", pdf, placement="H"))
        md += [f"## Published: {md_escape(name)}", ""]
        md.append(render_markdown(None, buckets, metrics, caption, f"tab:published-{name}", pdf))

    tex.append("\\end{document}\n")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tex_path, md_path = out / "report.tex", out / "report.md"
    atomic_write_text(tex_path, "\n".join(tex))
    atomic_write_text(md_path, "\n".join(md))
    return [tex_path, md_path]
