"""Hole masks: buckets, the seeded generator, the Liu et al. folder loader, mask sets on disk."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sairbench.errors import SairbenchError
from sairbench.masks import (
    BUCKETS,
    MaskItem,
    bucket_of,
    check_mask,
    generate_irregular_mask,
    generate_mask_set,
    hole_ratio,
    load_mask_folder,
    read_mask_set,
    sample_training_mask,
    write_mask_set,
)


def test_bucket_of_edges():
    assert [b[0] for b in BUCKETS] == ["0-20%", "20-40%", "40-60%"]
    assert bucket_of(0.0) is None
    assert bucket_of(1e-4) == "0-20%"
    assert bucket_of(0.2) == "20-40%"
    assert bucket_of(0.3999) == "20-40%"
    assert bucket_of(0.4) == "40-60%"
    assert bucket_of(0.6) == "40-60%"
    assert bucket_of(0.6001) is None
    assert bucket_of(float("nan")) is None


def test_hole_ratio():
    m = np.zeros((4, 5), bool)
    m[0, :] = True
    assert hole_ratio(m) == pytest.approx(0.25)
    assert hole_ratio(m.astype(np.uint8) * 255) == pytest.approx(0.25)


def test_generator_deterministic_and_shaped():
    a = generate_irregular_mask(np.random.default_rng(5), (48, 80))
    b = generate_irregular_mask(np.random.default_rng(5), (48, 80))
    c = generate_irregular_mask(np.random.default_rng(6), (48, 80))
    assert a.dtype == bool and a.shape == (48, 80)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert hole_ratio(generate_irregular_mask(np.random.default_rng(0), (64, 64), target=0.3)) >= 0.3


def test_mask_set_fills_buckets_deterministically():
    items = generate_mask_set(4, (64, 64), seed=7)
    assert len(items) == 12
    for k, (label, lo, hi) in enumerate(BUCKETS):
        chunk = items[4 * k : 4 * k + 4]
        assert [it.bucket for it in chunk] == [label] * 4
        assert [it.name for it in chunk] == [f"gen-{label[:-1]}-{j:04d}" for j in range(4)]
        for it in chunk:
            assert it.mask.shape == (64, 64) and it.mask.dtype == bool
            assert it.ratio == pytest.approx(hole_ratio(it.mask))
            assert lo < it.ratio <= hi and bucket_of(it.ratio) == label
    again = generate_mask_set(4, (64, 64), seed=7)
    assert all(np.array_equal(x.mask, y.mask) for x, y in zip(items, again))
    longer = generate_mask_set(6, (64, 64), seed=7)  # a bigger set starts with the smaller one
    assert np.array_equal(longer[6].mask, items[4].mask)
    other = generate_mask_set(4, (64, 64), seed=8)
    assert not all(np.array_equal(x.mask, y.mask) for x, y in zip(items, other))


EXPECTED_DIGESTS = ["16a32a093ed2", "47982979ec28", "3564b44fee2b"]  # generate_mask_set(1, (32, 32), seed=0)


def test_mask_set_known_digest():
    """Pins the generator: same seed -> same masks on any machine (update only on purpose)."""
    from sairbench.masks import mask_digest

    items = generate_mask_set(1, (32, 32), seed=0)
    digests = [mask_digest(it.mask)[:12] for it in items]
    assert len(set(digests)) == 3
    assert digests == EXPECTED_DIGESTS


def test_mask_set_unfillable_bucket_errors():
    with pytest.raises(SairbenchError, match="bucket"):
        generate_mask_set(3, (8, 8), seed=0, max_attempts=1)
    with pytest.raises(SairbenchError, match="per_bucket"):
        generate_mask_set(0, (8, 8))


def test_training_masks_spread_and_fast():
    import time

    rng = np.random.default_rng(0)
    sample_training_mask(rng, (64, 64))
    t = time.perf_counter()
    ratios = [hole_ratio(sample_training_mask(rng, (64, 64))) for _ in range(300)]
    per_mask = (time.perf_counter() - t) / 300
    assert per_mask < 0.005  # ~0.3 ms measured; generous for loaded CI machines
    ratios = np.array(ratios)
    assert ratios.min() >= 0.05 and ratios.max() < 0.75
    for label, lo, hi in BUCKETS:
        assert ((ratios >= lo) & (ratios < hi)).mean() > 0.15, label


# ---------------------------------------------------------------- mask sets on disk


def test_write_read_round_trip(tmp_path: Path):
    items = generate_mask_set(2, (32, 32), seed=1)
    manifest_path = write_mask_set(tmp_path / "set", items, meta={"seed": 1, "size": [32, 32]})
    out = tmp_path / "set"
    assert manifest_path == out / "manifest.json"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["meta"] == {"seed": 1, "size": [32, 32]}
    entry = manifest["masks"][0]
    assert {"name", "file", "ratio", "bucket", "sha256"} <= set(entry)
    png = np.asarray(Image.open(out / entry["file"]))
    assert set(np.unique(png).tolist()) <= {0, 255} and np.array_equal(png == 255, items[0].mask)
    back = read_mask_set(out)
    assert [b.name for b in back] == [it.name for it in items]
    for a, b in zip(items, back):
        assert np.array_equal(a.mask, b.mask) and a.bucket == b.bucket and a.ratio == pytest.approx(b.ratio)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folders left


def test_sha_mismatch_detected(tmp_path: Path):
    items = generate_mask_set(1, (16, 16), seed=2)
    out = write_mask_set(tmp_path / "set", items).parent
    victim = out / f"{items[1].name}.png"
    flipped = ~items[1].mask
    Image.fromarray(flipped.astype(np.uint8) * 255).save(victim)
    with pytest.raises(SairbenchError, match=victim.name):
        read_mask_set(out)


def test_write_refuses_to_overwrite(tmp_path: Path):
    items = generate_mask_set(1, (16, 16), seed=2)
    out = write_mask_set(tmp_path / "set", items).parent
    before = (out / "manifest.json").read_bytes()
    with pytest.raises(SairbenchError, match="overwrite"):
        write_mask_set(out, items[:1])
    assert (out / "manifest.json").read_bytes() == before
    write_mask_set(out, items[:1], overwrite=True)
    assert len(read_mask_set(out)) == 1
    with pytest.raises(SairbenchError, match="manifest.json"):
        read_mask_set(tmp_path)


# ---------------------------------------------------------------- Liu et al. 2018 folder


def _liu_folder(folder: Path, hole_value: int) -> dict[str, float]:
    """Masks at 40x40 with known hole fractions; holes drawn in ``hole_value``."""
    folder.mkdir(parents=True)
    bg = 255 - hole_value
    ratios = {"a_small": 0.1, "b_mid": 0.3, "c_big": 0.5, "d_huge": 0.8, "e_empty": 0.0, "f_mid2": 0.25}
    for name, r in ratios.items():
        arr = np.full((40, 40), bg, np.uint8)
        arr[: int(round(r * 40)), :] = hole_value
        Image.fromarray(arr).save(folder / f"{name}.png")
    return ratios


@pytest.mark.parametrize("hole_value", [255, 0])
def test_load_mask_folder(tmp_path: Path, hole_value: int):
    ratios = _liu_folder(tmp_path / "masks", hole_value)
    (tmp_path / "masks" / "readme.txt").write_text("ignored")
    items = load_mask_folder(tmp_path / "masks", (20, 20), hole_value=hole_value)
    assert [it.name for it in items] == ["a_small", "b_mid", "f_mid2", "c_big"]  # bucket order; huge/empty dropped
    for it in items:
        assert isinstance(it, MaskItem) and it.mask.shape == (20, 20) and it.mask.dtype == bool
        assert it.ratio == pytest.approx(ratios[it.name]) and it.bucket == bucket_of(it.ratio)
        assert it.mask[0].all() and not it.mask[-1].any()  # holes on top, whatever the file's colour


def test_load_mask_folder_wrong_hole_value_inverts(tmp_path: Path):
    _liu_folder(tmp_path / "masks", 255)
    items = load_mask_folder(tmp_path / "masks", (20, 20), hole_value=0)
    by_name = {it.name: it for it in items}
    assert by_name["d_huge"].ratio == pytest.approx(0.2)  # 80 % white read as 20 % black holes
    assert "a_small" not in by_name  # 90 % holes: outside every bucket


def test_load_mask_folder_ratio_as_applied(tmp_path: Path):
    folder = tmp_path / "m"
    folder.mkdir()
    arr = np.zeros((40, 40), np.uint8)
    arr[2:16:4, :] = 255  # 4 thin rows: 10 % at 40x40
    Image.fromarray(arr).save(folder / "rows.png")
    assert bucket_of(hole_ratio(arr)) == "0-20%"
    (it,) = load_mask_folder(folder, (10, 10))  # nearest keeps rows 2, 6, 10, 14 -> 40 %
    assert it.ratio == pytest.approx(hole_ratio(it.mask)) == pytest.approx(0.4)
    assert it.bucket == "40-60%"


def test_load_mask_folder_per_bucket(tmp_path: Path):
    folder = tmp_path / "m" / "sub"
    folder.mkdir(parents=True)
    for i in range(6):
        arr = np.zeros((20, 20), np.uint8)
        arr[: 1 + i % 3, :] = 255  # 5-15 %: all in 0-20 %
        Image.fromarray(arr).save(folder / f"{i:05d}.png")
    arr = np.zeros((20, 20), np.uint8)
    arr[:6] = 255
    Image.fromarray(arr).save(folder / "mid.png")
    arr[:10] = 255
    Image.fromarray(arr).save(folder / "big.png")
    a = load_mask_folder(tmp_path / "m", (20, 20), per_bucket=1, seed=3)
    b = load_mask_folder(tmp_path / "m", (20, 20), per_bucket=1, seed=3)
    assert [x.name for x in a] == [x.name for x in b]
    assert [x.bucket for x in a] == ["0-20%", "20-40%", "40-60%"]
    assert a[0].name.startswith("sub__")
    picks = {load_mask_folder(tmp_path / "m", (20, 20), per_bucket=1, seed=s)[0].name for s in range(12)}
    assert len(picks) > 1
    with pytest.raises(SairbenchError, match="only 1"):
        load_mask_folder(tmp_path / "m", (20, 20), per_bucket=2)


def test_load_mask_folder_errors(tmp_path: Path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SairbenchError) as err:
        load_mask_folder(tmp_path / "empty", (16, 16))
    assert str(tmp_path / "empty") in str(err.value)
    with pytest.raises(SairbenchError, match="no such"):
        load_mask_folder(tmp_path / "nowhere", (16, 16))
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.png").write_bytes(b"nope")
    with pytest.raises(SairbenchError, match="x.png"):
        load_mask_folder(bad, (16, 16))


# ---------------------------------------------------------------- check_mask


def test_check_mask():
    m = np.zeros((64, 64), np.uint8)
    m[:10] = 255
    out = check_mask(m, (64, 64, 3), "m.png")
    assert out.dtype == bool and out[:10].all() and not out[10:].any()
    assert check_mask(m[..., None] // 255, (64, 64), "m").sum() == 640
    with pytest.raises(SairbenchError, match=r"mask small.png is 32x32 but image is 64x64; resize"):
        check_mask(np.zeros((32, 32), bool), (64, 64, 3), "small.png")
    grey = m.copy()
    grey[20, 20] = 128
    with pytest.raises(SairbenchError, match="grey.png is not binary"):
        check_mask(grey, (64, 64, 3), "grey.png")
    with pytest.raises(SairbenchError, match="not binary"):
        check_mask(np.array([[0, 1], [255, 0]], np.uint8), (2, 2), "mixed")
