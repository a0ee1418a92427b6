"""The registry of model parts (encoders, decoders, semantic fillers, whole models), LIIF-style.

``make({'name': 'liif-decoder', 'args': {...}})`` builds a registered part and records the spec it
was built from on the module (``module.spec``), so that a checkpoint stores ``{name, args, sd}``
and any stored model rebuilds with no config file. This module imports no part: the part modules
register themselves here, and ``sairbench.models`` imports every one of them.
"""

from __future__ import annotations

import copy
from typing import Any, Callable

import torch.nn as nn

from sairbench.errors import SairbenchError

_PARTS: dict[str, Callable[..., nn.Module]] = {}


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
    module = _PARTS[name](**{**spec.get("args", {}), **extra})
    if getattr(module, "spec", None) is None:
        module.spec = {"name": name, "args": copy.deepcopy(dict(spec.get("args", {})))}
    return module
