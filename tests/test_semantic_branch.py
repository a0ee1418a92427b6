"""The semantic branch: SIR queries, NFS upsampling, the in-domain encoder, stored vs external weights."""

import pytest
import torch
import torch.nn.functional as F

from sairbench.data import CELEBAMASK_CLASSES
from sairbench.models import make, register
from sairbench.models.sir import SemanticBranch, bilinear_points
from sairbench.semantic.base import SemanticEncoder

ENC = {"name": "indomain-encoder", "args": {"classes": list(CELEBAMASK_CLASSES), "embed_dim": 8, "width": 8, "n_resblocks": 1}}


def test_bilinear_points_equals_grid_sample():
    torch.manual_seed(0)
    grid = torch.randn(3, 5, 4, 6)
    coord = torch.rand(40, 2) * 2.2 - 1.1  # beyond the borders too
    b = torch.randint(0, 3, (40,))
    ref = F.grid_sample(grid[b], coord.flip(-1).view(40, 1, 1, 2), mode="bilinear", padding_mode="border",
                        align_corners=False).view(40, 5)
    assert torch.allclose(bilinear_points(grid, coord, b), ref, atol=1e-5)


def test_indomain_encoder_shapes_and_class_embeddings():
    enc = make(ENC)
    x = torch.rand(2, 3, 32, 32)
    emb = enc(x)
    assert emb.shape == (2, 8, 8, 8)  # stride 4
    table = enc.class_embeddings()
    assert table.shape == (19, 8) and torch.allclose(table.norm(dim=-1), torch.ones(19))
    assert torch.equal(enc.class_embeddings(["hair", "skin"]), table[[13, 1]])
    assert enc.logits(emb, (32, 32)).shape == (2, 19, 32, 32)


def test_sir_branch_answers_any_coordinate_and_is_frozen_encoder():
    torch.manual_seed(0)
    branch = SemanticBranch(encoder=ENC, filler="sir", sir={"hidden": [16], "context_layers": 2, "context_width": 8})
    assert not any(p.requires_grad for p in branch.encoder.parameters())
    assert not any(p.requires_grad for p in branch.sir.parameters())  # stage 2 default: frozen
    x = torch.rand(2, 3, 32, 32)
    m = torch.zeros(2, 1, 32, 32)
    m[:, :, :16] = 1
    state = branch.gen_feat(x * (1 - m), m)
    assert torch.allclose(state["missing"][:, :, :4], torch.ones(2, 1, 4, 8))  # top half of the 8x8 grid missing
    assert torch.allclose(state["missing"][:, :, 4:], torch.zeros(2, 1, 4, 8))
    coord = torch.rand(10, 2) * 2 - 1
    out = branch.extra_fn(state)(coord, torch.tensor([0, 1] * 5))
    assert out.shape == (10, 8) and torch.allclose(out.norm(dim=-1), torch.ones(10), atol=1e-5)
    dense = branch.dense(state, (12, 10))
    assert dense.shape == (2, 8, 12, 10)


def test_nfs_branch_is_the_upsampled_masked_embedding():
    branch = SemanticBranch(encoder=ENC, filler="none")
    x = torch.rand(1, 3, 32, 32)
    m = torch.zeros(1, 1, 32, 32)
    state = branch.gen_feat(x, m)
    coord = torch.rand(7, 2) * 2 - 1
    b = torch.zeros(7, dtype=torch.long)
    expected = F.normalize(bilinear_points(state["emb"], coord, b), dim=-1)
    assert torch.allclose(branch.extra_fn(state)(coord, b), expected)


class _FakeExternal(SemanticEncoder):
    """Stands in for CLIP/SAM: weights that come from elsewhere and must not be stored."""

    embed_dim, stride, name, text_aligned = 4, 4, "fake-external", False
    external_weights = True

    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Conv2d(3, 4, 4, 4)
        self.freeze()

    def forward(self, image, mask=None):
        return self.proj(image)


register("fake-external")(_FakeExternal)


def test_external_encoder_weights_are_not_stored_but_model_reloads():
    from sairbench.checkpoint import build as build_model
    from sairbench_baselines.presets import build_preset

    model = build_preset("sair", "tiny", encoder={"name": "fake-external", "args": {}})
    sd = model.state_dict()
    assert not any(k.startswith("semantic.encoder.") for k in sd)
    assert any(k.startswith("semantic.sir.") for k in sd)
    ckpt = {"model": {"name": "sair", "size": "tiny", "args": model.spec, "sd": sd}}
    again = build_model(ckpt)
    assert set(again.state_dict()) == set(sd)


def test_semantic_preset_without_encoder_says_how_to_get_one():
    from sairbench.errors import SairbenchError
    from sairbench_baselines.presets import build_preset

    with pytest.raises(SairbenchError, match="train semantic"):
        build_preset("sair", "tiny")


@pytest.mark.parametrize("preset", ["sair", "ous", "nfs", "semlte", "edsr-w"])
def test_semantic_presets_fast_equals_plain_and_train(preset):
    from sairbench.models.coords import make_cell, make_coord
    from sairbench_baselines.presets import build_preset

    torch.manual_seed(0)
    model = build_preset(preset, "tiny", encoder=ENC)
    x = torch.rand(2, 3, 16, 16)
    m = torch.zeros(2, 1, 16, 16)
    m[..., 3:9, 2:12] = 1
    state = model.gen_feat(x, m)
    for size in ((16, 16), (20, 24)):
        coord = make_coord(size).unsqueeze(0).expand(2, -1, -1)
        cell = make_cell(coord, size)
        fast = model.query_rgb(state, coord, cell, fast=True)
        plain = model.query_rgb(state, coord, cell, fast=False)
        assert ((fast - plain).abs().max() / plain.abs().max()) < 1e-5
    fast.abs().mean().backward()
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert trainable and all(p.grad is not None for p in trainable)
    if preset == "ous":
        assert model.encoder is None


@pytest.mark.parametrize("preset", ["sair", "semlte", "ous"])
def test_inpaint_with_precomputed_tables_equals_plain_grid_query(preset):
    """inpaint() computes decoder tables and SIR once per cell; the result is the plain per-query one."""
    from sairbench.models.coords import make_cell, make_coord
    from sairbench_baselines.presets import build_preset

    torch.manual_seed(0)
    model = build_preset(preset, "tiny", encoder=ENC)
    x = torch.rand(1, 3, 16, 16)
    m = torch.zeros(1, 1, 16, 16)
    m[..., 2:12, 4:14] = 1
    out = model.inpaint(x, m, size=(24, 20), chunk=101)
    state = model.gen_feat(x, m)
    coord = make_coord((24, 20)).unsqueeze(0)
    with torch.no_grad():
        ref = model.query_rgb(state, coord, make_cell(coord, (24, 20)), fast=False)
    ref = (ref * 0.5 + 0.5).clamp(0, 1).view(1, 24, 20, 3).permute(0, 3, 1, 2)
    assert torch.allclose(out, ref, atol=1e-5)
