"""`sairbench masks generate` and `masks export`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from sairbench.cli.common import console, masks_app


EXPORT_HELP = (
    "Write the exact masks, inputs and ground truth a protocol evaluates, for methods run elsewhere.\n\n"
    "OUT gets masks/ (255 = hole, manifest.json), gt/<image>.png, inputs/<image>__<mask>.png (the ground "
    "truth with the hole zeroed), pairs.csv and export.json. Score the outputs with `sairbench eval`."
)


@masks_app.command("generate")
def masks_generate(
    out: Path = typer.Option(..., "--out", "-o", help="output folder (PNGs + manifest.json)"),
    per_bucket: int = typer.Option(100, help="masks per hole-ratio bucket"),
    size: int = typer.Option(256, help="mask size (square)"),
    seed: int = typer.Option(0),
    overwrite: bool = typer.Option(False, help="replace a mask set this command wrote in OUT (a folder holding "
                                               "anything else is refused, never emptied)"),
) -> None:
    """Write a seeded irregular-mask set: each bucket filled to PER_BUCKET masks."""
    from sairbench import validate
    from sairbench.masks import GeneratedMasks, write_mask_set
    from sairbench.protocol import Protocol

    validate.positive("--size", size, allow_none=False)  # bounds before any mask is drawn
    Protocol("masks").with_per_bucket(per_bucket)  # --per-bucket as `sairbench run` takes it
    validate.pixels_bound(f"--size {size}", size)
    items = GeneratedMasks(per_bucket, (size, size), seed=seed)
    manifest = write_mask_set(out, items.stream(), {"generator": "sairbench.masks.generate_mask_set", "seed": seed,
                                                    "size": size, "per_bucket": per_bucket}, overwrite=overwrite)
    console.print(f"wrote {len(items)} masks and {manifest}")


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

    from sairbench.io import write_errors

    proto = load_protocol(protocol)
    with write_errors(out):  # a full or read-only disk: one line; the half-built export is removed
        folder, n = export_protocol(proto, out, dataset=dataset, data_root=data_root, limit=limit, mask_dir=mask_dir)
    console.print(f"wrote {n} image x mask pairs of '{proto.name}' to {folder} (pairs.csv, masks/, inputs/, gt/)")
