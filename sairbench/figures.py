"""Figures of a result folder: metric against hole ratio per model, and a qualitative grid.

* ``ratio_curves.png`` / ``.pdf`` (and the numbers in ``ratio_curves.csv``): PSNR and LPIPS
  against the hole ratio, one line per model: per-image values binned by ratio (0.1 wide bins from
  0 to 0.6), the bin mean with its 95 % Student-t interval as error bars, plotted at the mean ratio
  of the bin. PSNR is clipped to ``PSNR_CAP_DB`` first, as in every summary. Each model has its own
  (colour, marker) pair (:func:`model_styles`), the legend sits outside the axes. When LPIPS is
  NaN (the VGG16 weights are absent) only the PSNR panel is drawn and the title says so.
* ``ratio_difference.png`` / ``.pdf`` (numbers in ``ratio_difference.csv``): each model's
  per-image PSNR minus that of a reference (the best classical method present, e.g. biharmonic),
  binned by hole ratio as the curves, bin mean with its 95 % interval: models whose curves overlap
  in ``ratio_curves`` separate here.
* ``qualitative.png`` / ``.pdf``: rows of pairs from one bucket (default 40-60 %): the input with
  its hole (white), each model's composited output (PSNR in the title), and the ground truth; text
  sized to stay readable where a report page shows the figure (:func:`readable_pt`). The
  models are re-run from the run's ``run.json`` (same dataset, masks and checkpoints), on the same
  inputs and with the same seed as ``sairbench run``.
"""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from sairbench.errors import SairbenchError
from sairbench.io import atomic_path
from sairbench.metrics.registry import METRICS
from sairbench.plotting import model_styles, pyplot, readable_pt, save_figure

RATIO_BINS = np.round(np.arange(0.0, 0.6001, 0.1), 10)
#: font sizes (pt) of the curves: axis labels and titles, tick labels and legend
CURVE_FONT, CURVE_SMALL_FONT = 11.0, 10.0
#: model names that are classical methods: the reference of the difference figure is the best of them
CLASSICAL = ("biharmonic", "navier-stokes", "telea")


def binned_curves(per_image: pd.DataFrame, metrics: Sequence[str], bins=RATIO_BINS) -> pd.DataFrame:
    """Rows ``model, metric, bin_lo, bin_hi, ratio, mean, ci95, n`` (bins without finite values left out)."""
    from sairbench.metrics import summary_values
    from sairbench.stats import mean_ci95

    edges = np.asarray(bins, dtype=np.float64)
    ratio = per_image["ratio"].to_numpy(np.float64)
    idx = np.clip(np.searchsorted(edges, ratio, side="right") - 1, 0, len(edges) - 2)
    rows = []
    for model in pd.unique(per_image["model"]):
        sel = (per_image["model"] == model).to_numpy()
        for metric in metrics:
            if metric not in per_image.columns:
                continue
            vals = summary_values(metric, per_image[metric].to_numpy())
            for b in range(len(edges) - 1):
                m = sel & (idx == b) & np.isfinite(vals)
                if not m.any():
                    continue
                mean, hw = mean_ci95(vals[m])
                rows.append({"model": str(model), "metric": metric, "bin_lo": edges[b], "bin_hi": edges[b + 1],
                             "ratio": float(ratio[m].mean()), "mean": mean, "ci95": hw, "n": int(m.sum())})
    return pd.DataFrame(rows, columns=["model", "metric", "bin_lo", "bin_hi", "ratio", "mean", "ci95", "n"])


CURVE_LABELS = {m: METRICS[m].label for m in ("psnr", "lpips")}  # "PSNR (dB) ↑", "LPIPS ↓"


