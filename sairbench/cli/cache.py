"""`sairbench cache build` and `cache info`: the on-disk caches (sairbench.cache)."""

from __future__ import annotations

import typer

from sairbench.cli.common import app, console, set_threads
from sairbench.cli.flags import record_command
from sairbench.options import RunOptions

cache_app = typer.Typer(no_args_is_help=True, help="Build or inspect the caches (never change a number).")
app.add_typer(cache_app, name="cache")


@cache_app.command("build")
@record_command(RunOptions, "cache")
def cache_build(opts: RunOptions, given: set[str]) -> None:
    """Encode a protocol's pairs with the frozen semantic encoders, so that `SAIRBENCH_FEATURE_CACHE=1
    sairbench run` with the same options reads the features instead of computing them."""
    from sairbench.cache import FEATURE_CACHE_ENV, cache_root
    from sairbench.feature_cache import build_feature_cache

    set_threads(opts.threads)
    done = build_feature_cache(opts.resolve(given), console)
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
