"""Loading: result folders written by ``sairbench run`` and the paper's published tables.

A result folder holds:

* ``summary.csv``: long format, columns ``model, bucket, metric, mean, ci95, n`` (bucket may be
  ``"all"``);
* ``per_image.parquet``: one row per image x mask x model, columns ``image, mask, bucket, ratio,
  model`` and one column per metric;
* ``meta.json``: ``protocol, dataset, seed, conventions, semantic_encoder, versions, created``.

``results/published/*.csv`` hold the paper's tables in the long format ``model, bucket, metric,
value, table, dataset, source``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from sairbench.errors import SairbenchError
from sairbench.report.latest import keep_newest
from sairbench.report.naming import canonical_bucket, loose_name
from sairbench.report.settings import settings_key

PUBLISHED_DIR = Path(__file__).resolve().parents[2] / "results" / "published"
SUMMARY_COLUMNS = ("model", "bucket", "metric", "mean", "ci95", "n")
PER_IMAGE_KEYS = ("image", "mask", "bucket", "model")
PUBLISHED_COLUMNS = ("model", "bucket", "metric", "value", "table", "dataset", "source")

#: Which of the paper's tables a protocol's section may show as published rows; other protocols
#: take every published table that shares a bucket and a metric with them.
PROTOCOL_TABLES: dict[str, set[str]] = {
    "liu2018-masks": {"table1", "table2"},
    "ablations": {"table4", "table6"},
    "sir-miou": {"table6"},
}
#: The same for runs of a kind (meta.json's ``kind``) whose protocol PROTOCOL_TABLES does not name.
KIND_TABLES: dict[str, set[str]] = {"sir-miou": {"table6"}}


def _read_json(path: Path) -> dict:
    """The JSON object in ``path``; SairbenchError when it is unreadable or not an object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SairbenchError(f"{path}: not readable JSON ({type(exc).__name__}); re-run `sairbench run` to rewrite it.") from None
    if not isinstance(data, dict):
        raise SairbenchError(f"{path}: expected a JSON object; re-run `sairbench run` to rewrite it.")
    return data


#: options whose value is a setting of the run (the others say how one invocation ran: threads, shard, ...)
SETTING_OPTIONS = ("protocol", "dataset", "limit", "size", "per_bucket", "fit", "self_ensemble")


def _differs(what: str, said, recorded) -> str | None:
    """``what`` (dotted) of the first place where meta.json's ``said`` and the record differ."""
    if isinstance(said, dict) and isinstance(recorded, dict):
        for k in sorted(set(said) | set(recorded), key=str):
            found = _differs(f"{what}.{k}", said.get(k), recorded.get(k))
            if found:
                return found
        return None
    if said != recorded:
        return f"{what} {json.dumps(said, default=str)} (the run recorded {json.dumps(recorded, default=str)})"
    return None


def check_against_run_record(folder: Path, meta: dict) -> None:
    """Refuse a meta.json that disagrees with the run's own record of its settings: run.json
    (written when the folder was made, checked against its fingerprint) and options.json (the
    setting options' values). Folders without run.json (results from elsewhere) are taken as they are."""
    from sairbench.runfolder import RunFolder

    if not (folder / "run.json").is_file():
        return
    rf = RunFolder.open(folder)
    rec = rf.settings
    proto = rec.get("protocol")
    pairs = [("protocol", meta.get("protocol"), proto.get("name") if isinstance(proto, dict) else proto)]
    if isinstance(proto, dict) and "seed" in proto:
        pairs.append(("seed", meta.get("seed"), proto["seed"]))
    pairs += [(k, meta.get(k), rec[k]) for k in ("dataset", "masks", "models") if k in rec]
    if "fingerprint" in meta:
        pairs.append(("fingerprint", meta["fingerprint"], rf.fingerprint))
    options, said_options = rf.options(), meta.get("options")
    if options and isinstance(said_options, dict):
        said = {k: v.get("value") if isinstance(v, dict) else v for k, v in said_options.items()}
        pairs += [(f"options.{k}", said.get(k), options[k].get("value"))
                  for k in SETTING_OPTIONS if isinstance(options.get(k), dict)]
    for what, said, recorded in pairs:
        found = _differs(what, said, recorded)
        if found:
            source = "options.json" if what.startswith("options.") else "run.json"
            raise SairbenchError(f"{folder / 'meta.json'}: its {found} disagrees with the run's {source}; "
                                 "restore meta.json (or finish the run again: `sairbench run` with the same "
                                 "options and --resume).")


def meta_key(meta: dict, key: str) -> str:
    """``meta[key]`` as a name: a dict gives its ``name`` (else its JSON), None and absence give ``""``."""
    v = meta.get(key, "")
    if isinstance(v, dict):
        return str(v.get("name", json.dumps(v, sort_keys=True, default=str)))
    return "" if v is None else str(v)


