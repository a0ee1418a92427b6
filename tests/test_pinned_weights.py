"""Issue 12: every external weight is pinned. A model trained on one CLIP file refuses another
(one line, both digests) unless the override is asked for (and recorded); nothing downloads
unless the open_clip tag is named; text embeddings are computed once per (weights, classes)."""

import pytest
import torch

from sairbench.checkpoint import load_checkpoint, load_model
from sairbench.errors import SairbenchError
from sairbench.semantic.clip_dense import ENV_ALLOW_MISMATCH, ENV_CLIP_WEIGHTS, DenseCLIPEncoder
from tests.helpers import invoke

TINY = ["--steps", "1", "--batch", "1", "--queries", "8", "--image-size", "32", "--threads", "1"]


@pytest.fixture(scope="module")
def two_clip_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("clip")
    torch.manual_seed(0)
    a = DenseCLIPEncoder(pretrained=None)
    torch.save(a.model.state_dict(), root / "clip-a.pt")
    with torch.no_grad():
        for p in a.model.parameters():
            p.add_(0.01)
    torch.save(a.model.state_dict(), root / "clip-b.pt")
    return root / "clip-a.pt", root / "clip-b.pt"


def test_a_model_on_one_clip_file_refuses_another(tmp_path, two_clip_files, monkeypatch):
    a, b = two_clip_files
    monkeypatch.setenv(ENV_CLIP_WEIGHTS, str(a))
    invoke(["train", "sir", "--semantic-encoder", "clip", *TINY, "--out", str(tmp_path / "sir")])
    ckpt = load_checkpoint(tmp_path / "sir" / "last.pt")
    spec = ckpt["model"]["args"]["args"]["encoder"]
    assert spec["name"] == "clip-dense" and spec["args"]["weights_file"] == "clip-a.pt"
    digest_a = spec["args"]["weights_sha256"]
    assert not any(k.startswith("encoder.") for k in ckpt["model"]["sd"])  # CLIP is never stored
    load_model(tmp_path / "sir" / "last.pt")  # the same file: fine

    monkeypatch.setenv(ENV_CLIP_WEIGHTS, str(b))
    with pytest.raises(SairbenchError) as err:
        load_model(tmp_path / "sir" / "last.pt")
    msg = str(err.value)
    digest_b = DenseCLIPEncoder(pretrained=str(b)).weights_sha256
    assert digest_a[:12] in msg and digest_b[:12] in msg and "clip-a.pt" in msg and "\n" not in msg

    monkeypatch.setenv(ENV_ALLOW_MISMATCH, "1")
    with pytest.warns(UserWarning, match="used anyway"):
        branch = load_model(tmp_path / "sir" / "last.pt")
    assert branch.encoder.weights_override == {"expected_sha256": digest_a, "used_sha256": digest_b}


def test_no_silent_download(monkeypatch):
    monkeypatch.delenv(ENV_CLIP_WEIGHTS, raising=False)
    with pytest.raises(SairbenchError, match=f"set \\${ENV_CLIP_WEIGHTS} .* tag 'openai'"):
        DenseCLIPEncoder()


def test_text_embeddings_are_cached_per_weights_and_classes(two_clip_files, monkeypatch, tmp_path):
    monkeypatch.setenv("SAIRBENCH_CACHE_DIR", str(tmp_path / "cache"))
    enc = DenseCLIPEncoder(pretrained=str(two_clip_files[0]))
    calls = []
    real = enc._text_embeddings
    monkeypatch.setattr(enc, "_text_embeddings", lambda prompts: calls.append(1) or real(prompts))
    first = enc.class_embeddings(["wall", "sky"])
    again = enc.class_embeddings(["wall", "sky"])
    assert len(calls) == 1 and torch.equal(first, again)
    enc.class_embeddings(["wall", "tree"])  # another class list: computed
    assert len(calls) == 2
    assert len(list((tmp_path / "cache" / "clip-text").glob("*.safetensors"))) == 2


def test_lpips_weights_are_pinned_in_meta(tmp_path):
    from sairbench.metrics import LPIPSScorer
    from sairbench.metrics.vgg16_weights import _vgg16_trunk_shapes
    from sairbench.runfolder import lpips_status

    torch.manual_seed(0)
    sd = {"features." + ".".join(k.split(".")[1:]): torch.randn(shape) for k, shape in _vgg16_trunk_shapes().items()}
    path = tmp_path / "vgg16-397923af.pth"
    torch.save(sd, path)
    status = lpips_status(LPIPSScorer(backbone_weights=path))
    assert status["available"] and status["vgg16_file"] == str(path) and len(status["vgg16_sha256"]) == 64
