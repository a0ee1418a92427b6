"""Result folders -> LaTeX (booktabs) and Markdown tables in the shape of the paper's Table 1.

The package, by job:

* :mod:`~sairbench.report.naming`: bucket and metric labels, escapes, number formatting;
* :mod:`~sairbench.report.load`: result folders (``sairbench run``; finished and incomplete ones)
  and the published tables;
* :mod:`~sairbench.report.settings`: a run's protocol settings (meta.json) and the grouping of runs
  by them (a table never mixes settings);
* :mod:`~sairbench.report.table`: the table model, in no format (rows, cells, best marks, notes);
* :mod:`~sairbench.report.render`: one LaTeX and one Markdown renderer for every table;
* :mod:`~sairbench.report.paired`: paired tests between models and their tables;
* :mod:`~sairbench.report.document`: :func:`build_report` and :func:`write_report`, the whole report;
* :mod:`~sairbench.report.html`: the report as one self-contained HTML page.

Published tables (``results/published/*.csv``) can be added to a table as reference rows, marked
with a dagger and never counted for the bold "best" value (unless asked).
"""

from sairbench.report.document import Report, Section, build_report, write_documents, write_report
from sairbench.report.load import (
    PER_IMAGE_KEYS,
    PROTOCOL_TABLES,
    PUBLISHED_COLUMNS,
    PUBLISHED_DIR,
    SUMMARY_COLUMNS,
    find_runs,
    load_published,
    load_results,
    published_tables,
)
from sairbench.report.naming import (
    DECIMALS,
    DIRECTION,
    METRIC_NAMES,
    PUBLISHED_SOURCE,
    bucket_label,
    bucket_sort_key,
    canonical_bucket,
    latex_escape,
    md_escape,
    metric_header,
)
from sairbench.report.paired import paired_table, render_paired_latex, render_paired_markdown
from sairbench.report.render import LatexRenderer, MarkdownRenderer, render_latex, render_markdown
from sairbench.report.settings import RunGroup, group_runs, run_settings
from sairbench.report.table import Table, results_table

__all__ = [
    "DECIMALS", "DIRECTION", "METRIC_NAMES", "PER_IMAGE_KEYS", "PROTOCOL_TABLES", "PUBLISHED_COLUMNS",
    "PUBLISHED_DIR", "PUBLISHED_SOURCE", "SUMMARY_COLUMNS", "LatexRenderer", "MarkdownRenderer", "Report", "RunGroup",
    "Section", "Table", "bucket_label", "bucket_sort_key", "build_report", "canonical_bucket", "find_runs", "group_runs",
    "latex_escape", "load_published", "load_results", "md_escape", "metric_header", "paired_table", "published_tables",
    "render_latex", "render_markdown", "render_paired_latex", "render_paired_markdown", "results_table", "run_settings",
    "write_documents", "write_report",
]
