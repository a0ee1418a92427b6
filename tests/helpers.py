"""Shared test helpers: a tiny protocol and an in-process CLI call."""

from sairbench.cli import app

PROTO = """
name = "mini"
seed = 3
[dataset]
name = "synthetic-faces"
split = "test"
size = 32
limit = 3
[masks]
source = "generated"
per_bucket = 2
[metrics]
names = ["psnr", "ssim", "l1", "lpips"]
[models]
names = ["telea", "navier-stokes"]
"""


def invoke(args):
    """Run the CLI in-process; SairbenchError propagates (main() turns it into one line)."""
    app(args, standalone_mode=False)
