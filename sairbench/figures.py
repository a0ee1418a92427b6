"""Figures of a result folder: metric against hole ratio per model, and a qualitative grid.

* ``ratio_curves.png`` / ``.pdf`` (and the numbers in ``ratio_curves.csv``): PSNR and LPIPS
  against the hole ratio, one line per model: per-image values binned by ratio (0.1 wide bins from
  0 to 0.6), the bin mean with its 95 % Student-t interval as error bars, plotted at the mean ratio
  of the bin. PSNR is clipped to ``PSNR_CAP_DB`` first, as in every summary. Each model has its own
  (colour, marker) pair (:func:`model_styles`), the legend sits outside the axes. When LPIPS is
  NaN (the VGG16 weights are absent) only the PSNR panel is drawn and the title says so.
* ``qualitative.png`` / ``.pdf``: rows of pairs from one bucket (default 40-60 %): the input with
  its hole (white), each model's composited output (PSNR in the title), and the ground truth. The
  models are re-run from the run's ``run.json`` (same dataset, masks and checkpoints), on the same
  inputs and with the same seed as ``sairbench run``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from sairbench.errors import SairbenchError
from sairbench.io import atomic_path

RATIO_BINS = np.round(np.arange(0.0, 0.6001, 0.1), 10)


def _mpl():
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path_stem: Path) -> list[Path]:
    """``fig`` as ``path_stem.png`` (150 dpi) and ``.pdf``, each written atomically; returns both paths."""
    out = []
    for ext in ("png", "pdf"):
        path = path_stem.with_suffix(f".{ext}")
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=ext, dpi=150, bbox_inches="tight")
        out.append(path)
    return out


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


#: Markers of the model lines: 11 of them, coprime with the 10 colours of ``tab10``, so that the
#: first 110 models get 110 distinct (colour, marker) pairs and neighbours differ in both.
MARKERS = ("o", "s", "D", "^", "v", "P", "*", "X", "h", "<", ">")
CURVE_LABELS = {"psnr": "PSNR (dB) ↑", "lpips": "LPIPS ↓"}


def model_styles(models: Sequence[str]) -> dict[str, tuple[tuple[float, float, float], str]]:
    """A distinct (colour, marker) pair per model, deterministic in the order of ``models``.

    Args:
        models: model names (n of them, any n); duplicates share one style.

    Returns:
        ``{model: ((r, g, b) floats in [0, 1], matplotlib marker)}``: up to 110 models, model k
        gets ``tab10[k % 10]`` and ``MARKERS[k % 11]`` (10 and 11 are coprime: every pair differs);
        beyond that, n colours interpolated along ``turbo`` (all different, neighbours too) with
        the markers in turn.
    """
    from matplotlib import colormaps

    names = list(dict.fromkeys(str(m) for m in models))
    n = len(names)
    if n <= 10 * len(MARKERS):
        tab = colormaps["tab10"].colors
        return {m: (tuple(map(float, tab[k % 10]))[:3], MARKERS[k % len(MARKERS)]) for k, m in enumerate(names)}
    from matplotlib.colors import LinearSegmentedColormap

    cmap = LinearSegmentedColormap.from_list("turbo-n", colormaps["turbo"].colors, N=n)  # n interpolated colours
    return {m: (tuple(float(v) for v in cmap(k)[:3]), MARKERS[k % len(MARKERS)]) for k, m in enumerate(names)}


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
    plt = _mpl()
    curves = binned_curves(per_image, ["psnr", "lpips"])
    shown = [m for m in ("psnr", "lpips") if (curves["metric"] == m).any()]
    if not shown:
        raise SairbenchError("no finite PSNR or LPIPS value per image: nothing to plot against the hole ratio.")
    models = [str(m) for m in pd.unique(per_image["model"])]
    styles = model_styles(models)
    fig, axes = plt.subplots(1, len(shown), figsize=(4.6 * len(shown), 3.6), squeeze=False)
    for ax, metric in zip(axes[0], shown):
        c = curves[curves["metric"] == metric]
        ax.set_xlabel("hole ratio")
        ax.set_ylabel(CURVE_LABELS[metric])
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
        fig.suptitle("\n".join(lines), fontsize=9)
    fig.tight_layout()
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.0, 0.92), fontsize=7, frameon=False,
               ncol=max(1, -(-len(labels) // 24)))
    return fig, curves


def plot_ratio_curves(per_image: pd.DataFrame, out_dir: Path, title: str = "", lpips_reason: str = "") -> list[Path]:
    """PSNR and LPIPS against hole ratio per model (:func:`ratio_curves_figure`); returns the PNG,
    PDF and CSV paths (``ratio_curves.*`` in ``out_dir``)."""
    plt = _mpl()
    fig, curves = ratio_curves_figure(per_image, title, lpips_reason)
    stem = out_dir / "ratio_curves"
    paths = _save(fig, stem)
    plt.close(fig)
    with atomic_path(stem.with_suffix(".csv")) as tmp:
        curves.to_csv(tmp, index=False)
    return paths + [stem.with_suffix(".csv")]


def qualitative_outputs(run: Path, n_images: int = 4, image_names: Sequence[str] | None = None,
                        bucket: str = "40-60%", device: str = "cpu"):
    """Re-run every model of ``run`` on a few pairs of ``bucket``.

    Returns (pairs, inputs, outputs, gts): ``inputs`` / ``gts`` uint8 (N, H, W, 3) (hole white in
    the inputs), ``outputs`` {model: uint8 (N, H, W, 3)} composited as in ``sairbench.evaluate.ModelPredictions``.
    """
    import torch

    from sairbench.evaluate import load_model_for_run
    from sairbench.inpainter import composite
    from sairbench.metrics import to_uint8
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
    image = torch.from_numpy(gt).permute(0, 3, 1, 2).float().div(255).to(dev)
    mask = torch.from_numpy(holes).unsqueeze(1).float().to(dev)
    masked = image * (1 - mask)
    outputs = {}
    for name in rs.names:
        model = load_model_for_run(name, rs.checkpoints, rs.self_ensemble)
        model.to(dev)
        torch.manual_seed(rs.proto.seed)
        with torch.inference_mode():
            pred = model.inpaint(masked, mask)
            out = composite(pred.float().clamp(0, 1), image, mask)
        outputs[name] = np.stack([to_uint8(o) for o in out.cpu()])
        del model
    inputs = np.where(holes[..., None], np.uint8(255), gt).astype(np.uint8)
    return chosen, inputs, outputs, gt


def plot_grid(pairs, inputs: np.ndarray, outputs: dict, gts: np.ndarray, out_dir: Path, title: str = "") -> list[Path]:
    """The qualitative grid: input with hole | each model | ground truth; returns PNG and PDF paths."""
    from sairbench.metrics import psnr

    plt = _mpl()
    cols = ["input"] + list(outputs) + ["ground truth"]
    n = len(pairs)
    cell = 1.7
    fig, axes = plt.subplots(n, len(cols), figsize=(cell * len(cols), cell * n + 0.4), squeeze=False)
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
                label = f"{cols[j]}\n{v:.2f} dB" if np.isfinite(v) else f"{cols[j]}\ninf dB"
            elif j == 0:
                label = f"input ({p.ratio:.0%} hole)"
            ax.set_title(label, fontsize=7)
        axes[i, 0].set_ylabel(str(p.image), fontsize=6)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    paths = _save(fig, out_dir / "qualitative")
    plt.close(fig)
    return paths


def write_figures(run: str | os.PathLike, out: str | os.PathLike | None = None, *, n_images: int = 4,
                  image_names: Sequence[str] | None = None, bucket: str = "40-60%", grid: bool = True,
                  device: str = "cpu") -> list[Path]:
    """Write the figures of result folder ``run`` into ``out`` (default ``run/figures``); returns the paths.

    The grid needs the run's ``run.json`` (it re-runs the models); a folder of outside predictions
    (``sairbench eval``) gets the curves only.
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
    if grid and meta.get("source") != "outside" and (run / "run.json").is_file():
        pairs, inputs, outputs, gts = qualitative_outputs(run, n_images, image_names, bucket, device)
        paths += plot_grid(pairs, inputs, outputs, gts, out_dir, f"{title}, {bucket} holes")
    return paths
