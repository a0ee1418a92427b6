"""The protocol settings of a run (from its meta.json) and the grouping of runs by them.

A report table never mixes runs measured under different settings: protocol, run kind (inpainting
or the SIR mIoU probe), dataset (name, split, size, limit, ...), masks (source, seed, per bucket,
...), seed and metric conventions. Paths (``root``, ``folder``, ``gt_dir``) are where the data
lay and ``defaults_from`` where a value came from, not what was measured: they are left out of the
comparison (but shown in the facts).
:func:`group_runs` puts runs with equal settings in one :class:`RunGroup`; groups that share a
protocol and a dataset name are told apart by the settings in which they differ
(:attr:`RunGroup.differs`, e.g. ``"limit 3"``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from sairbench.report.naming import METRIC_NAMES, bucket_label, bucket_sort_key

#: the run kind of a meta.json without ``kind`` (``sairbench run`` writes it for the SIR probe only)
DEFAULT_KIND = "inpainting"
#: keys of meta.json's ``dataset`` / ``masks`` that are locations, not settings
PATH_KEYS = frozenset({"root", "folder", "gt_dir", "mask_dir", "pred_dir"})
#: keys of meta.json's ``dataset`` / ``masks`` that say where a value came from (flag, protocol,
#: dataset default), not what was measured: runs that differ only there share a table
PROVENANCE_KEYS = frozenset({"defaults_from"})
#: short names of settings in titles: a flat key -> its label (other keys: the key's last part)
SETTING_LABELS = {"dataset.name": "dataset", "masks.source": "masks", "masks.per_bucket": "masks per bucket",
                  "masks.seed": "mask seed", "masks.hole_value": "hole value", "conventions.ssim_convention": "SSIM"}


def _text(value) -> str:
    """A setting's value as text: JSON for lists and dicts, ``""`` for None."""
    if value is None:
        return ""
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def _name(value) -> str:
    """A meta.json entry as a name: a dict's ``name``, else its text."""
    if isinstance(value, dict):
        return _text(value.get("name", value))
    return _text(value)


def run_settings(meta: dict) -> dict[str, str]:
    """The settings of one run as a flat ``{key: text}``.

    Args:
        meta: a meta.json dict (``protocol``, ``dataset``, ``masks``, ``seed``, ``conventions``;
            each may be absent; ``dataset`` / ``masks`` a dict or a plain name).

    Returns:
        ``{"protocol": ..., "kind": ..., "dataset.name": ..., "dataset.size": ..., "masks.source": ...,
        "seed": ..., "conventions.ssim": ...}``: nested entries flattened with dots, paths and
        provenance (``defaults_from``) left out;
        ``kind`` is meta.json's (``"sir-miou"`` for the SIR probe), ``"inpainting"`` when it has none.
    """
    out = {"protocol": _name(meta.get("protocol")), "kind": _text(meta.get("kind") or DEFAULT_KIND)}
    for section in ("dataset", "masks"):
        value = meta.get(section)
        if isinstance(value, dict):
            out.update({f"{section}.{k}": _text(v) for k, v in value.items()
                        if k not in PATH_KEYS and k not in PROVENANCE_KEYS})
        elif value is not None or section == "dataset":
            out[f"{section}.name" if section == "dataset" else section] = _text(value)
    if "seed" in meta:
        out["seed"] = _text(meta["seed"])
    conv = meta.get("conventions")
    if isinstance(conv, dict):
        out.update({f"conventions.{k}": _text(v) for k, v in conv.items()})
    elif conv:
        out["conventions"] = _text(conv)
    return out


def settings_key(meta: dict) -> str:
    """One string per distinct :func:`run_settings` (JSON, sorted keys): equal keys, one table."""
    return json.dumps(run_settings(meta), sort_keys=True)


def words(text: str) -> str:
    """A setting's text (:func:`_text`) in words: JSON lists and objects as :func:`describe` writes
    them (``"a, b"``, ``"k: v; ..."``), other texts unchanged."""
    if text[:1] in ("{", "["):
        try:
            return describe(json.loads(text))
        except ValueError:
            pass
    return text


def setting_label(key: str, value: str) -> str:
    """``"limit 3"``, ``"SSIM lama"``, ``"masks per bucket 100"``: a setting as a title names it,
    in words (never JSON). Long values (convention texts) are cut to 40 characters."""
    name = SETTING_LABELS.get(key)
    if name is None:
        head, _, last = key.rpartition(".")
        name = f"{METRIC_NAMES.get(last, last)} convention" if head == "conventions" else last.replace("_", " ")
    value = words(value)
    value = value if len(value) <= 40 else value[:39] + "…"
    return f"{name} {value or 'none'}"


