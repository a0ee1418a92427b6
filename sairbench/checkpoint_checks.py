"""What a checkpoint must hold before anything is built from it, each fault one line naming the file.

:func:`check_contents` runs inside ``checkpoint.load_checkpoint``, so every loader (``run``,
``inpaint``, the mIoU probe, ``train --init/--resume/--sir-checkpoint/--semantic-checkpoint``)
applies it:

* metadata: the types of the entries (``model`` a table with a part spec and a state dict, ``step``
  a whole number >= 0, ...), nesting at most ``MAX_DEPTH`` levels and no entry that contains itself;
* the part spec (:func:`check_spec`): every part registered, every argument one of its constructor's,
  of the type its annotation gives (a list of whole numbers where ``Sequence[int]`` goes), widths
  >= 1 and <= ``MAX_INT`` (``ZERO_ALLOWED`` arguments may be 0), repeat counts <= ``MAX_COUNT``,
  lists of widths <= ``MAX_LIST`` long, finite numbers, the choices a part declares (``spec_choices``); no
  argument a part reserves for the user (``spec_forbidden``: CLIP's ``pretrained`` tag, SAM's
  ``checkpoint`` file, devices) and no string that names a download (``hf-hub:``, ``https://``, ...):
  only the command line and the environment name weights to fetch;
* the model the spec describes, built on the 'meta' device (``parts.estimating``: nothing allocated,
  no file read): its parts must fit together (their ``spec_problem``), its parameters and buffers must
  fit ``$SAIRBENCH_MAX_MODEL_BYTES`` (default 4 GiB), and each stored tensor must have the shape the
  model gives it;
* the weights: tensors with string names, none holding NaN or Inf.

Training snapshots for ``--resume`` also need a step, an optimizer state and the random state
(:func:`check_resumable`); :func:`check_optimizer_fits` compares the optimizer state with the
optimizer of the model being trained.
"""

from __future__ import annotations

import collections.abc
import inspect
import math
import os
import re
import reprlib
import types
import typing
import warnings
from typing import Any

import torch

from sairbench.errors import SairbenchError

MAX_DEPTH = 32  # nesting of a checkpoint's metadata (a shipped file nests 6 deep)
MAX_INT = 1 << 16  # largest width, channel count or size a spec may give
MAX_COUNT = 256  # largest repeat count (residual blocks, context layers)
MAX_LIST = 64  # longest list of widths (lists of names, e.g. classes, are bounded by the model size)
ZERO_ALLOWED = frozenset({"in_dim", "extra_dim", "context_layers", "n_resblocks"})  # OUS: in_dim 0
COUNT_ARGS = frozenset({"n_resblocks", "context_layers"})
ENV_MAX_MODEL_BYTES = "SAIRBENCH_MAX_MODEL_BYTES"
DEFAULT_MAX_MODEL_BYTES = 4 << 30
_DOWNLOAD = re.compile(r"^\s*(hf-hub:|hf://|[a-z][a-z0-9+.-]*://)", re.IGNORECASE)
_FIX = "the file is damaged or was not written by sairbench; retrain it or pass another checkpoint"
_short = reprlib.Repr()
_short.maxstring, _short.maxother, _short.maxlevel = 60, 60, 3


def _fail(source: Any, what: str, fix: str = _FIX) -> SairbenchError:
    return SairbenchError(f"{source}: {what}; {fix}.")


def _kind(value: Any) -> str:
    return f"{type(value).__name__} {_short.repr(value)}"


# --- metadata ------------------------------------------------------------------------------------
def check_depth(obj: Any, source: Any, limit: int = MAX_DEPTH) -> None:
    """One line unless ``obj`` nests at most ``limit`` dicts/lists deep and contains no container
    twice (a self-reference); iterative, so any depth is measured without recursion."""
    stack, seen = [(obj, 1)], set()
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = list(item.values())
        elif isinstance(item, (list, tuple)):
            children = list(item)
        else:
            continue
        if depth > limit:
            raise _fail(source, f"its metadata nests deeper than {limit} levels")
        if id(item) in seen:
            raise _fail(source, "its metadata contains an entry twice or inside itself")
        seen.add(id(item))
        stack.extend((child, depth + 1) for child in children)


