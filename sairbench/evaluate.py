"""The one evaluator: a scoring loop over (image, mask) pairs whose predictions come from a model
(:class:`ModelPredictions`) or from a folder of saved outputs (``sairbench.outside``).

A prediction source is a callable ``predict(items) -> (out_u8, gt_u8, holes, rows)``: the
composited outputs (B, H, W, 3) uint8, the ground truth (B, H, W, 3) uint8, the hole masks
(B, H, W) bool (True = missing; every metric's scorer gets them) and one dict per item with its
identifying columns (image, mask, bucket, ratio, ...). :func:`score_items` scores them in batches
of ``batch`` (chunks of ``CHUNK`` pairs make one part file), so batched metrics (LPIPS) see the
same batches whatever the source.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable, Iterable

import numpy as np
import pandas as pd
import torch

from sairbench.errors import SairbenchError
from sairbench.inpainter import composite

CHUNK = 50  # pairs per part file
BATCH = 16  # pairs per forward pass / metric batch

Predict = Callable[[list], tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]]


class ModelPredictions:
    """Predictions of ``model`` on protocol pairs: the hole is zeroed before the model sees the
    image, the output is composited (prediction in the hole, input elsewhere) at the input size.
    A model that ``reads_labels`` (an oracle of the semantic-headroom protocol) is also given the
    images' label maps; no other model sees them."""

    def __init__(self, model, dataset, masks, device: torch.device):
        self.model, self.dataset, self.masks, self.device = model, dataset, masks, device
        self.reads_labels = bool(getattr(model, "reads_labels", False))

    def __call__(self, pairs: list) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        from sairbench.metrics import to_uint8

        gt = np.stack([self.dataset[p.image_index].image for p in pairs])
        m = np.stack([self.masks[p.mask_index].mask for p in pairs])
        image = torch.from_numpy(gt).permute(0, 3, 1, 2).float().div(255).to(self.device)
        mask = torch.from_numpy(m).unsqueeze(1).float().to(self.device)
        masked = image * (1 - mask)  # no model ever sees the hole's content
        with torch.inference_mode():
            if self.reads_labels:
                labels = torch.from_numpy(np.stack([self._label(p) for p in pairs])).to(self.device)
                pred = self.model.inpaint(masked, mask, region="hole", labels=labels)
            elif getattr(self.model, "any_size", False):  # implicit models: query the hole alone (same composite)
                pred = self.model.inpaint(masked, mask, region="hole")
            else:
                pred = self.model.inpaint(masked, mask)
            out = composite(pred.float().clamp(0, 1), image, mask)
        out_u8 = np.stack([to_uint8(o) for o in out.cpu()])
        rows = [{"image": p.image, "mask": p.mask, "bucket": p.bucket, "ratio": p.ratio} for p in pairs]
        return out_u8, gt, m > 0.5, rows

    def _label(self, pair) -> np.ndarray:
        label = self.dataset[pair.image_index].label
        if label is None:
            raise SairbenchError(f"image '{pair.image}' has no label map, and model "
                                 f"'{getattr(self.model, 'name', '?')}' reads one; give the dataset its labels.")
        return label.astype(np.int64)


def score_items(items: list, predict: Predict, metrics: list[str], ssim_conv: str, lpips_scorer,
                batch: int = BATCH) -> pd.DataFrame:
    """Score ``items`` (one part's pairs) with the predictions of ``predict``; one row per item."""
    from sairbench.metrics import score_batch

    rows = []
    for s in range(0, len(items), batch):
        out_u8, gt_u8, holes, bases = predict(items[s:s + batch])
        scores = score_batch(out_u8, gt_u8, metrics, lpips_scorer=lpips_scorer, ssim_convention=ssim_conv, masks=holes)
        for j, base in enumerate(bases):
            rows.append({**base, **{k: float(v[j]) for k, v in scores.items()}})
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


def sort_rows(per_image: pd.DataFrame, models: list[str]) -> pd.DataFrame:
    """Rows in model order (as requested), then bucket, image, mask."""
    order = {m: i for i, m in enumerate(models)}
    return per_image.sort_values(["model", "bucket", "image", "mask"],
                                 key=lambda s: s.map(order) if s.name == "model" else s).reset_index(drop=True)


