"""The report as one self-contained HTML page (``sairbench report --html`` -> ``report.html``).

Everything is inside the file: the tables (:class:`HtmlRenderer`, same cells, best marks and notes
as the LaTeX and Markdown renderers), the paired tests, the figures as base64 PNG (the metric
against hole ratio of each section and each model's PSNR difference to the reference model, drawn
here, and each run's ``figures/qualitative.png`` when ``sairbench figures`` made one) and each run's meta.json facts (protocol, dataset, size, limit,
masks, seed, LPIPS status, versions). The page fits a 1280-px window: intervals never break
inside, long names in the facts break anywhere, figures shrink to the page. A small inline script, run on load, writes what the browser
rendered (tables, model rows, decoded figures) into the page's summary line and into
``body[data-rendered]`` (JSON), so that a headless browser can check the page.
"""

from __future__ import annotations

import base64
import io
from html import escape
from pathlib import Path

import numpy as np
import pandas as pd

from sairbench.report.naming import bucket_label, label_safe, metric_title
from sairbench.report.render import MarkdownRenderer
from sairbench.report.settings import DEFAULT_KIND, describe, describe_masks, lpips_status
from sairbench.report.table import Cell, Difference, Note, Table

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:78em;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.6em 0;font-size:.92em}th,td{padding:.2em .45em;text-align:right}
th:first-child,td:first-child{text-align:left}thead th{text-align:center}
table.results td,span.nw{white-space:nowrap}table.facts td,table.facts th{overflow-wrap:anywhere}
thead tr:last-child th{border-bottom:1px solid #444}div.wide{overflow-x:auto}
table.results,table.paired{border-top:2px solid #444;border-bottom:2px solid #444}
tr.published td{color:#555}tr.published.first td{border-top:1px solid #999}
caption{caption-side:top;font-weight:600;text-align:left;padding-bottom:.3em}
p.note{font-size:.85em;color:#444;margin:.2em 0}table.facts td,table.facts th{font-size:.85em;text-align:left;
border-bottom:1px solid #ddd}figure{margin:1em 0}figure img{max-width:100%}figcaption{font-size:.85em;color:#444}
.skipped{color:#a40}
"""

_SCRIPT = """
window.addEventListener("load", function () {
  var shown = function (el) { return el.getBoundingClientRect().height > 0; };
  var tables = Array.prototype.filter.call(document.querySelectorAll("table.results"), shown);
  var rows = 0;
  tables.forEach(function (t) { rows += Array.prototype.filter.call(t.tBodies[0].rows, shown).length; });
  var paired = Array.prototype.filter.call(document.querySelectorAll("table.paired"), shown).length;
  var figs = Array.prototype.filter.call(document.images, function (im) {
    return im.complete && im.naturalWidth > 0 && shown(im); }).length;
  var facts = {results_tables: tables.length, model_rows: rows, paired_tables: paired, figures: figs,
               figures_expected: document.images.length};
  document.body.setAttribute("data-rendered", JSON.stringify(facts));
  document.getElementById("page-summary").textContent = tables.length + " results tables, " + rows +
    " model rows, " + paired + " paired-test tables, " + figs + " of " + document.images.length + " figures shown.";
});
"""


def _unbroken(text: str) -> str:
    """``text`` escaped, each word in a ``span.nw``: a line may break between words only (never
    inside a model name such as ``navier-stokes``)."""
    return " ".join(f'<span class="nw">{escape(w)}</span>' for w in str(text).split(" "))


class HtmlRenderer:
    """A :class:`Table` as an HTML ``<table>`` (class ``results`` or ``paired``, id = its label):
    a caption, two header rows (bucket over metric), best values and significant differences in
    ``<strong>``, published rows marked ``†`` (class ``published``), ``n/a`` for no value, notes
    as ``<p class="note">`` after it."""

    def render(self, table: Table) -> str:
        """The table and its notes as HTML text."""
        groups = "".join(f'<th colspan="{len(g.metrics)}">{escape(bucket_label(g.bucket, "md"))}</th>'
                         for g in table.groups)
        stub = escape(MarkdownRenderer.stub[table.kind])
        if table.kind == "paired":
            metrics = "".join("<th>Δ [95% CI], p</th>" for _ in table.columns())
        else:
            metrics = "".join(f"<th>{escape(metric_title(m))}</th>" for _, m in table.columns())
        out = [f'<div class="wide"><table class="{table.kind}" id="{escape(label_safe(table.label))}">',
               f"<caption>{escape(table.caption)}</caption>",
               f'<thead><tr><th rowspan="2">{stub}</th>{groups}</tr><tr>{metrics}</tr></thead><tbody>']
        previous = None
        for row in table.rows:
            cls = ("published" + (" first" if previous is False else "")) if row.published else "run"
            previous = row.published
            name = " − ".join(_unbroken(n) for n in row.names) + (" †" if row.published else "")
            out.append(f'<tr class="{cls}"><td>{name}</td>' + "".join(f"<td>{self.cell(c)}</td>" for c in row.cells)
                       + "</tr>")
        out.append("</tbody></table></div>")
        out += [f'<p class="note">{self.note(n)}</p>' for n in table.notes]
        return "\n".join(out)

    def cell(self, cell: Cell) -> str:
        """One cell as HTML: the Markdown renderer's text, escaped, marked cells in ``<strong>``. A
        value with its interval never breaks (``table.results td`` does not wrap); a paired
        difference may break only between its interval and its p-value (each a ``span.nw``)."""
        text, marked = MarkdownRenderer.cell_text(cell)
        head, sep, p = text.rpartition(", p")
        html = (f'<span class="nw">{escape(head)},</span> <span class="nw">p{escape(p)}</span>'
                if sep and isinstance(cell, Difference) else escape(text))
        return f"<strong>{html}</strong>" if marked else html

    def note(self, note: Note) -> str:
        """One footnote as escaped text (the Markdown renderer's sentences)."""
        prefix, text, _ = MarkdownRenderer.note_text(note)
        return escape(prefix + text)


def _png_data(fig) -> str:
    """A matplotlib figure as a ``data:image/png;base64,...`` URI (110 dpi)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _figure(src: str, caption: str, name: str = "") -> str:
    """An HTML ``<figure>`` of the image URI ``src`` (``name``: its ``data-figure``, the file name
    ``sairbench figures`` gives the same figure)."""
    data = f' data-figure="{escape(name)}"' if name else ""
    return f'<figure{data}><img src="{src}" alt="{escape(caption)}"><figcaption>{escape(caption)}</figcaption></figure>'


def has_ratio_curves(per_image) -> bool:
    """True when per-image rows have ``model``, ``ratio`` and a finite value of a metric drawn
    against the hole ratio (``sairbench.figures.CURVE_LABELS``: PSNR, LPIPS)."""
    from sairbench.figures import CURVE_LABELS

    if not len(per_image) or not {"ratio", "model"} <= set(per_image.columns):
        return False
    return any(m in per_image.columns and np.isfinite(pd.to_numeric(per_image[m], errors="coerce")).any()
               for m in CURVE_LABELS)


def section_figures(section) -> list[str]:
    """The figures of a :class:`~sairbench.report.document.Section` as HTML ``<figure>``\\ s: the
    metric against hole ratio of its per-image rows (when :func:`has_ratio_curves`; not for the
    SIR mIoU probe, which has no per-image PSNR or LPIPS), the PSNR difference to the reference
    model (``sairbench.figures.ratio_difference_figure``, with two models or more), then the
    ``figures/qualitative.png`` of each run that gives rows."""
    out = []
    per, group = section.per_image, section.group
    if group is None:
        return out
    if has_ratio_curves(per):
        import matplotlib.pyplot as plt

        from sairbench.figures import ratio_curves_figure, ratio_difference_figure

        lp = [m.get("lpips") for m in group.metas if isinstance(m.get("lpips"), dict)]
        reason = "" if any(x.get("available") for x in lp) or not lp else str(lp[0].get("reason", ""))
        fig, _ = ratio_curves_figure(per, section.title, reason)
        out.append(_figure(_png_data(fig), f"Metric against hole ratio per model: {section.title} (bin means, 95% CI).",
                           "ratio_curves"))
        plt.close(fig)
        if "psnr" in per.columns and per["model"].nunique() > 1 and np.isfinite(pd.to_numeric(per["psnr"], errors="coerce")).any():
            fig, table = ratio_difference_figure(per, section.title)
            ref = table["reference"].iloc[0] if len(table) else ""
            out.append(_figure(_png_data(fig), f"PSNR difference to {ref} against hole ratio: {section.title} "
                                               "(mean of per-image differences per bin, 95% CI).", "ratio_difference"))
            plt.close(fig)
    shown = set(map(str, per["run"])) if len(per) and "run" in per.columns else set(group.runs)
    for meta in group.metas:
        if meta["_run"] not in shown:
            continue
        png = Path(meta["_dir"]) / "figures" / "qualitative.png"
        if png.is_file():
            src = "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode("ascii")
            out.append(_figure(src, f"Qualitative results of run {meta['_run']} (from `sairbench figures`).",
                               "qualitative"))
    return out


def _dataset(meta: dict, key: str, default: str = "?") -> str:
    """``meta["dataset"][key]`` as text (the dataset itself for ``"name"`` when it is a plain name)."""
    ds = meta.get("dataset")
    if isinstance(ds, dict):
        return describe(ds.get(key, default))
    return describe(ds) if key == "name" and ds is not None else default


#: the meta.json facts shown per run: (row title, function of the meta.json dict -> text)
FACTS = (
    ("protocol", lambda m: describe(m.get("protocol", "?"))),
    ("kind", lambda m: describe(m.get("kind") or DEFAULT_KIND)),
    ("dataset", lambda m: _dataset(m, "name")),
    ("split", lambda m: _dataset(m, "split")),
    ("size", lambda m: _dataset(m, "size")),
    ("limit", lambda m: _dataset(m, "limit", "none")),
    ("masks", lambda m: describe_masks(m.get("masks"))),
    ("seed", lambda m: describe(m.get("seed", "?"))),
    ("LPIPS", lpips_status),
    ("models", lambda m: describe(m.get("models", "?"))),
    ("device", lambda m: describe(m.get("device", "?"))),
    ("created", lambda m: describe(m.get("created", "?"))),
    ("versions", lambda m: ", ".join(f"{k} {v}" for k, v in (m.get("versions") or {}).items()) or "?"),
)


def _superseded_mark(meta: dict) -> str:
    """``" (superseded)"``, ``" (partly superseded)"`` or ``""`` after a run's name in the facts."""
    gone, models = meta.get("_superseded") or {}, meta.get("models")
    if not gone:
        return ""
    return " (superseded)" if isinstance(models, list) and set(map(str, models)) <= set(gone) else " (partly superseded)"


def facts_table(metas: list[dict]) -> str:
    """The meta.json facts of runs as an HTML table: one row per fact, one column per run (marked
    "superseded" when newer runs replace all its rows, "partly superseded" when some)."""
    head = "".join(f"<th>{escape(m['_run'])}{_superseded_mark(m)}</th>" for m in metas)
    rows = "".join(f"<tr><th>{escape(name)}</th>" + "".join(f"<td>{escape(str(fn(m)))}</td>" for m in metas) + "</tr>"
                   for name, fn in FACTS)
    return f'<table class="facts"><thead><tr><th>run</th>{head}</tr></thead><tbody>{rows}</tbody></table>'


def render_html(report) -> str:
    """A :class:`~sairbench.report.document.Report` as one self-contained HTML page (text)."""
    renderer = HtmlRenderer()
    body = ["<h1>sairbench report</h1>", '<p id="page-summary">(the tables below)</p>']
    if report.skipped:
        body.append(f'<p class="skipped">Skipped incomplete runs (no summary.csv or meta.json): '
                    f'{escape(", ".join(report.skipped))}.</p>')
    toc = "".join(f'<li><a href="#sec-{i}">{escape(s.title)}</a></li>' for i, s in enumerate(report.sections))
    body.append(f"<nav><ul>{toc}</ul></nav>")
    for i, section in enumerate(report.sections):
        body += [f'<section id="sec-{i}">', f"<h2>{escape(section.title)}</h2>", renderer.render(section.table)]
        body += [renderer.render(t) for t in section.paired]
        body += section_figures(section)
        if section.group is not None:
            body += ["<h3>Runs (meta.json)</h3>", facts_table(section.group.metas)]
        body.append("</section>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>sairbench report</title>"
            f"<style>{_STYLE}</style></head>\n<body>\n" + "\n".join(body) + f"\n<script>{_SCRIPT}</script>\n</body></html>\n")
