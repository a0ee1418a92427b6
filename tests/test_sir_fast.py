"""SIR's cost where AIR reads it. Two exact rewrites of the same function: SIR blends its
local ensemble before its (wide) last layer, and SIR's cell table holds AIR's first-layer term of the
normalised embedding, computed from SIR's hidden state without forming the embedding."""

import torch
import torch.nn.functional as F

from sairbench.models import make
from sairbench.models.decoders import LIIFDecoder

ENC = {"name": "indomain-encoder", "args": {"classes": ["a", "b", "c"], "embed_dim": 24, "width": 8, "n_resblocks": 1}}
WIDE_SIR = {"hidden": [12, 12], "context_layers": 1, "context_width": 8}  # 24-d embedding from 12-wide layers


def _branch():
    torch.manual_seed(0)
    return make({"name": "semantic-branch", "args": {"encoder": ENC, "filler": "sir", "sir": WIDE_SIR}}).eval()


def test_a_wide_output_is_blended_before_the_last_layer_and_equals_the_reference():
    torch.manual_seed(1)
    dec = LIIFDecoder(5, hidden=[8, 8], out_dim=20)
    narrow = LIIFDecoder(5, hidden=[8, 8], out_dim=3)
    assert dec.blend_hidden and not narrow.blend_hidden
    feat = torch.randn(2, 5, 6, 7)
    coord = torch.rand(2, 30, 2) * 2 - 1
    cell = torch.full((2, 30, 2), 2 / 24)
    with torch.no_grad():
        fast, plain = dec.query(feat, coord, cell, skip=False), dec.query_plain(feat, coord, cell)
    assert fast.shape == (2, 30, 20)
    assert torch.allclose(fast, plain, atol=1e-5)


def test_projected_cells_equal_the_projected_normalised_embedding():
    branch = _branch()
    x, m = torch.rand(2, 3, 32, 32), torch.zeros(2, 1, 32, 32)
    m[:, :, 8:24, 4:20] = 1
    with torch.no_grad():
        state = branch.gen_feat(x * (1 - m), m)
        coord = torch.rand(40, 2) * 2 - 1
        b = torch.randint(0, 2, (40,))
        project = torch.randn(10, 24)
        direct = F.normalize(branch.query(state, coord, b), dim=-1) @ project.t()
        assert torch.allclose(branch._projector(state, project)(coord, b), direct, atol=1e-5)
        where = m[:, 0, ::2, ::2] > 0
        branch.precompute_cells(state, (16, 16), where=where, project=project)
        fn = branch.extra_fn(state)
        centres = torch.tensor([[-1 + 17 / 16, -1 + 9 / 16]])  # cell (8, 4): inside the hole
        assert fn.projected
        expected = F.normalize(branch.query(state, centres, torch.tensor([1])), dim=-1) @ project.t()
        assert torch.allclose(fn(centres, torch.tensor([1])), expected, atol=1e-5)


def test_sair_with_a_wide_sir_fills_the_hole_as_its_reference_path():
    torch.manual_seed(2)
    semantic = {"name": "semantic-branch", "args": {"encoder": ENC, "filler": "sir", "sir": WIDE_SIR}}
    model = make({"name": "implicit-inpainter", "args": {
        "appearance": {"name": "app-encoder", "args": {"widths": [8, 8, 8], "n_resblocks": 1}},
        "decoder": {"name": "liif-decoder", "args": {"in_dim": 8, "extra_dim": 24, "hidden": [16, 16]}},
        "semantic": semantic, "name": "wide-sair"}}).eval()
    x, m = torch.rand(2, 3, 32, 32), torch.zeros(2, 1, 32, 32)
    m[0, :, 4:20, 8:28] = 1
    m[1, :, 16:, :12] = 1
    hole = model.inpaint(x * (1 - m), m, region="hole")
    plain = model.inpaint(x * (1 - m), m, fast=False)
    assert torch.allclose(hole * m, plain * m, atol=1e-5)
    assert not torch.allclose(hole * m, (x * m))  # it filled something