@dataclass
class RunGroup:
    """Runs measured under one setting: ``metas`` (meta.json dicts with ``_run`` and ``_dir``),
    their shared ``settings`` (:func:`run_settings`), ``differs``: labels of the settings in which
    this group differs from other groups of the same protocol and dataset, those its title does not
    state already (empty when it is the only one), and ``kind``: what the runs measured (``"inpainting"``, or ``"sir-miou"`` for the
    SIR mIoU probe; part of the settings, so a group never mixes kinds)."""

    protocol: str
    dataset: str
    settings: dict[str, str]
    metas: list[dict]
    differs: list[str] = field(default_factory=list)
    kind: str = DEFAULT_KIND

    @property
    def runs(self) -> list[str]:
        """The run names (``_run``) of the group, in order."""
        return [m["_run"] for m in self.metas]

    #: settings keys that :func:`group_title` states itself (not repeated from ``differs``)
    SHOWN = ("protocol", "dataset.name", "dataset.size", "dataset.images")

    @property
    def title(self) -> str:
        """:func:`group_title` from the settings alone (no counts taken from results)."""
        return group_title(self)


def group_title(group: RunGroup, summary: pd.DataFrame | None = None, per_image: pd.DataFrame | None = None) -> str:
    """A group's title in words: ``"liu2018-masks · synthetic-faces · 64×64 · 3 images × 3 buckets"``,
    then the settings in which it differs from a sibling group (``" · limit 3"``, ``" · SSIM lama"``).

    The image count is meta.json's ``dataset.images``, else the distinct images of ``per_image``;
    the buckets are the summary's (``"all"`` not counted); ``× 2 masks`` when ``per_image`` pairs
    an image with more than one mask per bucket. Parts that are unknown are left out."""
    s = group.settings
    parts = [words(group.protocol) or "results", words(group.dataset) or "unknown data"]
    size = s.get("dataset.size", "")
    if size.isdigit():
        parts.append(f"{size}×{size}")
    elif size:
        parts.append(f"size {words(size)}")
    images = s.get("dataset.images", "")
    if not images.isdigit() and per_image is not None and len(per_image) and "image" in per_image.columns:
        images = str(per_image["image"].nunique())
    buckets = 0
    if summary is not None and len(summary) and "bucket" in summary.columns:
        buckets = len({str(b) for b in summary["bucket"]} - {"all"})
    masks = 1
    if per_image is not None and len(per_image) and {"image", "mask", "bucket"} <= set(per_image.columns):
        masks = int(per_image.groupby(["image", "bucket"])["mask"].nunique().max())
    counts = [f"{images} images"] if images.isdigit() else []
    if buckets:
        counts.append(f"{buckets} bucket{'s' if buckets > 1 else ''}")
    if masks > 1:
        counts.append(f"{masks} masks")
    if counts:
        parts.append(" × ".join(counts))
    return " · ".join(parts + group.differs)


def group_runs(metas: list[dict]) -> list[RunGroup]:
    """Runs grouped by equal settings, groups in order of their first run.

    Args:
        metas: meta.json dicts as :func:`~sairbench.report.load.load_results` returns them.

    Returns:
        One :class:`RunGroup` per distinct :func:`settings_key`; ``differs`` filled for groups
        sharing protocol and dataset name (the keys whose values vary between them; the mask seed
        is left out when the seed itself differs, the conventions' texts when the SSIM convention
        differs).
    """
    groups: dict[str, RunGroup] = {}
    for meta in metas:
        key = settings_key(meta)
        if key not in groups:
            s = run_settings(meta)
            groups[key] = RunGroup(s["protocol"], s.get("dataset.name", ""), s, [], kind=s["kind"])
        groups[key].metas.append(meta)
    out = list(groups.values())
    for g in out:
        siblings = [h for h in out if (h.protocol, h.dataset) == (g.protocol, g.dataset)]
        if len(siblings) < 2:
            continue
        keys = sorted({k for h in siblings for k in h.settings})
        varying = [k for k in keys if len({h.settings.get(k) for h in siblings}) > 1]
        if "seed" in varying and "masks.seed" in varying:
            varying.remove("masks.seed")
        if "conventions.ssim_convention" in varying:
            varying = [k for k in varying if not k.startswith("conventions.") or k == "conventions.ssim_convention"]
        g.differs = [setting_label(k, g.settings.get(k, "")) for k in varying if k not in RunGroup.SHOWN]
    return out


