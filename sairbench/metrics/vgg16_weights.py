"""torchvision's VGG16 ImageNet weights (the LPIPS trunk): finding a local copy, never
downloading one, and reading it into lpips' trunk layout."""

from __future__ import annotations

import os
from pathlib import Path

#: File name of torchvision's ImageNet VGG16 weights (the LPIPS trunk) in the torch hub cache.
VGG16_FILENAME = "vgg16-397923af.pth"
#: Environment variable naming a local copy of those weights.
VGG16_ENV = "SAIRBENCH_VGG16_WEIGHTS"


def find_vgg16_weights(backbone_weights: str | os.PathLike | None = None) -> tuple[Path | None, str]:
    """Locate torchvision's VGG16 ImageNet weights without downloading anything.

    Looks, in order, at ``backbone_weights``, the ``SAIRBENCH_VGG16_WEIGHTS`` environment variable
    and ``torch.hub.get_dir()/checkpoints/vgg16-397923af.pth``.

    Returns:
        (path, "") when found, else (None, reason).
    """
    if backbone_weights is not None:
        p = Path(backbone_weights).expanduser()
        if p.is_file():
            return p, ""
        return None, f"VGG16 weights file {p} (backbone_weights) does not exist"
    env = os.environ.get(VGG16_ENV)
    if env:
        p = Path(env).expanduser()
        if p.is_file():
            return p, ""
        return None, f"VGG16 weights file {p} (from ${VGG16_ENV}) does not exist"
    import torch

    p = Path(torch.hub.get_dir()) / "checkpoints" / VGG16_FILENAME
    if p.is_file():
        return p, ""
    return None, f"torchvision's VGG16 ImageNet weights are not in the torch hub cache ({p})"


def _vgg16_trunk_shapes() -> dict[str, tuple[int, ...]]:
    """lpips' VGG16 trunk parameters (``sliceK.N.weight|bias``) and their shapes; N is the index
    in torchvision's ``vgg16().features`` (convolutions of configuration "D")."""
    cfg = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
    slice_starts = (0, 4, 9, 16, 23, 30)  # lpips slices features[0:4], [4:9], [9:16], [16:23], [23:30]
    shapes, idx, cin = {}, 0, 3
    for v in cfg:
        if v == "M":
            idx += 1
            continue
        k = next(i for i in range(5) if slice_starts[i] <= idx < slice_starts[i + 1]) + 1
        shapes[f"slice{k}.{idx}.weight"] = (v, cin, 3, 3)
        shapes[f"slice{k}.{idx}.bias"] = (v,)
        cin = v
        idx += 2  # conv + ReLU
    return shapes


def _vgg16_trunk_state(path: Path) -> dict:
    """Read a torchvision VGG16 state dict (``features.N.weight`` ...) and rename it to lpips' trunk
    keys (``sliceK.N.weight`` ...). Raises ValueError on an unreadable file or a wrong layout."""
    import torch

    try:
        try:  # memory-map: the 528 MB file is mostly classifier weights we do not need
            state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError:  # legacy (non-zip) serialisation cannot be memory-mapped
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unreadable / not a torch file
        raise ValueError(f"cannot read {path} as a torch state dict ({type(exc).__name__}: {exc})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError(f"{path} does not hold a state dict")
    out = {}
    for key, shape in _vgg16_trunk_shapes().items():
        _, idx, kind = key.split(".")
        src = f"features.{idx}.{kind}"
        if src not in state:
            raise ValueError(f"{path} is not a torchvision VGG16 state dict (no '{src}')")
        tensor = state[src]
        if tuple(tensor.shape) != tuple(shape):
            raise ValueError(f"{path}: '{src}' has shape {tuple(tensor.shape)}, expected {tuple(shape)}")
        out[key] = tensor.float()
    return out
