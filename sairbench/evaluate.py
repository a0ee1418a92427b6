"""``sairbench run``: a protocol's images x masks through every model, scored per image.

Per-image rows (image, mask, bucket, ratio, model, metrics...) are written in chunks under
``<run>/parts/`` as they are produced, so an interrupted run resumes where it stopped; at the end
they are merged into ``per_image.parquet`` and summarised by bucket (mean and 95 % CI).
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd
import torch

from sairbench.errors import SairbenchError
from sairbench.inpainter import composite
from sairbench.io import atomic_path, atomic_write_text
from sairbench.protocol import Protocol

CHUNK = 50  # pairs per part file
MASK_DIR_ENV = "SAIRBENCH_LIU2018_MASKS"


@dataclass
class Pair:
    image_index: int
    image: str
    mask_index: int  # index into the mask list
    mask: str
    bucket: str
    ratio: float


def build_masks(proto: Protocol, size: int, mask_dir: str | None = None):
    """The protocol's mask list and a description of where it came from."""
    from sairbench.masks import generate_mask_set, load_mask_folder

    m = proto.masks
    source = m.get("source", "auto")
    folder = mask_dir or m.get("folder") or os.environ.get(MASK_DIR_ENV)
    if source == "auto":
        source = "liu2018" if folder else "generated"
    if source == "liu2018":
        if not folder:
            raise SairbenchError(f"protocol '{proto.name}' needs the Liu et al. 2018 mask folder; pass --mask-dir "
                                 f"or set {MASK_DIR_ENV}.")
        items = load_mask_folder(folder, (size, size), hole_value=int(m.get("hole_value", 255)),
                                 per_bucket=m.get("per_bucket"), seed=proto.seed)
        desc = {"source": "liu2018", "folder": str(folder), "hole_value": int(m.get("hole_value", 255))}
    elif source == "generated":
        items = generate_mask_set(int(m.get("per_bucket", 100)), (size, size), seed=proto.seed)
        desc = {"source": "generated", "generator": "sairbench.masks.generate_mask_set", "seed": proto.seed}
    else:
        raise SairbenchError(f"{proto.source}: unknown mask source '{source}'; use auto, liu2018 or generated.")
    desc["per_bucket"] = m.get("per_bucket")
    return items, desc


def build_pairs(dataset, masks) -> list[Pair]:
    """Pair image i with the i-th mask (cyclically) of every bucket, in bucket order."""
    from sairbench.masks import BUCKETS

    by_bucket: dict[str, list[int]] = {b: [] for b, _, _ in BUCKETS}
    for k, item in enumerate(masks):
        by_bucket.setdefault(item.bucket, []).append(k)
    pairs = []
    for b, ks in by_bucket.items():
        if not ks:
            continue
        for i in range(len(dataset)):
            k = ks[i % len(ks)]
            pairs.append(Pair(i, dataset.sample_name(i) if hasattr(dataset, "sample_name") else str(i),
                              k, masks[k].name, b, float(masks[k].ratio)))
    return pairs


def open_protocol_data(proto: Protocol, dataset: str | None = None, data_root: str | None = None,
                       limit: int | None = None, mask_dir: str | None = None):
    """The dataset config, dataset, masks (and their description) and pairs of a protocol run.

    ``dataset``, ``data_root``, ``limit`` and ``mask_dir`` override the protocol's settings.
    """
    from sairbench.data import get_dataset

    ds_cfg = dict(proto.dataset)
    if dataset:
        ds_cfg["name"] = dataset
    if limit is not None:
        ds_cfg["limit"] = limit
    if data_root:
        ds_cfg["root"] = data_root
    size = int(ds_cfg.get("size", 64))
    ds = get_dataset(ds_cfg["name"], split=ds_cfg.get("split", "test"), size=size, root=ds_cfg.get("root"),
                     limit=ds_cfg.get("limit"), seed=proto.seed)
    if len(ds) == 0:
        raise SairbenchError(f"dataset '{ds_cfg['name']}' has no images for split '{ds_cfg.get('split')}'; check --data-root.")
    masks, mask_desc = build_masks(proto, size, mask_dir)
    return ds_cfg, ds, masks, mask_desc, build_pairs(ds, masks)


