"""Every external weight is pinned. A model trained on one CLIP file refuses another
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


def _sir_on(clip_file, tmp_path, monkeypatch) -> str:
    monkeypatch.delenv(ENV_CLIP_WEIGHTS, raising=False)
    invoke(["train", "sir", "--semantic-encoder", "clip", "--clip-weights", str(clip_file), *TINY,
            "--out", str(tmp_path / "sir")])
    return str(tmp_path / "sir" / "last.pt")


def test_train_clip_weights_flag_beats_the_environment_in_every_stage(tmp_path, two_clip_files, monkeypatch):
    a, b = two_clip_files
    sir = _sir_on(a, tmp_path, monkeypatch)
    # stage 2 with the flag alone: the flag is used (not "CLIP weights are not set")
    invoke(["train", "sair", "--sir-checkpoint", sir, "--clip-weights", str(a), *TINY, "--out", str(tmp_path / "x")])
    # the flag wins over the environment: env b, flag a -> the SIR's own weights, no mismatch
    monkeypatch.setenv(ENV_CLIP_WEIGHTS, str(b))
    invoke(["train", "sair", "--sir-checkpoint", sir, "--clip-weights", str(a), *TINY, "--out", str(tmp_path / "y")])
    ckpt = load_checkpoint(tmp_path / "y" / "last.pt")
    assert ckpt["model"]["args"]["args"]["semantic"]["args"]["encoder"]["args"]["weights_file"] == "clip-a.pt"
    assert ckpt["train"]["sources"]["clip_weights"] == "flag" and ckpt["train"]["sources"]["size"] == "checkpoint"
    (used,) = ckpt["external_weights"].values()
    assert used["file"] == "clip-a.pt" and used["override"] is None
    # and the other way round: env a, flag b -> b is what the encoder is built on (refused: not the SIR's)
    monkeypatch.setenv(ENV_CLIP_WEIGHTS, str(a))
    with pytest.raises(SairbenchError, match="clip-b.pt has weights sha256"):
        invoke(["train", "sair", "--sir-checkpoint", sir, "--clip-weights", str(b), *TINY, "--out", str(tmp_path / "z")])


def test_weight_mismatch_override_and_digests_are_in_meta(tmp_path, two_clip_files, monkeypatch):
    import json

    a, b = two_clip_files
    sir = _sir_on(a, tmp_path, monkeypatch)
    monkeypatch.setenv(ENV_CLIP_WEIGHTS, str(a))
    invoke(["train", "sair", "--sir-checkpoint", sir, *TINY, "--out", str(tmp_path / "sair")])
    monkeypatch.setenv(ENV_CLIP_WEIGHTS, str(b))
    monkeypatch.setenv(ENV_ALLOW_MISMATCH, "1")
    invoke(["run", "-m", "sair", "--checkpoint", f"sair={tmp_path / 'sair' / 'last.pt'}", "--limit", "1",
            "--per-bucket", "1", "--size", "32", "--threads", "1", "--results", str(tmp_path / "res"), "--name", "r"])
    meta = json.loads((tmp_path / "res" / "r" / "meta.json").read_text())
    (weights,) = meta["model_info"]["sair"]["external_weights"].values()
    digest_a = DenseCLIPEncoder(pretrained=str(a)).weights_sha256
    assert weights["file"] == "clip-b.pt" and weights["override"]["expected_sha256"] == digest_a
    assert weights["override"]["used_sha256"] == weights["sha256"] != digest_a
