"""Issue 12: evaluation queries only the hole (and SIR only the cells read there); the composite is
bit-identical to querying every pixel, for every implicit preset, with and without semantics."""

import numpy as np
import pytest
import torch

from sairbench.inpainter import composite
from sairbench.registry import create_model, list_models


def _batch(size=48, n=3, seed=0):
    from sairbench.masks import generate_irregular_mask

    rng = np.random.default_rng(seed)
    image = torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))
    masks = [generate_irregular_mask(rng, (size, size), t) for t in (0.1, 0.3, 0.5)[:n]]
    mask = torch.from_numpy(np.stack(masks).astype(np.float32))[:, None]
    return image, mask


IMPLICIT = [m.name for m in list_models() if m.kind == "implicit" and m.available()[0]]


@pytest.mark.parametrize("name", IMPLICIT)
def test_hole_only_queries_give_the_same_composite(name):
    model = create_model(name)
    image, mask = _batch()
    masked = image * (1 - mask)
    everywhere = composite(model.inpaint(masked, mask).clamp(0, 1), image, mask)
    hole_only = model.inpaint(masked, mask, region="hole")
    assert torch.equal(composite(hole_only, image, mask), everywhere)
    assert torch.equal(hole_only * (1 - mask), masked * (1 - mask))  # the input outside the hole


def test_sir_is_evaluated_only_where_it_is_read(monkeypatch):
    model = create_model("sair")
    image, mask = _batch()
    seen = []
    real = model.semantic._query_chunked
    monkeypatch.setattr(model.semantic, "_query_chunked", lambda s, c, b: seen.append(len(c)) or real(s, c, b))
    model.inpaint(image * (1 - mask), mask, region="hole")
    assert sum(seen) < 0.8 * mask.numel()  # the hole and one cell around it, not every cell


def test_an_empty_hole_returns_the_input():
    model = create_model("liif")
    image = torch.rand(2, 3, 32, 32)
    out = model.inpaint(image, torch.zeros(2, 1, 32, 32), region="hole")
    assert torch.equal(out, image)
