"""Renderers: a :class:`~sairbench.report.table.Table` as a LaTeX (booktabs) table or as GitHub
Markdown. One renderer per format, for every kind of table (the main results table and the paired
differences); :func:`render_latex` and :func:`render_markdown` build and render the main table.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from sairbench.report.naming import (
    DECIMALS,
    METRIC_NAMES,
    bucket_label,
    format_number,
    label_safe,
    latex_escape,
    md_escape,
    metric_header,
)
from sairbench.report.table import Cell, Difference, Note, Table, results_table


def format_p(p: float) -> str:
    """A p-value as printed: ``<0.001``, ``0.042``, or ``n/a`` when not finite."""
    if not np.isfinite(p):
        return "n/a"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def format_difference(cell: Difference) -> tuple[str, str]:
    """(mean difference, ``[low, high]``) with a sign and one more decimal than the metric;
    ``("n/a", "n/a")`` when the difference is not finite, ``[n/a]`` for an unknown interval."""
    d = DECIMALS.get(cell.metric, 3) + 1
    if not np.isfinite(cell.mean_diff):
        return "n/a", "n/a"
    ci = f"[{cell.ci_low:+.{d}f}, {cell.ci_high:+.{d}f}]" if np.isfinite(cell.ci_low) else "[n/a]"
    return f"{cell.mean_diff:+.{d}f}", ci


class LatexRenderer:
    """A :class:`Table` as a booktabs ``table`` float: column groups under ``\\multicolumn`` titles
    and ``\\cmidrule``\\ s, published rows after a rule and marked with a dagger, best values and
    significant differences in bold, notes in small print below. A paired difference takes two
    columns (difference with its interval, p-value). Needs ``booktabs`` and ``graphicx`` (the
    tabular shrinks to the line width when wider); ``placement`` ``"H"`` needs ``float``."""

    fmt = "latex"
    #: per table kind: the first header cell, the tabular columns of one cell (a letter each) and
    #: the space before each column group
    stub = {"results": "Method", "paired": "Pair (a $-$ b)"}
    cell_columns = {"results": "c", "paired": "rr"}
    group_gap = {"results": "@{\\hspace{8pt}}", "paired": ""}
    #: the second header row's titles of a paired difference's two columns
    difference_headers = ["$\\Delta$ [95\\% CI]", "$p$"]
    #: the standard notes, plain text (escaped when rendered)
    ci_note = "Values are means with the half width of the 95% t confidence interval."
    paired_note = ("Paired over the same images and masks: mean of a - b in {name} with a seeded bootstrap 95% CI, "
                   "two-sided Wilcoxon signed-rank p; bold: p < 0.05 and the CI excludes 0.")

    def __init__(self, placement: str = "htbp"):
        """``placement``: the float specifier of every table this renderer writes."""
        self.placement = placement

    def render(self, table: Table) -> str:
        """The whole ``table`` float, ending in a newline."""
        cell_columns, gap = self.cell_columns[table.kind], self.group_gap[table.kind]
        width = len(cell_columns)
        spec = "l" + "".join(gap + cell_columns * len(g.metrics) for g in table.groups)
        lines = [
            f"\\begin{{table}}[{self.placement}]",
            "\\centering",
            f"\\caption{{{latex_escape(table.caption)}}}",
            f"\\label{{{label_safe(table.label)}}}",
            "\\small",
            "\\resizebox{\\ifdim\\width>\\linewidth\\linewidth\\else\\width\\fi}{!}{%",
            f"\\begin{{tabular}}{{{spec}}}",
            "\\toprule",
        ]
        titles, rules, first = [self.stub[table.kind]], [], 2
        for g in table.groups:
            span = width * len(g.metrics)
            titles.append(f"\\multicolumn{{{span}}}{{c}}{{{bucket_label(g.bucket, self.fmt)}}}")
            rules.append(f"\\cmidrule(lr){{{first}-{first + span - 1}}}")
            first += span
        lines += [" & ".join(titles) + " \\\\", " ".join(rules)]
        if table.kind == "paired":
            headers = [h for _ in table.columns() for h in self.difference_headers]
        else:
            headers = [metric_header(m, self.fmt) for _, m in table.columns()]
        lines += [" & ".join([""] + headers) + " \\\\", "\\midrule"]
        previous_published = None
        for row in table.rows:
            if previous_published is False and row.published:
                lines.append("\\midrule")
            previous_published = row.published
            name = " $-$ ".join(latex_escape(n) for n in row.names) + ("$^\\dagger$" if row.published else "")
            cells = [name] + [text for cell in row.cells for text in self.cell(cell, width)]
            lines.append(" & ".join(cells) + " \\\\")
        lines += ["\\bottomrule", "\\end{tabular}%", "}"]
        if table.notes:
            lines.append("\\par\\smallskip")
            lines.append("{\\footnotesize\\raggedright " + " \\par ".join(self.note(n) for n in table.notes) + "\\par}")
        lines.append("\\end{table}")
        return "\n".join(lines) + "\n"

    def cell(self, cell: Cell, width: int) -> list[str]:
        """The ``width`` column entries of one cell: a value (``36.50``, ``{\\scriptsize$\\pm$0.10}``
        after it when it has an interval), or a difference and its p-value; ``--`` for no result."""
        if cell is None:
            return ["--"] * width
        if isinstance(cell, Difference):
            diff, ci = format_difference(cell)
            text = f"{diff} {ci}" if diff != "n/a" else "--"
            return [f"\\textbf{{{text}}}" if cell.significant else text, format_p(cell.p).replace("<", "$<$")]
        text = format_number(cell.mean, cell.metric, self.fmt)
        if np.isfinite(cell.mean) and np.isfinite(cell.ci):
            text += f"{{\\scriptsize$\\pm${cell.ci:.{DECIMALS.get(cell.metric, 3)}f}}}"
        return [f"\\textbf{{{text}}}" if cell.best else text]

    def note(self, note: Note) -> str:
        """One footnote, escaped; published-row notes start with a dagger."""
        if note.kind == "ci":
            return latex_escape(self.ci_note)
        if note.kind == "paired":
            return latex_escape(self.paired_note.format(name=METRIC_NAMES.get(note.metric, note.metric)))
        return ("$^\\dagger$" if note.kind == "published" else "") + latex_escape(note.text)


class MarkdownRenderer:
    """A :class:`Table` as a GitHub Markdown table: a bold caption (with an anchor named after the
    label), one header row whose columns read ``PSNR↑ 0–20%`` (paired tables: the bucket alone),
    best values and significant differences in ``**bold**``, published rows marked ``†``, missing
    values ``n/a``, notes in ``<sub>`` lines below. A paired difference is one cell:
    ``Δ [95% CI], p``."""

    fmt = "md"
    stub = {"results": "Method", "paired": "Pair (a − b)"}
    #: the standard notes, as written (no escaping)
    ci_note = "Values are means ± the half width of the 95% t confidence interval."
    paired_note = ("Paired over the same images and masks: mean of a − b in {name}, seeded bootstrap 95% CI, "
                   "two-sided Wilcoxon signed-rank p; bold: p < 0.05 and the CI excludes 0.")

    def render(self, table: Table) -> str:
        """The whole table with its caption and notes, ending in a newline."""
        lines = []
        if table.caption:
            anchor = f'<a id="{label_safe(table.label)}"></a>' if table.label else ""
            lines += [f"{anchor}**{md_escape(table.caption)}**", ""]
        header = [self.stub[table.kind]]
        for bucket, metric in table.columns():
            group = bucket_label(bucket, self.fmt)
            header.append(group if table.kind == "paired" else f"{metric_header(metric, self.fmt)} {group}")
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|")
        for row in table.rows:
            name = " − ".join(md_escape(n) for n in row.names) + (" †" if row.published else "")
            lines.append("| " + " | ".join([name] + [self.cell(c) for c in row.cells]) + " |")
        if table.notes:
            notes = [self.note(n) for n in table.notes]
            lines.append("")
            lines += [f"<sub>{n}</sub>  " if i < len(notes) - 1 else f"<sub>{n}</sub>" for i, n in enumerate(notes)]
        return "\n".join(lines) + "\n"

    @classmethod
    def cell_text(cls, cell: Cell) -> tuple[str, bool]:
        """(plain text, marked) of one cell: a value (`` ± 0.10`` after it when it has an interval)
        or ``Δ [CI], p=...``, ``n/a`` for no result; marked = best value or significant difference."""
        if cell is None:
            return "n/a", False
        if isinstance(cell, Difference):
            diff, ci = format_difference(cell)
            p = format_p(cell.p)
            text = "n/a" if diff == "n/a" else f"{diff} {ci}, p{p if p.startswith('<') else '=' + p}"
            return text, cell.significant
        text = format_number(cell.mean, cell.metric, cls.fmt)
        if np.isfinite(cell.mean) and np.isfinite(cell.ci):
            text += f" ± {cell.ci:.{DECIMALS.get(cell.metric, 3)}f}"
        return text, cell.best

    def cell(self, cell: Cell) -> str:
        """One cell, marked cells in ``**bold**``."""
        text, marked = self.cell_text(cell)
        return f"**{text}**" if marked else text

    @classmethod
    def note_text(cls, note: Note) -> tuple[str, str, bool]:
        """(prefix, plain text, free) of one footnote: the standard sentences, or the note's own
        text (free = True: user text, to be escaped) after a dagger for published rows."""
        if note.kind == "ci":
            return "", cls.ci_note, False
        if note.kind == "paired":
            return "", cls.paired_note.format(name=METRIC_NAMES.get(note.metric, note.metric)), False
        return ("† " if note.kind == "published" else ""), note.text, True

    def note(self, note: Note) -> str:
        """One footnote, escaped; published-row notes start with a dagger."""
        prefix, text, free = self.note_text(note)
        return prefix + (md_escape(text) if free else text)


def render_latex(summary_df: pd.DataFrame, buckets: Sequence[str], metrics: Sequence[str], caption: str, label: str,
                 *args, placement: str = "htbp", **kwargs) -> str:
    """The main table (:func:`~sairbench.report.table.results_table`, which takes the other
    arguments) as a booktabs ``table`` in the shape of the paper's Table 1: rows are models (runs
    first, then published rows marked with a dagger after a rule), column groups are ``buckets``,
    one column per metric (arrows give the direction), the best value per column bold, NaN as
    ``--``. ``caption`` and footnotes are plain text (escaped here); ``placement`` is the float
    specifier (``"H"`` needs ``\\usepackage{float}``). Returns the LaTeX."""
    table = results_table(summary_df, buckets, metrics, caption, label, *args, **kwargs)
    return LatexRenderer(placement).render(table)


def render_markdown(summary_df: pd.DataFrame, buckets: Sequence[str], metrics: Sequence[str], caption: str,
                    label: str = "", *args, **kwargs) -> str:
    """The table of :func:`render_latex` as GitHub Markdown: one header row whose columns read
    ``PSNR↑ 0–20%``, best values in ``**bold**``, published rows marked ``†``, NaN as ``n/a``.
    Returns the Markdown."""
    table = results_table(summary_df, buckets, metrics, caption, label, *args, **kwargs)
    return MarkdownRenderer().render(table)
