"""More commands on the same Typer app: outside methods, shard merging, mask export, figures."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from sairbench.cli import app, console, masks_app, print_summary  # noqa: F401
from sairbench.errors import SairbenchError

EXPORT_HELP = (
    "Write the exact masks, inputs and ground truth a protocol evaluates, for methods run elsewhere.\n\n"
    "OUT gets masks/ (255 = hole, manifest.json), gt/<image>.png, inputs/<image>__<mask>.png (the ground "
    "truth with the hole zeroed), pairs.csv and export.json. Score the outputs with `sairbench eval`."
)
EVAL_HELP = (
    "Score a method's saved outputs (LaMa, MISF, ... run elsewhere) under a protocol's conventions.\n\n"
    "Naming: the prediction for the pair (image, mask) is PRED_DIR/<pred_name>.png (or .jpg), where "
    "pred_name = <image>__<mask> is the column of pairs.csv (the stem of the exported input file). "
    "Only the pixels inside the hole are used (ground truth outside), exactly as `sairbench run` "
    "composites; rows are written to RESULTS/NAME (never overwritten) with model = NAME."
)


@masks_app.command("export", help=EXPORT_HELP)
def masks_export(
    protocol: str = typer.Option(..., help="protocol name (protocols/NAME.toml) or path"),
    out: Path = typer.Option(..., "--out", "-o", help="new output folder"),
    dataset: Optional[str] = typer.Option(None, help="override the protocol's dataset (as `sairbench run`)"),
    data_root: Optional[str] = typer.Option(None, help="dataset folder in its official layout"),
    limit: Optional[int] = typer.Option(None, help="number of images (as `sairbench run --limit`)"),
    mask_dir: Optional[str] = typer.Option(None, help="Liu et al. 2018 irregular mask folder (as `sairbench run`)"),
) -> None:
    from sairbench.outside import export_protocol
    from sairbench.protocol import load_protocol

    proto = load_protocol(protocol)
    folder, n = export_protocol(proto, out, dataset=dataset, data_root=data_root, limit=limit, mask_dir=mask_dir)
    console.print(f"wrote {n} image x mask pairs of '{proto.name}' to {folder} (pairs.csv, masks/, inputs/, gt/)")


@app.command("eval", help=EVAL_HELP)
def eval_outside(
    pred_dir: Path = typer.Option(..., help="predictions, one per pair: <image>__<mask>.png (or .jpg), RGB at the evaluation size"),
    gt_dir: Path = typer.Option(..., help="ground truth images (gt/ of `sairbench masks export`)"),
    mask_dir: Path = typer.Option(..., help="masks, 255 = hole (masks/ of `sairbench masks export`)"),
    name: str = typer.Option(..., help="method name: the model column of the results and the results folder name"),
    pairs: Optional[Path] = typer.Option(None, help="pairs.csv of the export (default: next to --mask-dir or --gt-dir)"),
    results: str = typer.Option("results", help="results root folder"),
    protocol: Optional[str] = typer.Option(None, help="protocol whose metrics and SSIM convention to use (default: the export's)"),
) -> None:
    from sairbench.outside import evaluate_predictions
    from sairbench.protocol import load_protocol

    proto = load_protocol(protocol) if protocol else None
    out = evaluate_predictions(pred_dir, gt_dir, mask_dir, name, pairs=pairs, results_root=results, proto=proto)
    print_summary(out, f"{name} (outside) — {out}")


@app.command()
def merge(
    runs: List[Path] = typer.Argument(..., help="the shard folders of one run (or the one folder the shards shared)"),
    device: str = typer.Option("cpu", help="recorded in meta.json"),
) -> None:
    """Merge the shards of `sairbench run --shard i/n` into per_image, summary and meta (in the first folder)."""
    from sairbench.evaluate import merge_shards

    out = merge_shards(runs, device=device)
    print_summary(out, f"merged — {out}")


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
