"""The one interface every inpainting model answers, and the check of it (:func:`contract_problem`).

The contract (docs/plugins.md states it for plugin authors):

* ``inpaint(image, mask, size=None, **options) -> Tensor``: ``image`` (B, 3, H, W) float in
  [0, 1] whose hole is already zeroed, ``mask`` (B, 1, H, W) float, 1 = missing; returns
  (B, 3, H', W') float in [0, 1] on ``image``'s device, (H', W') = ``size`` or (H, W). Known pixels
  need not be kept: the evaluator composites (prediction in the hole, input elsewhere).
* the calls the suite makes, every one of them:

  - ``sairbench run`` / ``eval`` scoring (``sairbench.evaluate.ModelPredictions``):
    ``inpaint(image, mask)``; for a model with ``any_size = True``: ``inpaint(image, mask,
    region="hole")`` (only the hole is used: answering the missing pixels alone is allowed);
  - ``sairbench figures``: ``inpaint(image, mask)``;
  - ``sairbench inpaint`` (``sairbench.inpaint_image``): ``inpaint(image, mask, size=None)``; for
    ``any_size`` models ``inpaint(image, mask, size=(H', W') or None, precision="fp32"|"fp16"|"bf16")``
    plus ``region="hole"`` when the output has the input's size;
  - the self-ensemble wrapper (``--self-ensemble N``, ``any_size`` models only,
    ``sairbench.models.self_ensemble``): ``inpaint(image', mask', size', **the keywords above)``
    with ``size`` passed positionally, on flipped/transposed inputs.

  So every model's ``inpaint`` takes ``size`` as its third parameter (by position or keyword) and
  an ``any_size`` model's also takes ``region`` ("all" | "hole") and ``precision`` (or ``**kw``).
* attributes: ``name`` (str), ``any_size`` (bool: the model answers an output size other than the
  input's), ``to(device)`` returning the model (the base class's does nothing); optional
  ``min_side`` (smallest input side it can take) and ``checkpoint_info`` (what meta.json records).

:func:`contract_problem` checks a model class or instance against this from the signature of its
``inpaint`` (nothing is run): the registry refuses a class at registration (the model is listed as
not available, with the reason) and any model when it is built, in one line.
"""

from __future__ import annotations

import abc
import inspect

import torch


class Inpainter(abc.ABC):
    """Base class: ``inpaint(image, mask, size=None)`` (the contract: this module's docstring).

    Subclasses set ``name`` and ``any_size`` (True when they can answer an output size other than
    the input size, i.e. implicit models that inpaint and super-resolve in one query; their
    ``inpaint`` then also takes ``region="all"|"hole"`` and ``precision="fp32"|"fp16"|"bf16"``).
    """

    name: str = "inpainter"
    any_size: bool = False

    @abc.abstractmethod
    def inpaint(
        self, image: torch.Tensor, mask: torch.Tensor, size: tuple[int, int] | None = None
    ) -> torch.Tensor:
        """Complete the missing pixels.

        Args:
            image: (B, 3, H, W) float in [0, 1]; values under the mask are ignored.
            mask: (B, 1, H, W) float or bool, 1 = missing.
            size: output (H', W'); None keeps (H, W).

        Returns:
            (B, 3, H', W') float in [0, 1]. Known pixels are not composited here; the evaluator
            composites at the input size.
        """

    def to(self, device: torch.device | str) -> "Inpainter":
        return self


def composite(pred: torch.Tensor, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Prediction inside the hole, the input elsewhere. All (B, C, H, W); mask (B, 1, H, W) 1 = hole."""
    m = mask.to(pred.dtype)
    return pred * m + image.to(pred.dtype) * (1 - m)


#: Keywords the suite passes to the ``inpaint`` of a model with ``any_size = True``.
ANY_SIZE_KEYWORDS = ("region", "precision")


def contract_problem(model) -> str | None:
    """Why ``model`` (a class or an instance) cannot answer every call the suite makes to an
    inpainter (module docstring), from the signature of its ``inpaint``; None when it can."""
    fn = getattr(model, "inpaint", None)
    if not callable(fn):
        return "has no inpaint(image, mask, size=None) method"
    if not callable(getattr(model, "to", None)):
        return "has no to(device) method; subclass sairbench.inpainter.Inpainter"
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):  # a builtin: nothing to read
        return None
    if isinstance(model, type) and params and params[0].kind in (params[0].POSITIONAL_ONLY, params[0].POSITIONAL_OR_KEYWORD):
        params = params[1:]  # the unbound method's self
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    names = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    any_kw = any(p.kind == p.VAR_KEYWORD for p in params)
    any_pos = any(p.kind == p.VAR_POSITIONAL for p in params)
    required = [p.name for p in params if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    if len(positional) < 2 and not any_pos:
        return "its inpaint must take (image, mask, size=None)"
    if len(required) > 2:
        return f"its inpaint requires '{required[2]}', but the suite passes only image and mask; give it a default"
    third = positional[2] if len(positional) > 2 else None
    if not any_pos and (third is None or third.name != "size"):
        return "its inpaint must take size as its third parameter: inpaint(image, mask, size=None)"
    if getattr(model, "any_size", False):
        missing = [k for k in ANY_SIZE_KEYWORDS if k not in names and not any_kw]
        if missing:
            return (f"any_size = True, but its inpaint takes no {missing[0]}= keyword (the suite calls "
                    "inpaint(image, mask, region=\"hole\") and passes precision=); add region: str = \"all\" and "
                    "precision: str = \"fp32\" (or **kw) to inpaint, or set any_size = False")
    return None
