"""Released checkpoints of peer models (LaMa, CoordFill), read safely, and the common plumbing of
the peers' inpainters.

**Safe reading.** Released files are PyTorch zip archives (``torch.save`` since 1.6): a pickle
(``<folder>/data.pkl``) whose tensors point at raw storages (``<folder>/data/<key>``). LaMa's
``best.ckpt`` is a PyTorch Lightning checkpoint: next to the weights it pickles the training
configuration, callbacks and loops as arbitrary Python objects. This module never unpickles them:
:class:`RestrictedUnpickler` (the pure-Python unpickler with its ``find_class``, ``persistent_load``
and ``BUILD`` replaced) resolves no global by importing it. A short allowlist maps the few globals a
state dict needs (``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2``,
``torch._utils._rebuild_parameter``, ``torch.<Type>Storage``) to functions of this module that build
*references* (:class:`TensorRef`, :class:`StorageRef`), and every other global becomes an inert
:class:`Opaque` placeholder that records its name and arguments and runs nothing. ``BUILD``
(``__setstate__``) is applied to placeholders only. Tensors are made afterwards, from the raw
storage bytes of the entries actually used (:meth:`ReleasedFile.tensors`), so a Lightning file's
discriminator and loss networks are never even read.

``.safetensors`` files (``python -m sairbench_baselines.lama convert best.ckpt lama.safetensors``)
are read with ``safetensors``.
"""

from __future__ import annotations

import collections
import io
import json
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any, Callable

import torch

from sairbench.errors import SairbenchError
from sairbench.inpainter import Inpainter
from sairbench.tiling import check_pixels

STORAGE_DTYPES = {
    "FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
}


# ---------------------------------------------------------------- inert stand-ins and references


class Opaque:
    """Inert stand-in for any pickled global other than the allowlisted ones: it records the
    global's name, the arguments and the state the pickle gave it, and never calls anything."""

    global_name = "?"

    def __new__(cls, *args, **kwargs):
        obj = object.__new__(cls)
        object.__setattr__(obj, "_recorded", {"args": args, "kwargs": kwargs, "state": None, "items": []})
        return obj

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        self._recorded["state"] = state

    def append(self, item):
        self._recorded["items"].append(item)

    def extend(self, items):
        self._recorded["items"].extend(items)

    add = append
    update = extend

    def __setitem__(self, key, value):
        self._recorded["items"].append((key, value))

    def __repr__(self) -> str:
        return f"<opaque {self.global_name}>"


class StorageDtype:
    """The pickled ``torch.<Type>Storage`` class: only its dtype is kept."""

    def __init__(self, dtype: torch.dtype):
        self.dtype = dtype


class StorageRef:
    """A storage of the archive: entry ``data/<key>``, ``numel`` elements of ``dtype``."""

    def __init__(self, key: str, dtype: torch.dtype, numel: int):
        self.key, self.dtype, self.numel = key, dtype, numel


class TensorRef:
    """A tensor of the archive, not yet read: a strided view of a :class:`StorageRef`."""

    def __init__(self, storage: StorageRef, offset: int, size: tuple, stride: tuple):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride


def _ints(value, what: str) -> tuple[int, ...]:
    if not isinstance(value, (tuple, list)) or not all(type(v) is int and v >= 0 for v in value):
        raise ValueError(f"tensor {what} is not a tuple of non-negative ints")
    return tuple(value)


def _rebuild_tensor(storage, offset, size, stride, *_ignored):
    """Stands in for ``torch._utils._rebuild_tensor_v2``: a reference, no tensor is made here."""
    if not isinstance(storage, StorageRef) or type(offset) is not int or offset < 0:
        raise ValueError("a tensor does not point at a storage of the archive")
    size, stride = _ints(size, "size"), _ints(stride, "stride")
    if len(size) != len(stride):
        raise ValueError("tensor size and stride differ in length")
    return TensorRef(storage, offset, size, stride)


def _rebuild_parameter(data, *_ignored):
    """Stands in for ``torch._utils._rebuild_parameter[_with_state]``: the data, as a reference."""
    if not isinstance(data, TensorRef):
        raise ValueError("a parameter holds no tensor")
    return data


