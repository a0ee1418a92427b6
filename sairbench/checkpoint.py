"""Self-describing checkpoints: one schema, one safe loader, atomic writes.

Every stored model (a preset inpainter, the in-domain semantic encoder, a semantic branch with
SIR) has the same schema, LIIF's ``{name, args, sd}`` plus provenance::

    {'format': 2,
     'model': {'name': 'liif' | 'semantic' | 'sir' | ...,   # what the user calls it (registry / stage)
               'size': 'tiny' | 'paper',
               'args': {'name': part, 'args': {...}},      # the part spec: make(args) rebuilds it
               'inference': {'self_ensemble': 8},          # optional: how the loader runs the model
               'sd': state_dict},
     'step': int, 'train': {...}, 'data': {...}, 'history': [...], 'provenance': {...},
     'optimizer': ..., 'rng': {...}}                       # training checkpoints (.pt) only

Training checkpoints are ``.pt`` files (``torch.save``); shipped ones are ``.safetensors`` with
everything but the weights and the optimizer as JSON in the ``sairbench`` metadata field.
A file is data, never code: ``.pt`` files are read with ``torch.load(weights_only=True)`` and
safetensors with ``safetensors``. Before anything is built from it, :func:`load_checkpoint` checks
its metadata, part spec, the size of the model it describes and its weights
(``sairbench.checkpoint_checks``): a spec cannot name a download, weights hold no NaN or Inf.

``inference`` holds settings that change how a model answers but are no part of it and have no
weights (``INFERENCE``: ``self_ensemble``, 2/4/8, absent = 1); :func:`build` (and so
:func:`load_model`) applies them with :func:`apply_inference`, e.g. the self-ensemble wrapper.

Other layouts are upgraded on reading (:func:`upgrade`; weights unchanged): format 1 (model args
without a part name), and implicit models whose spec holds the photo options and the
self-ensemble as arguments (``prefill``, the AppEncoder's ``upsample``, the LIIF decoder's
``input_residual``, ``self_ensemble``; the shipped photo files do), read as the parts
``hole-fill``, ``app-resize-conv`` and ``liif-residual`` and the inference setting.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any, Iterable

import torch

from sairbench.checkpoint_checks import check_contents, check_structure
from sairbench.errors import SairbenchError
from sairbench.io import atomic_path

FORMAT = 2
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
        torch.save({"format": FORMAT, **payload}, tmp)


INFERENCE = ("self_ensemble",)


def upgrade(ckpt: dict[str, Any]) -> dict[str, Any]:
    """Bring a checkpoint of another layout to the current schema (in place); weights are unchanged.

    Format 1: preset args become an ``implicit-inpainter`` part spec. Implicit models with the
    photo options as arguments: see :func:`_options_as_parts`."""
    args = ckpt["model"].get("args")
    if isinstance(args, dict) and "name" in args and "decoder" in args and "args" not in args:
        ckpt["model"]["args"] = {"name": "implicit-inpainter", "args": args}
    if isinstance(ckpt["model"].get("args"), dict) and ckpt["model"]["args"].get("name") == "implicit-inpainter":
        _options_as_parts(ckpt["model"])
    ckpt["format"] = FORMAT
    return ckpt


def _options_as_parts(model: dict[str, Any]) -> None:
    """An implicit model's spec (``model['args']``) that held its options as arguments, rewritten
    with them as parts (same weights, same answers): ``prefill`` "pull-push"/"smooth" -> an
    ``input_fill`` ``hole-fill`` part ("zero" -> none); an ``app-encoder`` with ``upsample``
    "resize-conv" -> ``app-resize-conv`` ("transposed" -> ``app-encoder``); a ``liif-decoder`` with
    ``input_residual`` -> ``liif-residual``; ``self_ensemble`` -> ``model['inference']``."""
    args = model["args"].get("args")
    if not isinstance(args, dict):
        return
    n = args.pop("self_ensemble", None)
    if n is not None and n != 1:
        model.setdefault("inference", {}).setdefault("self_ensemble", n)
    prefill = args.pop("prefill", "zero")
    if prefill != "zero":
        args["input_fill"] = {"name": "hole-fill", "args": {"method": prefill}}
    for key, part, option, renamed in (("appearance", "app-encoder", "upsample", {"resize-conv": "app-resize-conv"}),
                                       ("decoder", "liif-decoder", "input_residual", {True: "liif-residual"})):
        spec = args.get(key)
        if isinstance(spec, dict) and spec.get("name") == part and option in (spec.get("args") or {}):
            rest = {k: v for k, v in spec["args"].items() if k != option}
            args[key] = {"name": renamed.get(spec["args"][option], part), "args": rest}


def set_inference(ckpt: dict[str, Any], self_ensemble: int | None = None) -> dict[str, Any]:
    """Record inference settings in ``ckpt['model']['inference']`` (in place; returns ``ckpt``).
    None leaves a setting as it is; its default (self_ensemble 1) removes it."""
    from sairbench.models.self_ensemble import check_self_ensemble

    n = check_self_ensemble(self_ensemble)
    settings = dict(ckpt["model"].get("inference") or {})
    if n is not None:
        settings.pop("self_ensemble", None)
        if n != 1:
            settings["self_ensemble"] = n
    ckpt["model"].pop("inference", None)
    if settings:
        ckpt["model"]["inference"] = settings
    return ckpt


def apply_inference(model, settings: dict[str, Any] | None, source: str = "checkpoint"):
    """``model`` run with the inference ``settings`` a checkpoint records (None or {}: as it is)."""
    from sairbench.models.self_ensemble import check_self_ensemble, with_self_ensemble

    settings = settings or {}
    unknown = sorted(set(settings) - set(INFERENCE))
    if unknown:
        raise SairbenchError(f"{source}: unknown inference settings {unknown} (known: {', '.join(INFERENCE)}); "
                             "a newer sairbench wrote it, or the file is damaged.")
    try:
        n = check_self_ensemble(settings.get("self_ensemble"))
    except SairbenchError as err:
        raise SairbenchError(f"{source}: {err}") from None
    return with_self_ensemble(model, n)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint (``.pt`` or ``.safetensors``) as a format-2 dict; never runs code from the file."""
    path = Path(path)
    if not path.is_file():
        raise SairbenchError(f"{path}: no such checkpoint; train one with `sairbench train` or check the path.")
    if path.suffix == ".safetensors":
        ckpt = _load_safetensors(path)
    else:
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many types for a damaged or code-carrying file
            kind = "holds objects other than tensors and plain data" if "weights_only" in str(exc) else "is damaged"
            raise SairbenchError(f"{path}: not a readable sairbench checkpoint (it {kind}: {type(exc).__name__}); "
                                 "pass a file written by `sairbench train`, or retrain it.") from None
    check_structure(ckpt, path)
    try:
        upgrade(ckpt)
    except (AttributeError, KeyError, TypeError, ValueError):
        raise SairbenchError(f"{path}: its model spec is malformed (it cannot be read as the current schema); "
                             "retrain it or pass another checkpoint.") from None
    check_contents(ckpt, path)
    return ckpt


