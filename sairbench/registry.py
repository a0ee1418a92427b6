"""Registry of named inpainting models, extensible through the ``sairbench.models`` entry points.

A model is registered with a factory ``factory(**kwargs) -> Inpainter`` plus a short description
of what it needs (weights, a checkpoint) and a function telling whether that is available here.
Third-party packages declare, in their ``pyproject.toml``::

    [project.entry-points."sairbench.models"]
    mymodel = "mypackage.module:make_my_inpainter"
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from sairbench.errors import SairbenchError

ENTRY_POINT_GROUP = "sairbench.models"


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

    def available(self) -> tuple[bool, str]:
        """(True, "") when it can run here, else (False, why)."""
        return self.availability()


_REGISTRY: dict[str, ModelSpec] = {}
_LOADED = False


def register_model(
    name: str,
    factory: Callable[..., object] | None = None,
    *,
    description: str = "",
    needs: str = "nothing",
    kind: str = "classical",
    availability: Callable[[], tuple[bool, str]] = _always,
):
    """Register ``factory`` under ``name``; usable as a decorator."""

    def deco(fn):
        _REGISTRY[name] = ModelSpec(name, fn, description, needs, kind, availability)
        return fn

    return deco(factory) if factory is not None else deco


def _load_builtin_and_plugins() -> None:
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    import sairbench_baselines.classical  # noqa: F401  (registers on import)
    import sairbench_baselines.presets  # noqa: F401

    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in _REGISTRY:
            continue
        try:
            obj = ep.load()
        except Exception as exc:  # a broken plugin must not break the suite
            register_model(
                ep.name,
                lambda **kw: None,
                description=f"plugin {ep.value}",
                needs="plugin",
                kind="plugin",
                availability=lambda exc=exc: (False, f"plugin failed to load: {exc}"),
            )
            continue
        if ep.name not in _REGISTRY:  # the plugin may register itself on import
            register_model(ep.name, obj, description=getattr(obj, "__doc__", "") or "", kind="plugin")


def get_spec(name: str) -> ModelSpec:
    _load_builtin_and_plugins()
    if name not in _REGISTRY:
        known = ", ".join(sorted(_REGISTRY))
        raise SairbenchError(f"unknown model '{name}'; known models: {known} (see `sairbench models`).")
    return _REGISTRY[name]


def create_model(name: str, **kwargs):
    """Build the registered model ``name`` (an :class:`~sairbench.inpainter.Inpainter`)."""
    return get_spec(name).factory(**kwargs)


def list_models() -> list[ModelSpec]:
    _load_builtin_and_plugins()
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]
