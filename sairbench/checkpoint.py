"""Self-describing checkpoints, written atomically.

Training checkpoint (``.pt``, torch.save)::

    {'model': {'name': preset, 'size': 'tiny', 'args': spec, 'sd': state_dict},
     'optimizer': ..., 'step': int, 'rng': {...}, 'train': {config}, 'provenance': {...}}

Shipped checkpoint (``.safetensors``): the weights, plus everything but weights and optimizer as
JSON in the ``sairbench`` metadata field, so a model rebuilds with no config.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import torch

from sairbench.errors import SairbenchError
from sairbench.io import atomic_path

SHIPPED_DIR = Path(__file__).parent / "checkpoints"


def git_commit() -> str:
    """HEAD of the source tree; ``$SAIRBENCH_COMMIT`` names it where the tree travels without .git."""
    if os.environ.get("SAIRBENCH_COMMIT"):
        return os.environ["SAIRBENCH_COMMIT"]
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).parent)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise SairbenchError(f"{path}: no such checkpoint; train one with `sairbench train` or check the path.")
    if path.suffix == ".safetensors":
        return load_safetensors(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises many types for a damaged file
        raise SairbenchError(f"{path}: not a readable checkpoint ({type(exc).__name__}); retrain or restore it.") from None
    if not isinstance(ckpt, dict) or "model" not in ckpt or "sd" not in ckpt.get("model", {}):
        raise SairbenchError(f"{path}: not a sairbench checkpoint (no 'model' entry); pass a file written by `sairbench train`.")
    return ckpt


def export_safetensors(ckpt: dict[str, Any], path: str | os.PathLike) -> None:
    """Write the weights and the provenance (no optimizer state) as safetensors, atomically."""
    from safetensors.torch import save_file

    meta = {k: v for k, v in ckpt.items() if k not in ("optimizer", "rng", "model")}
    meta["model"] = {k: v for k, v in ckpt["model"].items() if k != "sd"}
    sd = {k: v.detach().contiguous() for k, v in ckpt["model"]["sd"].items()}
    with atomic_path(path) as tmp:
        save_file(sd, str(tmp), metadata={"sairbench": json.dumps(meta, default=str)})


def load_safetensors(path: str | os.PathLike) -> dict[str, Any]:
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {})["sairbench"])
        sd = load_file(str(path))
    except Exception as exc:
        raise SairbenchError(f"{path}: not a readable sairbench safetensors file ({type(exc).__name__}); re-export it.") from None
    meta["model"]["sd"] = sd
    return meta


def load_stored_weights(model, sd: dict) -> tuple[list[str], list[str]]:
    """Load ``sd`` into ``model`` non-strictly; returns (missing, unexpected) keys, leaving out the
    frozen pretrained semantic encoder (CLIP, SAM), which checkpoints never store."""
    missing, unexpected = model.load_state_dict(sd, strict=False)
    return [k for k in missing if not k.startswith("semantic.encoder.")], list(unexpected)


def build_model(ckpt: dict[str, Any]):
    """Rebuild the model a checkpoint describes and load its weights."""
    from sairbench.models.implicit import ImplicitInpainter

    spec = ckpt["model"]["args"]
    model = ImplicitInpainter(**spec)
    missing, unexpected = load_stored_weights(model, ckpt["model"]["sd"])
    if missing or unexpected:
        raise SairbenchError(f"checkpoint of '{ckpt['model'].get('name')}' does not match its model "
                             f"(missing {missing[:3]}, unexpected {unexpected[:3]}); retrain it.")
    model.checkpoint_info = {k: v for k, v in ckpt.items() if k not in ("optimizer", "rng")}
    model.eval()
    return model


def load_model(path: str | os.PathLike):
    ckpt = load_checkpoint(path)
    try:
        return build_model(ckpt)
    except SairbenchError as err:  # e.g. a SAM model whose (unstored) SAM weights are not found: name the file
        raise SairbenchError(f"{path}: {err}") from None


def shipped_path(name: str, size: str = "tiny", dataset: str = "synthetic-faces") -> Path:
    return SHIPPED_DIR / f"{name}-{size}-{dataset}.safetensors"
