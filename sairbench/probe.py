"""The SIR mIoU probe (paper Tab. 6, "Study on the models with/without SIR block").

A masked image goes through the frozen semantic encoder; every pixel gets the class whose
(L2-normalised) class embedding is most similar (cosine) to the pixel's embedding. Two ways to get
an embedding at every pixel of the masked image are compared against the label map:

* ``encoder`` (``clip-encoder`` when the encoder is dense CLIP, as in the paper's table): the naive
  way, MaskCLIP's: the masked image's embedding grid bilinearly upsampled to the image size;
* ``encoder+sir`` (``clip-encoder+sir``): SIR's embedding at every pixel centre.

mIoU convention (the paper does not state one; this is mmsegmentation's):

* per class c, intersection I_c = #(pred == c and label == c), union U_c = #(pred == c) + #(label
  == c) - I_c, both counted over every image of the set (one confusion matrix for the set, not a
  mean of per-image mIoUs);
* pixels whose label is the ignore index (255) are left out, and so is every pixel outside the
  region (``all``: the whole image; ``hole``: the missing pixels only);
* IoU_c = I_c / U_c; a class with U_c = 0 (neither in the label nor in the prediction within the
  region) is NaN and skipped; mIoU = mean of the other classes' IoU (``nanmean``). A class that is
  predicted but absent from the label counts with IoU 0.

mIoU is a set-level number, so its 95 % interval comes from a seeded bootstrap over images
(resampling images with replacement, every pair of a drawn image with it, 1000 resamples): ``ci95``
is half the width of the 2.5-97.5 percentile interval. ``n`` is the number of images.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from sairbench import validate
from sairbench.errors import SairbenchError
from sairbench.io import atomic_path
from sairbench.metrics.registry import METRICS

IGNORE = 255
N_BOOT = 1000
REGIONS = ("all", "hole")
BATCH = 8

MIOU_CONVENTION = METRICS["miou"].convention  # the metric registry's text (N_BOOT resamples)
assert f"({N_BOOT} resamples)" in MIOU_CONVENTION


# ----------------------------------------------------------------------------- mIoU


def _np(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def class_counts(pred, label, n_classes: int, region=None, ignore: int = IGNORE) -> np.ndarray:
    """Per-class pixel counts of one prediction: (3, n_classes) int64 rows = (intersection,
    predicted area, label area), over pixels inside ``region`` (bool, same shape; None = all) whose
    label is not ``ignore``. Any shape of pred/label (equal shapes)."""
    pred, label = _np(pred).astype(np.int64, copy=False), _np(label).astype(np.int64, copy=False)
    if pred.shape != label.shape:
        raise ValueError(f"pred {pred.shape} and label {label.shape} differ in shape")
    keep = label != ignore
    if region is not None:
        region = _np(region).astype(bool, copy=False)
        if region.shape != label.shape:
            raise ValueError(f"region {region.shape} and label {label.shape} differ in shape")
        keep &= region
    p, t = pred[keep], label[keep]
    if p.size and (p.min() < 0 or p.max() >= n_classes or t.min() < 0 or t.max() >= n_classes):
        raise ValueError(f"class indices must lie in [0, {n_classes}) (label {ignore} = ignore)")
    inter = np.bincount(t[p == t], minlength=n_classes)
    return np.stack([inter, np.bincount(p, minlength=n_classes), np.bincount(t, minlength=n_classes)]).astype(np.int64)


def iou_from_counts(counts: np.ndarray) -> np.ndarray:
    """(..., 3, L) counts -> (..., L) IoU per class; NaN where the union is 0."""
    counts = np.asarray(counts, dtype=np.float64)
    inter, area_p, area_t = counts[..., 0, :], counts[..., 1, :], counts[..., 2, :]
    union = area_p + area_t - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1), np.nan)


def _nanmean_last(x: np.ndarray) -> np.ndarray:
    finite = ~np.isnan(x)
    n = finite.sum(axis=-1)
    s = np.where(finite, x, 0).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, s / np.maximum(n, 1), np.nan)


def miou(pred, label, n_classes: int, region=None, ignore: int = IGNORE) -> tuple[float, np.ndarray]:
    """Set-level mIoU of pred (N, H, W) against label (N, H, W) (int class indices; ``ignore`` in the
    label = left out), restricted to ``region`` (N, H, W) bool when given.

    Returns (mIoU, per-class IoU (n_classes,)): counts accumulated over the whole set; a class with
    union 0 inside the region is NaN and skipped by the mean (mmsegmentation's convention); mIoU is
    NaN when no class is left.
    """
    per_class = iou_from_counts(class_counts(pred, label, n_classes, region, ignore))
    return float(_nanmean_last(per_class)), per_class


def bootstrap_miou_ci95(counts: np.ndarray, n_boot: int = N_BOOT, seed: int = 0) -> float:
    """Half width of the 95 % percentile bootstrap interval of the set mIoU, resampling images.

    counts: (n_images, 3, L) per-image class counts. NaN with fewer than 2 images.
    """
    counts = np.asarray(counts, dtype=np.float64)
    n = counts.shape[0]
    if n < 2:
        return float("nan")
    rng = np.random.default_rng(seed)
    flat = counts.reshape(n, -1)
    vals = np.empty(n_boot)
    chunk = max(1, min(n_boot, 2_000_000 // max(n, 1)))
    for s in range(0, n_boot, chunk):
        e = min(n_boot, s + chunk)
        idx = rng.integers(0, n, size=(e - s, n))
        weights = np.zeros((e - s, n))
        np.add.at(weights, (np.arange(e - s)[:, None], idx), 1.0)  # times each image is drawn
        vals[s:e] = _nanmean_last(iou_from_counts((weights @ flat).reshape(e - s, *counts.shape[1:])))
    vals = vals[~np.isnan(vals)]
    if vals.size < 2:
        return float("nan")
    lo, hi = np.percentile(vals, [2.5, 97.5])
    return float((hi - lo) / 2)


# ----------------------------------------------------------------------------- segmentation


def segment(branch, state: dict[str, Any], class_emb: torch.Tensor, size: tuple[int, int], use_sir: bool) -> torch.Tensor:
    """Per-pixel class = argmax cosine similarity between the pixel's embedding and ``class_emb``.

    Args:
        branch: a SemanticBranch; state: ``branch.gen_feat(masked_image, mask)``.
        class_emb: (L, C) class embeddings (normalised here again).
        size: (H, W) of the output label map.
        use_sir: False = the naive way (MaskCLIP): the masked image's embedding grid bilinearly
            upsampled (align_corners=False) to ``size``; True = SIR's embedding at every pixel.

    Returns: (B, H, W) int64 class indices.
    """
    size = (int(size[0]), int(size[1]))
    if use_sir:
        if getattr(branch, "sir", None) is None:
            raise SairbenchError("this semantic branch has no SIR (filler 'none'); use a checkpoint from `sairbench train sir`.")
        emb = branch.dense(state, size)
    else:
        emb = state["emb"]
        if tuple(emb.shape[-2:]) != size:
            emb = F.interpolate(emb, size=size, mode="bilinear", align_corners=False)
    cls = F.normalize(class_emb.to(device=emb.device, dtype=emb.dtype), dim=-1)
    sim = torch.einsum("bchw,lc->blhw", F.normalize(emb, dim=1), cls)
    return sim.argmax(dim=1)


# ----------------------------------------------------------------------------- the protocol


def _is_clip(branch) -> bool:
    enc = branch.encoder
    return type(enc).__name__ == "DenseCLIPEncoder" or str(getattr(branch, "encoder_name", "")).lower().startswith("clip")


def variant_names(branch) -> tuple[str, str]:
    """(naive, with SIR) row names: the paper's 'clip-encoder' / 'clip-encoder+sir' for CLIP."""
    base = "clip-encoder" if _is_clip(branch) else "encoder"
    return base, f"{base}+sir"


def load_semantic_branch(checkpoints: dict[str, str] | None = None):
    """The trained semantic branch (encoder + SIR), its checkpoint info and path, in eval mode."""
    from sairbench.checkpoint import load_model, shipped_path

    path = (checkpoints or {}).get("sir")
    if path is None:
        path = shipped_path("sir")
        if not Path(path).is_file():
            raise SairbenchError(
                f"the sir-miou probe needs a trained SIR checkpoint and {Path(path).name} is not shipped; "
                "run `sairbench train semantic` then `sairbench train sir` and pass the result, "
                "or run with --train-missing.")
    branch = load_model(path, expect=("semantic-branch",))
    if branch.sir is None:
        raise SairbenchError(f"{path}: this semantic branch has no SIR (filler 'none'); pass the checkpoint of `sairbench train sir`.")
    branch.set_sir_trainable(False)
    return branch, branch.checkpoint_info, str(path)


def _class_embeddings(branch, classes: list[str]) -> torch.Tensor:
    enc = branch.encoder
    if not getattr(enc, "text_aligned", False):
        raise SairbenchError(f"semantic encoder '{branch.encoder_name}' is not text-aligned; the mIoU probe needs "
                             "class embeddings (dense CLIP or the in-domain encoder).")
    known = getattr(enc, "classes", None)
    if known is not None:
        absent = [c for c in classes if c not in known]
        if absent:
            raise SairbenchError(f"semantic encoder '{branch.encoder_name}' has no embedding for classes {absent[:5]} "
                                 "of this dataset; train it on this dataset (`sairbench train semantic --dataset ...`).")
    with torch.no_grad():
        return enc.class_embeddings(list(classes)).float()


def _probe_pairs(branch, ds, masks, pairs, class_emb, n_classes: int, variants, device) -> tuple[list[dict], dict]:
    """Per-pair rows and per-pair class counts {(variant, region): (n_pairs, 3, L)}, in ``pairs`` order."""
    rows: list[dict] = []
    counts = {(v, r): [] for v in variants for r in REGIONS}
    for s in range(0, len(pairs), BATCH):
        chunk = pairs[s:s + BATCH]
        samples = [ds[p.image_index] for p in chunk]
        if any(x.label is None for x in samples):
            raise SairbenchError(f"dataset '{getattr(ds, 'name', '?')}' returned an image without labels; the probe needs label maps.")
        label = np.stack([x.label for x in samples]).astype(np.int64)
        hole = np.stack([masks[p.mask_index].mask for p in chunk]).astype(bool)
        image = torch.from_numpy(np.stack([x.image for x in samples])).permute(0, 3, 1, 2).float().div(255).to(device)
        mask = torch.from_numpy(hole).unsqueeze(1).float().to(device)
        with torch.inference_mode():
            state = branch.gen_feat(image * (1 - mask), mask)  # no encoder sees the hole's content
            preds = {v: segment(branch, state, class_emb, label.shape[-2:], use_sir=(k == 1)).cpu().numpy()
                     for k, v in enumerate(variants)}
        for j, p in enumerate(chunk):
            valid = label[j] != IGNORE
            for v in variants:
                pr = preds[v][j]
                c_all = class_counts(pr, label[j], n_classes)
                c_hole = class_counts(pr, label[j], n_classes, region=hole[j])
                counts[(v, "all")].append(c_all)
                counts[(v, "hole")].append(c_hole)
                correct = (pr == label[j]) & valid
                n_all, n_hole = int(valid.sum()), int((valid & hole[j]).sum())
                rows.append({"image": p.image, "mask": p.mask, "bucket": p.bucket, "ratio": p.ratio, "model": v,
                             "variant": v,
                             "pixel_acc": float(correct.sum() / n_all) if n_all else float("nan"),
                             "pixel_acc_hole": float((correct & hole[j]).sum() / n_hole) if n_hole else float("nan")})
    return rows, {k: np.stack(v) if v else np.zeros((0, 3, n_classes), np.int64) for k, v in counts.items()}


def _summarize(pairs, counts, variants, classes, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    buckets = list(dict.fromkeys(p.bucket for p in pairs))
    img_ids = np.array([p.image_index for p in pairs])
    bucket_of_pair = np.array([p.bucket for p in pairs])
    rows, per_class = [], []
    for v in variants:
        for b in buckets + ["all"]:
            sel = np.ones(len(pairs), bool) if b == "all" else bucket_of_pair == b
            ids = np.unique(img_ids[sel])
            for region in REGIONS:
                c = counts[(v, region)][sel]
                # per-image counts (an image's pairs of the selection summed), for the bootstrap
                per_img = np.stack([c[img_ids[sel] == i].sum(axis=0) for i in ids]) if len(ids) else c
                ious = iou_from_counts(c.sum(axis=0))
                mean = float(_nanmean_last(ious))
                rows.append({"model": v, "bucket": b, "metric": "miou" if region == "all" else "miou_hole",
                             "mean": mean, "ci95": bootstrap_miou_ci95(per_img, seed=seed), "n": int(len(ids))})
                per_class += [{"model": v, "bucket": b, "region": region, "class": name, "iou": float(ious[k])}
                              for k, name in enumerate(classes)]
    return pd.DataFrame(rows), pd.DataFrame(per_class)


def run_miou_probe(opts, console=None) -> Path:
    """Run the SIR mIoU probe of ``opts.proto`` (kind "sir-miou"; ``opts``: the job's resolved
    ``RunOptions``) and write its results folder; returns it.

    Writes ``per_image.parquet`` (image, mask, bucket, ratio, model = variant, variant, pixel_acc,
    pixel_acc_hole), ``summary.csv`` / ``summary.parquet`` (model = variant, bucket incl. "all",
    metric "miou" / "miou_hole", mean, ci95, n = images), ``per_class.csv`` (IoU per class) and
    ``meta.json`` (with the semantic encoder, the mIoU convention, the options and the time of the
    whole job, one-time work shown apart). Never overwrites a finished run; with ``resume`` a
    finished run of the same settings is returned as it is.
    """
    from sairbench.evaluate import external_weights
    from sairbench.pairs import open_protocol_data
    from sairbench.runfolder import RunFolder

    proto, checkpoints, models = opts.proto, opts.checkpoints, opts.models
    if models and list(models) != ["sir"]:
        raise SairbenchError(f"the sir-miou probe evaluates the SIR stage only, not {models}; drop --model "
                             "(give another SIR with --checkpoint sir=PATH).")

    branch, ckpt, ckpt_path = load_semantic_branch(checkpoints)
    ds_cfg, ds, masks, mask_desc, pairs = open_protocol_data(proto, mask_dir=opts.mask_dir, ds_cfg=opts.ds_cfg)
    classes = list(getattr(ds, "classes", []) or [])
    if not classes:
        raise SairbenchError(f"dataset '{ds_cfg['name']}' has no class labels; the mIoU probe needs a labelled dataset "
                             "(synthetic-faces, celeba-hq, ade20k).")
    t0 = time.perf_counter()
    class_emb = _class_embeddings(branch, classes)
    opts.one_time["class_embeddings"] = time.perf_counter() - t0
    opts.one_time["model_data_and_masks"] = opts.elapsed() - sum(opts.one_time.values())
    variants = variant_names(branch)

    settings = {"protocol": proto.to_dict(), "dataset": ds_cfg, "masks": mask_desc, "checkpoint": ckpt_path}
    folder = RunFolder.create(opts.results, validate.run_name(opts.name, proto.name, proto.source, ds_cfg['name']),
                              settings, opts.resume)
    if opts.resume and folder.is_finished():
        return folder.path
    folder.record_options(opts.record())

    dev = torch.device(opts.device)
    branch.to(dev)
    torch.manual_seed(proto.seed)
    if opts.progress and console is not None:
        console.print(f"{proto.name}: {' vs '.join(variants)} on {len(pairs)} masked images "
                      f"(semantic encoder {branch.encoder_name})")
    rows, counts = _probe_pairs(branch, ds, masks, pairs, class_emb, len(classes), variants, dev)

    per_image = pd.DataFrame(rows)
    summary, per_class = _summarize(pairs, counts, variants, classes, proto.seed)
    folder.write_tables(per_image, summary)
    with atomic_path(folder.path / "per_class.csv") as tmp:
        per_class.to_csv(tmp, index=False)
    info = {k: v for k, v in ckpt.items() if k not in ("model", "optimizer", "rng")}
    meta = {
        "protocol": proto.name, "protocol_file": proto.source, "kind": "sir-miou", "seed": proto.seed,
        "dataset": ds_cfg, "masks": mask_desc, "models": list(variants), "skipped_models": {},
        "variants": {variants[0]: "masked-image embedding bilinearly upsampled to the image size (MaskCLIP)",
                     variants[1]: "SIR embedding at every pixel centre"},
        "semantic_encoder": {v: branch.encoder_name for v in variants},
        "external_weights": external_weights(branch),
        "checkpoint": {"path": ckpt_path, "name": ckpt["model"].get("name"), "size": ckpt["model"].get("size"),
                       "step": info.get("step"), "train": info.get("train"),
                       "commit": (info.get("provenance") or {}).get("commit")},
        "classes": classes,
        "conventions": {"miou": MIOU_CONVENTION, "similarity": "cosine (embeddings and class embeddings L2-normalised), argmax over classes",
                        "pixel_acc": "correct / labelled pixels (label != 255) of the image; pixel_acc_hole: of its hole"},
    }
    folder.write_meta(meta, str(dev), elapsed_s=folder.add_elapsed(opts.elapsed(), opts.one_time))
    return folder.path
