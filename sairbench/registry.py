"""The one registry of named inpainting models, filled through the ``sairbench.models`` entry points.

An entry is a factory ``factory(checkpoint=None, tag=None, **kw) -> Inpainter`` with a description,
what it needs, whether that is available here, and, for the implicit presets, the preset row it was
made from (:class:`sairbench.preset.Preset`). Names may carry a tag, ``liif@ft6000``: the entry
``liif`` with the shipped (or given) checkpoint of that stage; :func:`parse_name` splits them.

The core imports no plugin: the classical baselines and the presets (package
``sairbench_baselines``) register through entry points, like any third-party package::

    [project.entry-points."sairbench.models"]
    mymodel = "mypackage.module:make_my_inpainter"   # a factory, registered as 'mymodel'
    mypresets = "mypackage.presets"                  # a module that registers on import
"""

from __future__ import annotations

import re
import types
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

    def available(self, tag: str | None = None) -> tuple[bool, str]:
        """(True, "") when it (or its stage ``tag``) can run here, else (False, why)."""
        if tag is not None:
            return self.availability(tag) if self.preset is not None else (False, f"'{self.name}' has no tagged stages")
        return self.availability()


_REGISTRY: dict[str, ModelSpec] = {}
_LOADED = False


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
    """Register ``factory`` under ``name``; usable as a decorator."""
    parse_name(name)

    def deco(fn):
        _REGISTRY[name] = ModelSpec(name, fn, description, needs, kind, availability, preset)
        return fn

    return deco(factory) if factory is not None else deco


def unregister_model(name: str) -> None:
    """Remove ``name`` (tests that add a throwaway entry clean up with this)."""
    _REGISTRY.pop(name, None)


def _load_plugins() -> None:
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    from importlib.metadata import entry_points

    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        try:
            obj = ep.load()
        except Exception as exc:  # a broken plugin must not break the suite
            register_model(ep.name, lambda **kw: None, description=f"plugin {ep.value}", needs="plugin",
                           kind="plugin", availability=lambda exc=exc: (False, f"plugin failed to load: {exc}"))
            continue
        if isinstance(obj, types.ModuleType) or ep.name in _REGISTRY:
            continue  # a module registers its models on import
        register_model(ep.name, obj, description=(getattr(obj, "__doc__", "") or "").strip(), kind="plugin")


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
    spec = get_spec(name)
    _, tag = parse_name(name)
    if tag is not None:
        if spec.preset is None:
            raise SairbenchError(f"model '{name}': only trained presets have tagged stages; drop '@{tag}'.")
        kwargs["tag"] = tag
    return spec.factory(**kwargs)


def list_models() -> list[ModelSpec]:
    _load_plugins()
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]
