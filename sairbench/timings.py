"""How long a model takes per pair on this machine, so that a run can say its expected time before
it starts.

Every scored chunk of ``sairbench run`` records its model's seconds per pair at the evaluation
size (``<cache>/timings/timings.json``, the newest figure per model, size, device and thread
count; nothing when caching is off). A later run whose every model has a figure for its setting
prints the sum over its chunks before the first one; otherwise it says that the progress line's ETA
follows the first pairs. A timing never changes a number, only what is printed.
"""

from __future__ import annotations

import json
from pathlib import Path

SHOW_ABOVE_S = 20.0  # shorter runs start without an estimate line


def _path() -> Path | None:
    from sairbench.cache import cache_root

    root = cache_root()
    return None if root is None else root / "timings" / "timings.json"


def _key(model: str, size: int, device: str) -> str:
    import torch

    return f"{model}|{int(size)}|{device}|{torch.get_num_threads()}"


def _read() -> dict[str, float]:
    path = _path()
    if path is None or not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # a damaged file is rewritten by the next record
    return {k: float(v) for k, v in data.items() if isinstance(v, (int, float)) and v >= 0} if isinstance(data, dict) else {}


def record(model: str, size: int, device: str, seconds: float, pairs: int) -> None:
    """Keep ``seconds / pairs`` as the newest figure of ``model`` at ``size`` on ``device``."""
    path = _path()
    if path is None or pairs <= 0:
        return
    from sairbench.io import atomic_write_text

    data = _read()
    data[_key(model, size, device)] = round(seconds / pairs, 6)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(data, indent=1, sort_keys=True))
    except OSError:
        pass  # a read-only cache only costs the next run its estimate


def expected_line(chunks: list[tuple[str, int]], size: int, device: str) -> str | None:
    """The line a run prints before it starts (None: nothing worth saying); ``chunks``: (model,
    pairs) each."""
    from sairbench.progress import _fmt

    data = _read()
    per_pair = {m: data.get(_key(m, size, device)) for m in dict.fromkeys(m for m, _ in chunks)}
    pairs = sum(n for _, n in chunks)
    unknown = sorted(m for m, v in per_pair.items() if v is None)
    if unknown:
        return (f"{pairs} model x pair evaluations to run; no earlier timing of {', '.join(unknown[:4])}"
                f"{', ...' if len(unknown) > 4 else ''} here at {size}x{size}: the ETA follows the first pairs")
    seconds = sum(per_pair[m] * n for m, n in chunks)
    if seconds < SHOW_ABOVE_S:
        return None
    return f"expected time: about {_fmt(seconds)} ({pairs} model x pair evaluations, from earlier runs on this machine)"
