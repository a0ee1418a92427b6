"""`sairbench run`, `merge` and `eval`: protocols on models, shard merging, outside methods' outputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from sairbench.cli.common import app, console, print_summary, set_threads
from sairbench.errors import SairbenchError


EVAL_HELP = (
    "Score a method's saved outputs (LaMa, MISF, ... run elsewhere) under a protocol's conventions.\n\n"
    "Naming: the prediction for the pair (image, mask) is PRED_DIR/<pred_name>.png (or .jpg), where "
    "pred_name = <image>__<mask> is the column of pairs.csv (the stem of the exported input file). "
    "Only the pixels inside the hole are used (ground truth outside), exactly as `sairbench run` "
    "composites; rows are written to RESULTS/NAME (never overwritten) with model = NAME."
)


def parse_checkpoints(items: Optional[List[str]]) -> dict[str, str]:
    """``--checkpoint NAME=PATH`` options as {name: path}; each a one-line error when malformed."""
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, path = item.partition("=")
        if not sep or not key or not Path(path).is_file():
            raise SairbenchError(f"--checkpoint '{item}' is not NAME=PATH of an existing file (e.g. sair=runs/sair/last.pt).")
        out[key] = path
    return out


def parse_shard(text: str) -> tuple[int, int]:
    """``'i/n'`` with 1 <= i <= n (1-based, like Jest and Playwright) -> (i, n)."""
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise SairbenchError(f"--shard '{text}' is not i/n (e.g. 1/2 and 2/2 for two shards).") from None
    if i == 0 and n > 0:
        raise SairbenchError(f"--shard {text}: shards are numbered from 1; use 1/{n} .. {n}/{n}.")
    if not 1 <= i <= n:
        raise SairbenchError(f"--shard '{text}' needs 1 <= i <= n (e.g. 1/2 and 2/2 for two shards).")
    return i, n


@app.command()
def run(
    protocol: str = typer.Option("liu2018-masks", help="protocol name (protocols/NAME.toml) or path"),
    dataset: Optional[str] = typer.Option(None, help="override the protocol's dataset (synthetic-faces, celeba-hq, ade20k, folder, photos)"),
    data_root: Optional[str] = typer.Option(None, help="dataset folder in its official layout"),
    model: Optional[List[str]] = typer.Option(None, "--model", "-m", help="models to run (repeatable); default: the protocol's"),
    limit: Optional[int] = typer.Option(None, help="number of test images (default: the dataset's: 100 built-in, the whole test split of celeba-hq/ade20k)"),
    size: Optional[int] = typer.Option(None, help="evaluation size (default: the dataset's: 64 built-in, 256 celeba-hq/ade20k)"),
    per_bucket: Optional[int] = typer.Option(None, help="masks per hole-ratio bucket (default: the protocol's)"),
    fit: Optional[str] = typer.Option(None, help="non-square images: center-crop or resize (default: the dataset's)"),
    mask_dir: Optional[str] = typer.Option(None, help="Liu et al. 2018 irregular mask folder"),
    name: Optional[str] = typer.Option(None, help="results folder name under results/"),
    results: str = typer.Option("results", help="results root folder"),
    resume: bool = typer.Option(False, help="continue an interrupted run of the same name, skipping finished rows"),
    shard: str = typer.Option("1/1", help="i/n: run the i-th of n shards, 1-based; shards of one run share its folder"),
    train_missing: bool = typer.Option(False, help="train models whose checkpoint is missing, with the recorded commands"),
    checkpoint: Optional[List[str]] = typer.Option(None, help="NAME=PATH: evaluate model NAME from this checkpoint; "
                                                   "NAME may be a variant like sair@step1500 (repeatable)"),
    device: str = typer.Option("cpu", help="cpu, cuda, cuda:1, ..."),
    threads: Optional[int] = typer.Option(None, help="torch CPU threads (default: the cores this process may use; give 1 "
                                          "to each of several commands run side by side)"),
    self_ensemble: Optional[int] = typer.Option(None, help="implicit models answer as the mean over 1 (off), 2, 4 or 8 "
                                                "flips/transposes (default: each model's own; the photo models use 8)"),
) -> None:
    """Run a protocol: every model x image x mask, scored per image, summarised by bucket."""
    from sairbench.models.self_ensemble import check_self_ensemble
    from sairbench.run import run_protocol
    from sairbench.protocol import load_protocol

    from sairbench import validate

    proto = load_protocol(protocol)
    validate.device(device)
    check_self_ensemble(self_ensemble, "--self-ensemble")
    set_threads(threads)
    i, n = parse_shard(shard)
    checkpoints: dict[str, str] = {}
    if train_missing:
        from sairbench.shipped import train_missing_models

        checkpoints.update(train_missing_models(model or proto.models.get("names", ["available"]), device=device))
    checkpoints.update(parse_checkpoints(checkpoint))
    out = run_protocol(proto, dataset=dataset, data_root=data_root, models=model, limit=limit, mask_dir=mask_dir,
                       results_root=results, name=name, resume=resume, device=device, shard=(i - 1, n),
                       size=size, fit=fit, per_bucket=per_bucket, self_ensemble=self_ensemble,
                       checkpoints=checkpoints or None, console=console)
    if (out / "summary.csv").is_file():
        print_summary(out, f"{proto.name} — {out}")
        meta = json.loads((out / "meta.json").read_text())
        if meta.get("skipped_models"):
            console.print(f"skipped (not available here): {', '.join(meta['skipped_models'])}")
    else:
        console.print(f"shard {i}/{n} written to {out}; run the other shards with the same options (they share "
                      f"this folder; the last one to finish writes the tables), or `sairbench merge {out}`.")


@app.command("eval", help=EVAL_HELP)
def eval_outside(
    pred_dir: Path = typer.Option(..., help="predictions, one per pair: <image>__<mask>.png (or .jpg), RGB at the evaluation size"),
    gt_dir: Path = typer.Option(..., help="ground truth images (gt/ of `sairbench masks export`)"),
    mask_dir: Path = typer.Option(..., help="masks, 255 = hole (masks/ of `sairbench masks export`)"),
    name: str = typer.Option(..., help="method name: the model column of the results and the results folder name"),
    pairs: Optional[Path] = typer.Option(None, help="pairs.csv of the export (default: next to --mask-dir or --gt-dir)"),
    results: str = typer.Option("results", help="results root folder"),
    protocol: Optional[str] = typer.Option(None, help="protocol whose metrics and SSIM convention to use (default: the export's)"),
    threads: Optional[int] = typer.Option(None, help="torch CPU threads (default: the cores this process may use)"),
) -> None:
    from sairbench.outside import evaluate_predictions
    from sairbench.protocol import load_protocol

    set_threads(threads)
    proto = load_protocol(protocol) if protocol else None
    out = evaluate_predictions(pred_dir, gt_dir, mask_dir, name, pairs=pairs, results_root=results, proto=proto,
                               console=console)
    print_summary(out, f"{name} (outside) — {out}")


@app.command()
def merge(
    runs: List[Path] = typer.Argument(..., help="the shard folders of one run (or the one folder the shards shared)"),
    device: str = typer.Option("cpu", help="recorded in meta.json"),
    threads: Optional[int] = typer.Option(None, help="torch CPU threads (default: the cores this process may use)"),
) -> None:
    """Merge the shards of `sairbench run --shard i/n` into per_image, summary and meta (in the first folder)."""
    from sairbench.run import merge_shards

    set_threads(threads)
    out = merge_shards(runs, device=device)
    print_summary(out, f"merged — {out}")
