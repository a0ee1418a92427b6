"""Progress that a person can see: a rich bar with an ETA on a terminal, and a plain line every
``$SAIRBENCH_PROGRESS_EVERY`` seconds (default 30) when the output goes to a file or a pipe."""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from typing import Iterator


def _fmt(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


class Progress:
    """``advance(n)`` after each unit of work (images, pairs, steps); ``describe(text)`` to relabel."""

    def __init__(self, total: int, description: str, unit: str, console=None, enabled: bool = True,
                 every_s: float | None = None):
        from rich.console import Console

        self.total, self.description, self.unit, self.enabled = max(0, int(total)), description, unit, enabled
        self.console = console or Console()
        self.every_s = float(os.environ.get("SAIRBENCH_PROGRESS_EVERY", "30")) if every_s is None else every_s
        self.done, self.start, self.last_line, self.started_at = 0, time.perf_counter(), time.perf_counter(), 0
        self._bar = self._task = None

    def __enter__(self) -> "Progress":
        if self.enabled and self.console.is_terminal:
            from rich.progress import (BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn,
                                       TimeRemainingColumn)
            from rich.progress import Progress as Bar

            self._bar = Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn(self.unit), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                            console=self.console)
            self._bar.__enter__()
            self._task = self._bar.add_task(self.description, total=self.total)
        return self

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)
        elif self.enabled and exc[0] is None and self.done and not self.console.is_terminal:
            self._line(final=True)

    def skip(self, n: int = 1) -> None:
        """Work found done already (resume): counted, but not in the rate of the ETA."""
        self.started_at += n
        self.advance(n)

    def describe(self, text: str) -> None:
        self.description = text
        if self._bar is not None:
            self._bar.update(self._task, description=text)

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.advance(self._task, n)
        elif self.enabled and time.perf_counter() - self.last_line >= self.every_s:
            self._line()

    def eta_s(self) -> float | None:
        fresh = self.done - self.started_at
        if fresh <= 0:
            return None
        return (time.perf_counter() - self.start) / fresh * max(0, self.total - self.done)

    def _line(self, final: bool = False) -> None:
        self.last_line = time.perf_counter()
        eta = self.eta_s()
        tail = "done" if final else (f"ETA {_fmt(eta)}" if eta is not None else "ETA unknown")
        self.console.print(f"{self.description}: {round(self.done)}/{self.total} {self.unit}, "
                           f"{_fmt(time.perf_counter() - self.start)} elapsed, {tail}", highlight=False)


@contextmanager
def progress(total: int, description: str, unit: str = "images", console=None, enabled: bool = True) -> Iterator[Progress]:
    with Progress(total, description, unit, console, enabled) as p:
        yield p