_TOP = {"step": "a whole number >= 0", "wall_time_s": "a number >= 0", "history": "a list of tables",
        "train": "a table", "data": "a table", "provenance": "a table", "external_weights": "a table",
        "optimizer": "a table", "rng": "a table", "format": "1 or 2"}


def _entry_ok(key: str, value: Any) -> bool:
    if key == "step":
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0
    if key == "wall_time_s":
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0
    if key == "history":
        return isinstance(value, list) and all(isinstance(h, dict) for h in value)
    if key == "format":
        return value in (1, 2) and not isinstance(value, bool)
    if key == "external_weights":
        return value is None or isinstance(value, dict)
    return isinstance(value, dict)


def check_structure(ckpt: Any, source: Any) -> None:
    """One line unless ``ckpt`` has the checkpoint schema's types (see ``sairbench.checkpoint``)."""
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("model"), dict) or "sd" not in ckpt["model"] \
            or "args" not in ckpt["model"]:
        raise SairbenchError(f"{source}: not a sairbench checkpoint (no 'model' entry with 'args' and 'sd'); "
                             "pass a file written by `sairbench train`.")
    check_depth({k: v for k, v in ckpt.items() if k != "model"}, source)
    check_depth({k: v for k, v in ckpt["model"].items() if k != "sd"}, source)
    for key, value in ckpt.items():
        if key in _TOP and not _entry_ok(key, value):
            raise _fail(source, f"its '{key}' entry is {_kind(value)}, not {_TOP[key]}")
    model = ckpt["model"]
    for key, ok, want in (("name", lambda v: isinstance(v, str), "a string"),
                          ("size", lambda v: v is None or isinstance(v, str), "a string"),
                          ("args", lambda v: isinstance(v, dict), "a part spec {name, args}"),
                          ("inference", lambda v: v is None or isinstance(v, dict), "a table"),
                          ("sd", lambda v: isinstance(v, dict), "a table of tensors")):
        if key in model and not ok(model[key]):
            raise _fail(source, f"its 'model.{key}' entry is {_kind(model[key])}, not {want}")
    if "name" not in model:
        raise _fail(source, "its 'model' entry has no 'name'")


def check_weights(sd: dict, source: Any) -> None:
    """One line unless every entry of ``sd`` is a tensor with a string name and no NaN or Inf."""
    for key, value in sd.items():
        if not isinstance(key, str):
            raise _fail(source, f"its weights have the key {_kind(key)}, not a tensor name")
        if not isinstance(value, torch.Tensor):
            raise _fail(source, f"its weights entry '{key}' is {_kind(value)}, not a tensor")
        if (value.is_floating_point() or value.is_complex()) and value.numel() and not bool(torch.isfinite(value).all()):
            raise _fail(source, f"its tensor '{key}' holds NaN or Inf values (training diverged or the file is damaged)",
                        "retrain it or pass an earlier snapshot")


# --- the part spec -------------------------------------------------------------------------------
def _signature(cls) -> tuple[dict[str, inspect.Parameter] | None, dict[str, Any]]:
    """The named parameters and type hints of the constructor that takes the part's arguments (a
    subclass that passes ``*args, **kwargs`` on is read through its base); None when every
    constructor takes ``**kwargs`` (any argument name is then accepted, its value still checked)."""
    targets = [c.__init__ for c in cls.__mro__] if inspect.isclass(cls) else [cls]
    for fn in targets:
        params = inspect.signature(fn).parameters
        if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params.values()):
            continue
        named = {k: p for k, p in params.items() if k != "self"}
        return named, typing.get_type_hints(fn)
    return None, {}


