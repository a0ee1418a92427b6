"""``sairbench run``: a protocol's images x masks through every model, scored per image.

Protocol kinds are one table (``sairbench.protocol.KINDS``): ``inpainting`` (Tables 1, 2, 4, 6
right, :func:`run_inpainting`) and ``sir-miou`` (the mIoU probe, ``sairbench.probe``); each takes
the job's resolved :class:`~sairbench.options.RunOptions` whole. Per-image rows are written in parts under
``<run>/parts/`` as they are produced (``sairbench.runfolder``), so an interrupted run resumes
where it stopped and shards of one run share a folder; the last step merges them into
``per_image.parquet``, summarises them by bucket (mean and 95 % CI) and writes ``meta.json``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from sairbench import headroom, timings, validate
from sairbench.errors import SairbenchError
from sairbench.evaluate import (CHUNK, ModelPredictions, check_models, load_model_for_run, model_info,
                                score_items, select_models, sort_rows, summarize)
from sairbench.pairs import ProtocolData, build_masks, build_pairs, open_dataset, open_protocol_data
from sairbench.options import RunOptions
from sairbench.protocol import KINDS, Protocol, load_ref, metric_kind_of
from sairbench.runfolder import RunFolder, lpips_status


def run_protocol(opts: RunOptions, console=None) -> Path:
    """Run ``opts`` (resolved here when it is not yet) with the runner of its protocol's kind and
    write its results folder; returns the folder. Options the kind cannot honour are refused first."""
    if not opts.is_resolved:
        opts = opts.resolve()
    if opts.proto.kind not in KINDS:
        raise SairbenchError(f"protocol '{opts.proto.name}': kind {opts.proto.kind!r} is not one of {', '.join(KINDS)}.")
    kind = KINDS[opts.proto.kind]
    opts.refuse_unhonoured(kind.honours, f"a {kind.name} protocol", kind.why_not)
    if opts.train_missing:
        from sairbench.shipped import train_missing_models

        t0 = time.perf_counter()
        trained = train_missing_models(opts.models, device=opts.device)
        opts = replace(opts, checkpoints={**trained, **opts.checkpoints})
        opts.one_time["train_missing"] = time.perf_counter() - t0
    return load_ref(kind.runner)(opts, console)


FINALIZE_CLAIM = "finalize.claim"  # created by the one rank (torchrun, srun) that writes the tables


def expected_parts(names, n_pairs: int) -> list[tuple[str, int]]:
    """Every (model, first pair index) chunk of a run, in run order (shards take every n-th)."""
    return [(m, c) for m in names for c in range(0, n_pairs, CHUNK)]


def run_inpainting(opts: RunOptions, console=None) -> Path:
    """Every model x pair of an inpainting protocol (the shard ``opts.shard`` of them). A kind with
    ``labels`` (semantic-headroom) gives the label maps to the models that read them (its oracles);
    any other refuses such a model and reads no label file."""
    from sairbench.metrics import default_lpips_scorer
    from sairbench.metrics.set_level import inception_for, inception_settings, per_image_metrics, with_inception
    from sairbench.progress import progress as track

    proto, checkpoints, shard = opts.proto, opts.checkpoints, opts.shard_index
    labels = KINDS[proto.kind].labels
    data = open_protocol_data(proto, mask_dir=opts.mask_dir, labels=labels, ds_cfg=opts.ds_cfg)
    if labels:
        headroom.require_labels(data.dataset, data.ds_cfg["name"], proto.name)
    names, skipped = select_models(opts.models, checkpoints)
    check_models(names, skipped, proto.name)
    if not labels:
        headroom.refuse_label_readers(names, proto.name)
    settings = {"protocol": proto.to_dict(), "dataset": data.ds_cfg, "masks": data.mask_desc, "models": names,
                "checkpoints": checkpoints or {}}
    if opts.self_ensemble is not None:
        settings["self_ensemble"] = opts.self_ensemble
    if proto.metrics.ssim != "skimage":
        # the definition joins the fingerprint: parts scored under an earlier definition of that
        # name are never resumed into this run
        from sairbench.metrics.registry import SSIM_CONVENTION_TEXT

        settings["ssim_definition"] = SSIM_CONVENTION_TEXT[proto.metrics.ssim]
    inception = inception_for(proto.metrics.names, opts.device)  # FID/KID: its weights' digest joins the fingerprint
    settings.update(inception_settings(inception))
    folder = RunFolder.create(opts.results, validate.run_name(opts.name, proto.name, proto.source, data.ds_cfg['name']),
                              settings, opts.resume or shard[1] > 1)  # the shards of one run share its folder
    folder.record_skipped(skipped)
    folder.record_options(opts.record())
    opts.one_time["data_and_masks"] = opts.elapsed() - opts.one_time.get("train_missing", 0.0)

    metrics = per_image_metrics(proto.metrics.names)
    lpips_scorer = default_lpips_scorer(opts.device) if "lpips" in metrics else None
    dev = torch.device(opts.device)
    chunks = expected_parts(names, len(data.pairs))[shard[0]::shard[1]]
    n_items = sum(min(CHUNK, len(data.pairs) - c) for _, c in chunks)
    size = int(data.ds_cfg["size"])
    line = timings.expected_line([(m, min(CHUNK, len(data.pairs) - c)) for m, c in chunks], size, opts.device)
    if line and console is not None and opts.progress:
        console.print(line, highlight=False, soft_wrap=True)
    with track(n_items, f"{proto.name}: {len(names)} models x {len(data.pairs)} pairs", "pairs", console,
               opts.progress) as bar:
        loaded: dict[str, Any] = {}
        for model_name, c in chunks:
            n = min(CHUNK, len(data.pairs) - c)
            if folder.has_part(model_name, c, data.pairs[c:c + CHUNK]):  # a part unlike its record: recomputed
                bar.skip(n)
                continue
            if model_name not in loaded:
                loaded.clear()
                model = load_model_for_run(model_name, checkpoints, opts.self_ensemble)
                if not labels:
                    headroom.refuse_label_readers([model_name], proto.name, model)
                model.to(dev)
                loaded[model_name] = model
                folder.record_model_info(model_name, model_info(model, evaluated_at=int(data.ds_cfg["size"]), name=model_name))
            bar.describe(f"{proto.name}: {model_name}")
            torch.manual_seed(proto.seed)
            t_chunk = time.perf_counter()
            predict = with_inception(ModelPredictions(loaded[model_name], data.dataset, data.masks, dev), inception)
            df = score_items(data.pairs[c:c + CHUNK], predict, metrics, proto.metrics.ssim, lpips_scorer)
            timings.record(model_name, size, opts.device, time.perf_counter() - t_chunk, n)
            df.insert(4, "model", model_name)
            folder.write_part(model_name, c, df)
            bar.advance(n)

    total_s = folder.add_elapsed(opts.elapsed(), opts.one_time)
    if not set(expected_parts(names, len(data.pairs))) <= set(folder.parts()):
        return folder.path  # a shard: merge with `sairbench merge` once every shard is done
    if opts.sources.get("shard") == "env":  # ranks of a launcher: the first to claim the folder finalises it
        try:
            os.close(os.open(folder.path / FINALIZE_CLAIM, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return folder.path
    return finalize_run(folder, proto, names, data, lpips_scorer, str(dev), elapsed_s=total_s)


def finalize_run(folder: RunFolder, proto: Protocol, names: list[str], data: ProtocolData, lpips_scorer,
                 device: str = "cpu", elapsed_s: float | None = None) -> Path:
    """Merge the parts into per_image / summary and write meta.json (what every invocation recorded:
    model information, skipped models; ``elapsed_s``: the time of every invocation, summed)."""
    from sairbench.metrics import conventions_dict
    from sairbench.metrics.set_level import add_set_metrics, fid_status, per_image_metrics

    metrics = list(proto.metrics.names)
    pairs_of = lambda key: data.pairs[key[1]:key[1] + CHUNK]  # noqa: E731  (the chunk a part stands for)
    per_image = sort_rows(folder.read_parts(expected_parts(names, len(data.pairs)), pairs_of), names)
    infos = folder.model_infos()
    model_infos = {m: infos.get(m) for m in names}
    per_image, summary = add_set_metrics(per_image, summarize(per_image, per_image_metrics(metrics)), metrics,
                                         proto.seed, str(folder.path / "parts"))  # FID/KID rows, features dropped
    folder.write_tables(per_image, summary)
    meta = {
        "protocol": proto.name, "protocol_file": proto.source, **({"kind": proto.kind} if proto.kind != "inpainting" else {}),
        "seed": proto.seed,
        "dataset": data.ds_cfg, "masks": data.mask_desc, "models": names, "skipped_models": folder.skipped(),
        "model_info": model_infos,
        "semantic_encoder": {m: (i or {}).get("semantic_encoder") for m, i in model_infos.items()},
        "conventions": conventions_dict(proto.metrics.ssim, metrics), "lpips": lpips_status(lpips_scorer),
        **fid_status(metrics, folder.settings.get("fid_inception"), device),
    }
    folder.write_meta(meta, device, elapsed_s)
    if KINDS[proto.kind].finish:  # the kind's own tables (semantic-headroom: headroom.csv), from the merged rows
        load_ref(KINDS[proto.kind].finish)(folder.path, per_image)
    return folder.path


# ---------------------------------------------------------------- rebuilding a run from run.json


@dataclass
class RunSettings:
    """A run folder's recorded settings, with the dataset, masks and pairs rebuilt."""

    folder: RunFolder
    proto: Protocol
    names: list
    checkpoints: dict
    data: ProtocolData | None = None
    self_ensemble: int | None = None

    @property
    def run(self) -> Path:
        return self.folder.path