ALLOWED: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    **{("torch", name): StorageDtype(dtype) for name, dtype in STORAGE_DTYPES.items()},
}


class RestrictedUnpickler(pickle._Unpickler):
    """Unpickles containers, numbers and strings; tensors become :class:`TensorRef`; every other
    global becomes an :class:`Opaque` subclass named after it. Nothing is imported or called."""

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, data: bytes):
        super().__init__(io.BytesIO(data))
        self.storages: dict[str, StorageRef] = {}
        self.placeholders: dict[tuple[str, str], type] = {}

    def find_class(self, module: str, name: str):
        allowed = ALLOWED.get((module, name))
        if allowed is not None:
            return allowed
        key = (str(module), str(name))
        if key not in self.placeholders:
            self.placeholders[key] = type("Opaque", (Opaque,), {"global_name": f"{key[0]}.{key[1]}"})
        return self.placeholders[key]

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage" and isinstance(pid[1], StorageDtype)
                and isinstance(pid[2], str) and type(pid[4]) is int and pid[4] >= 0):
            raise ValueError("a persistent id is not a tensor storage")
        ref = self.storages.get(pid[2])
        if ref is None:
            ref = self.storages[pid[2]] = StorageRef(pid[2], pid[1].dtype, pid[4])
        return ref

    def load_build(self):
        state = self.stack.pop()
        inst = self.stack[-1]
        if isinstance(inst, Opaque):
            inst.__setstate__(state)
        # any other object (an OrderedDict's `_metadata`, ...): the state is dropped, nothing is called

    dispatch[pickle.BUILD[0]] = load_build


# ---------------------------------------------------------------- the archive


class ReleasedFile:
    """A PyTorch zip checkpoint opened without running code from it.

    ``root``: the unpickled object (dicts, lists, numbers, strings, :class:`TensorRef`,
    :class:`Opaque`); :meth:`tensors` reads the storages of the given references.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.is_file():
            raise SairbenchError(f"{self.path}: no such file; check the path given to --checkpoint.")
        if not zipfile.is_zipfile(self.path):
            raise SairbenchError(f"{self.path}: not a PyTorch zip checkpoint (torch.save since PyTorch 1.6) or "
                                 ".safetensors file; pass the released file as downloaded.")
        self.zip = zipfile.ZipFile(self.path)
        pkls = [n for n in self.zip.namelist() if n.endswith("data.pkl") and n.count("/") == 1]
        if len(pkls) != 1:
            raise SairbenchError(f"{self.path}: a zip file but not a PyTorch checkpoint (no single <folder>/data.pkl).")
        self.prefix = pkls[0][: -len("data.pkl")]
        order = self._read(f"{self.prefix}byteorder", optional=True)
        if order not in (None, b"little"):
            raise SairbenchError(f"{self.path}: written on a big-endian machine; re-save it on a little-endian one.")
        try:
            self.root = RestrictedUnpickler(self._read(f"{self.prefix}data.pkl")).load()
        except (pickle.UnpicklingError, ValueError, TypeError, KeyError, IndexError, AttributeError, EOFError) as exc:
            raise SairbenchError(f"{self.path}: damaged or not a checkpoint ({type(exc).__name__}: {exc}).") from None

    def _read(self, name: str, optional: bool = False) -> bytes | None:
        try:
            return self.zip.read(name)
        except KeyError:
            if optional:
                return None
            raise SairbenchError(f"{self.path}: damaged checkpoint, entry '{name}' is missing.") from None

    def tensors(self, refs: dict[str, TensorRef]) -> dict[str, torch.Tensor]:
        """Read the tensors of ``refs`` (name -> :class:`TensorRef`); each is a fresh CPU tensor."""
        flats: dict[str, torch.Tensor] = {}
        out = {}
        for name, ref in refs.items():
            st = ref.storage
            if st.key not in flats:
                raw = self._read(f"{self.prefix}data/{st.key}")
                itemsize = torch.empty(0, dtype=st.dtype).element_size()
                if len(raw) != st.numel * itemsize:
                    raise SairbenchError(f"{self.path}: damaged checkpoint, storage '{st.key}' of '{name}' has "
                                         f"{len(raw)} bytes, expected {st.numel * itemsize}.")
                flats[st.key] = torch.frombuffer(bytearray(raw), dtype=st.dtype) if raw else torch.empty(0, dtype=st.dtype)
            flat = flats[st.key]
            last = ref.offset + sum((s - 1) * d for s, d in zip(ref.size, ref.stride)) if all(ref.size) else -1
            if last >= flat.numel() or (not all(ref.size) and ref.offset > flat.numel()):
                raise SairbenchError(f"{self.path}: damaged checkpoint, tensor '{name}' reaches past its storage.")
            out[name] = torch.as_strided(flat, ref.size, ref.stride, ref.offset).clone()
        return out

    def close(self) -> None:
        self.zip.close()


def read_state_dict(path: str | os.PathLike, prefix: str = "") -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The weights of a released file, with ``prefix`` (e.g. ``'generator.'``) selected and removed.

    Accepts a Lightning checkpoint (``{'state_dict': {...}, ...}``), a plain state dict (both zip
    archives, read by :class:`ReleasedFile`) or ``.safetensors``. Returns (state dict, extras:
    ``global_step``/``epoch`` where the file records them as plain ints).
    """
    path = Path(path)
    if path.suffix == ".safetensors":
        if not path.is_file():
            raise SairbenchError(f"{path}: no such file; check the path given to --checkpoint.")
        from safetensors.torch import load_file

        try:
            sd = load_file(str(path))
        except Exception as exc:
            raise SairbenchError(f"{path}: not a readable safetensors file ({type(exc).__name__}).") from None
        return _select(sd, prefix), {}
    f = ReleasedFile(path)
    try:
        root, extras = f.root, {}
        if isinstance(root, dict) and isinstance(root.get("state_dict"), dict):
            extras = {k: root[k] for k in ("global_step", "epoch") if type(root.get(k)) is int}
            root = root["state_dict"]
        if not isinstance(root, dict) or not root:
            raise SairbenchError(f"{path}: holds no state dict (neither {{'state_dict': ...}} nor a dict of tensors).")
        refs = _select(root, prefix)
        for key, value in refs.items():
            if not isinstance(value, TensorRef):
                raise SairbenchError(f"{path}: entry '{prefix}{key}' of its state dict is not a tensor ({value!r}).")
        return f.tensors(refs), extras
    finally:
        f.close()


