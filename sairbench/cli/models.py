"""`sairbench models` and `inpaint`."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table

from sairbench.cli.common import app, console, parse_size
from sairbench.errors import SairbenchError


@app.command()
def models() -> None:
    """List the registered models, what each needs and whether it can run here."""
    from sairbench.registry import list_models

    from sairbench.domain import domain_text, shipped_domain

    table = Table(title="sairbench models")
    for col in ("name", "kind", "trained on", "needs", "available here", "description"):
        table.add_column(col, no_wrap=col in ("name", "kind", "trained on"))
    for spec in list_models():
        ok, why = spec.available()
        trained = domain_text(shipped_domain(spec.name)) if spec.preset is not None else "-"
        table.add_row(spec.name, spec.kind, trained, spec.needs, "yes" if ok else f"no: {why}", spec.description)
        for tag, recipe in (spec.preset.recipes.items() if spec.preset is not None else ()):
            name = f"{spec.name}@{tag}"
            domain = shipped_domain(name) if recipe.get("dataset") not in (None, "synthetic-faces") else None
            if domain:  # shipped checkpoints for another domain (the photo models)
                table.add_row(name, spec.kind, domain_text(domain), "shipped checkpoint", "yes",
                              f"{spec.description}; {variant_text(recipe)}")
    console.print(table)


def variant_text(recipe: dict) -> str:
    """How a recipe's model departs from the paper's (prefill, input residual, upsampling, self-ensemble)."""
    parts = []
    if recipe.get("prefill", "zero") != "zero":
        what = {"smooth": "biharmonic", "pull-push": "pull-push"}.get(recipe["prefill"], recipe["prefill"])
        parts.append(f"sees a {what} fill of the hole" + (" and predicts a correction to it" if recipe.get("input_residual") else ""))
    if recipe.get("upsample", "transposed") != "transposed":
        parts.append(f"{recipe['upsample']} upsampling")
    if recipe.get("self_ensemble", 1) != 1:
        parts.append(f"answers as the mean over {recipe['self_ensemble']} flips/transposes")
    return ", ".join(parts) or "the paper's model"


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