def select_models(requested: Iterable[str], checkpoints: dict[str, str] | None = None) -> tuple[list[str], dict[str, str]]:
    """Expand 'available' into every runnable registered model; return (names, skipped-with-reason).

    A model with an explicit checkpoint in ``checkpoints`` counts as available.
    """
    from sairbench.registry import get_spec, list_models

    checkpoints = checkpoints or {}
    names, skipped = [], {}
    for r in requested:
        if r == "available":
            for spec in list_models():
                ok, why = (True, "") if spec.name in checkpoints else spec.available()
                if ok and spec.kind != "plugin":
                    names.append(spec.name)
                elif not ok:
                    skipped[spec.name] = why
        else:
            spec = get_spec(r.split("@")[0])  # "sair@step1500": a named variant with its own checkpoint
            if "@" in r and r not in checkpoints:
                raise SairbenchError(f"model '{r}' names a variant; give its file with --checkpoint {r}=PATH.")
            ok, why = (True, "") if r in checkpoints else spec.available()
            if ok:
                names.append(r)
            else:
                skipped[r] = why
    return list(dict.fromkeys(names)), skipped


def _model_info(model) -> dict[str, Any]:
    info = {"class": type(model).__name__}
    ck = getattr(model, "checkpoint_info", None)
    if ck:
        info.update({"checkpoint_step": ck.get("step"), "size": ck["model"].get("size"),
                     "train": {k: ck.get("train", {}).get(k) for k in ("dataset", "image_size", "seed")},
                     "commit": ck.get("provenance", {}).get("commit")})
    sem = getattr(model, "semantic", None)
    info["semantic_encoder"] = getattr(sem, "encoder_name", None) if sem is not None else None
    return info


def run_model_on_pairs(model, dataset, masks, pairs: list[Pair], metrics, ssim_conv, lpips_scorer,
                       device: torch.device, batch: int = 16) -> pd.DataFrame:
    """Inpaint and score ``pairs`` with ``model``; one row per pair."""
    from sairbench.metrics import score_batch, to_uint8

    rows = []
    for s in range(0, len(pairs), batch):
        chunk = pairs[s:s + batch]
        gt = np.stack([dataset[p.image_index].image for p in chunk])
        m = np.stack([masks[p.mask_index].mask for p in chunk])
        image = torch.from_numpy(gt).permute(0, 3, 1, 2).float().div(255).to(device)
        mask = torch.from_numpy(m).unsqueeze(1).float().to(device)
        masked = image * (1 - mask)  # no model ever sees the hole's content
        with torch.inference_mode():
            pred = model.inpaint(masked, mask)
            out = composite(pred.float().clamp(0, 1), image, mask)
        out_u8 = np.stack([to_uint8(o) for o in out.cpu()])
        scores = score_batch(out_u8, gt, metrics, lpips_scorer=lpips_scorer, ssim_convention=ssim_conv)
        for j, p in enumerate(chunk):
            row = {"image": p.image, "mask": p.mask, "bucket": p.bucket, "ratio": p.ratio}
            row.update({k: float(v[j]) for k, v in scores.items()})
            rows.append(row)
    return pd.DataFrame(rows)


