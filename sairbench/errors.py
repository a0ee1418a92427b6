"""User-facing errors: one line naming the file (or thing) at fault and the fix."""


class SairbenchError(Exception):
    """An error caused by the user's input. The CLI prints ``str(err)`` on one line, exit code 2."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


_WARNED: set[str] = set()


def warn_once(message: str) -> None:
    """``message`` as a RuntimeWarning the first time this process says it (one line in the CLI,
    ``sairbench.cli.main``); later calls with the same text say nothing."""
    import warnings

    if message in _WARNED:
        return
    _WARNED.add(message)
    warnings.warn(message, RuntimeWarning, stacklevel=3)
