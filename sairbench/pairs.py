"""A protocol's data: its dataset split, its mask set, and the (image, mask) pairs every model sees.

Used by every evaluation (model runs, the mIoU probe, exports for outside methods) so that they
all see the same images, masks and pairs for the same settings.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

from sairbench.errors import SairbenchError
from sairbench.protocol import Protocol

MASK_DIR_ENV = "SAIRBENCH_LIU2018_MASKS"


@dataclass
class Pair:
    image_index: int
    image: str
    mask_index: int  # index into the mask list
    mask: str
    bucket: str
    ratio: float


@dataclass
class ProtocolData:
    """What a protocol evaluates: ``ds_cfg`` (the dataset settings as used), ``dataset``,
    ``masks`` (MaskItem list), ``mask_desc`` (where the masks came from) and ``pairs``."""

    ds_cfg: dict[str, Any]
    dataset: Any
    masks: list
    mask_desc: dict[str, Any]
    pairs: list[Pair]

    def __iter__(self):  # ds_cfg, ds, masks, mask_desc, pairs = open_protocol_data(...)
        return iter((self.ds_cfg, self.dataset, self.masks, self.mask_desc, self.pairs))


def build_masks(proto: Protocol, size: int, mask_dir: str | None = None):
    """The protocol's mask list and a description of where it came from."""
    from sairbench.masks import GeneratedMasks, load_mask_folder

    m = proto.masks
    source = m.source
    folder = mask_dir or m.folder or os.environ.get(MASK_DIR_ENV)
    if source == "auto":
        source = "liu2018" if folder else "generated"
    if source == "liu2018":
        if not folder:
            raise SairbenchError(f"protocol '{proto.name}' needs the Liu et al. 2018 mask folder; pass --mask-dir "
                                 f"or set {MASK_DIR_ENV}.")
        items = load_mask_folder(folder, (size, size), hole_value=int(m.hole_value), per_bucket=m.per_bucket,
                                 seed=proto.seed)
        desc = {"source": "liu2018", "folder": str(folder), "hole_value": int(m.hole_value)}
    elif source == "generated":
        items = GeneratedMasks(int(m.per_bucket or 100), (size, size), seed=proto.seed)  # drawn when used
        desc = {"source": "generated", "generator": "sairbench.masks.generate_mask_set", "seed": proto.seed}
    else:
        raise SairbenchError(f"{proto.source}: unknown mask source '{source}'; use auto, liu2018 or generated.")
    desc["per_bucket"] = m.per_bucket
    return items, desc


def build_pairs(dataset, masks) -> list[Pair]:
    """Pair image i with the i-th mask (cyclically) of every bucket, in bucket order."""
    from sairbench.masks import BUCKETS

    by_bucket: dict[str, list[int]] = {b: [] for b, _, _ in BUCKETS}
    if hasattr(masks, "bucket_indices"):  # a GeneratedMasks: buckets known without drawing a mask
        by_bucket.update(masks.bucket_indices())
    else:
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


def open_dataset(ds_cfg: dict[str, Any], seed: int, labels: bool = True):
    """The evaluation dataset that ``ds_cfg`` (see :func:`dataset_settings`) describes; ``labels``
    False when no label is needed (inpainting runs), so label files are not read."""
    from sairbench.data import get_dataset

    return get_dataset(ds_cfg["name"], split=ds_cfg.get("split") or "test", size=int(ds_cfg["size"]),
                       root=ds_cfg.get("root"), limit=ds_cfg.get("limit"), seed=seed,
                       fit=ds_cfg.get("fit") or "center-crop", labels=labels)


def dataset_settings(proto: Protocol, **overrides: Any) -> dict[str, Any]:
    """The dataset settings of a run: the dataset's own protocol defaults (size, limit, fit), then
    the protocol file's, then ``overrides`` (name, root, size, limit, fit; None = not given).
    ``defaults_from`` says which keys came from the dataset."""
    from sairbench import validate
    from sairbench.data import protocol_defaults

    validate.positive("--limit", overrides.get("limit"))
    validate.positive("--size", overrides.get("size"))
    given = {k: v for k, v in asdict(proto.dataset).items() if v is not None}
    given.update({k: v for k, v in overrides.items() if v is not None})
    defaults = protocol_defaults(given["name"])
    cfg = {**defaults, **given}
    cfg["defaults_from"] = {k: "dataset" for k in defaults if k not in given}
    size_from = "--size" if overrides.get("size") is not None else f"{proto.source}: 'dataset.size' ="
    validate.pixels_bound(f"{size_from} {cfg.get('size')}", cfg.get("size"))  # before any image is made
    return cfg


def open_protocol_data(proto: Protocol, ds_cfg: dict | None = None, mask_dir: str | None = None,
                       labels: bool = True) -> ProtocolData:
    """The dataset, masks and pairs of a protocol run; ``ds_cfg``: the dataset settings already
    resolved (``RunOptions.ds_cfg``; None: the protocol's own, :func:`dataset_settings`).
    A limit below 1 never gets here: the protocol file and ``--limit`` refuse it."""
    ds_cfg = dict(ds_cfg) if ds_cfg is not None else dataset_settings(proto)
    ds = open_dataset(ds_cfg, proto.seed, labels)
    if len(ds) == 0:
        raise SairbenchError(f"dataset '{ds_cfg['name']}' has no images for split '{ds_cfg.get('split')}'; "
                             "check --data-root.")
    ds_cfg["images"] = len(ds)
    masks, mask_desc = build_masks(proto, int(ds_cfg["size"]), mask_dir)
    return ProtocolData(ds_cfg, ds, masks, mask_desc, build_pairs(ds, masks))
