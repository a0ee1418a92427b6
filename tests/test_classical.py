"""Classical baselines: registered, fill smooth holes well, keep known pixels, answer the input size."""

from __future__ import annotations

import pytest
import torch

import sairbench_baselines.classical as classical
from sairbench.errors import SairbenchError
from sairbench.inpainter import Inpainter
from sairbench.registry import create_model, get_spec

NAMES = ("telea", "navier-stokes", "biharmonic")


def _gradient(b=2, h=40, w=48):
    """(B, 3, H, W) smooth colour gradients in [0, 1] and a (B, 1, H, W) mask with one blob hole
    plus a thin stroke."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    imgs = []
    for i in range(b):
        imgs.append(torch.stack([0.1 + 0.8 * xx, 0.2 + 0.6 * yy, 0.5 + 0.3 * (xx - yy) * (i + 1) / 2]))
    image = torch.stack(imgs).clamp(0, 1)
    mask = torch.zeros(b, 1, h, w)
    mask[:, :, h * 3 // 10 : h * 11 // 20, w * 5 // 16 : w * 9 // 16] = 1
    mask[:, :, h * 3 // 4, w // 10 : w * 5 // 6] = 1
    return image, mask


@pytest.mark.parametrize("name", NAMES)
def test_registered_as_classical(name):
    spec = get_spec(name)
    assert spec.kind == "classical" and spec.needs == "nothing"
    assert spec.available() == (True, "")
    model = create_model(name)
    assert isinstance(model, Inpainter) and model.name == name and model.any_size is False


@pytest.mark.parametrize("name", NAMES)
def test_fills_smooth_hole(name):
    image, mask = _gradient()
    corrupted = image * (1 - mask)  # what a model sees: the hole is zeroed
    out = create_model(name).inpaint(corrupted, mask)
    assert out.shape == image.shape and out.dtype == torch.float32
    assert torch.all(out >= 0) and torch.all(out <= 1)
    hole = mask.expand_as(image).bool()
    err = (out - image).abs()[hole].mean().item()
    assert err < 0.03, f"{name}: mean hole error {err:.4f}"
    # far better than filling the hole with the mean colour of the known pixels
    known_mean = (image * (1 - mask)).sum((2, 3), keepdim=True) / (1 - mask).sum((2, 3), keepdim=True)
    naive = (known_mean.expand_as(image) - image).abs()[hole].mean().item()
    assert err < 0.25 * naive, f"{name}: {err:.4f} vs mean fill {naive:.4f}"
    # known pixels are returned as given
    assert torch.equal(out[~hole], corrupted[~hole])


@pytest.mark.parametrize("name", NAMES)
def test_input_size_only(name):
    image, mask = _gradient(1, 20, 24)
    model = create_model(name)
    assert model.inpaint(image, mask, size=(20, 24)).shape == (1, 3, 20, 24)
    with pytest.raises(SairbenchError, match=f"model {name} answers the input size only"):
        model.inpaint(image, mask, size=(40, 48))


def test_empty_and_full_masks():
    image, _ = _gradient(1, 16, 16)
    model = create_model("telea")
    empty = torch.zeros(1, 1, 16, 16)
    assert torch.equal(model.inpaint(image, empty), image)
    full = torch.ones(1, 1, 16, 16)
    assert torch.allclose(model.inpaint(image, full), torch.full_like(image, 0.5))


def test_bool_mask_and_bad_shapes():
    image, mask = _gradient(1, 16, 16)
    model = create_model("biharmonic")
    out = model.inpaint(image, mask.bool())
    assert out.shape == image.shape
    with pytest.raises(SairbenchError, match="mask must be"):
        model.inpaint(image, mask[:, :, :8])
    with pytest.raises(SairbenchError, match="image must be"):
        model.inpaint(image[0], mask)


def test_radius_option():
    assert classical.make_telea(radius=5).radius == 5.0
    assert create_model("navier-stokes").radius == 3.0
    with pytest.raises(SairbenchError):
        classical.make_telea(radius=0)
