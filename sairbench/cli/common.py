"""The Typer app, its console and what several command groups share."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from sairbench.errors import SairbenchError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Benchmark suite for implicit-representation inpainting (SAIR, LIIF, LTE, ...).")
masks_app = typer.Typer(no_args_is_help=True, help="Generate or export mask sets.")
app.add_typer(masks_app, name="masks")
console = Console()


def version_text() -> str:
    """'sairbench X (commit C; shipped checkpoints from commit S)'."""
    import json

    from sairbench import __version__
    from sairbench.checkpoint import git_commit, shipped_path

    shipped = "none shipped"
    path = shipped_path("liif")
    if path.is_file():
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {}).get("sairbench", "{}"))
        shipped = f"shipped checkpoints from commit {str(meta.get('provenance', {}).get('commit', 'unknown'))[:10]}"
    return f"sairbench {__version__} (source commit {git_commit()[:10]}; {shipped})"


def _version(value: bool) -> None:
    if value:
        console.print(version_text(), highlight=False)
        raise typer.Exit(0)


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="print the version and the commit of the shipped checkpoints")) -> None:
    """Benchmark suite for implicit-representation inpainting (SAIR, LIIF, LTE, ...)."""


def set_threads(threads: Optional[int]) -> None:
    """torch CPU threads for this command: ``threads``, or by default the cores this process may
    use (never more, so that side-by-side commands can be given --threads 1 each)."""
    import torch

    from sairbench import validate
    from sairbench.machine import usable_cores

    validate.positive("--threads", threads)
    validate.threads_bound("--threads", threads)
    if threads is None:
        threads = max(1, min(torch.get_num_threads(), usable_cores()))
    torch.set_num_threads(threads)


def parse_size(text: Optional[str]) -> Optional[tuple[int, int]]:
    if text is None:
        return None
    try:
        w, h = (int(v) for v in text.lower().split("x"))
        if w <= 0 or h <= 0:
            raise ValueError
    except ValueError:
        raise SairbenchError(f"--size '{text}' is not WIDTHxHEIGHT (e.g. 512x512).") from None
    return h, w


BEST_MARK = "*"  # marks the best value of a bucket and metric; survives a pipe, unlike bold


def summary_legend(first_metric: str) -> str:
    """The line under the terminal table that says how to read it."""
    return (f"± = 95 % CI over images; ↑ higher is better, ↓ lower; {BEST_MARK} = best in its bucket "
            f"(bold on a terminal); per bucket, models best first by {first_metric}")


def print_summary(run: Path, title: str) -> None:
    """The run's summary as a rich table: per bucket, models best first (by that bucket's first
    metric), the best value of each bucket and metric marked (``BEST_MARK``, bold on a terminal),
    a legend line, then the folder written (and a semantic-headroom run's decomposition). Directions
    and decimals are the metric registry's (``sairbench.metrics.METRICS``; a metric it does not know:
    higher is better, 3 decimals); the best is compared at the printed precision."""
    _print_run_summary(run, title)
    if (run / "headroom.csv").is_file():  # a semantic-headroom run: its decomposition too
        from sairbench.headroom import print_summary as print_headroom

        print_headroom(run, console)


def _print_run_summary(run: Path, title: str) -> None:
    import math

    import pandas as pd

    from sairbench.metrics import METRICS

    summary = pd.read_csv(run / "summary.csv")
    metrics = list(dict.fromkeys(summary["metric"]))
    buckets = [b for b in dict.fromkeys(summary["bucket"]) if b != "all"]
    value = {(r.model, r.bucket, r.metric): (r.mean, r.ci95) for r in summary.itertuples()}

    def decimals(metric: str) -> int:
        return METRICS[metric].decimals if metric in METRICS else 3

    def higher(metric: str) -> bool:
        return metric not in METRICS or METRICS[metric].higher_is_better

    def score(model: str, bucket: str, metric: str, printed: bool = False) -> float:
        """The mean, negated when lower is better (-inf for none); rounded as printed with ``printed``."""
        mean = value.get((model, bucket, metric), (math.nan,))[0]
        if mean != mean:
            return -math.inf
        if printed and math.isfinite(mean):
            mean = round(mean, decimals(metric))
        return mean if higher(metric) else -mean

    all_models = list(dict.fromkeys(summary["model"]))
    table = Table(title=title, caption=summary_legend(metrics[0]))
    table.add_column("model", justify="left", no_wrap=True, min_width=max(len(m) for m in all_models))  # never cut
    table.add_column("bucket", justify="left", no_wrap=True)
    for m in metrics:
        table.add_column(f"{m} {'↑' if higher(m) else '↓'}", justify="right")
    for bucket in buckets:
        models = sorted(all_models, key=lambda x: -score(x, bucket, metrics[0]))
        best = {m: max(score(x, bucket, m, True) for x in models) for m in metrics}
        for model in models:
            cells = []
            for m in metrics:
                mean, ci = value.get((model, bucket, m), (math.nan, math.nan))
                if mean != mean:
                    cells.append("n/a")
                    continue
                digits = decimals(m)
                text = f"{mean:.{digits}f}±{ci:.{digits}f}" if ci == ci else f"{mean:.{digits}f}"
                is_best = score(model, bucket, m, True) == best[m] and math.isfinite(best[m])
                cells.append(f"[bold]{text}{BEST_MARK}[/bold]" if is_best else f"{text} ")
            table.add_row(model, bucket, *cells)
        table.add_section()
    console.print(table)
    console.print(f"wrote {run}", highlight=False, soft_wrap=True)
