"""The domain a model was trained on (dataset, image size, how images were sampled), and one line
when an input is far from it: a model of 64x64 procedural faces on a 512x512 photograph paints
skin-coloured fills, and the user should be told."""

from __future__ import annotations

import json
from typing import Any

PHOTO_MODELS = ("liif@photos", "edsr-wo@photos", "lte@photos")  # best first: the default of `inpaint`
FALLBACK_PHOTO_MODEL = "telea"


def shipped_domain(name: str) -> dict[str, Any] | None:
    """{'dataset', 'image_size', 'sampling'} of the shipped checkpoint of ``name``, read from its
    metadata alone (no weights); None when nothing is shipped."""
    from safetensors import safe_open

    from sairbench.checkpoint import shipped_path

    path = shipped_path(name)
    if not path.is_file():
        return None
    with safe_open(str(path), framework="pt") as f:
        meta = json.loads((f.metadata() or {}).get("sairbench", "{}"))
    return domain_of_info(meta)


def domain_of_info(info: dict[str, Any]) -> dict[str, Any]:
    train, data = info.get("train") or {}, info.get("data") or {}
    return {"dataset": data.get("dataset", train.get("dataset")), "image_size": data.get("image_size", train.get("image_size")),
            "sampling": data.get("sampling", "whole images fitted to the training size")}


def domain_text(domain: dict[str, Any] | None) -> str:
    if not domain:
        return "-"
    size = domain.get("image_size")
    return f"{domain.get('dataset')}" + (f" {size}x{size}" if size else "")


def default_photo_model() -> str:
    """The best shipped model for photographs: the first of PHOTO_MODELS that is shipped, else Telea."""
    for name in PHOTO_MODELS:
        if (shipped_domain(name) or {}).get("dataset") == "photos":
            return name
    return FALLBACK_PHOTO_MODEL


def domain_warning(model, name: str, size: tuple[int, int], photograph: bool = True) -> str | None:
    """One line when ``model`` (trained on another domain) meets an input of ``size`` (H, W) far from
    it: a photograph for a model of procedural faces, or an image over 4x its training size."""
    info = getattr(model, "checkpoint_info", None)
    if not info:
        return None
    domain = domain_of_info(info)
    trained = domain.get("image_size")
    far_size = bool(trained) and max(size) > 4 * int(trained)
    other_data = photograph and domain.get("dataset") not in (None, "photos", "folder")
    if not (far_size or other_data):
        return None
    what = "a photograph" if photograph else "an image"
    hint = "" if name in PHOTO_MODELS else f"; for photographs try `sairbench inpaint IMAGE MASK` ({default_photo_model()})"
    return (f"model '{name}' was trained on {domain_text(domain)} images ({domain.get('sampling')}), and this is "
            f"{what} of {size[1]}x{size[0]}: expect fills in its training domain's colours and textures{hint}.")
