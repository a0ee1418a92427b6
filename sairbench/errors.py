"""User-facing errors: one line naming the file (or thing) at fault and the fix."""


class SairbenchError(Exception):
    """An error caused by the user's input. The CLI prints ``str(err)`` on one line, exit code 2."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))
