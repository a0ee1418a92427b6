"""Command-line flags made from an options record's fields (``sairbench.options``).

``@record_command(RunOptions, "run")`` gives the decorated function one flag per field of the
record that belongs to the job, with the field's help text and default, and calls it with the
record and the set of fields the user typed (click's parameter source), so that "not given" and
"given the default value" stay apart in the recorded sources.
"""

from __future__ import annotations

import functools
import inspect
import typing
from dataclasses import MISSING
from typing import Any, Callable

import typer


def record_command(cls, job: str) -> Callable:
    """Decorate ``fn(opts: cls, given: set[str])`` into a typer command whose flags are ``cls``'s fields."""
    hints = typing.get_type_hints(cls)
    params = [inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context)]
    names = []
    for f in cls.flags(job):
        default = f.default if f.default is not MISSING else None
        option = typer.Option(default, *f.metadata.get("decls", ()), help=f.metadata["help"])
        params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=hints[f.name]))
        names.append(f.name)

    def decorate(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def command(ctx: typer.Context, **values: Any) -> Any:
            given = {n for n in names if getattr(ctx.get_parameter_source(n), "name", "DEFAULT") != "DEFAULT"}
            return fn(cls(**values), given)

        command.__signature__ = inspect.Signature(params)  # typer reads the flags from here
        command.__annotations__ = {p.name: p.annotation for p in params}  # and their types from here
        del command.__wrapped__  # (inspect.signature would follow it to fn's own signature)
        return command

    return decorate
