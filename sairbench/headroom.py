"""The semantic-headroom protocol: how much semantics can add to AIR, and how much of it SAIR captures.

Five semantic sources feed the same AIR (appearance encoder + LIIF decoder), each a preset row
fine-tuned from the same LIIF with the same schedule and seeds (``baselines/presets.py``):

=================  ============  ====================================================
variant            preset        the semantic embedding AIR reads
=================  ============  ====================================================
none               liif          nothing (LIIF)
encoder, no fill   nfs           the encoder's embedding of the masked image, upsampled
encoder + SIR      sair          the same, completed in the hole by SIR (SAIR)
labels + SIR       labels-sir    the ground-truth labels outside the hole, completed by SIR
oracle             oracle        the ground-truth labels everywhere
=================  ============  ====================================================

The gap between the oracle and LIIF (what AIR gains from perfect semantics) splits exactly into
three paired differences: ``oracle - labels+SIR`` (SIR's filling error: the labels of the hole
unknown), ``labels+SIR - encoder+SIR`` (the encoder's error: predicted instead of true labels,
both completed by SIR) and ``encoder+SIR - none`` (what SAIR gains). Each is a per-image paired
difference (same images and masks), averaged over the seeds the run has, with a bootstrap 95 %
interval; each seed's own difference is listed beside it, so that the seed spread can be read
next to the effect.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sairbench.errors import SairbenchError

PROTOCOL = "semantic-headroom"  # the protocol file that runs the study
VARIANTS = {"none": "liif", "encoder-nfs": "nfs", "encoder-sir": "sair", "labels-sir": "labels-sir", "oracle": "oracle"}


@dataclass(frozen=True)
class Effect:
    """``plus`` - ``minus`` of two variants, and what the difference means."""

    name: str
    plus: str
    minus: str
    meaning: str


EFFECTS = (
    Effect("perfect semantics", "oracle", "none", "what AIR gains from the true labels everywhere (the headroom)"),
    Effect("SIR filling error", "oracle", "labels-sir", "lost when the hole's labels must be completed by SIR"),
    Effect("encoder error", "labels-sir", "encoder-sir", "lost when the encoder's embedding replaces the true labels"),
    Effect("SAIR gain", "encoder-sir", "none", "what SAIR (encoder + SIR) gains over LIIF"),
    Effect("SIR over no fill", "encoder-sir", "encoder-nfs", "what SIR's completion adds to the encoder's embedding"),
)
HEADROOM, CAPTURED = EFFECTS[0], EFFECTS[3]


def require_labels(dataset, name: str, protocol: str) -> None:
    """A one-line refusal of a dataset whose images come without label maps, for ``protocol``."""
    if len(dataset) and dataset[0].label is None:
        from sairbench.data.registry import labelled_datasets

        raise SairbenchError(f"protocol '{protocol}' needs label maps, and dataset '{name}' has none; use a labelled "
                             f"dataset ({', '.join(labelled_datasets())}, or a folder with labels/ beside images/).")


def refuse_label_readers(names: list[str], protocol: str, model: Any = None) -> None:
    """A one-line refusal of a model that reads label maps (the headroom oracles) under a protocol
    that gives none: by its preset row, or (``model``) by the model loaded from a checkpoint."""
    from sairbench.registry import get_spec

    for name in names:
        preset = get_spec(name.split("@")[0]).preset if model is None else None
        if (model is not None and getattr(model, "reads_labels", False)) or (preset is not None and preset.reads_labels):
            raise SairbenchError(f"model '{name}' reads the ground-truth label maps (an oracle); run it under "
                                 f"`sairbench run --protocol {PROTOCOL}`, not '{protocol}'.")


def variant_of(model: str) -> tuple[str, str, str] | None:
    """(variant, study, seed) of a run's model name: ``oracle@headroom-s1`` -> ("oracle", "headroom",
    "s1"), ``liif@mine`` -> ("none", "mine", ""); None for a model that is no variant. The variants of
    one study (one schedule) are compared seed by seed; a run may hold several studies."""
    base, _, tag = model.partition("@")
    study, sep, seed = tag.rpartition("-")
    if not (sep and re.fullmatch(r"s\d+", seed)):
        study, seed = tag, ""
    for variant, preset in VARIANTS.items():
        if base == preset:
            return variant, study, seed
    return None


def variant_table(per_image: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Rows: one (image, mask, bucket) each; columns: (variant, study, seed) -> ``metric``."""
    rows = per_image[["model", "image", "mask", "bucket", metric]].copy()
    found = rows["model"].map(variant_of)
    rows = rows[found.notna()]
    for k, key in enumerate(("variant", "study", "seed")):
        rows[key] = [t[k] for t in found[found.notna()]]
    return rows.pivot_table(index=["image", "mask", "bucket"], columns=["variant", "study", "seed"], values=metric,
                            aggfunc="first")