def ratio_curves_figure(per_image: pd.DataFrame, title: str = "", lpips_reason: str = ""):
    """The figure of :func:`plot_ratio_curves`, not saved.

    Args:
        per_image: rows ``model, ratio`` plus ``psnr`` and/or ``lpips`` (one per image x mask x model).
        title: figure title ("" for none).
        lpips_reason: why LPIPS is NaN, when meta.json says so (shortened in the title).

    Returns:
        (figure, curves): one panel per metric with a finite value (PSNR, LPIPS): never an empty
        panel; without LPIPS values the title says "LPIPS unavailable". One legend for all panels,
        outside the axes on the right, one distinct (colour, marker) per model
        (:func:`model_styles`). ``curves`` is :func:`binned_curves`'s frame.
    """
    plt = pyplot()
    curves = binned_curves(per_image, ["psnr", "lpips"])
    shown = [m for m in ("psnr", "lpips") if (curves["metric"] == m).any()]
    if not shown:
        raise SairbenchError("no finite PSNR or LPIPS value per image: nothing to plot against the hole ratio.")
    models = [str(m) for m in pd.unique(per_image["model"])]
    styles = model_styles(models)
    fig, axes = plt.subplots(1, len(shown), figsize=(4.6 * len(shown), 3.6), squeeze=False)
    for ax, metric in zip(axes[0], shown):
        c = curves[curves["metric"] == metric]
        ax.set_xlabel("hole ratio", fontsize=CURVE_FONT)
        ax.set_ylabel(CURVE_LABELS[metric], fontsize=CURVE_FONT)
        ax.tick_params(labelsize=CURVE_SMALL_FONT)
        ax.set_xlim(0.0, 0.6)
        ax.grid(alpha=0.3)
        for model in models:
            g = c[c["model"] == model].sort_values("ratio")
            if not len(g):
                continue
            colour, marker = styles[model]
            err = np.nan_to_num(g["ci95"].to_numpy(np.float64), nan=0.0)
            ax.errorbar(g["ratio"], g["mean"], yerr=err, color=colour, marker=marker, ms=4, capsize=3, lw=1.3,
                        label=model)
    lines = []
    if title:
        lines.append(title)
    if "lpips" not in shown:
        why = "VGG16 weights not found" if "VGG16" in lpips_reason else lpips_reason[:60]
        lines.append("LPIPS unavailable" + (f" ({why})" if why else "") + ": PSNR only")
    if lines:
        fig.suptitle("\n".join(lines), fontsize=CURVE_FONT)
    fig.tight_layout()
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.0, 0.92), fontsize=CURVE_SMALL_FONT, frameon=False,
               ncol=max(1, -(-len(labels) // 16)))
    return fig, curves


def plot_ratio_curves(per_image: pd.DataFrame, out_dir: Path, title: str = "", lpips_reason: str = "") -> list[Path]:
    """PSNR and LPIPS against hole ratio per model (:func:`ratio_curves_figure`); returns the PNG,
    PDF and CSV paths (``ratio_curves.*`` in ``out_dir``)."""
    return _save_with_table(*ratio_curves_figure(per_image, title, lpips_reason), out_dir / "ratio_curves")


def reference_model(per_image: pd.DataFrame, metric: str = "psnr") -> str:
    """The model the difference figure compares against: the best classical method
    (:data:`CLASSICAL`, by the mean of ``metric`` over every pair; ``"biharmonic [run]"`` counts as
    biharmonic), else the best model."""
    from sairbench.metrics import METRICS, summary_values

    means = {str(m): float(np.nanmean(summary_values(metric, g[metric].to_numpy())))
             for m, g in per_image.groupby("model", sort=False)}
    means = {m: v for m, v in means.items() if np.isfinite(v)}
    if not means:
        raise SairbenchError(f"no finite {metric} value per image: no reference model for the difference figure.")
    classical = {m: v for m, v in means.items() if m.split(" [")[0] in CLASSICAL} or means
    sign = 1.0 if METRICS[metric].higher_is_better else -1.0
    return max(classical, key=lambda m: sign * classical[m])


def ratio_difference_figure(per_image: pd.DataFrame, title: str = "", reference: str | None = None,
                            metric: str = "psnr", bins=RATIO_BINS):
    """Each model's difference to a reference model against the hole ratio, not saved.

    Per image x mask, ``metric`` (PSNR clipped as in summaries) of the model minus that of
    ``reference`` (default :func:`reference_model`); binned by the hole ratio as the curves; the
    bin mean with its 95 % Student-t interval, at the bin's mean ratio (models spread a little
    sideways so that their error bars do not overlap). Close curves of the ratio curves separate here.

    Returns:
        (figure, table): ``table`` has the rows ``model, reference, metric, bin_lo, bin_hi, ratio,
        mean_diff, ci95, n`` that are drawn.
    """
    from sairbench.metrics import summary_values
    from sairbench.stats import mean_ci95

    reference = reference or reference_model(per_image, metric)
    df = per_image[["image", "mask", "model", "ratio", metric]].assign(
        image=lambda d: d["image"].astype(str), mask=lambda d: d["mask"].astype(str), model=lambda d: d["model"].astype(str))
    if df.duplicated(["image", "mask", "model"]).any():
        raise SairbenchError("per-image results hold a model twice for one image and mask: one run per model "
                             "(or names told apart) for the difference figure.")
    df[metric] = summary_values(metric, df[metric].to_numpy())
    wide = df.pivot(index=["image", "mask"], columns="model", values=metric)
    ratio = df[df["model"] == reference].set_index(["image", "mask"])["ratio"].reindex(wide.index).to_numpy(np.float64)
    edges = np.asarray(bins, dtype=np.float64)
    idx = np.clip(np.searchsorted(edges, ratio, side="right") - 1, 0, len(edges) - 2)
    models = [m for m in pd.unique(df["model"]) if m != reference]
    rows = []
    for model in models:
        diff = (wide[model] - wide[reference]).to_numpy(np.float64)
        for b in range(len(edges) - 1):
            sel = (idx == b) & np.isfinite(diff) & np.isfinite(ratio)
            if sel.any():
                mean, hw = mean_ci95(diff[sel])
                rows.append({"model": model, "reference": reference, "metric": metric, "bin_lo": edges[b],
                             "bin_hi": edges[b + 1], "ratio": float(ratio[sel].mean()), "mean_diff": mean, "ci95": hw,
                             "n": int(sel.sum())})
    table = pd.DataFrame(rows, columns=["model", "reference", "metric", "bin_lo", "bin_hi", "ratio", "mean_diff",
                                       "ci95", "n"])
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    styles = model_styles([reference, *models])
    ax.axhline(0.0, color=styles[reference][0], lw=1.5, label=f"{reference} (reference)")
    step = 0.06 / max(1, len(models))
    for k, model in enumerate(models):
        g = table[table["model"] == model].sort_values("ratio")
        colour, marker = styles[model]
        ax.errorbar(g["ratio"] + (k - (len(models) - 1) / 2) * step, g["mean_diff"], color=colour, marker=marker,
                    yerr=np.nan_to_num(g["ci95"].to_numpy(np.float64), nan=0.0), ms=4, capsize=3, lw=1.3, label=model)
    record = METRICS[metric]
    ax.set_xlabel("hole ratio", fontsize=CURVE_FONT)
    ax.set_ylabel(f"{record.title} − {reference}{f' ({record.unit})' if record.unit else ''}", fontsize=CURVE_FONT)
    ax.tick_params(labelsize=CURVE_SMALL_FONT)
    ax.set_xlim(0.0, float(edges[-1]))
    ax.grid(alpha=0.3)
    heading = f"Difference to {reference} per image (bin mean, 95% CI)"
    ax.set_title(f"{title}\n{heading}" if title else heading, fontsize=CURVE_FONT)
    fig.tight_layout()
    fig.legend(loc="upper left", bbox_to_anchor=(1.0, 0.92), fontsize=CURVE_SMALL_FONT, frameon=False,
               ncol=max(1, -(-(len(models) + 1) // 16)))
    return fig, table


def plot_ratio_difference(per_image: pd.DataFrame, out_dir: Path, title: str = "") -> list[Path]:
    """:func:`ratio_difference_figure` as ``ratio_difference.png``, ``.pdf`` and ``.csv`` (the
    table) in ``out_dir``; returns the paths."""
    return _save_with_table(*ratio_difference_figure(per_image, title), out_dir / "ratio_difference")


def _save_with_table(fig, table: pd.DataFrame, stem: Path) -> list[Path]:
    """``fig`` as ``stem``.png and .pdf and its ``table`` as ``stem``.csv; returns the paths."""
    paths = save_figure(fig, stem)
    pyplot().close(fig)
    with atomic_path(stem.with_suffix(".csv")) as tmp:
        table.to_csv(tmp, index=False)
    return paths + [stem.with_suffix(".csv")]


def qualitative_outputs(run: Path, n_images: int = 4, image_names: Sequence[str] | None = None,
                        bucket: str = "40-60%", device: str = "cpu"):
    """Re-run every model of ``run`` on a few pairs of ``bucket``.

    Returns (pairs, inputs, outputs, gts): ``inputs`` / ``gts`` uint8 (N, H, W, 3) (hole white in
    the inputs), ``outputs`` {model: uint8 (N, H, W, 3)} composited as in ``sairbench.evaluate.ModelPredictions``.
    """
    import torch

    from sairbench.evaluate import ModelPredictions, load_model_for_run
    from sairbench.run import load_run_settings

    rs = load_run_settings(run)
    in_bucket = [p for p in rs.data.pairs if p.bucket == bucket]
    if not in_bucket:
        have = ", ".join(dict.fromkeys(p.bucket for p in rs.data.pairs))
        raise SairbenchError(f"{run}: no pairs in bucket '{bucket}'; pass --bucket with one of {have}.")
    if image_names:
        by_name = {p.image: p for p in in_bucket}
        unknown = [n for n in image_names if n not in by_name]
        if unknown:
            shown = ", ".join(list(by_name)[:3])
            raise SairbenchError(f"{run}: image '{unknown[0]}' is not in the run's {bucket} pairs; pass --image with "
                                 f"names from its per_image.parquet (e.g. {shown}).")
        chosen = [by_name[n] for n in image_names]
    else:
        chosen = in_bucket[:n_images]
    gt = np.stack([rs.data.dataset[p.image_index].image for p in chosen])
    holes = np.stack([np.asarray(rs.data.masks[p.mask_index].mask, bool) for p in chosen])
    dev = torch.device(device)
    outputs = {}
    for name in rs.names:  # as the run predicted them (the oracles of a headroom run get the label maps)
        model = load_model_for_run(name, rs.checkpoints, rs.self_ensemble)
        model.to(dev)
        torch.manual_seed(rs.proto.seed)
        outputs[name] = ModelPredictions(model, rs.data.dataset, rs.data.masks, dev)(chosen)[0]
        del model
    inputs = np.where(holes[..., None], np.uint8(255), gt).astype(np.uint8)
    return chosen, inputs, outputs, gt


def grid_figure(pairs, inputs: np.ndarray, outputs: dict, gts: np.ndarray, title: str = ""):
    """The qualitative grid, not saved: input with hole | each model (PSNR under its name) | ground
    truth, one row per pair, the image's name under its input. Every text is :func:`readable_pt`
    for the PNG (150 dpi) shown at most :data:`DISPLAY_PX` wide; a model name with a tag breaks
    before its ``@``, an image name where the cell ends."""
    from sairbench.metrics import psnr

    plt = pyplot()
    cols = ["input"] + list(outputs) + ["ground truth"]
    n, cell = len(pairs), 1.7
    font = readable_pt(cell * len(cols), 150)
    names = [textwrap.fill(str(p.image), max(8, int(cell * 72 / (0.6 * font)))) for p in pairs]
    lines = max(c.count("@") for c in cols) + 2 + max(name.count("\n") + 1 for name in names)
    fig, axes = plt.subplots(n, len(cols), figsize=(cell * len(cols), (cell + lines * font * 1.3 / 72) * n + 0.3),
                             squeeze=False, layout="constrained")
    for i, p in enumerate(pairs):
        row = [inputs[i]] + [outputs[m][i] for m in outputs] + [gts[i]]
        for j, img in enumerate(row):
            ax = axes[i, j]
            ax.imshow(img, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            label = cols[j]
            if 0 < j < len(cols) - 1:
                v = psnr(img, gts[i])
                label = cols[j].replace("@", "\n@") + (f"\n{v:.2f} dB" if np.isfinite(v) else "\ninf dB")
            elif j == 0:
                label = f"input\n{p.ratio:.0%} hole"
            ax.set_title(label, fontsize=font)
        axes[i, 0].set_xlabel(names[i], fontsize=font)
    if title:
        fig.suptitle(title, fontsize=font)
    return fig


def plot_grid(pairs, inputs: np.ndarray, outputs: dict, gts: np.ndarray, out_dir: Path, title: str = "") -> list[Path]:
    """The qualitative grid (:func:`grid_figure`); returns PNG and PDF paths."""
    plt = pyplot()
    fig = grid_figure(pairs, inputs, outputs, gts, title)
    paths = save_figure(fig, out_dir / "qualitative")
    plt.close(fig)
    return paths


def write_figures(run: str | os.PathLike, out: str | os.PathLike | None = None, *, n_images: int = 4,
                  image_names: Sequence[str] | None = None, bucket: str = "40-60%", grid: bool = True,
                  device: str = "cpu") -> list[Path]:
    """Write the figures of result folder ``run`` into ``out`` (default ``run/figures``); returns the paths.

    The curves, then (with two models or more) the difference to the reference model
    (``ratio_difference.*``), then the grid, which needs the run's ``run.json`` (it re-runs the
    models); a folder of outside predictions (``sairbench eval``) gets no grid.
    """
    run = Path(run)
    per_path, meta_path = run / "per_image.parquet", run / "meta.json"
    if not per_path.is_file() or not meta_path.is_file():
        hint = " (a shard: merge it first with `sairbench merge`)" if (run / "parts").is_dir() else ""
        raise SairbenchError(f"{run}: no per_image.parquet and meta.json{hint}; give a finished `sairbench run` folder.")
    per_image = pd.read_parquet(per_path)
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    if "ratio" not in per_image.columns or "psnr" not in per_image.columns:
        raise SairbenchError(f"{run}: not an inpainting run (no ratio/psnr per image, e.g. a sir-miou probe); "
                             "figures need a run of an inpainting protocol such as liu2018-masks.")
    out_dir = Path(out) if out is not None else run / "figures"
    out_dir.mkdir(parents=True, exist_ok=True)
    ds = meta.get("dataset")
    ds_name = ds.get("name") if isinstance(ds, dict) else ds
    title = f"{meta.get('protocol', '')} on {ds_name}" if ds_name else str(meta.get("protocol", ""))
    lp = meta.get("lpips") or {}
    paths = plot_ratio_curves(per_image, out_dir, title, "" if lp.get("available", True) else str(lp.get("reason", "")))
    if per_image["model"].nunique() > 1 and np.isfinite(pd.to_numeric(per_image["psnr"], errors="coerce")).any():
        paths += plot_ratio_difference(per_image, out_dir, title)
    if grid and meta.get("source") != "outside" and (run / "run.json").is_file():
        pairs, inputs, outputs, gts = qualitative_outputs(run, n_images, image_names, bucket, device)
        paths += plot_grid(pairs, inputs, outputs, gts, out_dir, f"{title}, {bucket} holes")
    return paths
