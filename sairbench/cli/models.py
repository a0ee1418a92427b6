"""`sairbench models` and `inpaint`."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table

from sairbench.cli.common import app, console, parse_size
from sairbench.errors import SairbenchError


@app.command()
def models(name: Optional[str] = typer.Argument(None, help="a model or stage (name@tag): show everything about it")) -> None:
    """List every runnable model and stage (fits 80 columns); `sairbench models NAME` for one in full."""
    from rich import box

    from sairbench.shipped import runnable_models

    rows = runnable_models()
    if name is not None:
        show_model(name, rows)
        return
    table = Table(title="sairbench models", box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("name", "kind", "trained on", "ready here"):
        table.add_column(col, no_wrap=col != "ready here", overflow="fold")
    for row in rows:
        table.add_row(row["name"], row["kind"], row["trained on"], row["ready"])
    console.print(table)
    console.print("`sairbench models NAME`: what a model is, what it needs, how it was trained.", highlight=False)
    for failed in load_all_plugins(failed_only=True):
        console.print(f"[yellow]plugin[/yellow] {failed.name} ({failed.group}, package {failed.package}) failed to "
                      f"load: {failed.error}; `sairbench plugins` lists them all.", highlight=False, soft_wrap=True)


def load_all_plugins(failed_only: bool = False) -> list:
    """Load the four plugin groups through their registries; every entry point's status (or the failed ones)."""
    from sairbench import plugins
    from sairbench.data.registry import load_dataset_plugins
    from sairbench.metrics.registry import load_metric_plugins
    from sairbench.parts import load_part_plugins
    from sairbench.registry import list_models

    load_part_plugins()
    list_models()
    load_metric_plugins()
    load_dataset_plugins()
    return plugins.failures() if failed_only else plugins.statuses()


@app.command("plugins")
def plugins_command() -> None:
    """List every plugin entry point (groups sairbench.models, .parts, .metrics, .datasets) and whether it loaded."""
    from rich import box

    rows = load_all_plugins()
    table = Table(title="sairbench plugins", box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("group", "name", "package", "loaded"):
        table.add_column(col, no_wrap=True)
    for row in rows:
        table.add_row(row.group, row.name, row.package, "yes" if row.ok else "no (below)")
    console.print(table)
    for row in rows:
        if not row.ok:
            console.print(f"{row.name} ({row.group}, {row.value}): {row.error}", highlight=False, soft_wrap=True)
    console.print("How to write one: docs/plugins.md (entry points sairbench.models, sairbench.parts, sairbench.metrics, "
                  "sairbench.datasets).", highlight=False, soft_wrap=True)


def show_model(name: str, rows: list[dict]) -> None:
    """Every fact of one model or stage, as label: value lines."""
    found = [r for r in rows if r["name"] == name]
    if not found:
        known = ", ".join(r["name"] for r in rows)
        raise SairbenchError(f"unknown model or stage '{name}'; known: {known}.")
    row = found[0]
    for key in ("name", "kind", "plugin", "description", "trained on", "variant", "needs", "ready here", "recipe", "file"):
        value = row.get(key)
        if value:
            console.print(f"[bold]{key}:[/bold] {value}", highlight=False, soft_wrap=True)


@app.command()
def inpaint(
    args: List[str] = typer.Argument(..., metavar="[MODEL] IMAGE MASK",
                                     help="model name or checkpoint file (default: the best shipped model for "
                                          "photographs), input image (any size; colour, grayscale or RGBA), mask "
                                          "image (white = missing)"),
    out: Path = typer.Option(..., "--out", "-o", help="output PNG"),
    size: Optional[str] = typer.Option(None, help="output WIDTHxHEIGHT (implicit models only); default: the input size"),
    hole_value: int = typer.Option(255, help="grey level of holes in the mask file"),
    device: str = typer.Option("cpu", help="cpu, cuda or cuda:N"),
    precision: str = typer.Option("fp32", help="implicit models: fp32, fp16 (GPU) or bf16 autocast"),
    max_pixels: Optional[str] = typer.Option(
        None, "--max-pixels", help="pixel budget of the input and of the output, each (e.g. 16M, the default; "
        "or $SAIRBENCH_MAX_PIXELS); larger images are refused. Implicit models without semantics run in tiles."),
    threads: Optional[int] = typer.Option(None, help="torch CPU threads (default: the cores this process may use)"),
    self_ensemble: Optional[int] = typer.Option(None, help="implicit models: mean over 1 (off), 2, 4 or 8 flips/"
                                                "transposes (default: the model's own; the photo models use 8)"),
) -> None:
    """Inpaint one image (and super-resolve it with --size): `sairbench inpaint [MODEL] IMAGE MASK -o OUT.png`."""
    from sairbench.cli.common import set_threads
    from sairbench.inpaint_image import InpaintOptions, inpaint_image
    from sairbench.tiling import parse_pixels

    if len(args) not in (2, 3):
        raise SairbenchError(f"inpaint takes [MODEL] IMAGE MASK, not {len(args)} arguments; e.g. "
                             "`sairbench inpaint photo.png mask.png -o out.png`.")
    model, image, mask = (args[0], *map(Path, args[1:])) if len(args) == 3 else (None, *map(Path, args))
    opts = InpaintOptions(image=image, mask=mask, out=out, model=model, size=parse_size(size), hole_value=hole_value,
                          device=device, precision=precision, self_ensemble=self_ensemble,
                          max_pixels=parse_pixels(max_pixels) if max_pixels is not None else None)
    opts.check()
    set_threads(threads)
    written = inpaint_image(opts, console)
    console.print(f"wrote {written}")
