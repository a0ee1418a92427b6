"""Geometric self-ensemble (EDSR's "+" models, Lim et al. 2017, Sec. 4.3): the model answers the
image under n flips/transposes and the n answers, mapped back, are averaged.

``n`` = 1 (off), 2 (horizontal flip), 4 (both flips) or 8 (the dihedral group: flips and the
transpose). Each set is a group, so the averaged model is exactly equivariant to its transforms.
A residual model's guessed detail is not, and averaging shrinks it where the guesses disagree.

It is an inference setting, no part of any model: :class:`SelfEnsemble` wraps any inpainter (as
EDSR's ``forward_x8`` wraps its network) and :func:`with_self_ensemble` applies, changes or removes
it. A checkpoint records it next to the model's spec (``sairbench.checkpoint``, its ``inference``
entry) and the loader applies it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
import torch.nn as nn

from sairbench.errors import SairbenchError
from sairbench.inpainter import Inpainter

SELF_ENSEMBLES = (1, 2, 4, 8)
# (transpose, flip last axis, flip second-to-last axis); the first n form a group
_TRANSFORMS = [(False, False, False), (False, True, False), (False, False, True), (False, True, True),
               (True, False, False), (True, True, False), (True, False, True), (True, True, True)]


def check_self_ensemble(n: int | None, what: str = "self-ensemble") -> int | None:
    """``n`` as an int when it is one of SELF_ENSEMBLES (None passes: not given), else a one-line error."""
    if n is not None and (isinstance(n, bool) or n not in SELF_ENSEMBLES):
        raise SairbenchError(f"{what} {n!r}: use one of {', '.join(map(str, SELF_ENSEMBLES))} "
                             "(1 = off, 8 = every flip and transpose).")
    return None if n is None else int(n)


def _flip(x: torch.Tensor, flip_w: bool, flip_h: bool) -> torch.Tensor:
    dims = [d for d, on in ((-1, flip_w), (-2, flip_h)) if on]
    return x.flip(dims) if dims else x


def _forward(x: torch.Tensor, transpose: bool, flip_w: bool, flip_h: bool) -> torch.Tensor:
    return _flip(x.transpose(-1, -2) if transpose else x, flip_w, flip_h)


def _backward(y: torch.Tensor, transpose: bool, flip_w: bool, flip_h: bool) -> torch.Tensor:
    y = _flip(y, flip_w, flip_h)
    return y.transpose(-1, -2) if transpose else y


def transforms(n: int) -> Iterator[tuple[Callable, Callable, bool]]:
    """(forward, backward, transposes) of each of the ``n`` transforms, the identity first."""
    for t in _TRANSFORMS[:check_self_ensemble(n)]:
        yield (lambda x, t=t: _forward(x, *t)), (lambda y, t=t: _backward(y, *t)), t[0]


def ensemble(n: int, answer: Callable, image: torch.Tensor, mask: torch.Tensor,
             size: tuple[int, int] | None) -> torch.Tensor:
    """Mean of ``answer(image', mask', size')`` mapped back, over the ``n`` transforms.

    image (B, 3, H, W), mask (B, 1, H, W); ``size`` (H', W') or None; returns (B, 3, H', W')."""
    total = None
    for fwd, back, transposes in transforms(n):
        out_size = None if size is None else ((size[1], size[0]) if transposes else tuple(size))
        y = back(answer(fwd(image), fwd(mask), out_size)).float()
        total = y if total is None else total.add_(y)
    return total.div_(n)


class SelfEnsemble(nn.Module, Inpainter):
    """``inner`` (any inpainter) answering as the mean over ``n`` flips/transposes (n in 2, 4, 8).

    ``inpaint(image, mask, size=None, **kw)`` runs ``inner.inpaint`` once per transform, with the
    same keywords (``region``, ``chunk``, ``precision``, ...) and the output size transposed where the
    transform transposes, and returns the mean of the answers mapped back (float32). Every other
    attribute (``name``, ``any_size``, ``min_side``, ``spec``, ``checkpoint_info``, ``semantic``, the
    implicit models' ``gen_feat``/``query_rgb``, ...) is the inner model's, as are the weights
    (``state_dict``); ``self_ensemble`` is ``n``. Build it with :func:`with_self_ensemble`.
    """

    def __init__(self, inner, n: int):
        super().__init__()
        if check_self_ensemble(n) == 1 or isinstance(inner, SelfEnsemble):
            raise ValueError("SelfEnsemble wraps an unwrapped model with n in 2, 4, 8; use with_self_ensemble.")
        if getattr(inner, "reads_labels", False):
            from sairbench.errors import SairbenchError

            raise SairbenchError(f"model '{getattr(inner, 'name', '?')}' reads label maps, which a flipped or transposed "
                                 "image does not carry; drop --self-ensemble for it.")
        self.inner = inner
        self.self_ensemble = int(n)

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)  # parameters, buffers, submodules: the inner model itself
        except AttributeError:
            if name == "inner" or name.startswith("__"):
                raise
        return getattr(self.inner, name)

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def any_size(self) -> bool:
        return bool(getattr(self.inner, "any_size", False))

    @property
    def inference(self) -> dict:
        """The inference settings this wrapper applies, as a checkpoint records them."""
        return {"self_ensemble": self.self_ensemble}

    @torch.inference_mode()
    def inpaint(self, image: torch.Tensor, mask: torch.Tensor, size: tuple[int, int] | None = None, **kw) -> torch.Tensor:
        """image (B, 3, H, W), mask (B, 1, H, W) -> (B, 3, H', W'): the mean of the inner model's answers."""
        return ensemble(self.self_ensemble, lambda x, m, s: self.inner.inpaint(x, m, s, **kw), image, mask, size)

    def forward(self, image: torch.Tensor, mask: torch.Tensor, size: tuple[int, int] | None = None, **kw):
        return self.inpaint(image, mask, size, **kw)

    def state_dict(self, *args, **kwargs):
        return self.inner.state_dict(*args, **kwargs)

    def load_state_dict(self, *args, **kwargs):
        return self.inner.load_state_dict(*args, **kwargs)

    def to(self, *args, **kwargs):  # nn.Module.to, also for an inner model that is no module
        if isinstance(self.inner, nn.Module):
            return nn.Module.to(self, *args, **kwargs)
        moved = self.inner.to(*args, **kwargs)
        if moved is not None:
            self.inner = moved
        return self

    def extra_repr(self) -> str:
        return f"n={self.self_ensemble}"


def unwrap(model):
    """The model under any self-ensemble wrapper (the model itself when there is none)."""
    while isinstance(model, SelfEnsemble):
        model = model.inner
    return model


def with_self_ensemble(model, n: int | None):
    """``model`` answering with the self-ensemble ``n``: None leaves it as it is, 1 removes any
    wrapper, 2/4/8 (re)wraps the unwrapped model; anything else is a one-line error."""
    n = check_self_ensemble(n)
    if n is None:
        return model
    inner = unwrap(model)
    return inner if n == 1 else SelfEnsemble(inner, n)
