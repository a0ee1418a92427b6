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


# ---------------------------------------------------------------- upper bounds (checked before anything is allocated)

ENV_MAX_THREADS = "SAIRBENCH_MAX_THREADS"
THREADS_PER_CORE = 4


def env_limit(env: str, default: int) -> int:
    """A positive whole number from ``$env``, else ``default``; one line when it is not one."""
    import os

    text = os.environ.get(env)
    if not text:
        return default
    try:
        value = int(float(text)) if float(text).is_integer() else 0
    except (ValueError, OverflowError):
        value = 0
    if value < 1:
        raise SairbenchError(f"${env} {text!r}: give a positive whole number.")
    return value


def threads_bound(option: str, value: Any) -> Any:
    """Threads or processes: at most 4x the cores of this machine (``$SAIRBENCH_MAX_THREADS`` overrides)."""
    import os

    cores = os.cpu_count() or 1
    limit = env_limit(ENV_MAX_THREADS, THREADS_PER_CORE * cores)
    if value is not None and value > limit:
        raise SairbenchError(f"{option} {value}: above the limit of {limit} ({THREADS_PER_CORE}x the {cores} cores of "
                             f"this machine); use at most {limit}, or raise the limit with ${ENV_MAX_THREADS}.")
    return value


def pixels_bound(option: str, side: Any, count: Any = 1, per: str = "image") -> None:
    """``count`` square images of ``side`` x ``side`` pixels: at most the pixel budget in force
    (``sairbench.tiling.max_pixels``: $SAIRBENCH_MAX_PIXELS, default 16 megapixels)."""
    from sairbench.tiling import ENV_MAX_PIXELS, max_pixels, pixels_text

    if side is None or count is None:
        return
    n, limit = int(count) * int(side) * int(side), max_pixels()
    if n > limit:
        raise SairbenchError(f"{option}: {pixels_text(n)} per {per}, above the pixel budget of {pixels_text(limit)}; "
                             f"lower it, or raise the budget with ${ENV_MAX_PIXELS} (peak memory grows with it).")


def run_name(given: str | None, protocol_name: Any, protocol_source: str, dataset: str) -> str:
    """The run folder's name: ``given`` (``--name``) when set, checked as that flag; else
    ``<protocol name>_<dataset>``, a fault of which is blamed on the protocol file's 'name' key."""
    if given:
        return folder_name("--name", given)
    source = protocol_source or "the protocol"
    if not isinstance(protocol_name, str) or not _FOLDER_NAME.fullmatch(protocol_name) or ".." in protocol_name:
        raise SairbenchError(f"{source}: 'name' = {str(protocol_name)[:80]!r} is not one folder name (letters, digits, "
                             "'.', '_', '@' and '-'; no '/', no '..') and run folders are named after it; fix 'name' "
                             "in the protocol file, or pass --name.")
    return folder_name(f"{source}: 'name' (with the dataset)", f"{protocol_name}_{dataset}")
