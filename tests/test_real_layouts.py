"""The paper's protocol on trees fabricated in the real on-disk layouts (CelebAMask-HQ,
ADEChallengeData2016, NVIDIA's Liu et al. 2018 test masks) runs at the paper's 256x256 on the
whole test split by default, says so in meta.json, and states how non-square images were fitted."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.helpers import ade20k_tree, celeba_tree, invoke, liu2018_masks


@pytest.fixture
def celeba(tmp_path) -> Path:
    return celeba_tree(tmp_path / "CelebAMask-HQ")


@pytest.fixture
def ade(tmp_path) -> Path:
    return ade20k_tree(tmp_path / "ADEChallengeData2016")


@pytest.fixture
def liu_masks(tmp_path) -> Path:
    """NVIDIA's irregular mask test set: testing_mask_dataset/NNNNN.png, white = hole, 512x512."""
    return liu2018_masks(tmp_path / "testing_mask_dataset")


def test_celeba_hq_runs_at_256_on_the_whole_test_split(tmp_path, celeba, liu_masks):
    res = tmp_path / "res"
    invoke(["run", "--protocol", "liu2018-masks", "--dataset", "celeba-hq", "--data-root", str(celeba),
            "--mask-dir", str(liu_masks), "-m", "telea", "--results", str(res), "--name", "c", "--per-bucket", "2"])
    meta = json.loads((res / "c" / "meta.json").read_text())
    ds = meta["dataset"]
    assert ds["name"] == "celeba-hq" and ds["size"] == 256 and ds["limit"] is None and ds["images"] == 2
    assert ds["defaults_from"] == {"size": "dataset", "limit": "dataset", "fit": "dataset"}
    assert ds["fit"] == "center-crop"
    assert meta["masks"]["source"] == "liu2018"
    rows = pd.read_parquet(res / "c" / "per_image.parquet")
    assert set(rows["image"]) == {"25000", "25001"} and len(rows) == 2 * 3


def test_ade20k_fit_policy_is_selectable_and_recorded(tmp_path, ade, liu_masks):
    res = tmp_path / "res"
    for fit in ("center-crop", "resize"):
        invoke(["run", "--protocol", "liu2018-masks", "--dataset", "ade20k", "--data-root", str(ade),
                "--mask-dir", str(liu_masks), "-m", "telea", "--results", str(res), "--name", fit, "--fit", fit,
                "--size", "32", "--per-bucket", "2"])
        ds = json.loads((res / fit / "meta.json").read_text())["dataset"]
        assert ds["fit"] == fit and ds["size"] == 32 and ds["images"] == 2
        assert "fit" not in ds["defaults_from"] and "size" not in ds["defaults_from"]


def test_overrides_and_a_size_mismatch_warning(tmp_path, celeba, liu_masks):
    res = tmp_path / "res"
    with pytest.warns(UserWarning, match="trained on 64x64 .* evaluated at 128x128"):
        invoke(["run", "--protocol", "liu2018-masks", "--dataset", "celeba-hq", "--data-root", str(celeba),
                "--mask-dir", str(liu_masks), "-m", "liif", "--results", str(res), "--name", "m", "--size", "128",
                "--limit", "1", "--per-bucket", "1"])
    meta = json.loads((res / "m" / "meta.json").read_text())
    assert meta["model_info"]["liif"]["size_mismatch"] == {"trained_at": 64, "evaluated_at": 128}
    assert meta["dataset"]["limit"] == 1 and meta["masks"]["per_bucket"] == 1


def test_train_sir_then_sair_at_another_size_is_one_line(tmp_path):
    from sairbench.errors import SairbenchError

    tiny = ["--steps", "1", "--batch", "2", "--queries", "8", "--image-size", "32", "--threads", "1"]
    invoke(["train", "sir", *tiny, "--out", str(tmp_path / "sir")])
    with pytest.raises(SairbenchError, match="was trained with size 'tiny' but --size paper was given"):
        invoke(["train", "sair", *tiny, "--size", "paper", "--sir-checkpoint", str(tmp_path / "sir" / "last.pt"),
                "--out", str(tmp_path / "sair")])
    invoke(["train", "sair", *tiny, "--sir-checkpoint", str(tmp_path / "sir" / "last.pt"), "--out", str(tmp_path / "ok")])


def test_decoded_sample_cache_changes_nothing_and_decodes_once(tmp_path, celeba, monkeypatch):
    from sairbench.data import get_dataset
    from sairbench.data.celeba import CelebAHQ

    monkeypatch.setenv("SAIRBENCH_CACHE_DIR", str(tmp_path / "cache"))
    plain = get_dataset("celeba-hq", split="test", size=32, root=celeba)
    expected = [plain[i] for i in range(len(plain))]
    monkeypatch.setenv("SAIRBENCH_DATA_CACHE", "1")
    calls = []
    real = CelebAHQ._load
    monkeypatch.setattr(CelebAHQ, "_load", lambda self, i: calls.append(i) or real(self, i))
    for _ in range(2):
        ds = get_dataset("celeba-hq", split="test", size=32, root=celeba)
        got = [ds[i] for i in range(len(ds))]
        for a, b in zip(expected, got):
            assert a.name == b.name and np.array_equal(a.image, b.image) and np.array_equal(a.label, b.label)
    assert len(calls) == len(expected)  # decoded once, read from the cache the second time
    no_labels = get_dataset("celeba-hq", split="test", size=32, root=celeba, labels=False)
    assert no_labels[0].label is None and np.array_equal(no_labels[0].image, expected[0].image)
