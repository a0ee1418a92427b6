"""Inception-v3 pool3 features (2048-d), the input of FID and KID, computed as the ``pytorch-fid``
package computes them, from a local weights file only.

The network is pytorch-fid's FID Inception (``pytorch_fid.inception.fid_inception_v3``):
torchvision's Inception3 with 1008 classes and no auxiliary head, its Mixed_5b..5d, 6b..6e, 7b and 7c
replaced by pytorch-fid's ``FIDInceptionA``/``C``/``E_1``/``E_2`` blocks (TensorFlow's pooling). It is
built here without pytorch-fid's download step and loaded (``torch.load(weights_only=True)``) from
pytorch-fid's file :data:`FID_WEIGHTS_FILENAME`, found at ``$SAIRBENCH_FID_WEIGHTS`` or in the torch
hub cache (``torch.hub.get_dir()/checkpoints/``). The forward pass is that of pytorch-fid's
``InceptionV3([3], resize_input=True, normalize_input=True)``: images in [0, 1] (uint8 / 255)
resized bilinearly (``align_corners=False``) to 299x299, scaled to [-1, 1], through the blocks to
the final average pooling. The weights are pinned by :func:`sairbench.digest.weights_digest`.
Without the file :class:`InceptionFeatures` is unavailable (``reason`` says why, one warning line)
and FID/KID are NaN; nothing is ever downloaded.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np

from sairbench.digest import weights_digest
from sairbench.errors import warn_once
from sairbench.metrics.conventions import as_batches

#: pytorch-fid's FID Inception weights (ported from TensorFlow's inception-2015-12-05).
FID_WEIGHTS_FILENAME = "pt_inception-2015-12-05-6726825d.pth"
#: Environment variable naming a local copy of those weights.
FID_WEIGHTS_ENV = "SAIRBENCH_FID_WEIGHTS"
#: Dimension of the pool3 features.
FEATURE_DIM = 2048



def find_fid_weights(weights: str | os.PathLike | None = None) -> tuple[Path | None, str]:
    """Locate pytorch-fid's Inception weights without downloading anything: ``weights``, else
    ``$SAIRBENCH_FID_WEIGHTS``, else ``torch.hub.get_dir()/checkpoints/`` + :data:`FID_WEIGHTS_FILENAME`.

    Returns (path, "") when found, else (None, reason)."""
    if weights is not None:
        p = Path(weights).expanduser()
        return (p, "") if p.is_file() else (None, f"Inception weights file {p} does not exist")
    env = os.environ.get(FID_WEIGHTS_ENV)
    if env:
        p = Path(env).expanduser()
        why = f"Inception weights file {p} (from ${FID_WEIGHTS_ENV}) does not exist"
        return (p, "") if p.is_file() else (None, why)
    import torch

    p = Path(torch.hub.get_dir()) / "checkpoints" / FID_WEIGHTS_FILENAME
    if p.is_file():
        return p, ""
    return None, f"pytorch-fid's Inception weights are not in the torch hub cache ({p})"


def build_fid_inception():
    """pytorch-fid's FID Inception network (``fid_inception_v3``) with untrained weights, built
    without its download: torchvision's ``inception_v3(weights=None, aux_logits=False,
    init_weights=False, num_classes=1008)`` with pytorch-fid's patched blocks."""
    import torchvision
    from pytorch_fid.inception import FIDInceptionA, FIDInceptionC, FIDInceptionE_1, FIDInceptionE_2

    net = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False, num_classes=1008)
    net.Mixed_5b = FIDInceptionA(192, pool_features=32)
    net.Mixed_5c = FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = FIDInceptionA(288, pool_features=64)
    net.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
    net.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b = FIDInceptionE_1(1280)
    net.Mixed_7c = FIDInceptionE_2(2048)
    return net


def read_fid_weights(path: Path, net) -> dict:
    """The state dict in ``path`` (``torch.load(weights_only=True)``), checked against ``net``'s
    layout. Raises ValueError naming the first missing, extra or misshaped key."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unreadable / not a torch file / pickled objects
        raise ValueError(f"cannot read {path} as a torch state dict ({type(exc).__name__})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path} does not hold a state dict of tensors")
    want = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    for key, shape in want.items():
        if key not in state:
            raise ValueError(f"{path} is not pytorch-fid's Inception (no '{key}')")
        if tuple(state[key].shape) != shape:
            raise ValueError(f"{path}: '{key}' has shape {tuple(state[key].shape)}, expected {shape}")
    extra = [k for k in state if k not in want]
    if extra:
        raise ValueError(f"{path} is not pytorch-fid's Inception (extra key '{extra[0]}')")
    return state


def pool3_features(net, images):
    """pytorch-fid's ``InceptionV3([3])`` forward: float (N, 3, H, W) in [0, 1] -> (N, 2048)."""
    import torch.nn.functional as F

    x = F.interpolate(images, size=(299, 299), mode="bilinear", align_corners=False)
    x = 2 * x - 1
    for stage in (net.Conv2d_1a_3x3, net.Conv2d_2a_3x3, net.Conv2d_2b_3x3, net.maxpool1, net.Conv2d_3b_1x1,
                  net.Conv2d_4a_3x3, net.maxpool2, net.Mixed_5b, net.Mixed_5c, net.Mixed_5d, net.Mixed_6a,
                  net.Mixed_6b, net.Mixed_6c, net.Mixed_6d, net.Mixed_6e, net.Mixed_7a, net.Mixed_7b, net.Mixed_7c):
        x = stage(x)
    return F.adaptive_avg_pool2d(x, output_size=(1, 1)).flatten(1)


