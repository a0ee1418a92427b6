"""The ``sairbench`` command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.table import Table

from sairbench.errors import SairbenchError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Benchmark suite for implicit-representation inpainting (SAIR, LIIF, LTE, ...).")
masks_app = typer.Typer(no_args_is_help=True, help="Generate or export mask sets.")
app.add_typer(masks_app, name="masks")
console = Console()


def _parse_size(text: Optional[str]) -> Optional[tuple[int, int]]:
    if text is None:
        return None
    try:
        w, h = (int(v) for v in text.lower().split("x"))
        if w <= 0 or h <= 0:
            raise ValueError
    except ValueError:
        raise SairbenchError(f"--size '{text}' is not WIDTHxHEIGHT (e.g. 512x512).") from None
    return h, w


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


def print_summary(run: Path, title: str) -> None:
    import pandas as pd

    summary = pd.read_csv(run / "summary.csv")
    metrics = list(dict.fromkeys(summary["metric"]))
    buckets = [b for b in dict.fromkeys(summary["bucket"]) if b != "all"]
    table = Table(title=title)
    table.add_column("model")
    table.add_column("bucket")
    for m in metrics:
        table.add_column(m, justify="right")
    for (model, bucket), g in summary[summary["bucket"].isin(buckets)].groupby(["model", "bucket"], sort=False):
        vals = {r.metric: r for r in g.itertuples()}
        cells = []
        for m in metrics:
            r = vals.get(m)
            if r is None or r.mean != r.mean:
                cells.append("n/a")
            else:
                digits = 2 if m == "psnr" else 4
                cells.append(f"{r.mean:.{digits}f}±{r.ci95:.{digits}f}" if r.ci95 == r.ci95 else f"{r.mean:.{digits}f}")
        table.add_row(model, bucket, *cells)
    console.print(table)


@app.command()
def run(
    protocol: str = typer.Option("liu2018-masks", help="protocol name (protocols/NAME.toml) or path"),
    dataset: Optional[str] = typer.Option(None, help="override the protocol's dataset (synthetic-faces, celeba-hq, ade20k, folder, photos)"),
    data_root: Optional[str] = typer.Option(None, help="dataset folder in its official layout"),
    model: Optional[List[str]] = typer.Option(None, "--model", "-m", help="models to run (repeatable); default: the protocol's"),
    limit: Optional[int] = typer.Option(None, help="number of images"),
    mask_dir: Optional[str] = typer.Option(None, help="Liu et al. 2018 irregular mask folder"),
    name: Optional[str] = typer.Option(None, help="results folder name under results/"),
    results: str = typer.Option("results", help="results root folder"),
    resume: bool = typer.Option(False, help="continue an interrupted run of the same name, skipping finished rows"),
    shard: str = typer.Option("0/1", help="i/n: run the i-th of n shards (merge with `sairbench merge`)"),
    train_missing: bool = typer.Option(False, help="train models whose checkpoint is missing, with the recorded commands"),
    checkpoint: Optional[List[str]] = typer.Option(None, help="NAME=PATH: evaluate model NAME from this checkpoint; "
                                                   "NAME may be a variant like sair@step1500 (repeatable)"),
    device: str = typer.Option("cpu", help="cpu, cuda, cuda:1, ..."),
) -> None:
    """Run a protocol: every model x image x mask, scored per image, summarised by bucket."""
    from sairbench.evaluate import run_protocol
    from sairbench.protocol import load_protocol

    proto = load_protocol(protocol)
    try:
        i, n = (int(v) for v in shard.split("/"))
        assert 0 <= i < n
    except (ValueError, AssertionError):
        raise SairbenchError(f"--shard '{shard}' is not i/n with 0 <= i < n (e.g. 0/2).") from None
    checkpoints: dict[str, str] = {}
    if train_missing:
        from sairbench.shipped import train_missing_models

        checkpoints.update(train_missing_models(model or proto.models.get("names", ["available"]), device=device))
    for item in checkpoint or []:
        key, sep, path = item.partition("=")
        if not sep or not key or not Path(path).is_file():
            raise SairbenchError(f"--checkpoint '{item}' is not NAME=PATH of an existing file (e.g. sair=runs/sair/last.pt).")
        checkpoints[key] = path
    out = run_protocol(proto, dataset=dataset, data_root=data_root, models=model, limit=limit, mask_dir=mask_dir,
                       results_root=results, name=name, resume=resume, device=device, shard=(i, n),
                       checkpoints=checkpoints or None, console=console)
    if (out / "summary.csv").is_file():
        print_summary(out, f"{proto.name} — {out}")
        meta = json.loads((out / "meta.json").read_text())
        if not meta.get("lpips", {}).get("available", True):
            console.print(f"[yellow]LPIPS is NaN: {meta['lpips']['reason']}[/yellow]")
        if meta.get("skipped_models"):
            console.print(f"skipped (not available here): {', '.join(meta['skipped_models'])}")
    else:
        console.print(f"shard {shard} written to {out}; run the other shards, then `sairbench merge {out}`.")


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
def train(
    model: str = typer.Argument(..., help="preset to train (liif, lte, edsr-wo, ...)"),
    dataset: str = typer.Option("synthetic-faces", help="training dataset"),
    data_root: Optional[str] = typer.Option(None, help="dataset folder in its official layout"),
    size: str = typer.Option("tiny", help="model size: tiny or paper"),
    schedule: str = typer.Option("tiny", help="tiny (1e-3 -> 1e-4) or paper (1e-4 halved every 100 epochs)"),
    steps: Optional[int] = typer.Option(None, help="training steps (default: the schedule's)"),
    epochs: Optional[int] = typer.Option(None, help="epochs for the paper schedule (default 200)"),
    batch: int = typer.Option(16, help="global batch size"),
    queries: int = typer.Option(1024, help="query pixels per image"),
    hole_fraction: float = typer.Option(0.5, help="share of the query pixels drawn inside the hole (rest uniform)"),
    lr: Optional[float] = typer.Option(None, help="initial learning rate (default: the schedule's)"),
    lr_final: Optional[float] = typer.Option(None, help="tiny schedule: final learning rate (default 1e-4)"),
    init: Optional[str] = typer.Option(None, help="start from this checkpoint's weights (same model), fresh optimizer"),
    image_size: int = typer.Option(64, help="training image size"),
    seed: int = typer.Option(0),
    out: Optional[Path] = typer.Option(None, help="run folder (default runs/MODEL)"),
    save_every: int = typer.Option(500, help="checkpoint every N steps"),
    keep_every: Optional[int] = typer.Option(None, help="also keep a step_N.pt snapshot every N steps"),
    resume: bool = typer.Option(False, help="continue from OUT/last.pt"),
    export: Optional[Path] = typer.Option(None, help="also write the final weights as safetensors here"),
    device: str = typer.Option("cpu"),
    threads: Optional[int] = typer.Option(None, help="torch CPU threads"),
    workers: int = typer.Option(0, help="data-loading processes preparing batches ahead (same batches, same weights)"),
    fast: bool = typer.Option(True, help="fast decoder path (equal outputs; on GPUs the plain path can train faster)"),
    semantic_checkpoint: Optional[str] = typer.Option(None, help="`sir`: trained semantic encoder (default: shipped)"),
    sir_checkpoint: Optional[str] = typer.Option(None, help="semantic presets: trained SIR stage (default: shipped)"),
    joint: bool = typer.Option(False, help="semantic presets: train SIR jointly through the colour loss"),
    semantic_encoder: str = typer.Option("indomain", help="`sir`: indomain (trained here), clip (open_clip ViT-B/16) or sam"),
) -> None:
    """Train a model: `semantic` (in-domain encoder), `sir` (stage 1), or a preset (L1 colour loss).

    Semantic presets (sair, semlte, edsr-w, nfs, ous, sam-encoder) train AIR over a frozen SIR
    (two stages, as the official release) unless --joint. Multi-GPU: torchrun.
    """
    from sairbench.checkpoint import export_safetensors, load_checkpoint
    from sairbench.train import Schedule, TrainConfig
    from sairbench.train import train as run_training

    if not 0.0 <= hole_fraction <= 1.0:
        raise SairbenchError(f"--hole-fraction {hole_fraction}: give a share between 0 and 1.")
    sched = Schedule.preset(schedule, steps, batch, lr=lr, lr_final=lr_final)
    cfg = TrainConfig(model=model, size=size, dataset=dataset, data_root=data_root, image_size=image_size,
                      schedule=sched, epochs=epochs, queries=queries, hole_fraction=hole_fraction, init=init, seed=seed,
                      save_every=save_every, keep_every=keep_every, out=str(out or Path("runs") / model), device=device, threads=threads,
                      workers=workers, fast=fast, semantic_checkpoint=semantic_checkpoint, sir_checkpoint=sir_checkpoint, joint=joint,
                      semantic_encoder=semantic_encoder)
    path = run_training(cfg, resume=resume)
    console.print(f"checkpoint: {path}")
    if export is not None:
        export_safetensors(load_checkpoint(path), export)
        console.print(f"exported: {export}")


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
    out_size = _parse_size(size)
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


@masks_app.command("generate")
def masks_generate(
    out: Path = typer.Option(..., "--out", "-o", help="output folder (PNGs + manifest.json)"),
    per_bucket: int = typer.Option(100, help="masks per hole-ratio bucket"),
    size: int = typer.Option(256, help="mask size (square)"),
    seed: int = typer.Option(0),
    overwrite: bool = typer.Option(False, help="replace an existing mask set in OUT"),
) -> None:
    """Write a seeded irregular-mask set: each bucket filled to PER_BUCKET masks."""
    from sairbench.masks import generate_mask_set, write_mask_set

    items = generate_mask_set(per_bucket, (size, size), seed=seed)
    manifest = write_mask_set(out, items, {"generator": "sairbench.masks.generate_mask_set", "seed": seed,
                                           "size": size, "per_bucket": per_bucket}, overwrite=overwrite)
    console.print(f"wrote {len(items)} masks and {manifest}")


from sairbench import cli_extra  # noqa: E402,F401  (eval, merge, masks export, figures)


def main() -> None:
    try:
        app(standalone_mode=False)
    except SairbenchError as err:
        Console(stderr=True).print(f"[red]error:[/red] {err}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        Console(stderr=True).print("interrupted; rerun with --resume to continue.")
        sys.exit(130)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except Exception as e:  # click usage errors
        import click

        if isinstance(e, click.exceptions.ClickException):
            e.show()
            sys.exit(e.exit_code)
        if isinstance(e, click.exceptions.Abort):
            sys.exit(1)
        raise


if __name__ == "__main__":
    main()
