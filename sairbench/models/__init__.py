"""Model parts (encoders, decoders, semantic fillers) built from specs, LIIF-style.

``make({'name': 'liif-decoder', 'args': {...}})`` builds a registered part; a checkpoint stores the
spec next to the weights, so a model rebuilds with no config file.
"""

from __future__ import annotations

from typing import Any, Callable

import torch.nn as nn

from sairbench.errors import SairbenchError

_PARTS: dict[str, Callable[..., nn.Module]] = {}


def register(name: str):
    def deco(cls):
        _PARTS[name] = cls
        return cls

    return deco


def make(spec: dict[str, Any] | None, **extra) -> nn.Module | None:
    """Build the part described by ``spec`` = {'name': str, 'args': dict}; None stays None."""
    if spec is None:
        return None
    _import_parts()
    name = spec["name"]
    if name not in _PARTS:
        raise SairbenchError(f"unknown model part '{name}'; known parts: {', '.join(sorted(_PARTS))}.")
    return _PARTS[name](**{**spec.get("args", {}), **extra})


def _import_parts() -> None:
    from sairbench.models import decoders, encoders, sir  # noqa: F401
    from sairbench.semantic import parts  # noqa: F401