def _load_safetensors(path: Path) -> dict[str, Any]:
    from safetensors import safe_open
    from safetensors.torch import load_file

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {})["sairbench"])
        sd = load_file(str(path))
    except Exception as exc:
        raise SairbenchError(f"{path}: not a readable sairbench safetensors file ({type(exc).__name__}); re-export it.") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("model"), dict):
        raise SairbenchError(f"{path}: its 'sairbench' metadata has no model entry; re-export it.")
    meta["model"]["sd"] = sd
    return meta


def export_safetensors(ckpt: dict[str, Any], path: str | os.PathLike) -> None:
    """Write the weights and the provenance (no optimizer state) as safetensors, atomically."""
    from safetensors.torch import save_file

    meta = {k: v for k, v in ckpt.items() if k not in ("optimizer", "rng", "model")}
    meta["format"] = FORMAT
    meta["model"] = {k: v for k, v in ckpt["model"].items() if k != "sd"}
    sd = {k: v.detach().contiguous() for k, v in ckpt["model"]["sd"].items()}
    with atomic_path(path) as tmp:
        save_file(sd, str(tmp), metadata={"sairbench": json.dumps(meta, default=str)})


def external_prefixes(model: torch.nn.Module) -> list[str]:
    """State-dict prefixes of the parts whose weights come from their own files (CLIP, SAM):
    checkpoints never store them."""
    return [f"{name}." if name else "" for name, m in model.named_modules()
            if getattr(type(m), "external_weights", False) is True]


