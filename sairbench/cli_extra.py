"""More commands on the same Typer app: outside methods, shard merging, mask export, figures."""

from sairbench.cli import app, masks_app  # noqa: F401
