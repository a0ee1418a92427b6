"""`sairbench report` and `figures`: tables and plots from result folders."""

from __future__ import annotations

import math

from pathlib import Path
from typing import List, Optional

import typer

from sairbench.cli.common import app, console
from sairbench.errors import SairbenchError


def print_tables(report) -> None:
    """Print each section's main table of ``report`` (a :class:`~sairbench.report.Report`) on the
    console, in the report's order (models best first, published rows after, marked †) with the
    best value per column in bold; only the "all" column group when the table has one (rows
    without a value there left out)."""
    from rich.markup import escape
    from rich.table import Table as RichTable

    from sairbench.report.naming import bucket_label, format_number, metric_title

    for section in report.sections:
        table = section.table
        columns = table.columns()
        keep = [i for i, (b, _) in enumerate(columns) if b == "all"] or list(range(len(columns)))
        out = RichTable(title=escape(section.title), caption="best per column in bold; † published")
        out.add_column("model")
        for i in keep:
            bucket, metric = columns[i]
            out.add_column(f"{metric_title(metric)} {bucket_label(bucket, 'md')}", justify="right")
        for row in table.rows:
            if all(row.cells[i] is None or not math.isfinite(row.cells[i].mean) for i in keep):
                continue  # e.g. published rows without this column group
            cells = []
            for i in keep:
                cell = row.cells[i]
                text = format_number(cell.mean, cell.metric, "md") if cell is not None else "n/a"
                cells.append(f"[bold]{text}[/bold]" if cell is not None and cell.best else text)
            name = escape(" - ".join(row.names)) + (" †" if row.published else "")
            out.add_row(name, *cells, style="dim" if row.published else None)
        console.print(out)
        for note in table.notes:
            if note.kind == "superseded":
                console.print(escape(note.text))


@app.command()
def report(
    runs: Optional[List[Path]] = typer.Argument(None, help="result folders (default: every finished run in --results)"),
    results: Path = typer.Option(Path("results"), "--results", help="where to look for runs when no folder is given "
                                                                    "(the --results of `sairbench run`)"),
    all_runs: bool = typer.Option(False, "--all", help="every run's rows: a model in several runs of equal settings "
                                                        "gets one row per run, named 'model [run]' (default: the newest)"),
    out: Path = typer.Option(Path("results/report"), help="output folder for report.tex and report.md (and report.html)"),
    published: Optional[List[str]] = typer.Option(None, help="published tables to include as reference rows (e.g. table1_celebahq)"),
    buckets: Optional[List[str]] = typer.Option(None, help="bucket columns to show (e.g. --buckets all for Tab. 4/6 style)"),
    html: bool = typer.Option(False, "--html", help="also write report.html: one self-contained page with tables, "
                                                    "paired tests, figures and each run's settings"),
) -> None:
    """Render result folders as LaTeX (booktabs) and Markdown tables (and an HTML page).

    Runs with different settings (protocol, dataset, size, limit, masks, seed, metric conventions)
    get tables of their own; with no folder given, incomplete runs in --results are listed, not used.
    Runs of equal settings share a table: each model's row comes from the newest run that has it,
    and the older runs are named as superseded under the table (--all: every run's rows).
    """
    from sairbench.report import build_report, find_runs, write_documents

    skipped: list[str] = []
    if not runs:
        runs, incomplete = find_runs(results)
        skipped = [str(r) for r in incomplete]
        if skipped:
            console.print(f"skipped incomplete runs: {', '.join(skipped)} (no summary.csv or meta.json; "
                          "finish them with `sairbench run --resume` or `sairbench merge`)")
    if not runs:
        raise SairbenchError(f"no finished result folders found in {results}/; run `sairbench run` first, "
                             "pass folders, or point --results at where they are.")
    for r in runs:
        if not (Path(r) / "summary.csv").is_file():
            raise SairbenchError(f"{r}: no summary.csv; pass a folder written by `sairbench run`.")
    built = build_report([Path(r) for r in runs], published, buckets=buckets or None, skipped=skipped,
                         all_runs=all_runs)
    print_tables(built)
    for p in write_documents(built, out, html=html):
        console.print(f"wrote {p}")


@app.command()
def figures(
    run: Path = typer.Argument(..., help="a result folder written by `sairbench run` (or `sairbench eval`)"),
    out: Optional[Path] = typer.Option(None, help="output folder (default RUN/figures)"),
    images: int = typer.Option(4, help="rows of the qualitative grid"),
    image: Optional[List[str]] = typer.Option(None, "--image", help="image names for the grid (repeatable); default: the first of the bucket"),
    bucket: str = typer.Option("40-60%", help="hole-ratio bucket of the grid's masks"),
    grid: bool = typer.Option(True, help="draw the qualitative grid (re-runs each model on a few pairs)"),
    device: str = typer.Option("cpu"),
    threads: Optional[int] = typer.Option(None, help="torch CPU threads (default: the cores this process may use)"),
) -> None:
    """PSNR and LPIPS against hole ratio per model, and a qualitative grid (PNG and PDF)."""
    from sairbench.cli.common import set_threads
    from sairbench.figures import write_figures

    set_threads(threads)
    if images < 1:
        raise SairbenchError(f"--images {images}: give at least 1 image for the grid.")
    paths = write_figures(run, out, n_images=images, image_names=image, bucket=bucket, grid=grid, device=device)
    for p in paths:
        console.print(f"wrote {p}")
