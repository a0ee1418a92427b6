"""Dense CLIP encoder (MaskCLIP last block) on a random-initialised open_clip ViT-B/16.

Pretrained CLIP weights cannot be downloaded on the test machines, so every test builds the
model with ``pretrained=None`` (same architecture, random weights); the MaskCLIP change is a
fixed function of the weights, so it is checked against a plain re-computation from the very
same open_clip parameters.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
import pytest

from sairbench.errors import SairbenchError
from sairbench.semantic.clip_dense import ENV_CLIP_WEIGHTS, DenseCLIPEncoder, maskclip_last_block


@pytest.fixture(scope="module")
def enc() -> DenseCLIPEncoder:
    torch.manual_seed(0)
    return DenseCLIPEncoder("ViT-B-16", pretrained=None, input_size=224)


def _ln(x, ln):
    return F.layer_norm(x, ln.normalized_shape, ln.weight, ln.bias, ln.eps)


def _plain_dense(model, pixels: torch.Tensor) -> torch.Tensor:
    """The MaskCLIP dense output written out from open_clip's parameters, step by step."""
    v = model.visual
    b = pixels.shape[0]
    x = F.conv2d(pixels, v.conv1.weight, stride=16)  # patch embedding, no bias
    d, gh, gw = x.shape[1:]
    x = x.reshape(b, d, gh * gw).permute(0, 2, 1)
    pos = v.positional_embedding
    if (gh, gw) != (14, 14):
        grid = pos[1:].reshape(1, 14, 14, d).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, size=(gh, gw), mode="bicubic", align_corners=False)
        pos = torch.cat([pos[:1], grid.permute(0, 2, 3, 1).reshape(gh * gw, d)])
    x = torch.cat([v.class_embedding.expand(b, 1, d), x], dim=1) + pos
    x = _ln(x, v.ln_pre)
    blocks = v.transformer.resblocks
    for blk in blocks[:-1]:  # unchanged blocks
        x = blk(x)
    last = blocks[-1]
    w, bias = last.attn.in_proj_weight, last.attn.in_proj_bias
    val = _ln(x, last.ln_1) @ w[2 * d:3 * d].T + bias[2 * d:3 * d]  # value rows (q, k, v order)
    val = val @ last.attn.out_proj.weight.T + last.attn.out_proj.bias
    x = x + val  # attention residual
    h = _ln(x, last.ln_2) @ last.mlp.c_fc.weight.T + last.mlp.c_fc.bias
    h = h * torch.sigmoid(1.702 * h)  # QuickGELU (OpenAI CLIP)
    x = x + h @ last.mlp.c_proj.weight.T + last.mlp.c_proj.bias  # MLP residual
    x = _ln(x[:, 1:], v.ln_post) @ v.proj  # drop CLS, ln_post, visual projection
    return x.permute(0, 2, 1).reshape(b, -1, gh, gw)


def test_frozen_and_named(enc):
    assert enc.name == "clip-vit-b16-random"
    assert enc.text_aligned and enc.embed_dim == 512 and enc.stride == 16
    assert not any(p.requires_grad for p in enc.parameters())
    enc.train()
    assert not enc.training and not enc.model.training
    # OpenAI ViT-B/16 was trained with QuickGELU: the default architecture follows the tag
    from open_clip.transformer import QuickGELU
    assert isinstance(enc.model.visual.transformer.resblocks[-1].mlp.gelu, QuickGELU)


def test_dense_matches_plain_computation_224(enc):
    torch.manual_seed(1)
    img = torch.rand(2, 3, 224, 224)
    out = enc(img)
    assert out.shape == (2, 512, 14, 14)
    ref = _plain_dense(enc.model, enc.preprocess(img))
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)
    # and the preprocessing is CLIP's normalisation (no resize at 224)
    mean = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)
    std = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)
    torch.testing.assert_close(enc.preprocess(img), (img - mean) / std)


def test_dense_matches_plain_computation_other_size():
    """input_size 320 -> 20x20 grid with the position embeddings bicubically resized."""
    torch.manual_seed(0)
    enc320 = DenseCLIPEncoder("ViT-B-16", pretrained=None, input_size=320)
    img = torch.rand(1, 3, 320, 320)
    out = enc320(img)
    assert out.shape == (1, 512, 20, 20)
    torch.testing.assert_close(out, _plain_dense(enc320.model, enc320.preprocess(img)), rtol=1e-4, atol=1e-4)


def test_trunk_is_open_clip_forward(enc):
    """Blocks 0..L-2 + the ORIGINAL last block on our token path reproduce open_clip's image
    embedding: the only change of the dense encoder is the last block."""
    torch.manual_seed(2)
    img = torch.rand(1, 3, 224, 224)
    pixels = enc.preprocess(img)
    v = enc.model.visual
    x = v.conv1(pixels).flatten(2).transpose(1, 2)
    x = torch.cat([v.class_embedding.view(1, 1, -1), x], 1) + enc.positional_embedding(14, 14)
    x = v.transformer(v.ln_pre(x))
    pooled = v.ln_post(x[:, 0]) @ v.proj
    torch.testing.assert_close(pooled, enc.model.encode_image(pixels), rtol=1e-4, atol=1e-4)


