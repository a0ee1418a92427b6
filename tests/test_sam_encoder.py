"""SAM image encoder (segment-anything vit_b) as a semantic encoder, random-initialised.

SAM's own input is 1024x1024, which is slow on a CPU; the forward tests use the real vit_b
encoder (12 blocks, width 768, windowed + global attention, relative positions, neck) built at
img_size=256, i.e. a 16x16 token grid instead of 64x64. The construction at 1024 is checked
without a forward pass.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from sairbench.errors import SairbenchError
from sairbench.semantic.sam import (
    ENV_SAM_CHECKPOINT,
    ENV_SAM_IMG_SIZE,
    SAM_CHECKPOINT_URLS,
    SAMEncoder,
    save_random_sam_checkpoint,
)


@pytest.fixture(scope="module")
def enc() -> SAMEncoder:
    torch.manual_seed(0)
    e = SAMEncoder("vit_b", img_size=256, random_init=True)
    # segment-anything zero-initialises the position tables; give them values so that the
    # checkpoint round trip below really checks them
    with torch.no_grad():
        e.encoder.pos_embed.normal_(0, 0.02)
        for name, p in e.encoder.named_parameters():
            if "rel_pos" in name:
                p.normal_(0, 0.02)
    return e


def test_output_shape_frozen_and_named(enc):
    assert enc.name == "sam-vit_b-256px-random"
    assert enc.embed_dim == 256 and enc.stride == 16 and not enc.text_aligned
    assert not any(p.requires_grad for p in enc.parameters())
    enc.train()
    assert not enc.training and not enc.encoder.training
    with torch.no_grad():
        out = enc(torch.rand(2, 3, 256, 256), torch.zeros(2, 1, 256, 256))
    assert out.shape == (2, 256, 16, 16)
    assert torch.isfinite(out).all()
    # a 512x512 image is resized down to 256: same grid
    with torch.no_grad():
        assert enc(torch.rand(1, 3, 512, 512)).shape == (1, 256, 16, 16)


def test_non_square_input_is_cropped_to_valid_region(enc):
    img = torch.rand(1, 3, 200, 100)  # long side -> 256: 256 x 128 -> 16 x 8 cells
    assert enc.resized_shape(200, 100) == (256, 128)
    x = enc.preprocess(img)
    assert x.shape == (1, 3, 256, 256)
    assert torch.all(x[..., 128:] == 0)  # padding right, after normalisation (as Sam.preprocess)
    with torch.no_grad():
        assert enc(img).shape == (1, 256, 16, 8)


def test_preprocess_matches_sam_normalisation(enc):
    img = torch.rand(1, 3, 256, 256)
    mean = torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1)
    std = torch.tensor([58.395, 57.12, 57.375]).view(1, 3, 1, 1)
    torch.testing.assert_close(enc.preprocess(img), (img * 255 - mean) / std)


def test_not_text_aligned(enc):
    with pytest.raises(SairbenchError, match="not text-aligned"):
        enc.class_embeddings(["hair"])


def test_native_size_construction():
    e = SAMEncoder("vit_b", img_size=1024, random_init=True)
    assert e.name == "sam-vit_b-random"
    assert tuple(e.encoder.pos_embed.shape) == (1, 64, 64, 768)
    assert e.grid_size(1024, 1024) == (64, 64) and e.grid_size(256, 256) == (64, 64)
    assert e.grid_size(512, 384) == (64, 48)


def test_missing_checkpoint_is_a_clear_error(tmp_path, monkeypatch):
    missing = tmp_path / "sam_vit_b_01ec64.pth"
    with pytest.raises(SairbenchError) as err:
        SAMEncoder("vit_b", checkpoint=str(missing), img_size=256)
    msg = str(err.value)
    assert str(missing) in msg and ENV_SAM_CHECKPOINT in msg and SAM_CHECKPOINT_URLS["vit_b"] in msg
    assert "\n" not in msg
    monkeypatch.delenv(ENV_SAM_CHECKPOINT, raising=False)
    with pytest.raises(SairbenchError, match=ENV_SAM_CHECKPOINT):
        SAMEncoder("vit_b", img_size=256)  # no checkpoint, no random_init
    monkeypatch.setenv(ENV_SAM_CHECKPOINT, str(missing))
    with pytest.raises(SairbenchError, match=r"\$" + ENV_SAM_CHECKPOINT):
        SAMEncoder("vit_b", img_size=256)
    with pytest.raises(SairbenchError):
        SAMEncoder("vit_x", random_init=True)


@pytest.mark.slow
def test_checkpoint_round_trip_and_resize(enc, tmp_path):
    """A full-SAM-style checkpoint (``image_encoder.*`` keys plus others) loads strictly; at a
    different img_size the position tables are resized."""
    path = tmp_path / "sam.pth"
    sd = {f"image_encoder.{k}": v for k, v in enc.encoder.state_dict().items()}
    sd["mask_decoder.dummy"] = torch.zeros(1)
    torch.save(sd, path)

    same = SAMEncoder("vit_b", checkpoint=str(path), img_size=256)
    assert same.name == "sam-vit_b-256px"
    img = torch.rand(1, 3, 256, 256)
    with torch.no_grad():
        torch.testing.assert_close(same(img), enc(img))
    del same

    small = SAMEncoder("vit_b", checkpoint=str(path), img_size=128)
    pe = enc.encoder.pos_embed.permute(0, 3, 1, 2)
    want = F.interpolate(pe, size=(8, 8), mode="bicubic", align_corners=False).permute(0, 2, 3, 1)
    torch.testing.assert_close(small.encoder.pos_embed, want)
    g_src, g_dst = enc.encoder.blocks[2].attn.rel_pos_h, small.encoder.blocks[2].attn.rel_pos_h
    assert g_src.shape[0] == 31 and g_dst.shape[0] == 15  # global block: 2 * grid - 1
    torch.testing.assert_close(small.encoder.blocks[0].attn.rel_pos_h, enc.encoder.blocks[0].attn.rel_pos_h)
    with torch.no_grad():
        assert small(torch.rand(1, 3, 128, 128)).shape == (1, 256, 8, 8)


def test_tiny_test_size_reads_its_architecture_and_records_a_spec(tmp_path, monkeypatch):
    """vit_test (2 blocks of width 32) is read from the file; img_size from $SAIRBENCH_SAM_IMG_SIZE;
    spec_args rebuild the same encoder and pin its weights."""
    path = save_random_sam_checkpoint(tmp_path / "tiny.pth", "vit_test")
    monkeypatch.setenv(ENV_SAM_CHECKPOINT, str(path))
    monkeypatch.setenv(ENV_SAM_IMG_SIZE, "64")
    enc = SAMEncoder()
    assert enc.model_type == "vit_test" and enc.img_size == 64 and enc.name == "sam-vit_test-64px"
    assert enc.external_weights and enc.embed_dim == 256
    with torch.no_grad():
        assert enc(torch.rand(1, 3, 32, 32)).shape == (1, 256, 4, 4)
    spec = enc.spec_args()
    assert spec["model_type"] == "vit_test" and spec["img_size"] == 64 and spec["weights_file"] == "tiny.pth"
    monkeypatch.setenv(ENV_SAM_IMG_SIZE, "32")  # the spec, not the environment, decides
    again = SAMEncoder(**spec)
    assert again.img_size == 64 and again.weights_sha256 == enc.weights_sha256
    # the default is still SAM's own vit_b at 1024
    monkeypatch.delenv(ENV_SAM_IMG_SIZE)
    assert SAMEncoder(random_init=True, img_size=None).model_type == "vit_b"


def test_bad_sam_files_and_settings_are_clear_errors(tmp_path, monkeypatch):
    tiny = save_random_sam_checkpoint(tmp_path / "tiny.pth", "vit_test")
    cases = []
    with pytest.raises(SairbenchError, match=r"tiny\.pth.* holds a vit_test image encoder, not the vit_b one") as e:
        SAMEncoder("vit_b", checkpoint=str(tiny), img_size=64)
    cases.append(e)
    (tmp_path / "junk.pth").write_text("not a checkpoint")
    with pytest.raises(SairbenchError, match=r"junk\.pth.* is not a readable torch state dict") as e:
        SAMEncoder(checkpoint=str(tmp_path / "junk.pth"), img_size=64)
    cases.append(e)
    torch.save({"mask_decoder.w": torch.zeros(1)}, tmp_path / "decoder_only.pth")
    with pytest.raises(SairbenchError, match=r"decoder_only\.pth.* holds no SAM image encoder") as e:
        SAMEncoder(checkpoint=str(tmp_path / "decoder_only.pth"), img_size=64)
    cases.append(e)
    torch.save({"patch_embed.proj.weight": torch.zeros(48, 3, 16, 16)}, tmp_path / "odd.pth")
    with pytest.raises(SairbenchError, match=r"odd\.pth.* unknown size \(width 48, depth 0") as e:
        SAMEncoder(checkpoint=str(tmp_path / "odd.pth"), img_size=64)
    cases.append(e)
    with pytest.raises(SairbenchError, match=r"not the one this model was trained with") as e:
        SAMEncoder(checkpoint=str(tiny), img_size=64, weights_sha256="0" * 64, weights_file="sam_vit_b_01ec64.pth")
    cases.append(e)
    monkeypatch.setenv(ENV_SAM_IMG_SIZE, "100")
    with pytest.raises(SairbenchError, match=r"\$SAIRBENCH_SAM_IMG_SIZE='100' is not a positive multiple of 16") as e:
        SAMEncoder(checkpoint=str(tiny))
    cases.append(e)
    assert all("\n" not in str(c.value) for c in cases)