def load_run_settings(run: str | os.PathLike, rebuild: bool = True) -> RunSettings:
    """Read ``<run>/run.json`` and, with ``rebuild``, open the same dataset and build the same masks
    and pairs, so a run can be finalised or re-run elsewhere."""
    folder = RunFolder.open(run)
    meta = folder.path / "run.json"
    try:
        proto = Protocol(**folder.settings["protocol"])
        ds_cfg, mask_desc = dict(folder.settings["dataset"]), dict(folder.settings["masks"])
        names = list(folder.settings["models"])
    except (KeyError, TypeError) as exc:
        raise SairbenchError(f"{meta}: not a run.json of an inpainting run ({type(exc).__name__}: {exc}); "
                             "re-run the protocol into a new folder.") from None
    if proto.kind not in KINDS or metric_kind_of(proto.kind) != "inpainting":
        raise SairbenchError(f"{meta}: a '{proto.kind}' run; this needs an inpainting run (`sairbench run --protocol liu2018-masks`, ...).")
    rs = RunSettings(folder, proto, names, dict(folder.settings.get("checkpoints") or {}),
                     self_ensemble=folder.settings.get("self_ensemble"))
    if rebuild:
        ds = open_dataset(ds_cfg, proto.seed, labels=KINDS[proto.kind].labels)
        masks, desc = build_masks(proto, int(ds_cfg.get("size", 64)), mask_desc.get("folder"))
        if desc != mask_desc:
            raise SairbenchError(f"{meta}: the masks built now ({desc}) differ from the run's ({mask_desc}); "
                                 "restore the mask folder the run used.")
        rs.data = ProtocolData(ds_cfg, ds, masks, mask_desc, build_pairs(ds, masks))
    return rs


