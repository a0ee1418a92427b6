"""Caches change speed, never numbers. Frozen-encoder features (SAIRBENCH_FEATURE_CACHE=1)
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


def test_the_mask_set_index_reads_each_file_once(tmp_path, monkeypatch):
    import numpy as np
    from PIL import Image

    import sairbench.masks as masks

    monkeypatch.setenv("SAIRBENCH_CACHE_DIR", str(tmp_path / "cache"))
    folder = tmp_path / "m"
    folder.mkdir()
    for k, rows in enumerate([5, 6, 12, 13, 20, 21]):
        m = np.zeros((40, 40), np.uint8)
        m[:rows] = 255
        Image.fromarray(m).save(folder / f"{k:05d}.png")
    calls = []
    real = masks.read_mask
    monkeypatch.setattr(masks, "read_mask", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    first = masks.load_mask_folder(folder, (40, 40), per_bucket=1, seed=0)
    assert len(calls) == 6 + 3  # the index, then the 3 chosen masks
    calls.clear()
    again = masks.load_mask_folder(folder, (40, 40), per_bucket=1, seed=0)
    assert len(calls) == 3  # only the chosen masks
    assert [(a.name, a.ratio, a.bucket) for a in first] == [(b.name, b.ratio, b.bucket) for b in again]
    assert all(np.array_equal(a.mask, b.mask) for a, b in zip(first, again))
    (folder / "00000.png").touch()  # any change of the files makes a new index
    calls.clear()
    masks.load_mask_folder(folder, (40, 40), per_bucket=1, seed=0)
    assert len(calls) == 6 + 3


def test_cache_build_fills_what_the_run_reads(tmp_path, monkeypatch):
    monkeypatch.setenv("SAIRBENCH_CACHE_DIR", str(tmp_path / "cache"))
    p = tmp_path / "p.toml"
    p.write_text(PROTO.replace('names = ["telea", "navier-stokes"]', 'names = ["sair", "telea"]'))
    invoke(["cache", "build", "--protocol", str(p), "--threads", "1"])
    stored = sorted((tmp_path / "cache" / "features").glob("*.safetensors"))
    assert len(stored) == 9  # 3 images x 3 buckets, one encoder
    mtimes = [f.stat().st_mtime_ns for f in stored]
    monkeypatch.setenv("SAIRBENCH_FEATURE_CACHE", "1")
    invoke(["run", "--protocol", str(p), "--results", str(tmp_path / "r"), "--name", "c"])
    assert [f.stat().st_mtime_ns for f in stored] == mtimes  # read, not recomputed
    monkeypatch.delenv("SAIRBENCH_FEATURE_CACHE")
    invoke(["run", "--protocol", str(p), "--results", str(tmp_path / "r"), "--name", "plain"])
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "r" / "c" / "per_image.parquet"),
                                  pd.read_parquet(tmp_path / "r" / "plain" / "per_image.parquet"))
