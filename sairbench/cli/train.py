"""`sairbench train`: a stage (semantic, sir) or a preset, through ``sairbench.train``."""

from __future__ import annotations

from pathlib import Path  # noqa: F401  (typer reads the annotations)
from typing import Optional

import typer

from sairbench.cli.common import app, console


@app.command()
def train(
    ctx: typer.Context,
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
    prefill: str = typer.Option("zero", help="hole content the appearance encoder sees: zero (the paper), pull-push or "
                             "smooth (biharmonic)"),
    input_residual: bool = typer.Option(False, help="LIIF decoders: predict a correction to the (prefilled) input"),
    stop_at: Optional[int] = typer.Option(None, help="end at this step, keeping the learning-rate schedule of --steps "
                                       "(as an interrupted run; --resume continues it)"),
    loss: str = typer.Option("l1", help="colour loss: l1 (the paper) or l2 (mean squared error, what PSNR measures)"),
    upsample: str = typer.Option("transposed", help="AppEncoder upsampling: transposed (the paper) or resize-conv (no grid "
                              "pattern in large holes)"),
    self_ensemble: int = typer.Option(1, help="the checkpoint answers `inpaint` as the mean over 1 (off), 2, 4 or 8 "
                                   "flips/transposes (inference only; training is unchanged)"),
    seed: int = typer.Option(0),
    out: Optional[Path] = typer.Option(None, help="run folder (default runs/MODEL)"),
    save_every: int = typer.Option(500, help="checkpoint every N steps"),
    keep_every: Optional[int] = typer.Option(None, help="also keep a step_N.pt snapshot every N steps"),
    resume: bool = typer.Option(False, help="continue from OUT/last.pt"),
    export: Optional[Path] = typer.Option(None, help="also write the final weights as safetensors here"),
    device: str = typer.Option("cpu"),
    threads: Optional[int] = typer.Option(None, help="torch CPU threads"),
    workers: Optional[int] = typer.Option(None, help="data-loading processes preparing batches ahead (same batches, same "
                                       "weights; default: 0 on CPU, cores-1 up to 8 on a GPU)"),
    fast: bool = typer.Option(True, help="fast decoder path (equal outputs; on GPUs the plain path can train faster)"),
    semantic_checkpoint: Optional[str] = typer.Option(None, help="`sir`: trained semantic encoder (default: shipped)"),
    sir_checkpoint: Optional[str] = typer.Option(None, help="semantic presets: trained SIR stage (default: shipped)"),
    joint: bool = typer.Option(False, help="semantic presets: train SIR jointly through the colour loss"),
    semantic_encoder: str = typer.Option("indomain", help="`sir`: indomain (trained here), clip (open_clip ViT-B/16), sam, or the label maps (the headroom oracle's source) embedded with the in-domain encoder's class embeddings (labels) or CLIP's text embeddings of the class names (labels-clip)"),
    clip_weights: Optional[str] = typer.Option(None, help="`sir --semantic-encoder clip`: CLIP weights file, or the open_clip "
                                            "tag 'openai' to download (default: $SAIRBENCH_CLIP_WEIGHTS)"),
) -> None:
    """Train a model: `semantic` (in-domain encoder), `sir` (stage 1), or a preset (L1 colour loss).

    Semantic presets (sair, semlte, edsr-w, nfs, ous, sam-encoder) train AIR over a frozen SIR
    (two stages, as the official release) unless --joint. Multi-GPU: torchrun.
    """
    from sairbench.checkpoint import export_safetensors, load_checkpoint
    from sairbench.train import make_config
    from sairbench.train import train as run_training

    options = dict(schedule=schedule, steps=steps, batch=batch, lr=lr, lr_final=lr_final, size=size,
                   dataset=dataset, data_root=data_root, image_size=image_size, epochs=epochs, queries=queries,
                   hole_fraction=hole_fraction, init=init, seed=seed, save_every=save_every, keep_every=keep_every,
                   out=out, device=device, threads=threads, workers=workers, fast=fast,
                   semantic_checkpoint=semantic_checkpoint, sir_checkpoint=sir_checkpoint, joint=joint,
                   semantic_encoder=semantic_encoder, clip_weights=clip_weights, prefill=prefill, upsample=upsample,
                   input_residual=input_residual, loss=loss, stop_at=stop_at, self_ensemble=self_ensemble)
    given = {k for k in options if getattr(ctx.get_parameter_source(k), "name", "DEFAULT") != "DEFAULT"}
    cfg = make_config(model, given=given, **options)
    path = run_training(cfg, resume=resume)
    console.print(f"checkpoint: {path}")
    if export is not None:
        export_safetensors(load_checkpoint(path), export)
        console.print(f"exported: {export}")