def describe(value) -> str:
    """A meta.json value as plain text: ``"synthetic-faces (split test, size 32, limit 3)"`` for a
    dict with a name, ``"k: v; ..."`` for other dicts, ``"a, b"`` for lists."""
    if isinstance(value, dict):
        rest = [f"{k.replace('_', ' ')} {describe(v)}" for k, v in value.items() if k != "name" and v is not None]
        if "name" in value:
            return str(value["name"]) + (f" ({', '.join(rest)})" if rest else "")
        return "; ".join(f"{k}: {describe(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(describe(v) for v in value)
    return str(value)


def describe_masks(masks) -> str:
    """meta.json's ``masks`` as text: ``"generated (seed 3, per bucket 2)"``."""
    if isinstance(masks, dict):
        rest = [f"{k.replace('_', ' ')} {describe(v)}" for k, v in masks.items()
                if k not in ("source", "generator") and v is not None]
        return str(masks.get("source", "?")) + (f" ({', '.join(rest)})" if rest else "")
    return "unrecorded" if masks is None else describe(masks)


def lpips_status(meta: dict) -> str:
    """``"computed"``, ``"unavailable (VGG16 weights not found)"`` or ``"unrecorded"`` from
    meta.json's ``lpips`` entry (``{available, reason}``); ``"not measured (sir-miou run)"`` for a
    run of another kind than inpainting."""
    from sairbench.protocol import metric_kind_of

    kind = meta.get("kind") or DEFAULT_KIND
    if metric_kind_of(kind) != DEFAULT_KIND:
        return f"not measured ({kind} run)"
    lp = meta.get("lpips")
    if not isinstance(lp, dict):
        return "unrecorded"
    if lp.get("available"):
        return "computed"
    reason = str(lp.get("reason") or "")
    why = "VGG16 weights not found" if "VGG16" in reason else reason[:80]
    return "unavailable" + (f" ({why})" if why else "")


def group_footnote(group: RunGroup, summary: pd.DataFrame) -> str:
    """Plain-text footnote of a section: its runs that give rows (those in the summary's ``run``
    column, when it has one) and their shared settings (dataset with size and limit, masks, seed),
    images x masks per bucket (the summary's ``n``), the metric conventions, the semantic encoders
    and whether LPIPS was computed."""
    m0 = group.metas[0]
    shown = set(map(str, summary["run"])) if len(summary) and "run" in summary.columns else set(group.runs)
    metas = [m for m in group.metas if m["_run"] in shown] or group.metas
    parts = [f"Runs: {', '.join(m['_run'] for m in metas)}. Dataset: {describe(m0.get('dataset', '?'))}. "
             f"Masks: {describe_masks(m0.get('masks'))}. Seed: {m0.get('seed', '?')}."]
    if len(summary) and "n" in summary.columns:
        ns = []
        for b in sorted(pd.unique(summary["bucket"]), key=bucket_sort_key):
            n = pd.to_numeric(summary.loc[summary["bucket"] == b, "n"], errors="coerce").max()
            if np.isfinite(n):
                ns.append(f"{bucket_label(b, 'md')}: {int(n)}")
        if ns:
            parts.append("Images x masks per bucket: " + ", ".join(ns) + ".")
    conv = m0.get("conventions") or {}
    if conv:
        parts.append("Conventions: " + (" ".join(str(v) for k, v in conv.items() if k != "ssim_convention")
                                        if isinstance(conv, dict) else str(conv)))
    parts.append("Semantic encoder: " + describe_encoders(metas) + ".")
    averaged = describe_self_ensembles(metas)
    if averaged:
        parts.append(f"Self-ensemble (mean over flips/transposes): {averaged}; the other models answer once.")
    if "lpips" in set(summary.get("metric", [])):
        status = {m["_run"]: lpips_status(m) for m in metas}
        parts.append("LPIPS: " + (next(iter(status.values())) if len(set(status.values())) == 1
                                  else "; ".join(f"{r} {s}" for r, s in status.items())) + ".")
    return " ".join(parts)


def describe_self_ensembles(metas: list[dict]) -> str:
    """``"x8 (liif@photos, lte@photos)"`` from meta.json's ``model_info``; "" when no model averages."""
    by_n: dict[int, list[str]] = {}
    for meta in metas:
        infos = meta.get("model_info")
        for model, info in (infos.items() if isinstance(infos, dict) else ()):
            n = info.get("self_ensemble", 1) if isinstance(info, dict) else 1
            if isinstance(n, int) and n != 1:
                by_n.setdefault(int(n), []).append(str(model))
    return "; ".join(f"x{n} ({', '.join(dict.fromkeys(models))})" for n, models in sorted(by_n.items()))


def describe_encoders(metas: list[dict]) -> str:
    """``"none (telea, biharmonic); dense-clip (sair)"`` from meta.json's ``semantic_encoder``,
    which is a name, None, or a {model: name or None} mapping."""
    by_encoder: dict[str, list[str]] = {}
    plain: list[str] = []
    for meta in metas:
        enc = meta.get("semantic_encoder")
        if isinstance(enc, dict):
            for model, name in enc.items():
                by_encoder.setdefault(describe(name) if name else "none", []).append(str(model))
        else:
            plain.append(describe(enc) if enc else "none")
    parts = [f"{enc} ({', '.join(dict.fromkeys(models))})" for enc, models in by_encoder.items()]
    parts += [p for p in dict.fromkeys(plain) if p not in by_encoder]
    return "; ".join(parts) or "none"