def select_models(requested: Iterable[str], checkpoints: dict[str, str] | None = None) -> tuple[list[str], dict[str, str]]:
    """Expand 'available' into every runnable registered model, plugins' included; return (names,
    skipped-with-reason): a model that needs what is missing here (a checkpoint, weights, a plugin
    that failed to load, an ``inpaint`` that breaks the contract) is left out with the reason.

    A model with an explicit checkpoint in ``checkpoints`` counts as available; ``name@tag`` is
    available when its stage's checkpoint is shipped or given.
    """
    from sairbench.registry import get_spec, list_models, parse_name

    checkpoints = checkpoints or {}
    names, skipped = [], {}
    for r in requested:
        if r == "available":
            for spec in list_models():
                ok, why = (True, "") if spec.name in checkpoints else spec.available()
                if ok:
                    names.append(spec.name)
                else:
                    skipped[spec.name] = why
            continue
        spec = get_spec(r)
        _, tag = parse_name(r)
        ok, why = (True, "") if r in checkpoints else spec.available(tag)
        if ok:
            names.append(r)
        else:
            skipped[r] = why
    return list(dict.fromkeys(names)), skipped


def load_model_for_run(name: str, checkpoints: dict[str, str] | None = None, self_ensemble: int | None = None):
    """The model ``name`` (``name@tag`` too) from its given checkpoint, else from the registry;
    ``self_ensemble`` (1, 2, 4, 8) replaces the implicit models' own setting (a wrapper,
    ``sairbench.models.self_ensemble.with_self_ensemble``)."""
    from sairbench.models.self_ensemble import with_self_ensemble
    from sairbench.registry import create_model

    path = (checkpoints or {}).get(name)
    model = create_model(name.split("@")[0], checkpoint=path) if path is not None else create_model(name)
    return with_self_ensemble(model, self_ensemble) if getattr(model, "any_size", False) else model


def model_info(model, evaluated_at: int | None = None, name: str | None = None) -> dict[str, Any]:
    """What meta.json records about a model: class, checkpoint step/size/training data, commit, encoder.

    With ``evaluated_at`` (the evaluation image size), a model trained at another image size is
    recorded (``size_mismatch``) and announced in one warning line."""
    from sairbench.models.self_ensemble import unwrap

    info: dict[str, Any] = {"class": type(unwrap(model)).__name__}
    ck = getattr(model, "checkpoint_info", None)
    if ck:
        info.update({"checkpoint_step": ck.get("step"), "size": ck["model"].get("size"),
                     "train": {k: ck.get("train", {}).get(k) for k in ("dataset", "image_size", "seed")},
                     "commit": ck.get("provenance", {}).get("commit")})
        trained = info["train"].get("image_size")
        if evaluated_at is not None and trained is not None and int(trained) != int(evaluated_at):
            info["size_mismatch"] = {"trained_at": int(trained), "evaluated_at": int(evaluated_at)}
            warnings.warn(f"model '{name or getattr(model, 'name', '?')}' was trained on {trained}x{trained} images of "
                          f"'{info['train'].get('dataset')}' and is evaluated at {evaluated_at}x{evaluated_at}.",
                          stacklevel=2)
    if getattr(model, "self_ensemble", 1) != 1:
        info["self_ensemble"] = model.self_ensemble
    sem = getattr(model, "semantic", None)
    info["semantic_encoder"] = getattr(sem, "encoder_name", None) if sem is not None else None
    weights = external_weights(model)
    if weights:
        info["external_weights"] = weights
    return info


def external_weights(model) -> dict[str, Any]:
    """The weights files a model reads from outside its checkpoint (CLIP, SAM): per encoder its file,
    digest and, when ``$SAIRBENCH_ALLOW_WEIGHT_MISMATCH=1`` let other weights in, the override."""
    found: dict[str, Any] = {}
    modules = model.modules() if hasattr(model, "modules") else []
    for module in modules:
        digest = getattr(module, "weights_sha256", None)
        if digest is not None and hasattr(module, "spec_args"):  # CLIP, SAM: weights not in the checkpoint
            found[getattr(module, "name", type(module).__name__)] = {
                "file": getattr(module, "weights_file", None), "sha256": digest,
                "override": getattr(module, "weights_override", None)}
    return found


def check_models(names: list[str], skipped: dict[str, str], protocol: str) -> None:
    if not names:
        raise SairbenchError(f"no model of protocol '{protocol}' can run here ({skipped}); see `sairbench models`.")
