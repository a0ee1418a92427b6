"""The fast decoder paths against LIIF's/LTE's reference formulation, and decoder properties."""

import math

import pytest
import torch
import torch.nn.functional as F

from sairbench.models.coords import make_cell, make_coord
from sairbench.models.decoders import LIIFDecoder, LTEDecoder
from sairbench.models.encoders import AppEncoder, EDSRBaseline


def _grid(h, w, batch=2):
    coord = make_coord((h, w)).unsqueeze(0).expand(batch, -1, -1).contiguous()
    return coord, make_cell(coord, (h, w))


def _rel_err(a, b):
    return ((a - b).abs().max() / a.abs().max()).item()


CASES = [((6, 5), (6, 5)), ((8, 8), (8, 8)), ((6, 5), (13, 11)), ((4, 4), (16, 16)), ((5, 7), (3, 4)), ((7, 6), (21, 18))]


@pytest.mark.parametrize("feat_hw,out_hw", CASES)
@pytest.mark.parametrize("decoder", ["liif", "liif-extra", "lte", "lte-extra"])
def test_fast_path_equals_plain(decoder, feat_hw, out_hw):
    torch.manual_seed(0)
    extra_dim = 5 if decoder.endswith("extra") else 0
    if decoder.startswith("liif"):
        dec = LIIFDecoder(8, extra_dim=extra_dim, hidden=(32, 32))
    else:
        dec = LTEDecoder(8, extra_dim=extra_dim, hidden_dim=16, hidden=(32,))
    feat = torch.randn(2, 8, *feat_hw)
    inp = torch.rand(2, 3, *feat_hw)
    table = torch.randn(2, 5, *feat_hw)
    # extra vector = a fixed function of the neighbour cell's centre coordinate (like SIR)
    extra_fn = None
    if extra_dim:
        def extra_fn(c, b):
            return F.grid_sample(table[b], c.flip(-1).view(-1, 1, 1, 2), mode="bilinear",
                                 align_corners=False).view(-1, 5) + c.sum(-1, keepdim=True)
    coord, cell = _grid(*out_hw)
    plain = dec.query_plain(feat, coord, cell, extra_fn=extra_fn, inp=inp)
    fast = dec.query(feat, coord, cell, extra_fn=extra_fn, inp=inp)
    assert fast.shape == (2, out_hw[0] * out_hw[1], 3)
    assert _rel_err(plain, fast) < 1e-5
    # random continuous coordinates, borders included
    rc = torch.cat([torch.rand(2, 64, 2) * 2 - 1, torch.tensor([[[-1.0, -1.0], [1.0, 1.0], [-1.0, 1.0], [0.999999, -0.999999]]]).expand(2, -1, -1)], 1)
    rcell = torch.full_like(rc, 2 / 17)
    assert _rel_err(dec.query_plain(feat, rc, rcell, extra_fn=extra_fn, inp=inp),
                    dec.query(feat, rc, rcell, extra_fn=extra_fn, inp=inp)) < 1e-5


def test_both_first_layer_strategies_agree():
    """The conv table (many queries) and the gathered 3x3 neighbourhoods (few queries) are one function."""
    torch.manual_seed(1)
    dec = LIIFDecoder(6, hidden=(16,))
    feat = torch.randn(2, 6, 9, 7)
    coord = torch.rand(2, 10, 2) * 2 - 1
    cell = torch.full_like(coord, 2 / 9)
    few = dec.query(feat, coord, cell)  # 10 queries << 63 cells: gather strategy
    dense_coord, dense_cell = _grid(9, 7)
    both = torch.cat([coord, dense_coord], 1)
    many = dec.query(feat, both, torch.cat([cell, dense_cell], 1))[:, :10]  # table strategy
    assert torch.allclose(few, many, atol=1e-6)
    assert torch.allclose(few, dec.query_plain(feat, coord, cell), atol=1e-6)


def test_skip_path_computes_one_term_per_pixel_at_scale_1():
    dec = LIIFDecoder(4, hidden=(8,))
    coord, _ = _grid(6, 6, batch=1)
    idx, rel, weights = dec.neighbours(coord, (6, 6))
    kept = (weights > dec.skip_tol).sum(0).view(6, 6)
    assert (kept[:-1, :-1] == 1).all()  # away from the last row/column: own cell only
    assert (kept[-1, :-1] > 1).all() and (kept[:-1, -1] > 1).all()  # LIIF's clamped border mixes cells