def merge_shards(dirs, device: str = "cpu") -> Path:
    """Merge the shards of one run (one folder shared by the shards, or one folder per shard) into
    the first folder's per_image / summary / meta.

    Every folder must hold a run.json with the same fingerprint and no link leading out of it; parts
    found only in later folders are checked against their records and chunks, then copied (with
    their records) into the first. Refuses (naming them) when chunks are missing or a part does not
    match its record.
    """
    import shutil

    from sairbench.io import atomic_path
    from sairbench.metrics import default_lpips_scorer
    from sairbench.runchecks import record_path, refuse_links, writing

    dirs = [Path(d) for d in dirs]
    if not dirs:
        raise SairbenchError("nothing to merge; give the run folder(s) written by `sairbench run --shard i/n`.")
    for d in dirs:
        if not d.is_dir():
            raise SairbenchError(f"{d}: no such run folder; give folders written by `sairbench run --shard i/n`.")
    for d in dirs:
        refuse_links(d, d)
    first = load_run_settings(dirs[0])
    unique = list(dict.fromkeys(d.resolve() for d in dirs))  # a folder named twice counts once
    folders = [first.folder] + [RunFolder.open(d) for d in unique[1:]]
    found: dict[tuple[str, int], tuple[RunFolder, Path]] = {}
    for d, other in zip([f.path for f in folders], folders):
        if other.fingerprint != first.folder.fingerprint:
            raise SairbenchError(f"{d / 'run.json'}: fingerprint {other.fingerprint} differs from {dirs[0] / 'run.json'} "
                                 f"({first.folder.fingerprint}); merge only shards of one run (same protocol and options).")
        for key, p in other.parts().items():
            found.setdefault(key, (other, p))
    expected = expected_parts(first.names, len(first.data.pairs))
    missing = [k for k in expected if k not in found]
    if missing:
        shown = ", ".join(f"{m}/{c:06d}" for m, c in missing[:5]) + (", ..." if len(missing) > 5 else "")
        raise SairbenchError(f"{dirs[0]}: {len(missing)} of {len(expected)} chunks missing ({shown}); run the missing "
                             "shards (`sairbench run --shard i/n --resume` with the same options), then merge again.")
    for key in expected:
        owner, src = found[key]
        problem = owner.part_problem(*key, first.data.pairs[key[1]:key[1] + CHUNK])
        if problem:
            raise SairbenchError(f"{src}: {problem}; run `sairbench run` with the same options and --resume "
                                 "to recompute it, then merge again.")
        dst = first.folder.part_path(*key)
        if src != dst:  # the record first, as RunFolder.write_part writes them
            for a, b in ((record_path(src), record_path(dst)), (src, dst)):
                with writing(b), atomic_path(b) as tmp:
                    shutil.copyfile(a, tmp)
    known = first.folder.model_infos()
    for other in folders[1:]:  # shards in folders of their own recorded their models there
        known = {**other.model_infos(), **known}
    for m in first.names:
        if m not in known:  # no shard recorded it (a folder without model_info.json): load it here
            try:
                known[m] = model_info(load_model_for_run(m, first.checkpoints, first.self_ensemble))
            except Exception as exc:  # the shards ran elsewhere: keep merging, say so
                known[m] = {"class": None, "note": f"not loadable where merged ({type(exc).__name__})"}
        first.folder.record_model_info(m, known[m])
    total = sum(sum(f.elapsed()) for f in folders)
    lpips_scorer = default_lpips_scorer(device) if "lpips" in first.proto.metrics.names else None
    return finalize_run(first.folder, first.proto, first.names, first.data, lpips_scorer, device, elapsed_s=total or None)