def _conforms(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_conforms(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if hint in (str, dict):
        return isinstance(value, hint)
    if origin in (list, tuple, collections.abc.Sequence):
        if not isinstance(value, (list, tuple)):
            return False
        args = typing.get_args(hint)
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(value) == len(args) and all(_conforms(v, a) for v, a in zip(value, args))
        return not args or all(_conforms(v, args[0]) for v in value)
    return False  # another type (a device object, a sentinel) cannot come from a file


def _describe(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(h) for h in typing.get_args(hint) if _describable(h))
    names = {type(None): "null", bool: "true or false", int: "a whole number", float: "a finite number",
             str: "a string", dict: "a table"}
    if hint in names:
        return names[hint]
    args = typing.get_args(hint)
    if origin is tuple and args and args[-1] is not Ellipsis:
        return f"a list of {len(args)} {_describe(args[0]).removeprefix('a ')}s"
    return f"a list of {_describe(args[0]).removeprefix('a ')}s" if args else "a list"


def _describable(hint: Any) -> bool:
    return hint in (type(None), bool, int, float, str, dict) or typing.get_origin(hint) in (
        list, tuple, collections.abc.Sequence)


def _check_value(key: str, value: Any, at: str, source: Any) -> None:
    """Ranges of a well-typed argument value: whole numbers (alone or in lists) and list lengths."""
    if isinstance(value, (list, tuple)):
        if len(value) > MAX_LIST and any(isinstance(v, int) for v in value):
            raise _fail(source, f"its model spec '{at}' lists {len(value)} widths (at most {MAX_LIST})")
        for item in value:
            _check_value(key, item, at, source)
        return
    if isinstance(value, str) and _DOWNLOAD.match(value):
        raise _fail(source, f"its model spec '{at}' = {value!r} names a download; a checkpoint cannot start one",
                    "only your command line and environment name weights to fetch (--clip-weights, "
                    "$SAIRBENCH_CLIP_WEIGHTS, $SAIRBENCH_SAM_CHECKPOINT); pass a checkpoint written by `sairbench train`")
    if isinstance(value, int) and not isinstance(value, bool):
        low = 0 if key in ZERO_ALLOWED else 1
        high = MAX_COUNT if key in COUNT_ARGS else MAX_INT
        if not low <= value <= high:
            raise _fail(source, f"its model spec '{at}' = {_short.repr(value)} is out of range (from {low} to {high})")


def check_spec(spec: Any, source: Any, at: str = "") -> None:
    """One line unless ``spec`` is a ``{name, args}`` part spec whose arguments its part takes, with
    their annotated types, in range, and none that only the user may give (see the module doc)."""
    from sairbench.models import part_class

    label = at or "model.args"
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) or set(spec) - {"name", "args"}:
        raise _fail(source, f"its model spec '{label}' is {_kind(spec)}, not a part spec {{name, args}}")
    try:
        cls = part_class(spec["name"])
    except SairbenchError as err:
        raise SairbenchError(f"{source}: {err}") from None
    args = spec.get("args", {})
    if not isinstance(args, dict):
        raise _fail(source, f"its model spec '{(at + '.') if at else ''}args' is {_kind(args)}, not a table")
    _check_args(cls, spec["name"], args, source, at)


def _check_args(cls, name: str, args: dict, source: Any, at: str, given: tuple[str, ...] = ()) -> None:
    from sairbench.models import part_class

    params, hints = _signature(cls)
    forbidden = getattr(cls, "spec_forbidden", {})
    parts, kwargs = getattr(cls, "spec_parts", ()), getattr(cls, "spec_kwargs", {})
    choices = getattr(cls, "spec_choices", {})
    for key, value in args.items():
        where = f"{at}.{key}" if at else str(key)
        if key in forbidden:
            raise _fail(source, f"its model spec gives '{where}' = {_short.repr(value)} to {name}, which a checkpoint "
                        f"may not: {forbidden[key]}", "pass a checkpoint written by `sairbench train`")
        if not isinstance(key, str) or (params is not None and key not in params) or key in given:
            known = ", ".join(k for k in params or () if k not in given)
            raise _fail(source, f"its model spec gives {name} the unknown argument '{where}' (it takes {known})")
        if key in parts:
            if value is not None or not _conforms(None, hints.get(key)):
                check_spec(value, source, where)
            continue
        if key in kwargs and isinstance(value, dict):
            part, supplied = kwargs[key]
            _check_args(part_class(part), part, value, source, where, tuple(supplied))
            continue
        if key in hints and not _conforms(value, hints[key]):
            raise _fail(source, f"its model spec '{where}' is {_kind(value)}, not {_describe(hints[key])}")
        if key in choices and value not in choices[key]:
            raise _fail(source, f"its model spec '{where}' = {_short.repr(value)} is not one of {', '.join(choices[key])}")
        _check_value(key, value, where, source)
    missing = [k for k, p in (params or {}).items() if p.default is p.empty and k not in args and k not in given]
    if missing:
        raise _fail(source, f"its model spec gives {name} no '{(at + '.') if at else ''}{missing[0]}'")


# --- the model the spec describes ----------------------------------------------------------------
def max_model_bytes() -> int:
    """The bound on a described model's parameters and buffers: ``$SAIRBENCH_MAX_MODEL_BYTES``, else 4 GiB."""
    raw = os.environ.get(ENV_MAX_MODEL_BYTES, "").strip()
    if not raw:
        return DEFAULT_MAX_MODEL_BYTES
    if not raw.isdigit() or int(raw) <= 0:
        raise SairbenchError(f"${ENV_MAX_MODEL_BYTES}={raw!r}: give a positive number of bytes (e.g. {DEFAULT_MAX_MODEL_BYTES}).")
    return int(raw)


def describe_model(spec: dict, source: Any) -> torch.nn.Module:
    """The model ``spec`` describes, built on the 'meta' device (``parts.estimating``): shapes only."""
    from sairbench.models import make
    from sairbench.parts import estimating

    try:
        with estimating(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. torch on zero-element tensors: the real build says it
            return make(spec)
    except SairbenchError as err:
        raise SairbenchError(f"{source}: {err}") from None
    except Exception as exc:  # noqa: BLE001  (a constructor's own complaint about its arguments)
        reason = " ".join(str(exc).split())[:200]
        raise _fail(source, f"its model spec does not describe a model that can be built ({type(exc).__name__}: {reason})") from None


def check_model(spec: dict, sd: dict, source: Any) -> None:
    """One line unless the model ``spec`` describes fits together, fits the memory bound, and gives
    every stored tensor of ``sd`` the shape it has."""
    model = describe_model(spec, source)
    for module in model.modules():
        problem = getattr(module, "spec_problem", None)
        if callable(problem) and problem():
            raise _fail(source, f"its model spec does not describe a working model ({problem()})")
    seen, total, count = set(), 0, 0
    for tensor in [*model.parameters(), *model.buffers()]:
        if id(tensor) not in seen:
            seen.add(id(tensor))
            total += tensor.numel() * tensor.element_size()
            count += tensor.numel() if isinstance(tensor, torch.nn.Parameter) else 0
    bound = max_model_bytes()
    if total > bound:
        raise SairbenchError(f"{source}: the model it describes has {count / 1e6:,.1f} M parameters ({total / 2**30:,.2f} GiB), "
                             f"over the bound of {bound / 2**30:,.2f} GiB; the file is damaged or not meant for this "
                             f"machine; set ${ENV_MAX_MODEL_BYTES} to a larger number of bytes to load it anyway.")
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    for key, value in sd.items():
        if key in shapes and tuple(value.shape) != shapes[key]:
            raise _fail(source, f"its tensor '{key}' has shape {tuple(value.shape)}, but the model it describes "
                        f"needs {shapes[key]}")


def check_contents(ckpt: dict, source: Any) -> None:
    """Spec, model and weights of a checkpoint already upgraded to the current schema."""
    check_spec(ckpt["model"]["args"], source)
    check_weights(ckpt["model"]["sd"], source)
    check_model(ckpt["model"]["args"], ckpt["model"]["sd"], source)


# --- training snapshots --------------------------------------------------------------------------
def check_resumable(ckpt: dict, source: Any) -> None:
    """One line unless ``ckpt`` holds what ``train --resume`` continues from: a step, an optimizer
    state ({state, param_groups}) and the torch random state (uint8, this torch's length)."""
    if "step" not in ckpt:
        raise _fail(source, "it has no 'step'; it is not a training snapshot",
                    "resume from a snapshot written by `sairbench train` or drop --resume")
    opt = ckpt.get("optimizer")
    groups = opt.get("param_groups") if isinstance(opt, dict) else None
    if not isinstance(opt, dict) or not isinstance(opt.get("state"), dict) or not isinstance(groups, list) or not all(
            isinstance(g, dict) and isinstance(g.get("params"), list) for g in groups):
        raise _fail(source, f"its 'optimizer' entry is {_kind(opt)}, not an optimizer state {{state, param_groups}}")
    rng = ckpt.get("rng")
    state = rng.get("torch") if isinstance(rng, dict) else None
    want = torch.get_rng_state()
    if not isinstance(state, torch.Tensor) or state.dtype != want.dtype or tuple(state.shape) != tuple(want.shape):
        found = f"a {state.dtype} tensor of shape {tuple(state.shape)}" if isinstance(state, torch.Tensor) else _kind(state)
        raise _fail(source, f"its random state 'rng.torch' is {found}, not a {want.dtype} tensor of shape {tuple(want.shape)}")


def _same_kind(saved: Any, own: Any) -> bool:
    if isinstance(own, bool) or own is None:
        return isinstance(saved, bool) or saved is None
    if isinstance(own, (int, float)):
        return isinstance(saved, (int, float)) and not isinstance(saved, bool) and math.isfinite(saved)
    if isinstance(own, (tuple, list)):
        return isinstance(saved, (tuple, list)) and len(saved) == len(own) and all(map(_same_kind, saved, own))
    return type(saved) is type(own)


def check_optimizer_fits(saved: dict, opt: torch.optim.Optimizer, source: Any) -> None:
    """One line unless the optimizer state ``saved`` (checked by :func:`check_resumable`) fits
    ``opt``: the same parameter groups and sizes, settings of the same kinds, per-parameter tensors
    of the parameter's shape, finite."""
    fix = "resume from an earlier snapshot (step_*.pt) or start again with another --out"
    groups = saved["param_groups"]
    sizes, own_sizes = [len(g["params"]) for g in groups], [len(g["params"]) for g in opt.param_groups]
    if sizes != own_sizes:
        raise _fail(source, f"its optimizer state has parameter groups of {sizes} tensors, the model being trained "
                    f"{own_sizes}", fix)
    params = {}
    for group, own in zip(groups, opt.param_groups):
        for key, value in group.items():
            if key != "params" and key in own and not _same_kind(value, own[key]):
                raise _fail(source, f"its optimizer setting '{key}' is {_kind(value)}", fix)
        params.update(zip(group["params"], own["params"]))
    for pid, entry in saved["state"].items():
        if pid not in params or not isinstance(entry, dict):
            raise _fail(source, f"its optimizer state has an entry {_short.repr(pid)} for no parameter of the model", fix)
        shape = tuple(params[pid].shape)
        for key, value in entry.items():
            if isinstance(value, torch.Tensor) and value.ndim and tuple(value.shape) != shape:
                raise _fail(source, f"its optimizer state '{key}' of parameter {pid} has shape {tuple(value.shape)}, "
                            f"not the parameter's {shape}", fix)
            if not isinstance(value, (torch.Tensor, int, float)) or isinstance(value, bool):
                raise _fail(source, f"its optimizer state '{key}' of parameter {pid} is {_kind(value)}", fix)
            finite = bool(torch.isfinite(value).all()) if isinstance(value, torch.Tensor) and (
                value.is_floating_point()) else (not isinstance(value, float) or math.isfinite(value))
            if not finite:
                raise _fail(source, f"its optimizer state '{key}' of parameter {pid} holds NaN or Inf values", fix)
