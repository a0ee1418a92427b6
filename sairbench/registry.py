"""The one registry of named inpainting models, filled through the ``sairbench.models`` entry points.

An entry is a factory ``factory(checkpoint=None, tag=None, **kw) -> Inpainter`` with a description,
what it needs, whether that is available here, and, for the implicit presets, the preset row it was
made from (:class:`sairbench.preset.Preset`). Names may carry a tag, ``liif@ft6000``: the entry
``liif`` with the shipped (or given) checkpoint of that stage; :func:`parse_name` splits them.

The core imports no plugin: the classical baselines and the presets (package
``sairbench_baselines``) register through entry points, like any third-party package::

    [project.entry-points."sairbench.models"]
    mymodel = "mypackage.module:MyInpainter"   # a factory or class, registered as 'mymodel' (kind "plugin")
    mypresets = "mypackage.presets"            # a module that registers on import (register_model / register_preset)

The group is loaded once (``sairbench.plugins.load_group``); an entry point that fails is listed as
a model that is not available, with the reason. A model whose ``inpaint`` cannot take every call
the suite makes (``sairbench.inpainter.contract_problem``) is refused in one line: a class at
registration (listed as not available, with the reason), any model when it is built.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable

from sairbench.errors import SairbenchError

ENTRY_POINT_GROUP = "sairbench.models"
_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]*")


def _always() -> tuple[bool, str]:
    return True, ""


@dataclass
class ModelSpec:
    name: str
    factory: Callable[..., object]
    description: str = ""
    needs: str = "nothing"
    kind: str = "classical"
    availability: Callable[[], tuple[bool, str]] = field(default=_always)
    preset: Any = None  # sairbench.preset.Preset for the implicit presets
    origin: str = ""  # "package (entry point group:name)" of the plugin that registered it; "" for the suite's own

    def available(self, tag: str | None = None) -> tuple[bool, str]:
        """(True, "") when it (or its stage ``tag``) can run here, else (False, why)."""
        if tag is not None:
            return self.availability(tag) if self.preset is not None else (False, f"'{self.name}' has no tagged stages")
        return self.availability()


_REGISTRY: dict[str, ModelSpec] = {}


def parse_name(name: str) -> tuple[str, str | None]:
    """``'liif@ft6000'`` -> ``('liif', 'ft6000')``; ``'liif'`` -> ``('liif', None)``.

    Both parts are lower-case letters, digits, '.', '_' and '-' (they become file and folder names).
    """
    base, sep, tag = str(name).partition("@")
    for part in (base, tag) if sep else (base,):
        if not _NAME.fullmatch(part) or ".." in part:
            raise SairbenchError(f"model name '{name}' is not NAME or NAME@TAG of lower-case letters, digits, "
                                 "'.', '_' and '-' (e.g. liif or liif@ft6000).")
    return base, (tag if sep else None)


def register_model(
    name: str,
    factory: Callable[..., object] | None = None,
    *,
    description: str = "",
    needs: str = "nothing",
    kind: str = "classical",
    availability: Callable[..., tuple[bool, str]] = _always,
    preset: Any = None,
):
    """Register ``factory`` under ``name``; usable as a decorator. A class whose ``inpaint`` breaks
    the contract (``sairbench.inpainter.contract_problem``) is registered as not available, with the reason."""
    parse_name(name)

    def deco(fn):
        from sairbench.inpainter import contract_problem

        from sairbench.plugins import loading

        problem = contract_problem(fn) if isinstance(fn, type) else None
        check = availability if problem is None else (lambda *a, p=problem: (False, f"'{name}' {p}"))
        entry = loading()
        origin = f"{entry.package} (entry point {entry.group}:{entry.name})" if entry and entry.package != "sairbench" else ""
        _REGISTRY[name] = ModelSpec(name, fn, description, needs, kind, check, preset, origin)
        return fn

    return deco(factory) if factory is not None else deco


def unregister_model(name: str) -> None:
    """Remove ``name`` (tests that add a throwaway entry clean up with this)."""
    _REGISTRY.pop(name, None)


def _load_plugins() -> None:
    """Register the models of the ``sairbench.models`` entry points, once (``sairbench.plugins``)."""
    from sairbench.plugins import load_group

    load_group(ENTRY_POINT_GROUP, _accept_plugin, _failed_plugin)


def _accept_plugin(name: str, obj: object) -> None:
    if not callable(obj):
        raise SairbenchError(f"{obj!r} is not a model factory; name a class or function (or a module that registers)")
    if name in _REGISTRY and _REGISTRY[name].factory is not obj:
        raise SairbenchError(f"model '{name}' is registered already; give the entry point another name")
    doc = (getattr(obj, "__doc__", "") or "").strip().splitlines()
    register_model(name, obj, description=doc[0] if doc else "", kind="plugin",
                   needs=str(getattr(obj, "needs", "nothing")))


def _failed_plugin(name: str, value: str, reason: str) -> None:
    if name not in _REGISTRY:  # a name the suite knows keeps its entry; the failure is listed by `sairbench plugins`
        register_model(name, lambda **kw: None, description=f"plugin {value}", needs="its plugin to load",
                       kind="plugin", availability=lambda *a: (False, f"plugin failed to load: {reason}"))


def get_spec(name: str) -> ModelSpec:
    """The entry of ``name`` (a tag, ``@...``, is ignored here)."""
    _load_plugins()
    base, _ = parse_name(name)
    if base not in _REGISTRY:
        known = ", ".join(sorted(_REGISTRY))
        raise SairbenchError(f"unknown model '{base}'; known models: {known} (see `sairbench models`).")
    return _REGISTRY[base]


def create_model(name: str, **kwargs):
    """Build the registered model ``name`` or ``name@tag`` (an :class:`~sairbench.inpainter.Inpainter`)."""
    from sairbench.inpainter import contract_problem

    spec = get_spec(name)
    _, tag = parse_name(name)
    if tag is not None:
        if spec.preset is None:
            raise SairbenchError(f"model '{name}': only trained presets have tagged stages; drop '@{tag}'.")
        kwargs["tag"] = tag
    model = spec.factory(**kwargs)
    problem = contract_problem(model)
    if problem is not None:
        raise SairbenchError(f"model '{name}' {problem} (docs/plugins.md, 'The Inpainter contract').")
    return model


def list_models() -> list[ModelSpec]:
    _load_plugins()
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]
