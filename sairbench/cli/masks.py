"""`sairbench masks generate` and `masks export`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from sairbench.cli.common import console, masks_app
from sairbench.cli.flags import record_command
from sairbench.errors import SairbenchError
from sairbench.options import RunOptions


EXPORT_HELP = (
    "Write the exact masks, inputs and ground truth a protocol evaluates, for methods run elsewhere.\n\n"
    "OUT gets masks/ (255 = hole, manifest.json), gt/<image>.png, inputs/<image>__<mask>.png (the ground "
    "truth with the hole zeroed), pairs.csv and export.json. Score the outputs with `sairbench eval`."
)


@masks_app.command("generate")
def masks_generate(
    out: Path = typer.Option(..., "--out", "-o", help="output folder (PNGs + manifest.json)"),
    per_bucket: Optional[int] = typer.Option(None, help="masks per hole-ratio bucket (default: the protocol's)"),
    size: Optional[int] = typer.Option(None, help="mask size, square (default: the protocol's evaluation size)"),
    protocol: str = typer.Option("liu2018-masks", help="protocol whose size and masks per bucket are the defaults"),
    seed: int = typer.Option(0),
    overwrite: bool = typer.Option(False, help="replace a mask set this command wrote in OUT (a folder holding "
                                               "anything else is refused, never emptied)"),
) -> None:
    """Write a seeded irregular-mask set: each bucket filled to PER_BUCKET masks."""
    from sairbench import validate
    from sairbench.masks import GeneratedMasks, write_mask_set
    from sairbench.protocol import Protocol

    if size is None or per_bucket is None:
        from sairbench.pairs import dataset_settings
        from sairbench.protocol import load_protocol

        proto = load_protocol(protocol)
        size = int(dataset_settings(proto)["size"]) if size is None else size
        per_bucket = int(proto.masks.per_bucket or 100) if per_bucket is None else per_bucket
    validate.positive("--size", size, allow_none=False)  # bounds before any mask is drawn
    Protocol("masks").with_per_bucket(per_bucket)  # --per-bucket as `sairbench run` takes it
    validate.pixels_bound(f"--size {size}", size)
    items = GeneratedMasks(per_bucket, (size, size), seed=seed)
    manifest = write_mask_set(out, items.stream(), {"generator": "sairbench.masks.generate_mask_set", "seed": seed,
                                                    "size": size, "per_bucket": per_bucket}, overwrite=overwrite)
    console.print(f"wrote {len(items)} masks and {manifest}")


@masks_app.command("export", help=EXPORT_HELP)
@record_command(RunOptions, "export")
def masks_export(opts: RunOptions, given: set[str]) -> None:
    from sairbench.io import write_errors
    from sairbench.outside import export_protocol

    if opts.out is None:
        raise SairbenchError("masks export needs --out DIR (a new folder for masks/, inputs/, gt/ and pairs.csv).")
    opts = opts.resolve(given)
    with write_errors(Path(opts.out)):  # a full or read-only disk: one line; the half-built export is removed
        folder, n = export_protocol(opts)
    console.print(f"wrote {n} image x mask pairs of '{opts.proto.name}' ({opts.size}x{opts.size}) to {folder} "
                  "(pairs.csv, masks/, inputs/, gt/)")