def load_weights(model: torch.nn.Module, sd: dict, source: str) -> None:
    """Load ``sd`` into ``model`` with strict keys (external encoders excepted); a mismatch is one
    line naming ``source`` and the first keys at fault."""
    prefixes = external_prefixes(model)
    skip = tuple(p for p in prefixes if p)
    own = model.state_dict()
    wrong = next((k for k, v in sd.items() if k in own and tuple(getattr(v, "shape", ())) != tuple(own[k].shape)), None)
    if wrong is not None:
        raise SairbenchError(f"{source}: its weights do not fit the model it describes ('{wrong}' has shape "
                             f"{tuple(getattr(sd[wrong], 'shape', ()))}, the model needs {tuple(own[wrong].shape)}); "
                             "pass a checkpoint of the same model and size, or retrain it.")
    missing, unexpected = model.load_state_dict(sd, strict=False)
    missing = [] if "" in prefixes else [k for k in missing if not (skip and k.startswith(skip))]
    if missing or unexpected:
        raise SairbenchError(f"{source}: its weights do not fit the model it describes (missing {missing[:3]}, "
                             f"unexpected {list(unexpected)[:3]}); pass a checkpoint of the same model and size, or retrain it.")


def check_kind(ckpt: dict[str, Any], source: str, expect: Iterable[str] | None, hint: str = "") -> dict[str, Any]:
    """``ckpt`` when its model is one of the part names ``expect`` (None: any), else a one-line error
    (``hint``: how to get the right one)."""
    spec = ckpt["model"]["args"]
    expect = tuple(expect) if expect else None
    if expect and spec.get("name") not in expect:
        raise SairbenchError(f"{source}: holds '{ckpt['model'].get('name')}' (a {spec.get('name')}), not a "
                             f"{' or '.join(expect)}; {hint or 'pass a checkpoint of the right stage.'}")
    return ckpt


def build(ckpt: dict[str, Any], source: str = "checkpoint", expect: Iterable[str] | None = None) -> torch.nn.Module:
    """Rebuild the model a checkpoint describes (``make(model.args)``) and load its weights, strictly.

    ``expect``: part names accepted (e.g. ``("semantic-branch",)``); another part is a one-line error.
    The model carries ``checkpoint_info`` (the checkpoint without weights) and is in eval mode; it is
    returned with the checkpoint's inference settings applied (:func:`apply_inference`: e.g. wrapped
    in a ``SelfEnsemble``, which answers every attribute of the model it wraps).
    """
    from sairbench.models import make

    spec = check_kind(ckpt, source, expect)["model"]["args"]
    try:
        model = make(spec)
    except SairbenchError as err:  # e.g. SAM weights (never stored) not found
        raise SairbenchError(f"{source}: {err}") from None
    load_weights(model, ckpt["model"]["sd"], source)
    model.checkpoint_info = {k: v for k, v in ckpt.items() if k not in ("optimizer", "rng", "model")}
    model.checkpoint_info["model"] = {k: v for k, v in ckpt["model"].items() if k != "sd"}
    model.eval()
    return apply_inference(model, ckpt["model"].get("inference"), source)


def load_model(path: str | os.PathLike, expect: Iterable[str] | None = None) -> torch.nn.Module:
    """The model stored at ``path``, rebuilt with its weights and run with its inference settings
    (see :func:`build`)."""
    return build(load_checkpoint(path), str(path), expect)


def shipped_path(name: str, size: str = "tiny", dataset: str | None = None) -> Path:
    """File of the shipped checkpoint of ``name`` (``liif``, ``sir``, or a tagged ``liif@ft6000``):
    ``<name>-<size>-<dataset>.safetensors``; with no ``dataset``, the built-in data's file, else
    the one shipped file of that name and size trained on another dataset (``liif@photos``)."""
    stem = name.replace("@", "-")
    if dataset is not None:
        return SHIPPED_DIR / f"{stem}-{size}-{dataset}.safetensors"
    default = SHIPPED_DIR / f"{stem}-{size}-synthetic-faces.safetensors"
    if not default.is_file():
        others = sorted(SHIPPED_DIR.glob(f"{stem}-{size}-*.safetensors"))
        if others:
            return others[0]
    return default
