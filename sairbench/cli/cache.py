"""`sairbench cache build` and `cache info`: the on-disk caches (sairbench.cache)."""

from __future__ import annotations

from typing import List, Optional

import typer

from sairbench.cli.common import app, console, set_threads

cache_app = typer.Typer(no_args_is_help=True, help="Build or inspect the caches (never change a number).")
app.add_typer(cache_app, name="cache")


@cache_app.command("build")
def cache_build(
    protocol: str = typer.Option("liu2018-masks", help="protocol name or path"),
    dataset: Optional[str] = typer.Option(None, help="override the protocol's dataset"),
    data_root: Optional[str] = typer.Option(None, help="dataset folder in its official layout"),
    model: Optional[List[str]] = typer.Option(None, "--model", "-m", help="models whose semantic encoders to run"),
    checkpoint: Optional[List[str]] = typer.Option(None, help="NAME=PATH, as for `sairbench run`"),
    limit: Optional[int] = typer.Option(None), size: Optional[int] = typer.Option(None),
    mask_dir: Optional[str] = typer.Option(None), device: str = typer.Option("cpu"),
    threads: Optional[int] = typer.Option(None, help="torch CPU threads"),
) -> None:
    """Encode a protocol's pairs with the frozen semantic encoders, so that `SAIRBENCH_FEATURE_CACHE=1
    sairbench run` with the same options reads the features instead of computing them."""
    from sairbench import validate
    from sairbench.cache import FEATURE_CACHE_ENV, cache_root
    from sairbench.cli.run import parse_checkpoints
    from sairbench.feature_cache import build_feature_cache
    from sairbench.protocol import load_protocol

    validate.device(device)
    set_threads(threads)
    done = build_feature_cache(load_protocol(protocol), model, parse_checkpoints(checkpoint), device, console,
                               dataset=dataset, data_root=data_root, limit=limit, size=size, mask_dir=mask_dir)
    console.print(f"cached {sum(done.values())} pairs for {len(done)} encoder(s) in {cache_root()}; run with "
                  f"{FEATURE_CACHE_ENV}=1 and the same options to use them.")


@cache_app.command("info")
def cache_info() -> None:
    """Where the caches are and how much each holds."""
    from sairbench.cache import cache_root

    root = cache_root()
    if root is None or not root.is_dir():
        console.print(f"no cache ({'off' if root is None else f'{root} does not exist yet'}).")
        return
    for kind in sorted(p for p in root.iterdir() if p.is_dir()):
        files = list(kind.glob("*"))
        console.print(f"{kind.name}: {len(files)} entries, {sum(f.stat().st_size for f in files) / 2**20:.1f} MiB")
