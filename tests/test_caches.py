"""Issue 12: caches change speed, never numbers. Frozen-encoder features (SAIRBENCH_FEATURE_CACHE=1)
give the same evaluation and the same training as without them, and are keyed by the encoder."""

import pandas as pd
import torch

from sairbench.checkpoint import load_checkpoint
from tests.helpers import PROTO, invoke

TINY = ["--steps", "2", "--batch", "2", "--queries", "16", "--image-size", "32", "--threads", "1"]


def _run(tmp_path, name):
    p = tmp_path / "p.toml"
    p.write_text(PROTO.replace('names = ["telea", "navier-stokes"]', 'names = ["sair"]'))
    invoke(["run", "--protocol", str(p), "--results", str(tmp_path / "r"), "--name", name])
    return pd.read_parquet(tmp_path / "r" / name / "per_image.parquet")


def test_feature_cache_gives_the_same_numbers(tmp_path, monkeypatch):
    monkeypatch.setenv("SAIRBENCH_CACHE_DIR", str(tmp_path / "cache"))
    plain = _run(tmp_path, "plain")
    monkeypatch.setenv("SAIRBENCH_FEATURE_CACHE", "1")
    filling = _run(tmp_path, "filling")
    stored = list((tmp_path / "cache" / "features").glob("*.safetensors"))
    assert len(stored) == len(plain)  # one entry per (image, mask) pair
    reading = _run(tmp_path, "reading")
    assert len(list((tmp_path / "cache" / "features").glob("*.safetensors"))) == len(stored)
    pd.testing.assert_frame_equal(plain, filling)
    pd.testing.assert_frame_equal(plain, reading)


def test_training_with_the_feature_cache_reaches_the_same_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("SAIRBENCH_CACHE_DIR", str(tmp_path / "cache"))
    invoke(["train", "sir", *TINY, "--out", str(tmp_path / "a")])
    monkeypatch.setenv("SAIRBENCH_FEATURE_CACHE", "1")
    invoke(["train", "sir", *TINY, "--out", str(tmp_path / "b")])
    invoke(["train", "sir", *TINY, "--out", str(tmp_path / "c")])  # from the cache
    a, b, c = (load_checkpoint(tmp_path / k / "last.pt")["model"]["sd"] for k in "abc")
    for k in a:
        assert torch.equal(a[k], b[k]) and torch.equal(a[k], c[k]), k
