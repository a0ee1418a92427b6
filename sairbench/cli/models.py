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


def check_out_png(out: Path) -> None:
    """``-o``: a .png file path whose folder is (or can be) a folder; never an existing folder."""
    if out.is_dir():
        raise SairbenchError(f"--out {out}: is an existing folder; pass a file name such as {out / 'inpainted.png'}.")
    if out.suffix.lower() != ".png":
        raise SairbenchError(f"--out {out}: the output is written as PNG; use a name ending in .png.")
    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                raise SairbenchError(f"--out {out}: {parent} is a file, not a folder; choose another output path.")
            break


def _quantised(pred, rows: int = 1 << 20):
    """(1, 3, H, W) float tensor -> uint8 (H, W, 3), by blocks of rows (bounded float64 copies)."""
    import numpy as np

    from sairbench.metrics import to_uint8

    _, _, h, w = pred.shape
    out = np.empty((h, w, 3), np.uint8)
    step = max(1, rows // max(w, 1))
    for r in range(0, h, step):
        out[r:r + step] = to_uint8(pred[0, :, r:r + step])
    return out


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
    import warnings

    import numpy as np
    import torch

    from sairbench.io import read_image, read_mask, write_png
    from sairbench.models.self_ensemble import check_self_ensemble
    from sairbench.registry import create_model
    from sairbench.progress import progress
    from sairbench.tiling import (TILE_ABOVE, check_pixels, max_pixels as budget_in_force, parse_pixels, pixel_budget,
                                  query_progress)

    from sairbench import validate
    from sairbench.cli.common import set_threads
    from sairbench.domain import default_photo_model, domain_warning

    # every option first, before any model or image is loaded
    if len(args) not in (2, 3):
        raise SairbenchError(f"inpaint takes [MODEL] IMAGE MASK, not {len(args)} arguments; e.g. "
                             "`sairbench inpaint photo.png mask.png -o out.png`.")
    model, image, mask = (args[0], *map(Path, args[1:])) if len(args) == 3 else (None, *map(Path, args))
    validate.precision(precision)
    check_self_ensemble(self_ensemble, "--self-ensemble")
    dev = torch.device(validate.device(device))
    set_threads(threads)
    check_out_png(out)
    if not 0 <= hole_value <= 255:
        raise SairbenchError(f"--hole-value {hole_value} is not a grey level; use 0..255 (255 = white holes).")
    out_size = parse_size(size)
    budget = parse_pixels(max_pixels) if max_pixels is not None else budget_in_force()
    if out_size is not None:
        check_pixels(*out_size, f"--size {size}", budget)

    with pixel_budget(budget):
        if model is None:
            model = default_photo_model()
            console.print(f"model: {model} (the best shipped model for photographs; name another as the first argument)",
                          highlight=False)
        if Path(model).suffix in (".pt", ".safetensors"):
            from sairbench.checkpoint import load_model

            net = load_model(model)
        else:
            net = create_model(model)
        if self_ensemble is not None and hasattr(net, "set_self_ensemble"):
            net.set_self_ensemble(self_ensemble)
        img = read_image(image, max_pixels=budget)
        h, w = img.shape[:2]
        side = int(getattr(net, "min_side", 1))
        if h < side or w < side:
            raise SairbenchError(f"{image}: the image is {w}x{h} but model '{model}' needs at least {side}x{side} "
                                 f"pixels (its encoder downsamples by {side}); use a larger image.")
        if out_size is not None and out_size != (h, w) and not getattr(net, "any_size", False):
            raise SairbenchError(f"model '{model}' answers the input size only; drop --size or use an implicit model.")
        hole = read_mask(mask, size=(h, w), hole_value=hole_value, strict_size=True)
        line = domain_warning(net, model, (h, w), photograph=True)
        if line:
            console.print(f"[yellow]note:[/yellow] {line}", highlight=False)
        net.to(dev)
        with torch.inference_mode():
            with warnings.catch_warnings():  # PIL's buffer is read-only; .float() copies it before any write
                warnings.simplefilter("ignore", UserWarning)
                x = torch.from_numpy(img).permute(2, 0, 1)[None].to(dev).float().div_(255)
            x.masked_fill_(torch.from_numpy(hole).to(dev)[None, None], 0.0)  # the model never sees the hole
            mt = torch.from_numpy(hole).to(dev)[None, None].float()
            implicit = getattr(net, "any_size", False)
            kw = {"precision": precision} if implicit else {}
            oh, ow = out_size or (h, w)
            work = oh * ow
            if implicit and (oh, ow) == (h, w) and h * w <= TILE_ABOVE:  # known pixels are copied below: query the hole alone
                kw["region"], work = "hole", int(hole.sum())  # (larger inputs go through the memory-bounded tiles)
            passes = getattr(net, "self_ensemble", 1)  # the self-ensemble answers every pixel n times
            with progress(work * passes, f"inpaint {model}", "pixels", console) as bar, query_progress(bar.advance):
                pred = net.inpaint(x, mt, size=out_size, **kw)
            del x, mt
            result = _quantised(pred.cpu())
            del pred
        if out_size is None or out_size == (h, w):  # at another size the model paints every pixel
            np.copyto(result, img, where=~hole[..., None])  # known pixels exactly as read
    write_png(out, result)
    console.print(f"wrote {out} ({result.shape[1]}x{result.shape[0]})")
