"""`sairbench models` and `inpaint`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from sairbench.cli.common import app, console, parse_size
from sairbench.errors import SairbenchError


@app.command()
def models() -> None:
    """List the registered models, what each needs and whether it can run here."""
    from sairbench.registry import list_models

    table = Table(title="sairbench models")
    for col in ("name", "kind", "needs", "available here", "description"):
        table.add_column(col)
    for spec in list_models():
        ok, why = spec.available()
        table.add_row(spec.name, spec.kind, spec.needs, "yes" if ok else f"no: {why}", spec.description)
    console.print(table)


@app.command()
def inpaint(
    model: str = typer.Argument(..., help="registered model name or checkpoint file"),
    image: Path = typer.Argument(..., help="input image (any size; colour, grayscale or RGBA)"),
    mask: Path = typer.Argument(..., help="mask image, white (255) = missing"),
    out: Path = typer.Option(..., "--out", "-o", help="output PNG"),
    size: Optional[str] = typer.Option(None, help="output WIDTHxHEIGHT (implicit models only); default: the input size"),
    hole_value: int = typer.Option(255, help="grey level of holes in the mask file"),
    device: str = typer.Option("cpu"),
    precision: str = typer.Option("fp32", help="implicit models: fp32, fp16 (GPU) or bf16 autocast"),
) -> None:
    """Inpaint one image (and super-resolve it with --size)."""
    import numpy as np
    import torch

    from sairbench.inpainter import composite
    from sairbench.io import read_image, read_mask, write_png
    from sairbench.metrics import to_uint8
    from sairbench.registry import create_model

    if Path(model).suffix in (".pt", ".safetensors"):
        from sairbench.checkpoint import load_model

        net = load_model(model)
    else:
        net = create_model(model)
    img = read_image(image)
    m = read_mask(mask, size=img.shape[:2], hole_value=hole_value, strict_size=True)
    net.to(torch.device(device))
    out_size = parse_size(size)
    if out_size is not None and out_size != img.shape[:2] and not getattr(net, "any_size", False):
        raise SairbenchError(f"model '{model}' answers the input size only; drop --size or use an implicit model.")
    x = torch.from_numpy(np.array(img)).permute(2, 0, 1)[None].float().div(255).to(device)
    mt = torch.from_numpy(m)[None, None].float().to(device)
    with torch.inference_mode():
        kw = {"precision": precision} if getattr(net, "any_size", False) else {}
        pred = net.inpaint(x * (1 - mt), mt, size=out_size, **kw).float().clamp(0, 1)
        if out_size is None or out_size == img.shape[:2]:  # at another size the model paints every pixel
            pred = composite(pred, x, mt)
    write_png(out, to_uint8(pred[0].cpu()))
    console.print(f"wrote {out} ({pred.shape[-1]}x{pred.shape[-2]})")
