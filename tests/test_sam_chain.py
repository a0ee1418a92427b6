"""The `sam-encoder` chain end to end on a CPU, with a tiny random SAM-shaped encoder (no download).

``save_random_sam_checkpoint`` writes a segment-anything-style file (``image_encoder.*`` keys,
built at SAM's 1024 like the official ones) of the test-only ``vit_test`` size; the chain is then
the documented one: `train sir --semantic-encoder sam` (stage 1), `train sam-encoder
--sir-checkpoint` (stage 2), `run --model sam-encoder --checkpoint sam-encoder=PATH`. SAM runs at
img_size 64 ($SAIRBENCH_SAM_IMG_SIZE) on 32x32 images: a 4x4 embedding grid.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from sairbench.checkpoint import load_checkpoint, load_model
from sairbench.errors import SairbenchError
from sairbench.semantic.sam import (
    ENV_SAM_CHECKPOINT,
    ENV_SAM_IMG_SIZE,
    adapt_sam_state_dict,
    save_random_sam_checkpoint,
)
from tests.helpers import PROTO, invoke

TINY = ["--steps", "3", "--batch", "2", "--queries", "32", "--image-size", "32", "--threads", "1"]


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """SAM file -> SIR (stage 1) -> sam-encoder (stage 2), trained through the CLI."""
    root = tmp_path_factory.mktemp("sam-chain")
    sam = save_random_sam_checkpoint(root / "sam_vit_test.pth", "vit_test", seed=0)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(ENV_SAM_CHECKPOINT, str(sam))
        mp.setenv(ENV_SAM_IMG_SIZE, "64")
        invoke(["train", "sir", "--semantic-encoder", "sam", *TINY, "--out", str(root / "sir")])
        invoke(["train", "sam-encoder", "--sir-checkpoint", str(root / "sir" / "last.pt"), *TINY,
                "--out", str(root / "sam-encoder"), "--export", str(root / "sam-encoder.safetensors")])
    return {"root": root, "sam": sam, "sir": root / "sir" / "last.pt", "model": root / "sam-encoder" / "last.pt",
            "exported": root / "sam-encoder.safetensors"}


def test_sam_chain_trains_loads_and_evaluates(chain, monkeypatch):
    sir, ck = load_checkpoint(chain["sir"]), load_checkpoint(chain["model"])
    assert sir["step"] == 3 and ck["step"] == 3 and ck["model"]["name"] == "sam-encoder"

    # self-describing, without SAM's weights: the encoder is a spec (size, input size, weights digest)
    enc_spec = ck["model"]["args"]["args"]["semantic"]["args"]["encoder"]
    assert enc_spec == sir["model"]["args"]["args"]["encoder"]
    assert enc_spec["name"] == "sam-encoder"
    args = enc_spec["args"]
    assert args["model_type"] == "vit_test" and args["img_size"] == 64
    assert args["weights_file"] == "sam_vit_test.pth" and len(args["weights_sha256"]) == 64
    assert not any(k.startswith("encoder.") for k in sir["model"]["sd"])
    assert not any(k.startswith("semantic.encoder.") for k in ck["model"]["sd"])
    # stage 2 kept SIR frozen: its weights are stage 1's
    for k, v in sir["model"]["sd"].items():
        assert torch.equal(ck["model"]["sd"]["semantic." + k], v), k

    # loading rebuilds SAM from $SAIRBENCH_SAM_CHECKPOINT, at the recorded size whatever the env says
    monkeypatch.setenv(ENV_SAM_CHECKPOINT, str(chain["sam"]))
    monkeypatch.setenv(ENV_SAM_IMG_SIZE, "128")
    model = load_model(chain["model"])
    enc = model.semantic.encoder
    assert model.semantic.encoder_name == "sam-vit_test-64px" and enc.img_size == 64
    want = adapt_sam_state_dict(torch.load(chain["sam"], weights_only=True), enc.encoder)
    for k, v in enc.encoder.state_dict().items():
        assert torch.equal(v, want[k]), k
    x = torch.rand(2, 3, 32, 32)
    m = torch.zeros(2, 1, 32, 32)
    m[..., 8:24, 4:20] = 1
    out = model.inpaint(x * (1 - m), m)
    assert out.shape == (2, 3, 32, 32) and torch.isfinite(out).all()
    again = load_model(chain["exported"])  # the safetensors export rebuilds the same model
    assert not any(k.startswith("semantic.encoder.") for k in load_checkpoint(chain["exported"])["model"]["sd"])
    torch.testing.assert_close(again.inpaint(x * (1 - m), m), out)

    # evaluation through the CLI, with the trained checkpoint
    proto = chain["root"] / "mini.toml"
    proto.write_text(PROTO)
    res = chain["root"] / "results"
    invoke(["run", "--protocol", str(proto), "--results", str(res), "--name", "sam", "--model", "sam-encoder",
            "--checkpoint", f"sam-encoder={chain['model']}"])
    summary = pd.read_csv(res / "sam" / "summary.csv")
    psnr = summary[(summary["model"] == "sam-encoder") & (summary["metric"] == "psnr")]
    assert len(psnr) and np.isfinite(psnr["mean"]).all()
    meta = json.loads((res / "sam" / "meta.json").read_text())
    assert meta["model_info"]["sam-encoder"]["semantic_encoder"] == "sam-vit_test-64px"


def test_sam_model_needs_its_sam_checkpoint_back(chain, monkeypatch, tmp_path):
    """The model does not store SAM: without the file, or with another one, loading says what to do."""
    monkeypatch.delenv(ENV_SAM_CHECKPOINT, raising=False)
    with pytest.raises(SairbenchError) as err:
        load_model(chain["model"])
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(str(chain["model"]))
    assert ENV_SAM_CHECKPOINT in msg and "sam_vit_test.pth" in msg and "do not store SAM's weights" in msg

    monkeypatch.setenv(ENV_SAM_CHECKPOINT, str(tmp_path / "gone.pth"))
    with pytest.raises(SairbenchError, match=r"SAM checkpoint not found: .*gone\.pth.*sam_vit_test\.pth"):
        load_model(chain["model"])

    other = save_random_sam_checkpoint(tmp_path / "other.pth", "vit_test", seed=1)
    monkeypatch.setenv(ENV_SAM_CHECKPOINT, str(other))
    with pytest.raises(SairbenchError, match=r"other\.pth.* is not the one this model was trained with"):
        load_model(chain["model"])

    # a SAM file of another size (only its shapes matter to the check)
    vit_b = {"image_encoder.patch_embed.proj.weight": torch.zeros(768, 3, 16, 16),
             **{f"image_encoder.blocks.{i}.norm1.weight": torch.zeros(1) for i in range(12)}}
    torch.save(vit_b, tmp_path / "sam_vit_b.pth")
    monkeypatch.setenv(ENV_SAM_CHECKPOINT, str(tmp_path / "sam_vit_b.pth"))
    with pytest.raises(SairbenchError, match=r"sam_vit_b\.pth.* holds a vit_b image encoder, not the vit_test one"):
        load_model(chain["model"])


def test_sam_encoder_preset_refuses_a_sir_of_another_encoder(tmp_path):
    from sairbench_baselines.presets import build_preset

    with pytest.raises(SairbenchError, match="--semantic-encoder sam"):
        build_preset("sam-encoder", "tiny", encoder={"name": "indomain-encoder", "args": {"classes": ["a"]}})
