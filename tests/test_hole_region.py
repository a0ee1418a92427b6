"""Evaluation queries only the hole (and SIR only the cells read there); the composite is
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
    real = model.semantic.query
    monkeypatch.setattr(model.semantic, "query", lambda s, c, b: seen.append(len(c)) or real(s, c, b))
    model.inpaint(image * (1 - mask), mask, region="hole")
    holes = int(mask.sum())  # at scale 1 AIR reads the hole's own cells (and, on the last row and column, a neighbour)
    assert holes <= sum(seen) <= holes + 2 * 48 * len(mask)


def test_read_cells_are_the_cells_the_fast_path_reads():
    from sairbench.models.decoders import LIIFDecoder

    torch.manual_seed(0)
    dec = LIIFDecoder(4, hidden=[8])
    coord = torch.rand(50, 2) * 2 - 1
    bidx = torch.randint(0, 2, (50,))
    read = dec.read_cells(coord, bidx, (6, 7), 2)
    seen = torch.zeros(2, 42, dtype=torch.bool)

    def extra_fn(c, b):
        from sairbench.models.coords import coord_to_index

        seen[b, coord_to_index(c, (6, 7))] = True
        return torch.zeros(len(c), 0)

    dec.query_points(torch.rand(2, 4, 6, 7), coord, torch.full((50, 2), 0.3), bidx, extra_fn=extra_fn)
    assert torch.equal(read.view(2, -1), seen) and seen.any()


def test_an_empty_hole_returns_the_input():
    model = create_model("liif")
    image = torch.rand(2, 3, 32, 32)
    out = model.inpaint(image, torch.zeros(2, 1, 32, 32), region="hole")
    assert torch.equal(out, image)
