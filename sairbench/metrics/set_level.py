"""FID and KID in an evaluation: Inception features beside the per-image metrics while scoring,
set-level summary rows per (model, bucket) and "all" when the tables are written.

* Scoring: :func:`with_inception` wraps a prediction source (``sairbench.evaluate.Predict``) so that
  each row also carries the pool3 features (float32 bytes) of its composited output and of its
  ground truth, columns :data:`FEATURE_COLUMNS`. They are stored in the part files with the
  per-image metrics, so resumed, sharded and merged runs find them checked by each part's record;
  the weights' digest joins the run's settings (:func:`inception_settings`), so every part of a
  folder comes from the same network.
* Writing the tables: :func:`add_set_metrics` takes the features out of the per-image table and
  appends ``fid``/``kid`` rows (mean = the value, ci95 = the bootstrap half width, n = pairs) to
  the summary, in the protocol's metric order; :func:`fid_status` is meta.json's ``fid`` entry.

Without fid or kid among a protocol's metrics none of this runs and the tables are unchanged.
"""

from __future__ import annotations

import warnings
from typing import Any, Iterable

import numpy as np
import pandas as pd

from sairbench.errors import SairbenchError
from sairbench.metrics.fid import fid_ci95, frechet_distance, kid_and_ci95
from sairbench.metrics.fid_inception import FEATURE_DIM, InceptionFeatures, default_inception_features

#: The metrics computed over a set of pairs from Inception features.
SET_METRICS = ("fid", "kid")
#: Per-row feature columns of part files: the composited output's and the ground truth's.
FEATURE_COLUMNS = ("inception_pred", "inception_gt")


def set_metrics(names: Iterable[str]) -> list[str]:
    """The set-level metrics (fid, kid) among ``names``."""
    return [n for n in names if n in SET_METRICS]


def per_image_metrics(names: Iterable[str]) -> list[str]:
    """``names`` without the set-level metrics: what is scored per image."""
    return [n for n in names if n not in SET_METRICS]


def inception_for(names: Iterable[str], device: str = "cpu") -> InceptionFeatures | None:
    """The process's Inception features on ``device`` when ``names`` hold fid or kid, else None."""
    return default_inception_features(device) if set_metrics(names) else None


def inception_settings(features: InceptionFeatures | None) -> dict[str, Any]:
    """The run settings that pin the Inception weights (their digest; None when absent); empty
    when no set-level metric is scored, so other runs keep their fingerprint."""
    return {} if features is None else {"fid_inception": features.weights_sha256}


class WithInception:
    """A prediction source whose rows also hold the Inception features of each composited output
    and its ground truth (:data:`FEATURE_COLUMNS`)."""

    def __init__(self, predict, features: InceptionFeatures):
        self.predict, self.features = predict, features

    def __call__(self, items):
        out, gt, holes, rows = self.predict(items)
        pred_f, gt_f = self.features(out), self.features.features_once(gt)
        for row, p, g in zip(rows, pred_f, gt_f):
            row[FEATURE_COLUMNS[0]] = p.astype("<f4").tobytes()
            row[FEATURE_COLUMNS[1]] = g.astype("<f4").tobytes()
        return out, gt, holes, rows


def with_inception(predict, features: InceptionFeatures | None):
    """``predict`` with the feature columns added when ``features`` are available, else ``predict``."""
    return WithInception(predict, features) if features is not None and features.available else predict


def _decode(column: pd.Series, where: str) -> np.ndarray:
    values = list(column)
    if any(not isinstance(v, (bytes, bytearray)) or len(v) != 4 * FEATURE_DIM for v in values):
        raise SairbenchError(f"{where}: per-image rows without Inception features beside rows with them; "
                             "re-run the protocol into a new folder.")
    return np.frombuffer(b"".join(values), dtype="<f4").reshape(len(values), FEATURE_DIM)


def _groups(per_image: pd.DataFrame) -> list[tuple[tuple[str, str], pd.Index]]:
    """(model, bucket) groups in ``evaluate.summarize``'s order, then each model's "all"."""
    out = [((m, b), g.index) for (m, b), g in per_image.groupby(["model", "bucket"], sort=False)]
    return out + [((m, "all"), g.index) for m, g in per_image.groupby("model", sort=False)]


def add_set_metrics(per_image: pd.DataFrame, summary: pd.DataFrame, names: Iterable[str], seed: int = 0,
                    where: str = "per-image rows") -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per-image table without the feature columns, summary with the fid/kid rows among ``names``).

    Each (model, bucket) and each model's "all": FID and KID of the pairs' output features against
    their ground-truth features, ci95 from the seeded bootstrap (``seed``), n = pairs; NaN with n = 0
    when the rows hold no features (no weights). Rows ordered by group, then as in ``names``.
    Without set-level metrics both tables come back as given."""
    names = list(names)
    wanted = set_metrics(names)
    present = [c for c in FEATURE_COLUMNS if c in per_image.columns]
    if not wanted and not present:
        return per_image, summary
    feats = {c: _decode(per_image[c], where) for c in present} if len(present) == len(FEATURE_COLUMNS) else None
    rows = []
    for (model, bucket), index in _groups(per_image):
        pos = per_image.index.get_indexer(index)
        x, y = (feats[FEATURE_COLUMNS[0]][pos], feats[FEATURE_COLUMNS[1]][pos]) if feats else (None, None)
        for metric in wanted:
            if x is None:
                value, ci, n = float("nan"), float("nan"), 0
            elif metric == "fid":
                value, ci, n = frechet_distance(x, y), fid_ci95(x, y, seed=seed), len(x)
            else:
                (value, ci), n = kid_and_ci95(x, y, seed=seed), len(x)
            rows.append({"model": model, "bucket": bucket, "metric": metric, "mean": value, "ci95": ci, "n": n})
    per_image = per_image.drop(columns=present)
    out = pd.concat([summary, pd.DataFrame(rows)], ignore_index=True) if len(summary) else pd.DataFrame(rows)
    group = {g: i for i, g in enumerate(dict.fromkeys(zip(out["model"], out["bucket"])))}
    rank = {m: i for i, m in enumerate(names)}
    order = sorted(range(len(out)), key=lambda i: (group[(out["model"].iat[i], out["bucket"].iat[i])],
                                                   rank.get(out["metric"].iat[i], len(rank))))
    return per_image, out.iloc[order].reset_index(drop=True)


def fid_status(names: Iterable[str], run_digest: str | None, device: str = "cpu") -> dict[str, Any]:
    """meta.json's ``fid`` entry (``{}`` when neither fid nor kid is scored): ``available``,
    ``reason``, the weights file and its digest (``run_digest``: the one the run's parts were
    scored with, from its settings; None: scored without weights, so its parts hold no features)."""
    if not set_metrics(names):
        return {}
    had_features = run_digest is not None
    with warnings.catch_warnings():
        if had_features:  # the parts hold the features: no value is NaN for want of weights here
            warnings.simplefilter("ignore")
        here = default_inception_features(device)
    same = here.available and here.weights_sha256 == run_digest
    if had_features:
        reason = ""
    elif not here.available:
        reason = here.reason
    else:
        reason = ("the run was scored without the Inception weights; re-run the protocol into a new folder "
                  "with them in place")
    return {"fid": {"available": bool(had_features), "reason": reason,
                    "inception_file": str(here.weights_path) if same else None,
                    "inception_sha256": run_digest if had_features else None}}
