"""`sairbench report` and `figures`: tables and plots from result folders."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from sairbench.cli.common import app, console
from sairbench.errors import SairbenchError


@app.command()
def report(
    runs: Optional[List[Path]] = typer.Argument(None, help="result folders (default: every folder in results/)"),
    out: Path = typer.Option(Path("results/report"), help="output folder for report.tex and report.md"),
    published: Optional[List[str]] = typer.Option(None, help="published tables to include as reference rows (e.g. table1_celebahq)"),
    buckets: Optional[List[str]] = typer.Option(None, help="bucket columns to show (e.g. --buckets all for Tab. 4/6 style)"),
) -> None:
    """Render result folders as LaTeX (booktabs) and Markdown tables."""
    from sairbench.report import write_report

    if not runs:
        runs = sorted(p.parent for p in Path("results").glob("*/summary.csv"))
    if not runs:
        raise SairbenchError("no result folders found in results/; run `sairbench run` first or pass folders.")
    for r in runs:
        if not (Path(r) / "summary.csv").is_file():
            raise SairbenchError(f"{r}: no summary.csv; pass a folder written by `sairbench run`.")
    paths = write_report([Path(r) for r in runs], out, published, buckets=buckets or None)
    for p in paths:
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
) -> None:
    """PSNR and LPIPS against hole ratio per model, and a qualitative grid (PNG and PDF)."""
    from sairbench.figures import write_figures

    if images < 1:
        raise SairbenchError(f"--images {images}: give at least 1 image for the grid.")
    paths = write_figures(run, out, n_images=images, image_names=image, bucket=bucket, grid=grid, device=device)
    for p in paths:
        console.print(f"wrote {p}")
