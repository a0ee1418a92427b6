"""Names and spellings: bucket and metric labels, LaTeX/Markdown escapes, number formatting.

Everything here is plain text in, plain text out. The two output formats differ only in a few
spellings (how a percent range, a missing value or infinity is written, how text is escaped);
those sit in one :class:`Spelling` per format, chosen once by :func:`spelling_of`.

Bucket names are matched loosely: ``"0-20"``, ``"0-20%"``, ``"0.0-0.2"`` and ``"[0, 20)"`` are the
same bucket; ``"all"`` is every image.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable

import numpy as np

from sairbench.metrics import MetricField
from sairbench.metrics.registry import HIGHER_IS_BETTER as DIRECTION  # noqa: F401  (live: plugins' metrics too)
#: Display name of every metric (the registry's titles).
METRIC_NAMES = MetricField("title")
#: Printed decimals per metric (the registry's; 3 for a metric it does not know).
DECIMALS = MetricField("decimals")
#: Where the paper's published tables come from, for the dagger note.
PUBLISHED_SOURCE = "the SAIR paper"
#: The paper's name of each published table (the ``table`` column of results/published/*.csv).
PAPER_TABLE: dict[str, str] = {"table1": "Table 1", "table2": "Table 2", "table4": "Table 4", "table6": "Table 6"}

_BUCKET_RE = re.compile(
    r"^[\[\(]?\s*(\d+(?:\.\d+)?)\s*%?\s*(?:-|–|_|,|to)\s*(\d+(?:\.\d+)?)\s*%?\s*[\]\)]?$"
)


# --------------------------------------------------------------------------------------------
# buckets and metrics, format-free
# --------------------------------------------------------------------------------------------


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
    """Sort key of a bucket: numeric buckets by their lower bound, then other names, then "all"."""
    c = canonical_bucket(bucket)
    if c == "all":
        return (2, 0.0, c)
    m = _BUCKET_RE.match(c)
    if m:
        return (0, float(m.group(1)), c)
    return (1, 0.0, c)


def metric_title(metric: str) -> str:
    """Plain-text column title of a metric: its display name and an arrow for its direction
    (``"PSNR↑"``, ``"L1↓"``; a metric of unknown direction gets no arrow)."""
    hib = DIRECTION.get(metric)
    return METRIC_NAMES.get(metric, metric) + ("" if hib is None else ("↑" if hib else "↓"))


def rounded(value: float, metric: str) -> float:
    """``value`` rounded to the printed precision of ``metric`` (None, NaN and inf unchanged):
    what "best value" compares, so that ties in print are ties in bold."""
    if value is None or not np.isfinite(value):
        return value
    return round(float(value), DECIMALS.get(metric, 3))


def label_safe(label: str) -> str:
    """A LaTeX label / HTML anchor id: every character but ``A-Za-z0-9:._-`` becomes ``-``."""
    return re.sub(r"[^A-Za-z0-9:._\-]", "-", str(label))


def loose_name(name) -> str:
    """Lower-case letters and digits only, to match dataset names loosely (``"CelebA-HQ"`` ~ ``"celeba_hq"``)."""
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


# --------------------------------------------------------------------------------------------
# escapes
# --------------------------------------------------------------------------------------------

_LATEX_SPECIALS = {
    "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
    "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}",
    "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}",
}
_LATEX_UNICODE = {
    "±": r"$\pm$", "×": r"$\times$", "–": "--", "—": "---", "↑": r"$\uparrow$", "↓": r"$\downarrow$",
    "†": r"$^\dagger$", "∞": r"$\infty$", "’": "'", "‘": "`", "“": "``", "”": "''", "…": r"\dots{}",
    "≈": r"$\approx$", "·": r"$\cdot$", "Δ": r"$\Delta$", "σ": r"$\sigma$", "µ": r"$\mu$", "μ": r"$\mu$",
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


# --------------------------------------------------------------------------------------------
# per-format spellings
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spelling:
    """How one output format writes labels and numbers.

    escape: plain text -> safe text; percent_range: format string of a bucket range with
    ``{lo}`` and ``{hi}``; missing: a NaN or absent value; plus_infinity, minus_infinity: +-inf.
    """

    escape: Callable[[str], str]
    percent_range: str
    missing: str
    plus_infinity: str
    minus_infinity: str


LATEX = Spelling(latex_escape, "{lo}\\%--{hi}\\%", "--", "$\\infty$", "$-\\infty$")
MARKDOWN = Spelling(md_escape, "{lo}–{hi}%", "n/a", "∞", "-∞")


def spelling_of(fmt: str) -> Spelling:
    """The spelling of ``fmt``: ``"latex"`` -> :data:`LATEX`, anything else -> :data:`MARKDOWN`."""
    return LATEX if fmt == "latex" else MARKDOWN


def bucket_label(bucket, fmt: str = "latex") -> str:
    """Column-group title of a bucket in ``fmt``: ``0%-20%`` (LaTeX ``0\\%--20\\%``, Markdown
    ``0–20%``), ``All mask ratios``; other bucket names escaped."""
    spelling = spelling_of(fmt)
    c = canonical_bucket(bucket)
    if c == "all":
        return "All mask ratios"
    m = _BUCKET_RE.match(c)
    if m:
        return spelling.percent_range.format(lo=m.group(1), hi=m.group(2))
    return spelling.escape(c)


def metric_header(metric: str, fmt: str = "latex") -> str:
    """Column title of a metric in ``fmt``: :func:`metric_title` escaped (``PSNR$\\uparrow$``, ``PSNR↑``)."""
    return spelling_of(fmt).escape(metric_title(metric))


def format_number(value: float, metric: str, fmt: str = "latex") -> str:
    """``value`` with the decimals of ``metric`` (:data:`DECIMALS`, default 3); None/NaN and +-inf
    spelled as ``fmt`` writes them."""
    spelling = spelling_of(fmt)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return spelling.missing
    value = float(value)
    if math.isinf(value):
        return spelling.plus_infinity if value > 0 else spelling.minus_infinity
    return f"{value:.{DECIMALS.get(metric, 3)}f}"
