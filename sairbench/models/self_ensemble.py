"""Geometric self-ensemble (EDSR's "+" models, Lim et al. 2017, Sec. 4.3): the model answers the
image under n flips/transposes and the n answers, mapped back, are averaged.

``n`` = 1 (off), 2 (horizontal flip), 4 (both flips) or 8 (the dihedral group: flips and the
transpose). Each set is a group, so the averaged model is exactly equivariant to its transforms.
A residual model's guessed detail is not, and averaging shrinks it where the guesses disagree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch

from sairbench.errors import SairbenchError

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


def record_in_spec(args: dict, n: int) -> None:
    """Write ``n`` into an implicit model's spec ``args`` (absent when 1, so other specs stay as they were)."""
    args.pop("self_ensemble", None)
    if check_self_ensemble(n) != 1:
        args["self_ensemble"] = int(n)


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