def summarize(per_image: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """Long summary: model, bucket (plus 'all'), metric, mean, ci95, n."""
    from sairbench.metrics import summary_values
    from sairbench.stats import mean_ci95

    rows = []
    for (model, bucket), g in list(per_image.groupby(["model", "bucket"], sort=False)) + \
            [((mname, "all"), g) for mname, g in per_image.groupby("model", sort=False)]:
        for metric in metrics:
            vals = summary_values(metric, g[metric].to_numpy())
            mean, hw = mean_ci95(vals)
            rows.append({"model": model, "bucket": bucket, "metric": metric, "mean": mean, "ci95": hw,
                         "n": int(np.isfinite(vals).sum())})
    return pd.DataFrame(rows)


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("sairbench", "torch", "numpy", "scikit-image", "opencv-python-headless", "lpips", "pandas"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def _write_parquet(df: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)


def write_run_tables(run: Path, per_image: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """Write per_image.parquet, summary.csv and summary.parquet (atomically); return the summary."""
    _write_parquet(per_image, run / "per_image.parquet")
    summary = summarize(per_image, metrics)
    with atomic_path(run / "summary.csv") as tmp:
        summary.to_csv(tmp, index=False)
    _write_parquet(summary, run / "summary.parquet")
    return summary


def resolve_run_dir(results_root: Path, name: str, resume: bool, fingerprint: str) -> Path:
    """A folder for this run that never overwrites earlier results.

    With ``resume`` the named folder is continued (its protocol fingerprint must match); without
    it, an existing folder gets a numbered sibling (``name-2``, ``name-3``, ...).
    """
    run = results_root / name
    if resume:
        meta = run / "run.json"
        if meta.is_file():
            old = json.loads(meta.read_text())
            if old.get("fingerprint") != fingerprint:
                raise SairbenchError(f"{meta}: that run used other settings (fingerprint {old.get('fingerprint')}); "
                                     "resume it with the same options or drop --resume.")
        return run
    k = 2
    while run.exists():
        run = results_root / f"{name}-{k}"
        k += 1
    return run


def run_protocol(proto: Protocol, *, dataset: str | None = None, data_root: str | None = None,
                 models: list[str] | None = None, limit: int | None = None, mask_dir: str | None = None,
                 results_root: str | os.PathLike = "results", name: str | None = None, resume: bool = False,
                 device: str = "cpu", progress: bool = True, checkpoints: dict[str, str] | None = None,
                 shard: tuple[int, int] = (0, 1), console=None) -> Path:
    """Run ``proto`` and write its results folder; returns the folder."""
    if proto.kind == "sir-miou":
        from sairbench.probe import run_miou_probe
        return run_miou_probe(proto, dataset=dataset, data_root=data_root, limit=limit, mask_dir=mask_dir,
                              results_root=results_root, name=name, resume=resume, device=device,
                              progress=progress, checkpoints=checkpoints, console=console)
    from sairbench.metrics import default_lpips_scorer
    from sairbench.registry import create_model

    t_start = time.perf_counter()
    ds_cfg, ds, masks, mask_desc, pairs = open_protocol_data(proto, dataset, data_root, limit, mask_dir)
    metrics = list(proto.metrics.get("names", ["psnr", "ssim", "l1", "lpips"]))
    ssim_conv = proto.metrics.get("ssim", "skimage")
    names, skipped = select_models(models or proto.models.get("names", ["available"]), checkpoints)
    if not names:
        raise SairbenchError(f"no model of protocol '{proto.name}' can run here ({skipped}); see `sairbench models`.")

    settings = {"protocol": proto.to_dict(), "dataset": ds_cfg, "masks": mask_desc, "models": names,
                "checkpoints": checkpoints or {}}
    import hashlib

    fingerprint = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]
    run_name = name or f"{proto.name}_{ds_cfg['name']}"
    run = resolve_run_dir(Path(results_root), run_name, resume, fingerprint)
    run.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run / "run.json", json.dumps({"fingerprint": fingerprint, **settings}, indent=2, default=str))

    lpips_scorer = default_lpips_scorer(device) if "lpips" in metrics else None
    dev = torch.device(device)
    shard_i, shard_n = shard
    chunks = [(m, c) for m in names for c in range(0, len(pairs), CHUNK)]
    chunks = chunks[shard_i::shard_n]
    model_infos: dict[str, Any] = {}
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  disable=not progress, console=console) as bar:
        task = bar.add_task(f"{proto.name}: {len(names)} models x {len(pairs)} pairs", total=len(chunks))
        loaded: dict[str, Any] = {}
        for model_name, c in chunks:
            part = run / "parts" / model_name / f"{c:06d}.parquet"
            if part.is_file():
                bar.advance(task)
                continue
            if model_name not in loaded:
                loaded.clear()
                kw = {"checkpoint": checkpoints[model_name]} if checkpoints and model_name in checkpoints else {}
                model = create_model(model_name.split("@")[0], **kw)
                model.to(dev)
                loaded[model_name] = model
                model_infos[model_name] = _model_info(model)
            bar.update(task, description=f"{proto.name}: {model_name}")
            torch.manual_seed(proto.seed)
            df = run_model_on_pairs(loaded[model_name], ds, masks, pairs[c:c + CHUNK], metrics, ssim_conv,
                                    lpips_scorer, dev)
            df.insert(4, "model", model_name)
            _write_parquet(df, part)
            bar.advance(task)

    expected = {(m, c) for m in names for c in range(0, len(pairs), CHUNK)}
    done = {(p.parent.name, int(p.stem)) for p in (run / "parts").glob("*/*.parquet")}
    if not expected <= done:
        return run  # a shard: merge with `sairbench merge` once every shard is done
    return finalize_run(run, proto, names, metrics, ssim_conv, lpips_scorer, mask_desc, ds_cfg, skipped,
                        model_infos, str(dev), elapsed_s=time.perf_counter() - t_start)


