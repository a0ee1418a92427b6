"""On-disk caches of derived tensors (text embeddings, frozen-encoder features), keyed by
everything they depend on and stored as safetensors (data, never code).

The root is ``$SAIRBENCH_CACHE_DIR`` (default ``~/.cache/sairbench``); ``SAIRBENCH_CACHE_DIR=off``
turns caching off. A key is a JSON-able dict; any change of it (weights digest, input size, class
list, image or mask bytes) gives another file, so a stale entry is never read.

Every entry records, when written, the sha256 of its key and of its value (safetensors metadata
``key_sha256`` and ``sha256``; the same fields in a JSON entry). An entry is used only when both
match: a damaged or edited entry, or another entry copied over it, is recomputed and rewritten
(one warning line per kind of cache and process).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Callable

import torch

from sairbench.io import atomic_path

CACHE_ENV = "SAIRBENCH_CACHE_DIR"


def cache_root() -> Path | None:
    """The cache folder, or None when caching is off."""
    value = os.environ.get(CACHE_ENV, "").strip()
    if value.lower() == "off":
        return None
    return Path(value).expanduser() if value else Path.home() / ".cache" / "sairbench"


def key_digest(key: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()


def _rejected(path: Path) -> None:
    """One warning line (per kind of cache and process) for an entry that fails its digests."""
    from sairbench.io import warn_once

    warn_once(path.parent, "cache-digest", f"warning: {path}: cache entry does not match the digests recorded when "
                                           "it was written (damaged or edited); recomputing it (and others of "
                                           f"{path.parent} alike).")


def _read_tensor(path: Path) -> torch.Tensor | None:
    """The tensor stored at ``path`` (named ``<key digest>.safetensors``) when its recorded digests
    are its name's key digest and that of the value read; None when there is none or it fails them
    (named in one warning line)."""
    from safetensors import safe_open

    from sairbench.digest import tensor_digest

    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            value = f.get_tensor("value")
        ok = meta.get("key_sha256") == path.stem and meta.get("sha256") == tensor_digest(value)
    except Exception:  # damaged beyond reading
        value, ok = None, False
    if not ok:
        _rejected(path)
    return value if ok else None


def _write_tensor(path: Path, key: dict[str, Any], value: torch.Tensor) -> bool:
    """Store ``value`` under ``key`` at ``path`` (``<key digest>.safetensors``) with its digests; False
    when the folder is not writable."""
    from safetensors.torch import save_file

    from sairbench.digest import tensor_digest

    value = value.detach().cpu().contiguous()
    meta = {"key": json.dumps(key, sort_keys=True, default=str)[:4000], "key_sha256": path.stem,
            "sha256": tensor_digest(value)}
    try:
        with atomic_path(path) as tmp:
            save_file({"value": value}, str(tmp), metadata=meta)
        return True
    except OSError:  # a read-only cache folder must not stop the computation
        return False


def cached_tensor(kind: str, key: dict[str, Any], compute: Callable[[], torch.Tensor]) -> torch.Tensor:
    """``compute()``, or the tensor stored under (``kind``, ``key``); stored after computing.

    An entry that fails its digests is recomputed and replaced."""
    root = cache_root()
    if root is None:
        return compute()
    path = root / kind / f"{key_digest(key)}.safetensors"
    stored = _read_tensor(path)
    if stored is not None:
        return stored
    value = compute()
    _write_tensor(path, key, value)
    return value


FEATURE_CACHE_ENV = "SAIRBENCH_FEATURE_CACHE"  # "1": cache frozen-encoder features (see cached_batch)


def feature_cache_enabled() -> bool:
    return os.environ.get(FEATURE_CACHE_ENV, "") == "1" and cache_root() is not None


def cached_batch(kind: str, keys: list[dict[str, Any]], compute: Callable[[], torch.Tensor]) -> torch.Tensor:
    """A batch (B, ...) whose item i is stored under ``keys[i]``.

    When every item is stored and passes its digests, they are read; otherwise the whole batch is
    computed, exactly as without a cache (so numbers do not depend on what was cached before), and
    every item stored."""
    root = cache_root()
    paths = [root / kind / f"{key_digest(k)}.safetensors" for k in keys] if root is not None else []
    if paths and all(p.is_file() for p in paths):
        items = []
        for p in paths:
            item = _read_tensor(p)
            if item is None:  # damaged or edited: recompute the batch
                break
            items.append(item)
        else:
            return torch.stack(items)
    value = compute()
    for p, k, item in zip(paths, keys, value.detach().cpu()):
        if not _write_tensor(p, k, item):
            break
    return value


def cached_json(kind: str, key: dict[str, Any], compute: Callable[[], Any]) -> Any:
    """``compute()`` (JSON-able), or the value stored under (``kind``, ``key``)."""
    from sairbench.io import atomic_write_text

    root = cache_root()
    if root is None:
        return compute()
    path = root / kind / f"{key_digest(key)}.json"
    if path.is_file():
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
            if entry["key_sha256"] == path.stem and entry["sha256"] == _json_digest(entry["value"]):
                return entry["value"]
        except (OSError, ValueError, KeyError, TypeError):
            pass
        _rejected(path)
    value = compute()
    try:
        atomic_write_text(path, json.dumps({"key": key, "key_sha256": path.stem, "value": value,
                                            "sha256": _json_digest(value)}))
    except OSError:
        pass
    return value


def _json_digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()
