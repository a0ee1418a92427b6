"""Checks of user-given values at the edge, each failing with one line that names the option."""

from __future__ import annotations

import re
from typing import Any

from sairbench.errors import SairbenchError

PRECISIONS = ("fp32", "fp16", "bf16")
_FOLDER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]*")


def positive(option: str, value: Any, allow_none: bool = True) -> Any:
    """``value`` when it is a positive integer (or None when allowed), else a one-line error."""
    if value is None and allow_none:
        return value
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise SairbenchError(f"{option} {value}: give a positive whole number.")
    return value


def non_negative(option: str, value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SairbenchError(f"{option} {value}: give a whole number >= 0.")
    return value


def device(value: str) -> str:
    """A torch device string that exists here ('cpu', 'cuda', 'cuda:1', 'mps')."""
    import torch

    try:
        dev = torch.device(value)
    except (RuntimeError, TypeError):
        raise SairbenchError(f"--device {value!r} is not a device; use cpu, cuda or cuda:N.") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise SairbenchError(f"--device {value}: CUDA is not available here; use --device cpu.")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise SairbenchError(f"--device {value}: this machine has {torch.cuda.device_count()} GPU(s); "
                                 "use cuda:0 .. cuda:N-1.")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise SairbenchError(f"--device {value}: MPS is not available here; use --device cpu.")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise SairbenchError(f"--device {value!r}: use cpu, cuda or cuda:N.")
    return value


def precision(value: str) -> str:
    if value not in PRECISIONS:
        raise SairbenchError(f"--precision {value!r}: use one of {', '.join(PRECISIONS)}.")
    return value


def folder_name(option: str, value: str) -> str:
    """A single folder name (no separators, no '..'): results never land outside the chosen root."""
    if not isinstance(value, str) or not _FOLDER_NAME.fullmatch(value) or ".." in value:
        raise SairbenchError(f"{option} {value!r}: use one folder name of letters, digits, '.', '_', '@' and '-' "
                             "(no '/', no '..'); choose the parent folder with --results.")
    return value
