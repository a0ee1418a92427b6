"""Plugins: what outside packages add to the suite through four entry-point groups (docs/plugins.md).

==========================  ===========================================================  ===================
group                       an entry point names                                         loaded by
==========================  ===========================================================  ===================
``sairbench.models``        a factory ``f(checkpoint=None, **kw) -> Inpainter`` (the      ``sairbench.registry``
                            entry's name is the model's), or a module that calls
                            ``register_model`` / ``register_preset`` on import
``sairbench.parts``         a part class (registered under the entry's name), or a        ``sairbench.parts``
                            module whose classes use ``@sairbench.parts.register``
``sairbench.metrics``       a :class:`sairbench.metrics.Metric` record, or a module       ``sairbench.metrics``
                            that calls ``register_metric`` on import
``sairbench.datasets``      a :class:`sairbench.data.DatasetRow`, or a module that calls  ``sairbench.data``
                            ``register_dataset`` on import
==========================  ===========================================================  ===================

Each group is loaded once per process, lazily, the first time its registry is asked for a name it
does not hold (or for its whole list), so a command that needs no plugin imports none. An entry
point that fails (its import raises, or what it names is refused by the registry) never breaks the
suite: the failure is recorded with its reason (:func:`failures`; ``sairbench plugins`` loads the
four groups and lists every entry point, ``sairbench models`` says when one failed), and the rest
loads.

This module imports nothing of sairbench, so every registry, the leaf ``parts`` included, may call it.
"""

from __future__ import annotations

import types
from dataclasses import dataclass
from typing import Any, Callable, Optional

GROUPS: dict[str, str] = {
    "sairbench.models": "inpainting models and preset rows",
    "sairbench.parts": "model parts (encoders, decoders, ...) that presets and checkpoints name",
    "sairbench.metrics": "per-image metrics",
    "sairbench.datasets": "datasets",
}


@dataclass(frozen=True)
class EntryPointStatus:
    """One entry point of a plugin group: where it comes from and whether it loaded (``error``: why not)."""

    group: str
    name: str
    value: str
    package: str
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


_DONE: set[str] = set()
_STATUS: list[EntryPointStatus] = []
_LOADING: list[EntryPointStatus] = []  # the entry points being loaded now, innermost last


def loading() -> Optional[EntryPointStatus]:
    """The entry point being loaded right now (None outside plugin loading): registries record
    which package registered what."""
    return _LOADING[-1] if _LOADING else None


def one_line(exc: BaseException) -> str:
    """``exc`` as one short line: ``'ModuleNotFoundError: No module named x'``."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


def load_group(group: str, accept: Optional[Callable[[str, Any], None]] = None,
               failed: Optional[Callable[[str, str, str], None]] = None) -> None:
    """Load every entry point of ``group`` once per process, by name order.

    An entry point that names a module is imported (the module registers on import); any other
    object is handed to ``accept(entry name, object)``, which registers it or raises (SairbenchError
    with the reason). An entry point whose loading or ``accept`` raises is recorded with the reason
    and given to ``failed(entry name, entry value, reason)``; the next one loads as usual.
    """
    if group in _DONE:
        return
    _DONE.add(group)  # first: a plugin that asks its own registry while loading sees no second pass
    from importlib.metadata import entry_points

    try:
        found = sorted(entry_points(group=group), key=lambda e: e.name)
    except Exception as exc:  # noqa: BLE001  (a damaged installed distribution's metadata)
        _STATUS.append(EntryPointStatus(group, "?", "?", "?", f"entry points not readable: {one_line(exc)}"))
        return
    for ep in found:
        package = getattr(getattr(ep, "dist", None), "name", None) or "?"
        _LOADING.append(EntryPointStatus(group, ep.name, ep.value, package))
        try:
            obj = ep.load()
            if accept is not None and not isinstance(obj, types.ModuleType):
                accept(ep.name, obj)
        except Exception as exc:  # noqa: BLE001  (a broken plugin must not break the suite)
            _LOADING.pop()
            reason = one_line(exc)
            _STATUS.append(EntryPointStatus(group, ep.name, ep.value, package, reason))
            if failed is not None:
                failed(ep.name, ep.value, reason)
            continue
        _LOADING.pop()
        _STATUS.append(EntryPointStatus(group, ep.name, ep.value, package))


def statuses(group: Optional[str] = None) -> list[EntryPointStatus]:
    """Every entry point loaded so far (of ``group``), in loading order."""
    return [s for s in _STATUS if group is None or s.group == group]


def failures(group: Optional[str] = None) -> list[EntryPointStatus]:
    """The entry points loaded so far (of ``group``) that failed, each with its reason."""
    return [s for s in statuses(group) if not s.ok]
