"""The ``sairbench`` command line: thin commands over the library, one module per command group.

:func:`main` turns every way a command can end into one line and an exit code, under both click
layouts the allowed typer versions have (``click`` itself, or the copy typer >= 0.2x vendors):
SairbenchError and usage errors exit 2 (one line plus the usage hint), bare ``sairbench`` shows the
help and exits 0, Ctrl-C prints the resume hint and exits 130. Warnings print as one line each.
"""

from __future__ import annotations

import sys
import warnings

from rich.console import Console

from sairbench.cli import cache, masks, models, photos, report, run, train  # noqa: F401  (register the commands)
from sairbench.cli.common import app
from sairbench.errors import SairbenchError

RESUME_HINT = "interrupted; rerun the same command with --resume to continue where it stopped."


def _one_line_warnings() -> None:
    """Show each distinct warning once, as one line on stderr (no source line)."""
    seen: set[str] = set()
    err = Console(stderr=True)

    def show(message, category, filename, lineno, file=None, line=None):
        text = " ".join(str(message).split())
        if text not in seen:
            seen.add(text)
            err.print(f"[yellow]warning:[/yellow] {text}", highlight=False, soft_wrap=True)

    warnings.showwarning = show


def _exit_for_click(exc: BaseException) -> int | None:
    """The exit code of a click exception of either layout (None when ``exc`` is not one)."""
    kind = type(exc).__name__
    if kind == "NoArgsIsHelpError":  # bare `sairbench` or a bare group: the help was shown
        return 0
    if kind == "Abort":  # click turns Ctrl-C into Abort
        Console(stderr=True).print(RESUME_HINT)
        return 130
    if kind == "Exit":
        return int(getattr(exc, "exit_code", 0) or 0)
    if hasattr(exc, "show") and hasattr(exc, "exit_code"):  # ClickException / UsageError
        exc.show()
        return int(exc.exit_code)
    return None


def _plain_flags(command) -> None:
    """On/off flags show no value type in --help (typer would print ``<bool>`` after each)."""
    for param in getattr(command, "params", []):
        if getattr(param, "is_flag", False) and getattr(param, "metavar", None) is None:
            param.metavar = ""
    make_help = getattr(command, "get_help_option", None)
    if make_help is not None:  # click adds --help when the help is asked for
        def help_option(ctx, make_help=make_help):
            option = make_help(ctx)
            if option is not None:
                option.metavar = ""
            return option

        command.get_help_option = help_option
    for sub in getattr(command, "commands", {}).values():
        _plain_flags(sub)


def main() -> None:
    import typer

    _one_line_warnings()
    command = typer.main.get_command(app)
    _plain_flags(command)
    try:
        rc = command.main(standalone_mode=False, prog_name="sairbench")
    except SairbenchError as err:
        Console(stderr=True).print(f"[red]error:[/red] {err}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        Console(stderr=True).print(RESUME_HINT)
        sys.exit(130)
    except Exception as exc:
        code = _exit_for_click(exc)
        if code is None:
            raise
        sys.exit(code)
    if isinstance(rc, int) and rc:
        if rc == 130:
            Console(stderr=True).print(RESUME_HINT)
        sys.exit(rc)


if __name__ == "__main__":
    main()