def load_results(dirs, latest: bool = False) -> tuple[pd.DataFrame, pd.DataFrame, list[dict]]:
    """Read result folders written by ``sairbench run``.

    Args:
        dirs: one folder or a list of folders, each holding summary.csv, per_image.parquet and
            meta.json (per_image.parquet may be absent: no paired tests then).
        latest: keep, per settings, each model's rows from the newest run that has it
            (:func:`~sairbench.report.latest.keep_newest`: the older runs' metas gain ``_superseded``).

    Returns:
        (summary_df, per_image_df, metas). Both frames gain the columns ``run`` (folder name),
        ``protocol`` and ``dataset`` (from meta.json) and ``source = "run"``. When one model name
        occurs in several folders of the same settings (:func:`~sairbench.report.settings.settings_key`:
        they share a table), it becomes ``"model [run]"`` in both frames so that rows stay distinct. ``metas`` are the meta.json dicts, each with
        ``_dir`` and ``_run`` added.
    """
    if isinstance(dirs, (str, Path)):
        dirs = [dirs]
    dirs = [Path(d) for d in dirs]
    names = [d.name for d in dirs]
    runs = [d.name if names.count(d.name) == 1 else str(d) for d in dirs]
    summaries, per_images, metas = [], [], []
    for d, run in zip(dirs, runs):
        if not d.is_dir():
            raise SairbenchError(
                f"{d}: no such result folder; give a folder written by `sairbench run` "
                "(it holds summary.csv, per_image.parquet and meta.json)."
            )
        meta_path, summary_path, per_image_path = d / "meta.json", d / "summary.csv", d / "per_image.parquet"
        if not summary_path.is_file():
            raise SairbenchError(
                f"{summary_path}: missing; the run did not finish. Resume it with `sairbench run` or drop this folder."
            )
        if not meta_path.is_file():
            raise SairbenchError(f"{meta_path}: missing; results without their conventions cannot be reported. Re-run `sairbench run`.")
        meta = _read_json(meta_path)
        check_against_run_record(d, meta)
        try:
            summary = pd.read_csv(summary_path)
        except (OSError, ValueError, pd.errors.ParserError) as exc:
            raise SairbenchError(f"{summary_path}: not a readable CSV ({type(exc).__name__}); re-run `sairbench run`.") from None
        missing = [c for c in SUMMARY_COLUMNS if c not in summary.columns]
        if missing:
            raise SairbenchError(
                f"{summary_path}: missing columns {missing}; expected {list(SUMMARY_COLUMNS)} (long format). Re-run `sairbench run`."
            )
        protocol, dataset = meta_key(meta, "protocol"), meta_key(meta, "dataset")
        summary = summary.assign(run=run, protocol=protocol, dataset=dataset, source="run")
        summary["model"] = summary["model"].astype(str)
        summary["bucket"] = summary["bucket"].astype(str)
        summaries.append(summary)
        if per_image_path.is_file():
            try:
                per_image = pd.read_parquet(per_image_path)
            except Exception as exc:  # pyarrow raises several types
                raise SairbenchError(f"{per_image_path}: not a readable parquet file ({type(exc).__name__}); re-run `sairbench run`.") from None
            missing = [c for c in PER_IMAGE_KEYS if c not in per_image.columns]
            if missing:
                raise SairbenchError(f"{per_image_path}: missing columns {missing}; re-run `sairbench run`.")
            per_image = per_image.assign(run=run, protocol=protocol, dataset=dataset, source="run")
            per_image["model"] = per_image["model"].astype(str)
            per_image["bucket"] = per_image["bucket"].astype(str)
            per_images.append(per_image)
        metas.append({**meta, "_dir": str(d), "_run": run})

    summary_df = pd.concat(summaries, ignore_index=True) if summaries else pd.DataFrame(
        columns=[*SUMMARY_COLUMNS, "run", "protocol", "dataset", "source"])
    per_image_df = pd.concat(per_images, ignore_index=True) if per_images else pd.DataFrame(
        columns=[*PER_IMAGE_KEYS, "run", "protocol", "dataset", "source"])

    if latest:
        summary_df, per_image_df = keep_newest(summary_df, per_image_df, metas)
    # the same model in two runs of the same settings (one table): keep both, named apart
    if len(summary_df):
        setting = {m["_run"]: settings_key(m) for m in metas}
        runs_per = summary_df.assign(_s=summary_df["run"].map(setting)).groupby(["_s", "model"])["run"].nunique()
        clash = {k for k, v in runs_per.items() if v > 1}
        if clash:
            def rename(df: pd.DataFrame) -> pd.DataFrame:
                """``df`` with each clashing model named ``"model [run]"``."""
                if not len(df):
                    return df
                df = df.copy()
                df["model"] = [f"{m} [{r}]" if (setting[r], m) in clash else m for m, r in zip(df["model"], df["run"])]
                return df

            summary_df, per_image_df = rename(summary_df), rename(per_image_df)
    return summary_df, per_image_df, metas


