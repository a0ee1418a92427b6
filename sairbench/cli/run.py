"""`sairbench run`, `merge` and `eval`: protocols on models, shard merging, outside methods' outputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from sairbench.cli.common import app, console, print_summary, set_threads
from sairbench.cli.flags import record_command
from sairbench.options import RunOptions, parse_shard


EVAL_HELP = (
    "Score a method's saved outputs (LaMa, MISF, ... run elsewhere) under a protocol's conventions.\n\n"
    "Naming: the prediction for the pair (image, mask) is PRED_DIR/<pred_name>.png (or .jpg), where "
    "pred_name = <image>__<mask> is the column of pairs.csv (the stem of the exported input file). "
    "Only the pixels inside the hole are used (ground truth outside), exactly as `sairbench run` "
    "composites; rows are written to RESULTS/NAME (never overwritten) with model = NAME."
)


@app.command()
@record_command(RunOptions, "run")
def run(opts: RunOptions, given: set[str]) -> None:
    """Run a protocol: every model x image x mask, scored per image, summarised by bucket."""
    from sairbench.run import run_protocol

    set_threads(opts.threads)
    opts = opts.resolve(given)
    out = run_protocol(opts, console=console)
    if (out / "summary.csv").is_file():
        from sairbench.shipped import short_reason

        meta = json.loads((out / "meta.json").read_text())
        if meta.get("skipped_models"):  # said before the table, so that the table and "wrote" end the output
            left = ", ".join(f"{m} ({short_reason(why).removeprefix('no: ')})" for m, why in meta["skipped_models"].items())
            console.print(f"left out (not available here): {left}; `sairbench models NAME` says how to get one",
                          highlight=False, soft_wrap=True)
        print_summary(out, f"{opts.proto.name} — {out}")
    else:
        i, n = parse_shard(opts.shard)
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
