"""The registry of model parts (encoders, decoders, semantic fillers, whole models), LIIF-style.

``make({'name': 'liif-decoder', 'args': {...}})`` builds a registered part and records the spec it
was built from on the module (``module.spec``), so that a checkpoint stores ``{name, args, sd}``
and any stored model rebuilds with no config file. This module imports no part: the part modules
register themselves here, and ``sairbench.models`` imports every one of them.
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
from typing import Any, Callable

import torch
import torch.nn as nn

from sairbench.errors import SairbenchError

_PARTS: dict[str, Callable[..., nn.Module]] = {}
_ESTIMATING: contextvars.ContextVar[bool] = contextvars.ContextVar("estimating", default=False)


def register(name: str):
    """Class or factory decorator: ``make({'name': name, 'args': kw})`` calls it with ``**kw``."""

    def deco(cls):
        _PARTS[name] = cls
        return cls

    return deco


def part_class(name: str) -> Callable[..., nn.Module]:
    """The class (or factory) registered as ``name``."""
    if name not in _PARTS:
        raise SairbenchError(f"unknown model part '{name}'; known parts: {', '.join(known_parts())}.")
    return _PARTS[name]


def known_parts() -> list[str]:
    return sorted(_PARTS)


def make(spec: dict[str, Any] | None, **extra) -> nn.Module | None:
    """Build the part described by ``spec`` = {'name': str, 'args': dict}; None stays None.

    ``extra`` keyword arguments are passed to the constructor but not recorded in ``module.spec``.
    """
    if spec is None:
        return None
    if not isinstance(spec, dict) or "name" not in spec:
        raise SairbenchError(f"a model part spec must be {{'name': ..., 'args': {{...}}}}, not {spec!r}.")
    name = spec["name"]
    if name not in _PARTS:
        raise SairbenchError(f"unknown model part '{name}'; known parts: {', '.join(known_parts())}.")
    if _ESTIMATING.get() and getattr(_PARTS[name], "external_weights", False) is True:
        return ExternalStandIn(name, _PARTS[name], dict(spec.get("args") or {}))
    module = _PARTS[name](**{**spec.get("args", {}), **extra})
    if getattr(module, "spec", None) is None:
        module.spec = {"name": name, "args": copy.deepcopy(dict(spec.get("args", {})))}
    return module


class ExternalStandIn(nn.Module):
    """What :func:`make` builds, inside :func:`estimating`, for a part whose weights come from their
    own file (CLIP, SAM): no weights, no file read; ``embed_dim`` from the part's ``embed_dim_for``."""

    external_weights = True

    def __init__(self, name: str, cls: Callable[..., nn.Module], args: dict[str, Any]):
        super().__init__()
        self.name = name
        self.embed_dim = int(cls.embed_dim_for(**args))
        self.spec = {"name": name, "args": copy.deepcopy(args)}

    def freeze(self) -> "ExternalStandIn":
        return self


@contextlib.contextmanager
def estimating():
    """Within this block :func:`make` builds on the 'meta' device (shapes only, nothing allocated)
    and parts whose weights come from their own files as :class:`ExternalStandIn`: the model a spec
    describes can be measured without reading, downloading or allocating anything."""
    token = _ESTIMATING.set(True)
    try:
        with torch.device("meta"):
            yield
    finally:
        _ESTIMATING.reset(token)
