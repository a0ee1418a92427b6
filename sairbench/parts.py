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


PLUGIN_GROUP = "sairbench.parts"


def load_part_plugins() -> None:
    """Register the parts of the ``sairbench.parts`` entry points, once (``sairbench.plugins``): an
    entry point names a part class (registered under the entry's name) or a module whose classes
    register themselves with :func:`register`."""
    from sairbench.plugins import load_group

    load_group(PLUGIN_GROUP, _accept_plugin_part)


def _accept_plugin_part(name: str, obj: Any) -> None:
    if not callable(obj):
        raise SairbenchError(f"{obj!r} is not a part class; name a class (or a module that registers its parts)")
    if _PARTS.get(name, obj) is not obj:
        raise SairbenchError(f"part '{name}' is registered already; give the part another name")
    _PARTS[name] = obj


def _unknown(name: str) -> SairbenchError:
    return SairbenchError(f"unknown model part '{name}'; known parts: {', '.join(known_parts())} (a plugin's parts "
                          f"are found through the '{PLUGIN_GROUP}' entry points, see `sairbench plugins`).")


def part_class(name: str) -> Callable[..., nn.Module]:
    """The class (or factory) registered as ``name`` (the plugins' parts loaded when it is not built in)."""
    if name not in _PARTS:
        load_part_plugins()
    if name not in _PARTS:
        raise _unknown(name)
    return _PARTS[name]


def known_parts() -> list[str]:
    load_part_plugins()
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
    part_class(name)  # unknown: the plugins' parts are loaded first, then one line
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
        if not callable(getattr(cls, "embed_dim_for", None)):
            raise SairbenchError(f"part '{name}' reads its weights from its own file but has no embed_dim_for(**args) "
                                 "to size the model without reading them; add that static method to the part")
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