def find_runs(root: str | Path = "results") -> tuple[list[Path], list[Path]]:
    """The run folders directly under ``root``, as (finished, incomplete), each sorted by name.

    A folder is finished when it holds summary.csv and meta.json; it is an incomplete run when it
    holds some trace of ``sairbench run`` (run.json, parts/, summary.csv or meta.json) without
    both. Other folders (``published``, a report folder) are neither. A missing ``root`` gives
    two empty lists.
    """
    root = Path(root)
    finished, incomplete = [], []
    for d in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        has = {n: (d / n).exists() for n in ("summary.csv", "meta.json", "run.json", "parts")}
        if has["summary.csv"] and has["meta.json"]:
            finished.append(d)
        elif any(has.values()):
            incomplete.append(d)
    return finished, incomplete


def published_tables(folder: str | Path | None = None) -> list[str]:
    """Names of the published tables (CSV stems) in ``folder``."""
    folder = _published_folder(folder)
    return sorted(p.stem for p in folder.glob("*.csv")) if folder.is_dir() else []


def _published_folder(folder) -> Path:
    """Folder of the published CSVs: None -> :data:`PUBLISHED_DIR`; a relative path that does not
    exist here is taken relative to the repository."""
    if folder is None:
        return PUBLISHED_DIR
    folder = Path(folder)
    if not folder.is_dir() and not folder.is_absolute() and (PUBLISHED_DIR.parents[1] / folder).is_dir():
        return PUBLISHED_DIR.parents[1] / folder  # "results/published" relative to the repository
    return folder


def load_published(table: str, folder: str | Path = "results/published") -> pd.DataFrame:
    """One published table in the long summary format.

    Args:
        table: CSV stem (``"table1_celebahq"``), a unique prefix of one (``"table1"``), or a path.
        folder: where the CSVs live; a relative path that does not exist here is taken relative
            to the repository.

    Returns:
        DataFrame with ``model, bucket, metric, value, table, dataset, source="published"`` plus
        ``mean`` (= value), ``ci95`` (NaN) and ``n`` (NaN), so it concatenates with a summary.
    """
    p = Path(table)
    if p.suffix == ".csv" and p.is_file():
        path = p
    else:
        base = _published_folder(folder)
        names = published_tables(base)
        if table in names:
            path = base / f"{table}.csv"
        else:
            matches = [n for n in names if n.startswith(str(table))]
            if len(matches) != 1:
                raise SairbenchError(
                    f"unknown published table '{table}'; known in {base}: {', '.join(names) or 'none'}."
                )
            path = base / f"{matches[0]}.csv"
    try:
        df = pd.read_csv(path, dtype={"model": str, "bucket": str, "metric": str})
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise SairbenchError(f"{path}: not a readable CSV ({type(exc).__name__}); fix or restore the file.") from None
    missing = [c for c in ("model", "bucket", "metric", "value") if c not in df.columns]
    if missing:
        raise SairbenchError(f"{path}: missing columns {missing}; expected {list(PUBLISHED_COLUMNS)}.")
    if "table" not in df.columns:
        df["table"] = path.stem
    if "dataset" not in df.columns:
        df["dataset"] = "unspecified"
    df["source"] = "published"
    df["value"] = pd.to_numeric(df["value"], errors="coerce")
    df["mean"] = df["value"]
    df["ci95"] = np.nan
    df["n"] = np.nan
    return df


def published_for(published: dict, protocol: str, dataset: str, buckets, metrics, kind: str = "inpainting") -> list[str]:
    """Names of the ``published`` tables (name -> frame) whose rows belong in the section of
    ``protocol`` (runs of ``kind``) on ``dataset``: allowed by PROTOCOL_TABLES (else KIND_TABLES),
    sharing a bucket and a metric; those on the same dataset when there are any."""
    canon = {canonical_bucket(b) for b in buckets}
    allowed = PROTOCOL_TABLES.get(protocol, KIND_TABLES.get(kind))
    eligible = []
    for name, pdf in published.items():
        if not len(pdf):
            continue
        if allowed is not None and not set(map(str, pdf["table"])) & allowed:
            continue
        if canon & {canonical_bucket(b) for b in pdf["bucket"]} and set(metrics) & set(pdf["metric"]):
            eligible.append(name)
    same = [n for n in eligible if loose_name(dataset) in {loose_name(d) for d in published[n]["dataset"]}]
    return same or eligible