class InceptionFeatures:
    """Pool3 features of uint8 (N, H, W, 3) batches (float32 (N, 2048)) with pytorch-fid's weights
    from a local file (:func:`find_fid_weights`). Without them ``available`` is False, ``reason``
    says why, one warning line is issued, and calling it raises RuntimeError (callers check
    ``available``). ``allow_tf32``: on CUDA, let the convolutions use TF32 (off: full float32)."""

    def __init__(self, device: str = "cpu", weights: str | os.PathLike | None = None, batch_size: int = 16,
                 allow_tf32: bool = False):
        self.device, self.batch_size, self.allow_tf32 = str(device), int(batch_size), bool(allow_tf32)
        self.available, self.reason = False, ""
        self.weights_path: Path | None = None
        self.weights_sha256: str | None = None
        self.net = None
        self._seen: dict[str, np.ndarray] = {}
        path, why = find_fid_weights(weights)
        if path is None:
            self.reason = (f"{why}. Place pytorch-fid's {FID_WEIGHTS_FILENAME} there, or point ${FID_WEIGHTS_ENV} "
                           "at a local copy; sairbench never downloads it.")
            warn_once(f"FID/KID are NaN: set ${FID_WEIGHTS_ENV} to a local {FID_WEIGHTS_FILENAME}")
            return
        net = build_fid_inception()
        try:
            state = read_fid_weights(path, net)
        except ValueError as exc:
            self.reason = f"{exc}; give pytorch-fid's {FID_WEIGHTS_FILENAME}."
            warn_once(f"FID/KID are NaN: {path.name[:32]} is not pytorch-fid's Inception (meta.json)")
            return
        net.load_state_dict(state, strict=True)
        for p in net.parameters():
            p.requires_grad_(False)
        self.net = net.eval().to(self.device)
        self.weights_path, self.weights_sha256 = path, weights_digest(state)
        self.available = True

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """Pool3 features of uint8 (N, H, W, 3) ``images``: float32 (N, 2048)."""
        import torch

        if not self.available:
            raise RuntimeError(f"no Inception weights: {self.reason}")
        images, _ = as_batches(images, images, "Inception features")
        if images.dtype != np.uint8:
            raise ValueError(f"Inception features take uint8 batches (use to_uint8); got {images.dtype}")
        out = np.empty((len(images), FEATURE_DIM), dtype=np.float32)
        with torch.inference_mode(), self._precision():
            for s in range(0, len(images), self.batch_size):
                batch = torch.from_numpy(np.ascontiguousarray(images[s:s + self.batch_size])).to(self.device)
                x = batch.permute(0, 3, 1, 2).float() / 255.0  # as torchvision's ToTensor
                out[s:s + len(batch)] = pool3_features(self.net, x).float().cpu().numpy()
        return out

    def features_once(self, images: np.ndarray) -> np.ndarray:
        """As calling it, with each distinct image (by its bytes) computed once per scorer: a
        ground truth seen under every mask and model costs one forward pass."""
        import hashlib

        images = np.ascontiguousarray(images)
        keys = [hashlib.sha256(im.tobytes()).hexdigest() + str(im.shape) for im in images]
        new = [i for i, k in enumerate(keys) if k not in self._seen and k not in keys[:i]]
        if new:
            if len(self._seen) > 50_000:  # ~400 MB of features: start again
                self._seen.clear()
            for i, f in zip(new, self(images[new])):
                self._seen[keys[i]] = f
        return np.stack([self._seen[k] for k in keys])

    def _precision(self):
        import torch

        if self.allow_tf32 or torch.device(self.device).type != "cuda":
            return contextlib.nullcontext()
        from sairbench.metrics.lpips_scorer import _cudnn_tf32

        return _cudnn_tf32(False)


_DEFAULT: dict[tuple[str, str], InceptionFeatures] = {}


def default_inception_features(device: str = "cpu") -> InceptionFeatures:
    """A process-wide :class:`InceptionFeatures` per ``device`` and weights file found now (or none)."""
    key = (str(device), str(find_fid_weights()[0]))
    if key not in _DEFAULT:
        _DEFAULT[key] = InceptionFeatures(device=str(device))
    return _DEFAULT[key]
