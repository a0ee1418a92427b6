"""``mean-fill``: every hole pixel gets the mean colour of the image's known pixels."""

import torch

from sairbench.errors import SairbenchError
from sairbench.inpainter import Inpainter


class MeanFill(Inpainter):
    """Mean colour of the known pixels in the hole (example plugin)."""

    name = "mean-fill"
    any_size = False  # answers the input size only: inpaint takes (image, mask, size=None)

    def __init__(self, checkpoint=None, **kw):  # the registry calls factory(checkpoint=None, ...)
        if checkpoint is not None:
            raise SairbenchError("mean-fill has no weights; drop --checkpoint mean-fill=...")  # one 'error:' line

    def inpaint(self, image: torch.Tensor, mask: torch.Tensor, size=None) -> torch.Tensor:
        known = 1 - mask.float()  # (B, 1, H, W), 1 = known
        total = (image * known).sum(dim=(2, 3), keepdim=True)
        mean = total / known.sum(dim=(2, 3), keepdim=True).clamp(min=1)
        return image * known + mean * (1 - known)  # (B, 3, H, W) in [0, 1]