def test_ensemble_weights_sum_to_one():
    dec = LIIFDecoder(4, hidden=(8,))
    coord = torch.rand(3, 100, 2) * 2 - 1
    _, _, weights = dec.neighbours(coord, (5, 9))
    assert torch.allclose(weights.sum(0), torch.ones(3, 100), atol=1e-6)
    assert (weights >= 0).all()


def test_output_at_size_equals_grid_query():
    from sairbench_baselines.presets import build_preset

    torch.manual_seed(0)
    model = build_preset("liif", "tiny")
    image = torch.rand(1, 3, 16, 16)
    mask = torch.zeros(1, 1, 16, 16)
    mask[..., 4:10, 5:12] = 1
    out = model.inpaint(image, mask, size=(24, 20), chunk=97)  # odd chunk: several passes
    assert out.shape == (1, 3, 24, 20)
    state = model.gen_feat(image, mask)
    coord, cell = _grid(24, 20, batch=1)
    with torch.no_grad():
        ref = model.query_rgb(state, coord, cell, fast=False)
    ref = (ref * 0.5 + 0.5).clamp(0, 1).view(1, 24, 20, 3).permute(0, 3, 1, 2)
    assert torch.allclose(out, ref, atol=1e-5)


def test_lte_fourier_features_match_direct_computation():
    torch.manual_seed(0)
    dec = LTEDecoder(3, hidden_dim=4, hidden=(8,))
    coef = torch.randn(1, 4)
    freq = torch.randn(1, 4)
    rel = torch.tensor([[0.3, -0.7]])
    rel_cell = torch.tensor([[0.5, 0.25]])
    got = dec.fourier(coef, freq, rel, rel_cell)
    P = dec.phase.weight  # (2, 2)
    expected = []
    args = []
    for k in range(2):  # channel pair (2k, 2k+1) holds the (row, col) frequency of component k
        a = freq[0, 2 * k] * rel[0, 0] + freq[0, 2 * k + 1] * rel[0, 1] + (P[k] * rel_cell[0]).sum()
        args.append(a)
    expected = [coef[0, k] * math.cos(math.pi * args[k]) for k in range(2)] + \
               [coef[0, 2 + k] * math.sin(math.pi * args[k]) for k in range(2)]
    assert torch.allclose(got[0], torch.stack([torch.as_tensor(e) for e in expected]), atol=1e-6)


def test_encoders_keep_resolution():
    x = torch.rand(2, 4, 32, 24)
    app = AppEncoder(widths=(8, 12, 16), n_resblocks=1)
    assert app(x).shape == (2, 8, 32, 24)
    edsr = EDSRBaseline(n_resblocks=1, n_feats=8)
    assert edsr(x).shape == (2, 8, 32, 24)


def test_paper_size_app_encoder_matches_table_4():
    app = AppEncoder()  # paper size
    convs = [m for m in app.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    first, last = convs[0], convs[-1]
    assert (first.in_channels, first.out_channels, first.kernel_size) == (4, 64, (7, 7))
    assert isinstance(last, torch.nn.ConvTranspose2d) and (last.in_channels, last.out_channels) == (128, 64)
    assert sum(isinstance(m, torch.nn.Module) and type(m).__name__ == "ResBlock" for m in app.modules()) == 8


def test_reduced_precision_and_memory_chunking():
    from sairbench_baselines.presets import build_preset

    torch.manual_seed(0)
    model = build_preset("liif", "tiny")
    image = torch.rand(1, 3, 16, 16)
    mask = torch.zeros(1, 1, 16, 16)
    mask[..., 3:12, 2:9] = 1
    ref = model.inpaint(image, mask, size=(20, 20))
    half = model.inpaint(image, mask, size=(20, 20), precision="bf16")  # autocast on the CPU
    assert half.dtype == torch.float32 and (half - ref).abs().max() < 0.05
    assert not torch.equal(half, ref)  # it really ran in reduced precision
    small = model.auto_chunk(torch.device("cpu"), budget_bytes=1)
    big = model.auto_chunk(torch.device("cpu"), budget_bytes=1 << 40)
    assert small == 4096 and big == 1 << 21
    assert torch.allclose(model.inpaint(image, mask, size=(20, 20), chunk=small), ref, atol=1e-6)


def test_inpaint_builds_no_autograd_graph():
    """inpaint runs under inference_mode: no graph is kept across query chunks (bounded memory)."""
    from sairbench_baselines.presets import build_preset

    model = build_preset("liif", "tiny")
    out = model.inpaint(torch.rand(1, 3, 8, 8), torch.zeros(1, 1, 8, 8), size=(12, 12), chunk=50)
    assert not out.requires_grad and out.is_inference()