def _select(sd: dict, prefix: str) -> dict:
    if prefix and any(isinstance(k, str) and k.startswith(prefix) for k in sd):
        return {k[len(prefix):]: v for k, v in sd.items() if isinstance(k, str) and k.startswith(prefix)}
    return {str(k): v for k, v in sd.items()}


def check_layout(model: torch.nn.Module, sd: dict[str, torch.Tensor], source: str, layout: str) -> None:
    """Refuse ``sd`` unless its keys and shapes are exactly ``model.state_dict()``'s, in one line
    naming the first mismatched key (in the model's order, then the file's extra keys)."""
    expected = model.state_dict()
    for key, value in expected.items():
        if key not in sd:
            raise SairbenchError(f"{source}: not the {layout} layout: first mismatched key '{key}' is missing "
                                 f"(the file has {len(sd)} keys, the layout {len(expected)}).")
        if tuple(sd[key].shape) != tuple(value.shape):
            raise SairbenchError(f"{source}: not the {layout} layout: first mismatched key '{key}' has shape "
                                 f"{list(sd[key].shape)}, expected {list(value.shape)}.")
    for key in sd:
        if key not in expected:
            raise SairbenchError(f"{source}: not the {layout} layout: first mismatched key '{key}' is not in it "
                                 f"(the file has {len(sd)} keys, the layout {len(expected)}).")


def load_into(model: torch.nn.Module, sd: dict[str, torch.Tensor], source: str, layout: str) -> None:
    """:func:`check_layout`, then copy the weights (cast to the model's dtypes)."""
    check_layout(model, sd, source, layout)
    model.load_state_dict({k: v.to(model.state_dict()[k].dtype) for k, v in sd.items()}, strict=True)