def decompose(per_image: pd.DataFrame, metric: str = "psnr", n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Per study and bucket (and "all"), the effects of ``EFFECTS``: the mean paired difference of
    ``metric`` over the study's seeds that have both variants, its bootstrap 95 % interval (over
    images x masks), each seed's own mean difference and their spread (max - min); plus the share of
    the headroom SAIR captures (ratio of the two means, bootstrap interval from the same resamples)."""
    from sairbench.stats import paired_test

    from sairbench.metrics import METRICS

    table = variant_table(per_image, metric)
    places = METRICS[metric].decimals + 1 if metric in METRICS else 4  # effects are small: one place more
    out = []
    for study in sorted({st for _, st, _ in table.columns}):
        seeds = sorted({sd for _, st, sd in table.columns if st == study})
        for bucket in [*sorted(table.index.get_level_values("bucket").unique()), "all"]:
            sub = table if bucket == "all" else table.xs(bucket, level="bucket", drop_level=False)
            diffs: dict[str, np.ndarray] = {}
            for effect in EFFECTS:
                both = [sd for sd in seeds if (effect.plus, study, sd) in sub.columns and (effect.minus, study, sd) in sub.columns]
                if not both:
                    continue
                per_seed = {sd: (sub[(effect.plus, study, sd)] - sub[(effect.minus, study, sd)]).to_numpy(float) for sd in both}
                d = np.mean(np.stack(list(per_seed.values())), axis=0)  # the seeds' mean, per image
                diffs[effect.name] = d
                test = paired_test(d, np.zeros_like(d), n_boot=n_boot, seed=seed)
                by_seed = {sd: float(np.nanmean(v)) for sd, v in per_seed.items()}
                out.append({"study": study, "bucket": bucket, "effect": effect.name, "plus": effect.plus,
                            "minus": effect.minus, "metric": metric, "mean": test["mean_diff"], "ci_low": test["ci_low"],
                            "ci_high": test["ci_high"], "p_wilcoxon": test["p_wilcoxon"], "n": test["n"],
                            "seeds": len(both), "by_seed": ", ".join(f"{sd or 'one'}: {v:+.{places}f}" for sd, v in by_seed.items()),
                            "seed_spread": float(max(by_seed.values()) - min(by_seed.values()))
                            if len(by_seed) > 1 else float("nan")})  # one seed: no spread to read
            if HEADROOM.name in diffs and CAPTURED.name in diffs:
                out.append({"study": study, "bucket": bucket, "effect": "share captured", "plus": CAPTURED.name,
                            "minus": HEADROOM.name, "metric": metric,
                            **_share(diffs[CAPTURED.name], diffs[HEADROOM.name], n_boot, seed)})
    if not out:
        raise SairbenchError("the run has no pair of semantic-headroom variants of one study and seed (models "
                             f"{', '.join(f'{p}@STUDY-sK' for p in VARIANTS.values())}); run the protocol's models.")
    return pd.DataFrame(out)


def _share(captured: np.ndarray, headroom: np.ndarray, n_boot: int, seed: int) -> dict:
    """mean(captured) / mean(headroom) with a paired bootstrap 95 % interval over images x masks."""
    keep = np.isfinite(captured) & np.isfinite(headroom)
    c, h = captured[keep], headroom[keep]
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(c), size=(n_boot, len(c)))
    ratios = c[idx].mean(1) / h[idx].mean(1)
    low, high = np.percentile(ratios, [2.5, 97.5])
    return {"mean": float(c.mean() / h.mean()), "ci_low": float(low), "ci_high": float(high), "n": int(len(c))}


def write(folder: Path, per_image: pd.DataFrame, metrics=("psnr", "ssim")) -> pd.DataFrame | None:
    """``headroom.csv`` in the run folder (atomic): the decomposition of every metric the run has
    (the semantic-headroom kind's ``finish``, after the run's own tables)."""
    from sairbench.errors import warn_once
    from sairbench.io import atomic_write_text

    try:
        table = pd.concat([decompose(per_image, m) for m in metrics if m in per_image.columns], ignore_index=True)
    except SairbenchError as err:  # the run's own tables stand; only the decomposition cannot be made
        warn_once(f"{folder}: no headroom.csv: {err}")
        return None
    atomic_write_text(folder / "headroom.csv", table.to_csv(index=False))
    return table


def print_summary(folder: Path, console) -> None:
    """The PSNR decomposition of ``folder``/headroom.csv as rich tables, one per study."""
    table = pd.read_csv(folder / "headroom.csv", keep_default_na=False, na_values=[""])
    for study, rows in table[table["metric"] == "psnr"].groupby("study", sort=False):
        console.print(rich_table(rows, f"semantic headroom ({study or 'untagged'}), PSNR (dB): paired, 95 % CI"))


def rich_table(table: pd.DataFrame, title: str):
    """One study's rows: bucket, effect, mean, interval, and each seed's value."""
    from rich.table import Table

    out = Table(title=title)
    for col in ("bucket", "effect", "mean", "95 % CI", "each seed"):
        out.add_column(col, justify="left" if col in ("bucket", "effect") else "right")
    for r in table.itertuples():
        share = r.effect == "share captured"
        fmt = (lambda v: f"{v:.0%}") if share else (lambda v: f"{v:+.3f}")
        seeds = "" if share or not isinstance(r.by_seed, str) else " / ".join(
            part.split(": ")[-1] for part in r.by_seed.split(", "))
        out.add_row(str(r.bucket), r.effect, fmt(r.mean), f"[{fmt(r.ci_low)}, {fmt(r.ci_high)}]", seeds)
    return out


def report_tables(per_image: pd.DataFrame, title: str, label: str) -> list:
    """The decomposition of a semantic-headroom run's rows as report tables (the kind's ``report``):
    one per study and metric, a row per effect (plus - minus, each variant the mean of its seeds),
    its cells the paired differences per bucket; significant when p < 0.05 and the interval excludes 0."""
    from sairbench.report.paired import paired_model

    tables = []
    for metric in ("psnr", "ssim"):
        if metric not in per_image.columns:
            continue
        try:
            table = decompose(per_image, metric)
        except SairbenchError:
            return []
        for study, rows in table.groupby("study", sort=False):
            tables.append(paired_model(_paired_rows(rows, metric), _caption(rows, metric, study, title),
                                       f"{label}-headroom-{label_part(study)}-{metric}"))
    return tables


def _paired_rows(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    """One study's effects as the rows of a paired table (``sairbench.report.paired.paired_table``)."""
    from sairbench.report.paired import significant

    effects = table[table["effect"] != "share captured"]
    rows = pd.DataFrame({"metric": metric, "bucket": effects["bucket"], "model_a": effects["plus"],
                         "model_b": effects["minus"], "n": effects["n"], "mean_diff": effects["mean"],
                         "ci_low": effects["ci_low"], "ci_high": effects["ci_high"], "p_wilcoxon": effects["p_wilcoxon"]})
    rows["better"] = ["yes" if significant(p, lo, hi) else "" for p, lo, hi in
                      zip(rows["p_wilcoxon"], rows["ci_low"], rows["ci_high"])]
    return rows


def _caption(table: pd.DataFrame, metric: str, study: str, title: str) -> str:
    share = table[(table["effect"] == "share captured") & (table["bucket"] == "all")]
    names = "; ".join(f"{e.name} = {e.plus} - {e.minus}" for e in EFFECTS)
    captured = (f" SAIR captures {share['mean'].iloc[0]:.0%} [{share['ci_low'].iloc[0]:.0%}, "
                f"{share['ci_high'].iloc[0]:.0%}] of the headroom." if len(share) else "")
    return (f"Semantic headroom in {metric.upper()} ({study or 'untagged'}, {int(table['seeds'].max())} seed(s)): "
            f"{title}. {names}; each variant the mean of its seeds.{captured}")


def label_part(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "untagged"
