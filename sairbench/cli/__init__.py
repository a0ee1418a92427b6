"""The ``sairbench`` command line: thin commands over the library, one module per command group."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from sairbench.cli import masks, models, report, run, train  # noqa: F401  (register the commands)
from sairbench.cli.common import app
from sairbench.errors import SairbenchError


def main() -> None:
    try:
        app(standalone_mode=False)
    except SairbenchError as err:
        Console(stderr=True).print(f"[red]error:[/red] {err}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        Console(stderr=True).print("interrupted; rerun with --resume to continue.")
        sys.exit(130)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except Exception as e:  # click usage errors
        import click

        if isinstance(e, click.exceptions.ClickException):
            e.show()
            sys.exit(e.exit_code)
        if isinstance(e, click.exceptions.Abort):
            sys.exit(1)
        raise


if __name__ == "__main__":
    main()