def convert_main(argv: list[str], name: str, build: Callable[[], torch.nn.Module], prefix: str, layout: str) -> int:
    """``python -m sairbench_baselines.<name> convert SRC DST.safetensors``: read SRC safely, check
    the layout, write the weights (keys without ``prefix``) as safetensors."""
    from safetensors.torch import save_file

    from sairbench.io import atomic_path

    if len(argv) != 3 or argv[0] != "convert" or not argv[2].endswith(".safetensors"):
        print(f"usage: python -m sairbench_baselines.{name} convert RELEASED_FILE OUT.safetensors")
        return 2
    try:
        sd, extras = read_state_dict(argv[1], prefix)
        check_layout(build(), sd, argv[1], layout)
    except SairbenchError as exc:
        print(f"error: {exc}")
        return 2
    meta = {"sairbench_peer": json.dumps({"model": name, "source": Path(argv[1]).name, **extras})}
    with atomic_path(argv[2]) as tmp:
        save_file({k: v.contiguous() for k, v in sd.items()}, str(tmp), metadata=meta)
    print(f"wrote {argv[2]}: {len(sd)} tensors of the {layout} layout")
    return 0


# ---------------------------------------------------------------- the peers' inpainters


def pad_symmetric(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, height, width): extended on the bottom and right by mirroring with the
    edge pixel repeated (numpy's ``mode='symmetric'``; any amount, the mirror repeats)."""
    def index(n: int, m: int) -> torch.Tensor:
        j = torch.arange(m, device=x.device) % (2 * n)
        return torch.where(j < n, j, 2 * n - 1 - j)

    h, w = x.shape[-2:]
    if (h, w) == (height, width):
        return x
    return x.index_select(-2, index(h, height)).index_select(-1, index(w, width))


class PeerInpainter(Inpainter):
    """A peer's generator (``net``) behind the common interface; subclasses implement ``_fill``.

    ``checkpoint_info`` (recorded in meta.json by ``sairbench.evaluate.model_info``): the released
    file, its step where it records one, and ``model.size``: the architecture and the input
    conventions in force.
    """

    any_size = False
    budget_factor = 1  # models that cannot tile refuse images above max_pixels() // budget_factor

    def __init__(self, net: torch.nn.Module, name: str, info: dict[str, Any]):
        self.net = net.eval()
        self.name = name
        self.checkpoint_info = info

    def to(self, device: torch.device | str) -> "PeerInpainter":
        self.net.to(device)
        return self

    def _fill(self, image: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        """image (B, 3, H, W) in [0, 1] with the hole zeroed, hole (B, 1, H, W) in {0, 1} -> (B, 3, H, W)."""
        raise NotImplementedError

    def inpaint(self, image: torch.Tensor, mask: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        """image (B, 3, H, W) in [0, 1], mask (B, 1, H, W) 1 (> 0.5) = hole, size None or (H, W) ->
        (B, 3, H, W) in [0, 1], composited: known pixels as given."""
        from sairbench.tiling import max_pixels

        if image.dim() != 4 or image.shape[1] != 3:
            raise SairbenchError(f"model {self.name}: image must be (B, 3, H, W); got {tuple(image.shape)}.")
        b, _, h, w = image.shape
        if mask.dim() != 4 or tuple(mask.shape) != (b, 1, h, w):
            raise SairbenchError(f"model {self.name}: mask must be (B, 1, H, W) = ({b}, 1, {h}, {w}); got {tuple(mask.shape)}.")
        if size is not None and tuple(int(s) for s in size) != (h, w):
            raise SairbenchError(f"model {self.name} answers the input size only ({h}x{w}), not {tuple(size)}; "
                                 "use an implicit model (e.g. liif, sair) for other output sizes, or size=None.")
        why = "" if self.budget_factor == 1 else f" for {self.name}, which sees the whole image at once (not tiled)"
        check_pixels(h, w, f"model {self.name}: the input", max_pixels() // self.budget_factor, why)
        device = next(self.net.parameters()).device
        img = image.detach().to(device, torch.float32).clamp(0, 1)
        hole = (mask.detach().to(device) > 0.5).float()
        with torch.no_grad():
            pred = self._fill(img * (1 - hole), hole).clamp(0, 1)
        return (pred * hole + img * (1 - hole)).to(image.device)