def test_value_path_is_per_token(enc):
    """MaskCLIP's last block mixes no tokens: changing one input token changes only that output
    (the original attention block changes all of them)."""
    torch.manual_seed(3)
    last = enc.model.visual.transformer.resblocks[-1]
    x = torch.randn(1, 10, 768)
    y = maskclip_last_block(last, x)
    x2 = x.clone()
    x2[0, 4] += torch.randn(768)
    y2 = maskclip_last_block(last, x2)
    changed = (y2 - y).abs().amax(dim=-1)[0]
    assert changed[4] > 1e-3
    assert torch.all(changed[torch.arange(10) != 4] == 0)
    z, z2 = last(x), last(x2)
    assert torch.all((z2 - z).abs().amax(dim=-1)[0] > 0)


def test_repeated_patch_gives_equal_embeddings(enc):
    """An image made of one repeated 16x16 patch gives the same embedding at every cell.

    With CLIP's learned position embeddings the tokens of different cells differ from the first
    block on, so the property cannot hold as such; it holds when the position embedding is
    zeroed (then every patch token has the same input, attention in blocks 0..L-2 gives each the
    same output, and the per-token value path keeps them equal). The embedding is zeroed for
    this test only and restored afterwards.
    """
    torch.manual_seed(4)
    patch = torch.rand(1, 3, 16, 16)
    img = patch.repeat(1, 1, 14, 14)
    pos = enc.model.visual.positional_embedding
    saved = pos.detach().clone()
    try:
        pos.data.zero_()
        out = enc(img).flatten(2)  # (1, 512, 196)
    finally:
        pos.data.copy_(saved)
    spread = (out - out[:, :, :1]).abs().max()
    assert spread < 1e-4 * out.abs().max()
    # with the position embedding back, cells differ (the test above is not vacuous)
    out_pos = enc(img).flatten(2)
    assert (out_pos - out_pos[:, :, :1]).abs().max() > 1e-3 * out_pos.abs().max()


def test_shapes_and_resizing(enc):
    torch.manual_seed(5)
    # a 256x256 image is resized to the 224 input: 14x14 grid
    assert enc(torch.rand(1, 3, 256, 256)).shape == (1, 512, 14, 14)
    assert enc.grid_size(256, 256) == (14, 14)
    # position embedding: identity at the native grid, resized elsewhere (CLS entry kept)
    pe = enc.model.visual.positional_embedding
    assert enc.positional_embedding(14, 14) is pe
    pe2 = enc.positional_embedding(16, 20)
    assert pe2.shape == (1 + 16 * 20, 768)
    torch.testing.assert_close(pe2[0], pe[0])
    # mask is accepted (and ignored: CLIP sees the masked image)
    img = torch.rand(1, 3, 224, 224)
    mask = torch.zeros(1, 1, 224, 224)
    torch.testing.assert_close(enc(img, mask), enc(img))
    with pytest.raises(SairbenchError):
        enc(torch.rand(1, 1, 224, 224))
    with pytest.raises(SairbenchError):
        DenseCLIPEncoder(pretrained=None, input_size=230)


def test_class_embeddings(enc):
    names = ["l_eye", "hair", "background"]
    emb = enc.class_embeddings(names)
    assert emb.shape == (3, 512)
    torch.testing.assert_close(emb.norm(dim=-1), torch.ones(3))
    # one template: exactly CLIP's normalised text embedding of the filled prompt
    one = enc.class_embeddings(["l_eye"], templates=["a photo of a {}."])
    tokens = enc.tokenizer(["a photo of a left eye."])
    ref = F.normalize(enc.model.encode_text(tokens), dim=-1)
    torch.testing.assert_close(one, ref, rtol=1e-5, atol=1e-5)
    with pytest.raises(SairbenchError):
        enc.class_embeddings([])


def test_missing_weights_file_is_a_clear_error(tmp_path, monkeypatch):
    missing = tmp_path / "no-such-clip.pt"
    with pytest.raises(SairbenchError) as err:
        DenseCLIPEncoder(pretrained=str(missing))
    msg = str(err.value)
    assert str(missing) in msg and ENV_CLIP_WEIGHTS in msg and "\n" not in msg
    # the environment variable is the default source, and is named in the error
    monkeypatch.setenv(ENV_CLIP_WEIGHTS, str(missing))
    with pytest.raises(SairbenchError) as err:
        DenseCLIPEncoder()
    assert f"${ENV_CLIP_WEIGHTS}" in str(err.value) and str(missing) in str(err.value)


@pytest.mark.slow
def test_local_checkpoint_file_loads(enc, tmp_path):
    """A local checkpoint file (state dict) is loaded strictly and named after the file."""
    path = tmp_path / "my-clip.pt"
    torch.save(enc.model.state_dict(), path)
    loaded = DenseCLIPEncoder(pretrained=str(path))
    assert loaded.name == "clip-vit-b16-file-my-clip"
    img = torch.rand(1, 3, 224, 224)
    torch.testing.assert_close(loaded(img), enc(img))
    bad = tmp_path / "bad.pt"
    torch.save({"nothing": torch.zeros(1)}, bad)
    with pytest.raises(SairbenchError):
        DenseCLIPEncoder(pretrained=str(bad))
