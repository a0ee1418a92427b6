"""The one interface every inpainting model answers."""

from __future__ import annotations

import abc

import torch


class Inpainter(abc.ABC):
    """Base class: ``inpaint(image, mask, size=None)``.

    Subclasses set ``name`` and ``any_size`` (True when they can answer an output size other than
    the input size, i.e. implicit models that inpaint and super-resolve in one query).
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
