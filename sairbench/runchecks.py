"""What a run folder's files must hold before they are used: part records, links, failed writes.

* A part file ``parts/<model>/<first pair>.parquet`` has a record ``<first pair>.json`` beside it,
  written before the part is renamed into place: the part's sha256, columns, number of rows, model,
  first pair index, the (image, mask, bucket) of its rows and the buckets it covers, and the run's
  fingerprint. :func:`part_problem` says what is wrong with a part (unreadable, no record, another
  model's or run's, other rows or columns than the chunk it stands for, edited since written).
* :func:`refuse_links` refuses a folder that is (or holds) a symbolic link leading out of the root
  results are written under, so a resumed run never reads or writes outside it.
* :func:`writing` turns a failed write (disk full, read-only folder) into one line naming the file.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Sequence

from sairbench.errors import SairbenchError

#: columns every part holds before its metrics (``evaluate.score_items`` and the model column)
PART_KEYS = ("image", "mask", "bucket", "ratio", "model")


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def record_path(part: Path) -> Path:
    """The record of the part file ``part`` (``000050.parquet`` -> ``000050.json``)."""
    return part.with_suffix(".json")


def rows_of(rows) -> list[list[str]]:
    """[image, mask, bucket] of each row (of a part) or pair (of a chunk), as text."""
    if hasattr(rows, "columns"):
        return [[str(a), str(b), str(c)] for a, b, c in zip(rows["image"], rows["mask"], rows["bucket"])]
    return [[str(p.image), str(p.mask), str(p.bucket)] for p in rows]


def part_record(rows, model: str, first_pair: int, fingerprint: str, sha256: str,
                pairs: list | None = None) -> dict[str, Any]:
    """The record of a part holding ``rows`` (a DataFrame) whose file has digest ``sha256``;
    ``pairs``: ``rows_of(rows)`` when already known."""
    return {"sha256": sha256, "model": model, "first_pair": int(first_pair), "fingerprint": fingerprint,
            "rows": int(len(rows)), "columns": [str(c) for c in rows.columns],
            "pairs": rows_of(rows) if pairs is None else pairs,
            "buckets": sorted({str(b) for b in rows["bucket"]})}


def part_problem(path: Path, model: str, first_pair: int, fingerprint: str,
                 pairs: Sequence | None = None) -> str | None:
    """What is wrong with the part file ``path`` of (``model``, ``first_pair``) in the run of
    ``fingerprint`` (None when it may be used); ``pairs``: the chunk's pairs when known."""
    return checked_part(path, model, first_pair, fingerprint, pairs)[0]


def checked_part(path: Path, model: str, first_pair: int, fingerprint: str,
                 pairs: Sequence | None = None):
    """(:func:`part_problem`, the part's rows) from one read of the file (rows None when damaged)."""
    import io

    import pandas as pd

    try:
        data = path.read_bytes()
        df = pd.read_parquet(io.BytesIO(data))
    except Exception as exc:  # truncated, not parquet (pyarrow raises several types)
        return f"damaged part file ({type(exc).__name__})", None
    return _problem_of(df, data, path, model, first_pair, fingerprint, pairs), df


def _problem_of(df, data: bytes, path: Path, model: str, first_pair: int, fingerprint: str,
                pairs: Sequence | None) -> str | None:
    missing = [c for c in PART_KEYS if c not in df.columns]
    if missing:
        return f"part file without the column(s) {missing}"
    models = sorted({str(m) for m in df["model"]})
    if models != [model]:
        return f"part file holds rows of {', '.join(models) or 'no model'}, not of {model}"
    if pairs is not None and len(df) != len(pairs):
        return f"part file holds {len(df)} row(s), not the {len(pairs)} of its chunk (pairs from {first_pair})"
    rows = rows_of(df)
    if pairs is not None and rows != rows_of(pairs):
        return f"part file holds other (image, mask) pairs than its chunk (pairs from {first_pair})"
    rec = record_path(path)
    try:
        record = json.loads(rec.read_text(encoding="utf-8")) if rec.is_file() else None
    except (OSError, ValueError):
        record = None
    if not isinstance(record, dict):
        return f"part file not listed in its record ({rec.name} missing or unreadable)"
    mine = part_record(df, model, first_pair, fingerprint, record.get("sha256", ""), rows)
    for key in ("model", "first_pair", "fingerprint", "rows", "columns", "pairs", "buckets"):
        if record.get(key) != mine[key]:
            return f"part file whose {key} differs from its record {rec.name} (copied or edited)"
    if hashlib.sha256(data).hexdigest() != record.get("sha256"):
        return f"part file edited since it was written (its sha256 differs from {rec.name})"
    return None


def refuse_links(folder: Path, root: Path) -> None:
    """Refuse ``folder`` when it, or a folder or file in it, is a symbolic link whose target lies
    outside ``root`` (the results root)."""
    base = Path(os.path.realpath(root))

    def check(p: Path) -> None:
        target = Path(os.path.realpath(p))
        if target != base and base not in target.parents:
            raise SairbenchError(f"{p}: a symbolic link to {target}, outside {root}; results are read and written "
                                 f"only inside the results folder: replace the link by a real folder (or give "
                                 "--results where the run lies).")

    if os.path.islink(folder):
        check(folder)
    if not os.path.isdir(folder):
        return
    for top, dirs, files in os.walk(folder):  # links are listed, never followed
        for name in dirs + files:
            p = Path(top) / name
            if os.path.islink(p):
                check(p)


def writing(path: Path):
    """Writes into a run folder at ``path`` inside: a failure is one line naming it
    (``sairbench.io.write_errors``), saying that --resume continues the run."""
    from sairbench.io import write_errors

    return write_errors(path, "run the command again (files written before are kept; --resume continues the run)")
