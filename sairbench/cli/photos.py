"""`sairbench photos fetch`: the Debian photo corpus (sairbench.data.photo_corpus)."""

from __future__ import annotations

from pathlib import Path

import typer

from sairbench.cli.common import app, console

photos_app = typer.Typer(no_args_is_help=True, help="Real photographs beyond the bundled ones.")
app.add_typer(photos_app, name="photos")


@photos_app.command("fetch")
def photos_fetch(out: Path = typer.Option(..., "--out", "-o", help="folder for the photographs and index.json"),
                 package: list[str] = typer.Option(None, "--package", help="only these packages (repeatable; default: "
                                                   "all)")) -> None:
    """Fetch photographs from Debian packages (apt-get download), check and index them with their
    licences; use them with SAIRBENCH_PHOTOS_DIR=OUT (the `photos` dataset and protocol)."""
    from sairbench.data.photo_corpus import PHOTOS_DIR_ENV, fetch_debian_photos, indexed_photos

    index = fetch_debian_photos(out, package or None)
    console.print(f"indexed {len(indexed_photos(out))} photographs in {index}; use them with {PHOTOS_DIR_ENV}={out}")