def finalize_run(run: Path, proto: Protocol, names, metrics, ssim_conv, lpips_scorer, mask_desc, ds_cfg,
                 skipped, model_infos, device: str = "cpu", elapsed_s: float | None = None) -> Path:
    """Write per_image / summary / meta.json. ``elapsed_s``: this invocation's time (None for a merge)."""
    from sairbench.metrics import conventions_dict

    parts = sorted((run / "parts").glob("*/*.parquet"))
    per_image = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    order = {m: i for i, m in enumerate(names)}
    per_image = per_image.sort_values(["model", "bucket", "image", "mask"],
                                      key=lambda s: s.map(order) if s.name == "model" else s).reset_index(drop=True)
    write_run_tables(run, per_image, metrics)
    meta = {
        "protocol": proto.name, "protocol_file": proto.source, "seed": proto.seed,
        "dataset": ds_cfg, "masks": mask_desc, "models": names, "skipped_models": skipped,
        "model_info": model_infos,
        "semantic_encoder": {m: (i or {}).get("semantic_encoder") for m, i in model_infos.items()},
        "conventions": conventions_dict(ssim_conv),
        "lpips": {"available": bool(lpips_scorer and lpips_scorer.available),
                  "reason": getattr(lpips_scorer, "reason", "not requested")},
        "versions": _versions(), "device": device, "elapsed_s": elapsed_s,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    atomic_write_text(run / "meta.json", json.dumps(meta, indent=2, default=str))
    return run


# ---------------------------------------------------------------- rebuilding a run from run.json


@dataclass
class RunSettings:
    """What ``run_protocol`` recorded in ``run.json``, with the dataset, masks and pairs rebuilt."""

    run: Path
    fingerprint: str
    proto: Protocol
    ds_cfg: dict
    mask_desc: dict
    names: list
    checkpoints: dict
    metrics: list
    ssim_conv: str
    dataset: Any = None
    masks: Any = None
    pairs: Any = None


def load_run_settings(run: str | os.PathLike, rebuild: bool = True) -> RunSettings:
    """Read ``<run>/run.json`` (written by ``run_protocol``) and, with ``rebuild``, open the same
    dataset and build the same masks and pairs, so a run can be finalised or re-run elsewhere."""
    import hashlib

    run = Path(run)
    path = run / "run.json"
    if not path.is_file():
        raise SairbenchError(f"{path}: missing; give a folder written by `sairbench run` (shard or full run).")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        settings = {k: data[k] for k in ("protocol", "dataset", "masks", "models")}
        settings["checkpoints"] = data.get("checkpoints") or {}
        fingerprint = data["fingerprint"]
        proto = Protocol(**settings["protocol"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SairbenchError(f"{path}: not a run.json written by `sairbench run` ({type(exc).__name__}: {exc}); "
                             "re-run the protocol into a new folder.") from None
    again = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]
    if again != fingerprint:
        raise SairbenchError(f"{path}: its settings do not match its fingerprint {fingerprint} (file edited?); "
                             "restore run.json or re-run the protocol into a new folder.")
    if proto.kind != "inpainting":
        raise SairbenchError(f"{path}: a '{proto.kind}' run; this needs an inpainting run (`sairbench run --protocol liu2018-masks`, ...).")
    ds_cfg, mask_desc = dict(settings["dataset"]), dict(settings["masks"])
    rs = RunSettings(run=run, fingerprint=fingerprint, proto=proto, ds_cfg=ds_cfg, mask_desc=mask_desc,
                     names=list(settings["models"]), checkpoints=dict(settings["checkpoints"]),
                     metrics=list(proto.metrics.get("names", ["psnr", "ssim", "l1", "lpips"])),
                     ssim_conv=proto.metrics.get("ssim", "skimage"))
    if rebuild:
        from sairbench.data import get_dataset

        size = int(ds_cfg.get("size", 64))
        rs.dataset = get_dataset(ds_cfg["name"], split=ds_cfg.get("split", "test"), size=size, root=ds_cfg.get("root"),
                                 limit=ds_cfg.get("limit"), seed=proto.seed)
        rs.masks, desc = build_masks(proto, size, mask_desc.get("folder"))
        if desc != mask_desc:
            raise SairbenchError(f"{path}: the masks built now ({desc}) differ from the run's ({mask_desc}); "
                                 "restore the mask folder the run used.")
        rs.pairs = build_pairs(rs.dataset, rs.masks)
    return rs


def expected_parts(names, n_pairs: int) -> list[tuple[str, int]]:
    """Every (model, first pair index) chunk of a run, in ``run_protocol``'s order (shards take every n-th)."""
    return [(m, c) for m in names for c in range(0, n_pairs, CHUNK)]


def merge_shards(dirs, device: str = "cpu") -> Path:
    """Merge the shards of one run (one folder shared by the shards, or one folder per shard) into
    the first folder's per_image / summary / meta via :func:`finalize_run`.

    Every folder must hold a run.json with the same fingerprint; parts found only in later folders
    are copied into the first. Refuses (naming them) when chunks are missing.
    """
    import shutil

    from sairbench.metrics import default_lpips_scorer

    dirs = [Path(d) for d in dirs]
    if not dirs:
        raise SairbenchError("nothing to merge; give the run folder(s) written by `sairbench run --shard i/n`.")
    for d in dirs:
        if not d.is_dir():
            raise SairbenchError(f"{d}: no such run folder; give folders written by `sairbench run --shard i/n`.")
    first = load_run_settings(dirs[0])
    for d in dirs[1:]:
        other = load_run_settings(d, rebuild=False)
        if other.fingerprint != first.fingerprint:
            raise SairbenchError(f"{d / 'run.json'}: fingerprint {other.fingerprint} differs from {dirs[0] / 'run.json'} "
                                 f"({first.fingerprint}); merge only shards of one run (same protocol and options).")
    expected = expected_parts(first.names, len(first.pairs))
    found: dict[tuple[str, int], Path] = {}
    for d in dirs:
        for p in sorted((d / "parts").glob("*/*.parquet")):
            try:
                key = (p.parent.name, int(p.stem))
            except ValueError:
                continue
            found.setdefault(key, p)
    missing = [k for k in expected if k not in found]
    if missing:
        shown = ", ".join(f"{m}/{c:06d}" for m, c in missing[:5]) + (", ..." if len(missing) > 5 else "")
        raise SairbenchError(f"{dirs[0]}: {len(missing)} of {len(expected)} chunks missing ({shown}); run the missing "
                             "shards (`sairbench run --shard i/n --resume` with the same options), then merge again.")
    target = dirs[0]
    for key in expected:
        dst = target / "parts" / key[0] / f"{key[1]:06d}.parquet"
        if not dst.is_file():
            with atomic_path(dst) as tmp:
                shutil.copyfile(found[key], tmp)
    # what run_protocol knew but did not record in run.json
    _, skipped = select_models(first.proto.models.get("names", ["available"]), first.checkpoints)
    skipped = {k: v for k, v in skipped.items() if k not in first.names}
    model_infos: dict[str, Any] = {}
    for m in first.names:
        try:
            from sairbench.registry import create_model

            kw = {"checkpoint": first.checkpoints[m]} if m in first.checkpoints else {}
            model_infos[m] = _model_info(create_model(m, **kw))
        except Exception as exc:  # the shards ran elsewhere: keep merging, say so
            model_infos[m] = {"class": None, "note": f"not loadable where merged ({type(exc).__name__})"}
    lpips_scorer = default_lpips_scorer(device) if "lpips" in first.metrics else None
    return finalize_run(target, first.proto, first.names, first.metrics, first.ssim_conv, lpips_scorer,
                        first.mask_desc, first.ds_cfg, skipped, model_infos, device)
