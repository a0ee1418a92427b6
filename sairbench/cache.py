"""On-disk caches of derived tensors (text embeddings, frozen-encoder features), keyed by
everything they depend on and stored as safetensors (data, never code).

The root is ``$SAIRBENCH_CACHE_DIR`` (default ``~/.cache/sairbench``); ``SAIRBENCH_CACHE_DIR=off``
turns caching off. A key is a JSON-able dict; any change of it (weights digest, input size, class
list, image or mask bytes) gives another file, so a stale entry is never read.
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


def cached_tensor(kind: str, key: dict[str, Any], compute: Callable[[], torch.Tensor]) -> torch.Tensor:
    """``compute()``, or the tensor stored under (``kind``, ``key``); stored after computing.

    A damaged entry is recomputed and replaced."""
    from safetensors.torch import load_file, save_file

    root = cache_root()
    if root is None:
        return compute()
    path = root / kind / f"{key_digest(key)}.safetensors"
    if path.is_file():
        try:
            return load_file(str(path))["value"]
        except Exception:  # damaged: recompute below
            pass
    value = compute()
    try:
        with atomic_path(path) as tmp:
            save_file({"value": value.detach().cpu().contiguous()}, str(tmp),
                      metadata={"key": json.dumps(key, sort_keys=True, default=str)[:4000]})
    except OSError:  # a read-only cache folder must not stop the computation
        pass
    return value


FEATURE_CACHE_ENV = "SAIRBENCH_FEATURE_CACHE"  # "1": cache frozen-encoder features (see cached_batch)


def feature_cache_enabled() -> bool:
    return os.environ.get(FEATURE_CACHE_ENV, "") == "1" and cache_root() is not None


def cached_batch(kind: str, keys: list[dict[str, Any]], compute: Callable[[], torch.Tensor]) -> torch.Tensor:
    """A batch (B, ...) whose item i is stored under ``keys[i]``.

    When every item is stored, they are read; otherwise the whole batch is computed, exactly as
    without a cache (so numbers do not depend on what was cached before), and every item stored."""
    from safetensors.torch import load_file, save_file

    root = cache_root()
    paths = [root / kind / f"{key_digest(k)}.safetensors" for k in keys] if root is not None else []
    if paths and all(p.is_file() for p in paths):
        try:
            return torch.stack([load_file(str(p))["value"] for p in paths])
        except Exception:  # a damaged entry: recompute the batch
            pass
    value = compute()
    for p, item in zip(paths, value.detach().cpu()):
        try:
            with atomic_path(p) as tmp:
                save_file({"value": item.contiguous()}, str(tmp))
        except OSError:
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
            return json.loads(path.read_text(encoding="utf-8"))["value"]
        except (OSError, ValueError, KeyError):
            pass
    value = compute()
    try:
        atomic_write_text(path, json.dumps({"key": key, "value": value}))
    except OSError:
        pass
    return value
