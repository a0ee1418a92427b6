"""Which run's rows a report shows when runs of equal settings hold the same model.

Runs of equal settings (:func:`~sairbench.report.settings.settings_key`) share a table. When
several of them hold the same model (same name and self-ensemble, meta.json's ``model_info``), its
row comes from the newest run: by meta.json's ``created`` (when the run was finished) where
both runs record one, else by the modification time of summary.csv, else the later folder given.
The older runs' rows of that model are superseded: left out of the tables, paired tests and
figures, and named under the table (:func:`superseded_lines`); ``sairbench report --all`` keeps every row.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from sairbench.report.settings import settings_key


def run_age(meta: dict) -> tuple[float | None, float]:
    """(finished, summary.csv modified), seconds since the epoch, of the run of ``meta`` (a
    meta.json dict with ``_dir``). ``created`` without a time zone is taken as UTC; an unreadable
    one is None."""
    summary = Path(meta.get("_dir", "")) / "summary.csv"
    mtime = summary.stat().st_mtime if summary.is_file() else 0.0
    try:
        created = datetime.fromisoformat(str(meta.get("created")))
    except ValueError:
        return None, mtime
    if created.tzinfo is None:
        created = created.replace(tzinfo=timezone.utc)
    return created.timestamp(), mtime


def _newer(a: tuple, b: tuple) -> bool:
    """Whether the run of age ``a`` (:func:`run_age` + its position) is newer than that of ``b``:
    by finish time when both have one and they differ, else by summary.csv's modification time,
    else the later given."""
    (ca, ma, ia), (cb, mb, ib) = a, b
    if ca is not None and cb is not None and ca != cb:
        return ca > cb
    return ma > mb if ma != mb else ia > ib


def model_identity(meta: dict, model: str) -> tuple[str, int]:
    """(name, self-ensemble size) of ``model`` in the run of ``meta``: a model averaged over flips
    is another measurement than the same model answering once."""
    infos = meta.get("model_info")
    info = infos.get(model) if isinstance(infos, dict) else None
    n = info.get("self_ensemble", 1) if isinstance(info, dict) else 1
    return str(model), int(n) if isinstance(n, int) else 1


def keep_newest(summary: pd.DataFrame, per_image: pd.DataFrame, metas: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``summary`` and ``per_image`` (frames of :func:`~sairbench.report.load.load_results`, with a
    ``run`` column) with only the newest run's rows of each model per settings.

    Each meta.json dict of a run whose rows were left out gains ``_superseded``: ``{model: the
    newer run's name}``, in the order of its summary.
    """
    by_run = {m["_run"]: m for m in metas}
    newness = {m["_run"]: (*run_age(m), i) for i, m in enumerate(metas)}
    key = {m["_run"]: settings_key(m) for m in metas}
    if not len(summary):
        return summary, per_image
    pairs = list(dict.fromkeys(zip(summary["run"], summary["model"])))
    owner: dict[tuple, str] = {}
    for run, model in pairs:
        k = (key[run], model_identity(by_run[run], model))
        if k not in owner or _newer(newness[run], newness[owner[k]]):
            owner[k] = run
    keep = set()
    for run, model in pairs:
        newer = owner[(key[run], model_identity(by_run[run], model))]
        if newer == run:
            keep.add((run, model))
        else:
            by_run[run].setdefault("_superseded", {})[model] = newer

    def kept(df: pd.DataFrame) -> pd.DataFrame:
        """The rows of ``df`` whose (run, model) is kept."""
        if not len(df):
            return df
        return df[[(r, m) in keep for r, m in zip(df["run"], df["model"])]].reset_index(drop=True)

    return kept(summary), kept(per_image)


def superseded_lines(metas: list[dict]) -> list[str]:
    """One plain-text line per run of ``metas`` with superseded rows: ``"Superseded: run_a (telea,
    biharmonic; newer rows from run_b). sairbench report --all shows every run's rows."``"""
    lines = []
    for meta in metas:
        gone = meta.get("_superseded") or {}
        if gone:
            newer = ", ".join(dict.fromkeys(gone.values()))
            lines.append(f"Superseded: {meta['_run']} ({', '.join(gone)}; newer rows from {newer}). "
                         "sairbench report --all shows every run's rows.")
    return lines
