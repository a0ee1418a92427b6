"""One results folder: its settings and fingerprint, never-overwrite naming, resume, part files,
atomic tables and ``meta.json``.

Every evaluation (a protocol run, its shards and their merge, the mIoU probe, outside methods)
writes through :class:`RunFolder`::

    <run>/run.json            settings + fingerprint (written when the folder is made)
    <run>/parts/<model>/<first pair>.parquet   per-image rows, as they are produced
    <run>/parts/<model>/<first pair>.json      its record: sha256, columns, rows, model, first pair,
                                               pairs and buckets, run fingerprint (written first)
    <run>/per_image.parquet, summary.csv, summary.parquet
    <run>/meta.json           versions, conventions, LPIPS status, elapsed time (written once, at the end)

A part is used only when it matches its record and the chunk it stands for (:meth:`RunFolder.part_problem`):
``--resume`` recomputes any other (one warning line), ``merge`` refuses it naming the file. A folder
continued with ``--resume`` (or by a shard) may hold no symbolic link that leads out of the results
root (:func:`sairbench.runchecks.refuse_links`). A write that fails (disk full, read-only folder) is one line
naming the file; every write is atomic, so what was written before stays as it was.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from sairbench.errors import SairbenchError
from sairbench.io import atomic_path, atomic_write_text
from sairbench.runchecks import checked_part, file_sha256, part_problem, part_record, record_path, refuse_links, writing

VERSIONED_PACKAGES = ("sairbench", "torch", "numpy", "scikit-image", "opencv-python-headless", "lpips", "pytorch-fid",
                      "pandas")


def fingerprint_of(settings: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def package_versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in VERSIONED_PACKAGES:
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def now_utc() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class RunFolder:
    """A results folder (see the module docstring). Make one with :meth:`create` or :meth:`open`."""

    def __init__(self, path: Path, settings: dict[str, Any], fingerprint: str):
        self.path, self.settings, self.fingerprint = Path(path), settings, fingerprint

    # -- making and opening ------------------------------------------------------------------
    @classmethod
    def create(cls, results_root: str | os.PathLike, name: str, settings: dict[str, Any], resume: bool = False) -> "RunFolder":
        """The folder ``results_root/name`` for a run of ``settings``.

        With ``resume`` the named folder is continued (its fingerprint must match; no link in it may
        lead out of ``results_root``); without it an existing folder gets a numbered sibling
        (``name-2``, ...), claimed atomically by ``mkdir``.
        """
        fp = fingerprint_of(settings)
        root = Path(results_root)
        run = root / name
        if resume:
            refuse_links(run, root)
        if resume and (run / "run.json").is_file():
            old = cls.open(run, check=False)
            if old.fingerprint != fp:
                raise SairbenchError(f"{run / 'run.json'}: that run used other settings (fingerprint {old.fingerprint}); "
                                     "resume it with the same options or drop --resume.")
            return old
        if root.exists() and not root.is_dir():
            raise SairbenchError(f"{root}: a file, not a folder; give --results a folder.")
        with writing(root):
            root.mkdir(parents=True, exist_ok=True)
        k = 2
        while True:
            try:
                with writing(run):
                    run.mkdir(exist_ok=resume)
                break
            except FileExistsError:
                run = root / f"{name}-{k}"
                k += 1
        folder = cls(run, settings, fp)
        folder._write_text("run.json", json.dumps({"fingerprint": fp, **settings}, indent=2, default=str))
        return folder

    @classmethod
    def open(cls, path: str | os.PathLike, check: bool = True) -> "RunFolder":
        """An existing folder, from its run.json; ``check`` verifies the settings against the fingerprint."""
        path = Path(path)
        meta = path / "run.json"
        if not meta.is_file():
            raise SairbenchError(f"{meta}: missing; give a folder written by `sairbench run` (shard or full run).")
        try:
            data = json.loads(meta.read_text(encoding="utf-8"))
            fp = data.pop("fingerprint")
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise SairbenchError(f"{meta}: not a run.json written by `sairbench run` ({type(exc).__name__}); "
                                 "re-run the protocol into a new folder.") from None
        if check and fingerprint_of(data) != fp:
            raise SairbenchError(f"{meta}: its settings do not match its fingerprint {fp} (file edited?); "
                                 "restore run.json or re-run the protocol into a new folder.")
        return cls(path, data, fp)

    # -- part files ----------------------------------------------------------------------------
    def part_path(self, model: str, first_pair: int) -> Path:
        return self.path / "parts" / model / f"{first_pair:06d}.parquet"

    def part_problem(self, model: str, first_pair: int, pairs=None) -> str | None:
        """What is wrong with the part (``model``, ``first_pair``) (None: it may be used); ``pairs``:
        the chunk's pairs when known (see :func:`sairbench.runchecks.part_problem`)."""
        return part_problem(self.part_path(model, first_pair), model, first_pair, self.fingerprint, pairs)

    def has_part(self, model: str, first_pair: int, pairs=None) -> bool:
        """True for a part file that matches its record (and ``pairs``, the chunk's pairs); any
        other is named in one warning line, removed with its record, and so recomputed."""
        path = self.part_path(model, first_pair)
        if not path.is_file():
            return False
        problem = self.part_problem(model, first_pair, pairs)
        if problem is None:
            return True
        warnings.warn(f"{path}: {problem}; recomputing it.", stacklevel=2)
        with writing(path):
            path.unlink()
            record_path(path).unlink(missing_ok=True)
        return False

    def write_part(self, model: str, first_pair: int, rows: pd.DataFrame) -> None:
        """The part file and its record (the record first, so a part never lies there without it)."""
        path = self.part_path(model, first_pair)
        with writing(path), atomic_path(path) as tmp:
            rows.to_parquet(tmp, index=False)
            record = part_record(rows, model, first_pair, self.fingerprint, file_sha256(tmp))
            atomic_write_text(record_path(path), json.dumps(record, indent=1))

    def parts(self) -> dict[tuple[str, int], Path]:
        """{(model, first pair): file} of the part files written so far."""
        found = {}
        for p in sorted((self.path / "parts").glob("*/*.parquet")):
            try:
                found[(p.parent.name, int(p.stem))] = p
            except ValueError:
                continue
        return found

    def read_parts(self, keys, pairs_of=None) -> pd.DataFrame:
        """The rows of the part files ``keys`` [(model, first pair)], in that order; ``pairs_of``:
        key -> the chunk's pairs. A part that does not match its record and chunk is one line."""
        frames = []
        for key in keys:
            path = self.part_path(*key)
            problem, rows = checked_part(path, *key, self.fingerprint, pairs_of(key) if pairs_of else None)
            if problem:
                raise SairbenchError(f"{path}: {problem}; run `sairbench run` with the same options and --resume "
                                     "to recompute it.")
            frames.append(rows)
        return pd.concat(frames, ignore_index=True)

    # -- what every invocation adds -------------------------------------------------------------
    def _write_text(self, name: str, text: str) -> None:
        """``<run>/name`` atomically; a failed write is one line naming the file."""
        with writing(self.path / name):
            atomic_write_text(self.path / name, text)

    def _read_json(self, name: str, default):
        path = self.path / name
        try:
            return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else default
        except (OSError, ValueError):
            return default

    def record_model_info(self, model: str, info: dict[str, Any]) -> None:
        """Keep what meta.json says of ``model`` (written when it is loaded, read at the end), one
        file per model, so that ranks writing into one folder at once never overwrite each other."""
        (self.path / "model_info").mkdir(exist_ok=True)
        self._write_text(f"model_info/{_safe_name(model)}.json", json.dumps({model: info}, indent=2, default=str))

    def model_infos(self) -> dict[str, Any]:
        infos = dict(self._read_json("model_info.json", {}))  # folders written before one file per model
        folder = self.path / "model_info"
        for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
            infos.update(self._read_json(f"model_info/{path.name}", {}))
        return infos

    def record_skipped(self, skipped: dict[str, str]) -> None:
        self._write_text("skipped.json", json.dumps(skipped, indent=2))

    def skipped(self) -> dict[str, str]:
        return self._read_json("skipped.json", {})

    def elapsed(self) -> list[float]:
        """The time of every invocation that wrote into this folder, in seconds."""
        return self._read_json("elapsed.json", [])

    def add_elapsed(self, seconds: float, one_time: dict[str, float] | None = None) -> float:
        """Add one invocation's whole time, and the part of it spent on ``one_time`` work (model
        training, text embeddings, dataset and mask set up; summed per kind over invocations);
        returns the total over every invocation of this run."""
        times = self.elapsed() + [round(float(seconds), 3)]
        self._write_text("elapsed.json", json.dumps(times))
        if one_time:
            done = self.one_time()
            for k, v in one_time.items():
                done[k] = round(done.get(k, 0.0) + float(v), 3)
            self._write_text("one_time.json", json.dumps(done))
        return float(sum(times))

    def one_time(self) -> dict[str, float]:
        """Seconds of one-time work by kind, over every invocation (see :meth:`add_elapsed`)."""
        return self._read_json("one_time.json", {})

    def record_options(self, options: dict[str, Any]) -> None:
        """The job's options with their sources (``RunOptions.record``); meta.json repeats them."""
        self._write_text("options.json", json.dumps(options, indent=2, default=str))

    def options(self) -> dict[str, Any]:
        return self._read_json("options.json", {})

    # -- results -------------------------------------------------------------------------------
    def write_tables(self, per_image: pd.DataFrame, summary: pd.DataFrame) -> None:
        """per_image.parquet, summary.csv and summary.parquet, each atomically."""
        write_parquet(per_image, self.path / "per_image.parquet")
        with writing(self.path / "summary.csv"), atomic_path(self.path / "summary.csv") as tmp:
            summary.to_csv(tmp, index=False)
        write_parquet(summary, self.path / "summary.parquet")

    def write_meta(self, meta: dict[str, Any], device: str, elapsed_s: float | None) -> None:
        """meta.json: ``meta`` plus package versions, device, elapsed time and creation time."""
        full = {**meta, "options": self.options(), "versions": package_versions(), "device": device,
                "elapsed_s": elapsed_s, "elapsed_one_time_s": self.one_time(), "created": now_utc()}
        self._write_text("meta.json", json.dumps(full, indent=2, default=str))

    def is_finished(self) -> bool:
        return (self.path / "summary.csv").is_file() and (self.path / "meta.json").is_file()


def write_parquet(df: pd.DataFrame, path: Path) -> None:
    """``df`` to ``path`` atomically; a failed write is one line naming ``path``."""
    with writing(path), atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)


def lpips_status(scorer) -> dict[str, Any]:
    """meta.json's ``lpips`` entry for an LPIPS scorer (None = not requested)."""
    path = getattr(scorer, "weights_path", None)
    return {"available": bool(scorer and scorer.available), "reason": getattr(scorer, "reason", "not requested"),
            "vgg16_file": str(path) if path else None, "vgg16_sha256": getattr(scorer, "weights_sha256", None)}


def _safe_name(model: str) -> str:
    """A file name for ``model`` (``liif@ft6000``): letters, digits, '.', '_', '@', '-' kept."""
    return "".join(c if c.isalnum() or c in "._@-" else "_" for c in model) or "_"
