"""Facts about the machine this process runs on."""

from __future__ import annotations

import os


def usable_cores() -> int:
    """CPU cores this process may use (its affinity where the OS tells it), at least 1."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)
