"""Hostile inputs, bounded work: only the masks a run uses are drawn; upper bounds on sizes, masks,
threads and batches, checked before anything is allocated; folder scans that stay inside the folder
given; EXIF orientation, alpha-drawn masks and the pixel budget read from the header; --overwrite
that deletes nothing the suite did not write; a full disk while writing. Every case goes through
the command line and ends in one line."""

from __future__ import annotations

import errno
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import sairbench.masks as masks_module
from tests.commands_helpers import assert_ok, error_line, sairbench

PROTO = """
name = "bounds"
seed = 0
[dataset]
name = "synthetic-faces"
size = 32
limit = 2
[masks]
source = "generated"
per_bucket = 2
[metrics]
names = ["psnr", "l1"]
[models]
names = ["telea"]
"""


@pytest.fixture()
def proto(tmp_path: Path) -> Path:
    p = tmp_path / "bounds.toml"
    p.write_text(PROTO)
    return p


def _run(proto: Path, results: Path, *extra: str, env: dict | None = None):
    return sairbench("run", "--protocol", proto, "--results", results, "--threads", "1", *extra, env=env)


def _counted_draws(monkeypatch, cap: int = 300) -> list[int]:
    """Count the masks the generator draws; more than ``cap`` fails the test at once."""
    calls = [0]
    draw = masks_module.generate_irregular_mask

    def counted(*args, **kwargs):
        calls[0] += 1
        if calls[0] > cap:
            raise AssertionError(f"more than {cap} masks drawn for a run of 2 images")
        return draw(*args, **kwargs)

    monkeypatch.setattr(masks_module, "generate_irregular_mask", counted)
    return calls


# ---------------------------------------------------------------- 1. only the masks a run uses


def test_the_most_masks_per_bucket_draws_only_the_masks_two_images_use(tmp_path, proto, monkeypatch):
    from sairbench.protocol import MAX_PER_BUCKET

    small = _run(proto, tmp_path / "r", "--name", "small")
    assert_ok(small)
    calls = _counted_draws(monkeypatch)
    assert_ok(_run(proto, tmp_path / "r", "--name", "huge", "--per-bucket", str(MAX_PER_BUCKET)))
    assert calls[0] <= 100
    a = pd.read_parquet(tmp_path / "r" / "small" / "per_image.parquet")
    b = pd.read_parquet(tmp_path / "r" / "huge" / "per_image.parquet")
    assert a.equals(b)  # the same masks, in the same order: image i gets mask i of each bucket
    assert sorted(set(b["mask"])) == [f"gen-{lo}-000{j}" for lo in ("0-20", "20-40", "40-60") for j in (0, 1)]


# ---------------------------------------------------------------- 2. upper bounds, before allocation


def test_run_per_bucket_above_the_limit_is_refused_before_a_mask_is_drawn(tmp_path, proto, monkeypatch):
    _counted_draws(monkeypatch, cap=0)
    line = error_line(_run(proto, tmp_path / "r", "--per-bucket", "1000000000"))
    assert "--per-bucket 1000000000" in line


@pytest.mark.parametrize("command", ["run", "cache"])
def test_run_and_cache_size_above_the_pixel_budget_is_one_line(tmp_path, proto, command):
    args = ["cache", "build"] if command == "cache" else ["run", "--results", tmp_path / "r"]
    line = error_line(sairbench(*args, "--protocol", proto, "--size", "64", "--threads", "1",
                                env={"SAIRBENCH_MAX_PIXELS": "1000"}))
    assert "--size 64" in line and "pixel budget" in line and "SAIRBENCH_MAX_PIXELS" in line
    line = error_line(sairbench(*args, "--protocol", proto, "--threads", "1", env={"SAIRBENCH_MAX_PIXELS": "1000"}))
    assert f"{proto}: 'dataset.size' = 32" in line  # the protocol file's value, named with its key


def test_run_threads_above_four_per_core_is_one_line(tmp_path, proto, monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    line = error_line(_run(proto, tmp_path / "r", "--threads", "5"))
    assert "--threads 5" in line and "limit of 4" in line and "SAIRBENCH_MAX_THREADS" in line


TRAIN = ["train", "liif", "--steps", "1", "--save-every", "1", "--image-size", "16", "--batch", "1", "--queries", "8"]


@pytest.mark.parametrize("extra, env, needle", [
    (["--image-size", "128"], {"SAIRBENCH_MAX_PIXELS": "10000"}, "--image-size 128"),
    (["--batch", "64"], {"SAIRBENCH_MAX_PIXELS": "10000"}, "--batch 64 x --image-size 16"),
    (["--queries", "20000"], {"SAIRBENCH_MAX_PIXELS": "10000"}, "--batch 1 x --queries 20000"),
    (["--threads", "5"], {}, "--threads 5"),
    (["--workers", "5"], {}, "--workers 5"),
])
def test_train_bounds_are_one_line(tmp_path, monkeypatch, extra, env, needle):
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    line = error_line(sairbench(*TRAIN, "--out", tmp_path / "ck", *extra, env=env))
    assert needle in line and ("SAIRBENCH_MAX_PIXELS" in line or "SAIRBENCH_MAX_THREADS" in line)
    assert not (tmp_path / "ck").exists()


def test_masks_generate_bounds_are_one_line(tmp_path, monkeypatch):
    _counted_draws(monkeypatch, cap=0)
    line = error_line(sairbench("masks", "generate", "-o", tmp_path / "m", "--per-bucket", "1000000000", "--size", "32"))
    assert "--per-bucket 1000000000" in line  # the limit of `sairbench run --per-bucket`
    line = error_line(sairbench("masks", "generate", "-o", tmp_path / "m", "--per-bucket", "1", "--size", "64",
                                env={"SAIRBENCH_MAX_PIXELS": "1000"}))
    assert "--size 64" in line and "pixel budget" in line
    assert not (tmp_path / "m").exists()


def test_inpaint_size_is_refused_before_the_model_is_loaded(tmp_path, monkeypatch):
    import sairbench.inpaint_image as inpaint_image

    def no_model(*a, **k):
        raise AssertionError("the model was loaded before --size was checked")

    monkeypatch.setattr(inpaint_image, "load_inpainter", no_model)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "i.png")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "m.png")
    line = error_line(sairbench("inpaint", "telea", tmp_path / "i.png", tmp_path / "m.png", "-o", tmp_path / "o.png",
                                "--size", "100000x100000"))
    assert "pixel budget" in line and not (tmp_path / "o.png").exists()


# ---------------------------------------------------------------- 3. scans stay inside the folder


def _mask_png(path: Path, rows: int, side: int = 32) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    m = np.zeros((side, side), np.uint8)
    m[:rows] = 255
    Image.fromarray(m).save(path)
    return path


@pytest.fixture()
def liu_proto(tmp_path: Path) -> Path:
    p = tmp_path / "liu.toml"
    p.write_text(PROTO.replace('source = "generated"', 'source = "liu2018"'))
    return p


def test_mask_folder_never_leaves_the_folder(tmp_path, liu_proto):
    proto = liu_proto
    outside = tmp_path / "outside"
    for k, rows in enumerate((4, 10, 16)):  # one mask of each bucket, outside the folder given
        _mask_png(outside / f"{k}.png", rows)
    folder = tmp_path / "masks"
    folder.mkdir()
    (folder / "root").symlink_to("/")  # a link to the whole file system
    for k in range(3):
        (folder / f"link{k}.png").symlink_to(outside / f"{k}.png")  # links out of the folder
    (folder / "notes.png.txt").write_text("not an image")
    deep = folder / "a" / "b" / "c"
    for k, rows in enumerate((4, 10, 16)):  # deeper than the Liu et al. 2018 layout
        _mask_png(deep / f"{k}.png", rows)
    line = error_line(_run(proto, tmp_path / "r", "--mask-dir", folder, "--per-bucket", "1"))
    assert str(folder) in line and "no mask PNGs" in line
    # the Liu et al. 2018 layout (mask/testing_mask_dataset/*.png) is read, a link inside the folder too
    for k, rows in enumerate((4, 10)):
        _mask_png(folder / "testing_mask_dataset" / f"{k:05d}.png", rows)
    (folder / "inner.png").symlink_to(folder / "testing_mask_dataset" / "00000.png")
    _mask_png(folder / "big.png", 16)
    assert_ok(_run(proto, tmp_path / "r", "--mask-dir", folder, "--per-bucket", "1", "--name", "liu"))
    used = set(pd.read_parquet(tmp_path / "r" / "liu" / "per_image.parquet")["mask"])
    assert not any(m.startswith(("link", "a__", "root")) for m in used)


def test_scans_refuse_a_folder_too_big_to_list(tmp_path, liu_proto):
    proto = liu_proto
    folder = tmp_path / "masks"
    for k in range(30):
        _mask_png(folder / f"{k:05d}.png", 4 + k % 13)
    line = error_line(_run(proto, tmp_path / "r", "--mask-dir", folder, env={"SAIRBENCH_MAX_SCAN_ENTRIES": "20"}))
    assert str(folder) in line and "SAIRBENCH_MAX_SCAN_ENTRIES" in line


def test_folder_dataset_reads_only_its_own_image_files(tmp_path, proto):
    elsewhere = tmp_path / "elsewhere.png"
    Image.fromarray(np.full((32, 32, 3), 90, np.uint8)).save(elsewhere)
    data = tmp_path / "photos"
    data.mkdir()
    (data / "a.png").symlink_to(elsewhere)
    (data / "b.png").symlink_to("/dev/zero")
    (data / "readme.txt").write_text("not an image")
    line = error_line(_run(proto, tmp_path / "r", "--dataset", "folder", "--data-root", data))
    assert str(data) in line and "no images" in line


def test_eval_does_not_read_files_linked_from_outside(tmp_path):
    gt, pred, mask = (tmp_path / d for d in ("gt", "pred", "masks"))
    for d in (gt, pred, mask):
        d.mkdir()
    Image.fromarray(np.full((16, 16, 3), 50, np.uint8)).save(gt / "img.png")
    Image.fromarray(np.full((16, 16, 3), 60, np.uint8)).save(pred / "img__m.png")
    _mask_png(tmp_path / "secret.png", 4, side=16)
    (mask / "m.png").symlink_to(tmp_path / "secret.png")
    line = error_line(sairbench("eval", "--pred-dir", pred, "--gt-dir", gt, "--mask-dir", mask, "--name", "x",
                                "--results", tmp_path / "r"))
    assert "img__m" in line or str(pred) in line


# ---------------------------------------------------------------- 4. EXIF, alpha masks, header budget


def _with_orientation(array: np.ndarray, path: Path, orientation: int) -> Path:
    im = Image.fromarray(array)
    exif = Image.Exif()
    exif[0x0112] = orientation
    im.save(path, exif=exif.tobytes())
    return path


def test_exif_orientation_applies_to_images_and_masks(tmp_path):
    rng = np.random.default_rng(0)
    stored = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)  # 30 wide, 20 high as stored
    _with_orientation(stored, tmp_path / "photo.png", 6)  # shown 20 wide, 30 high (90 degrees clockwise)
    upright = np.zeros((30, 20), np.uint8)  # the mask drawn on the image as a viewer shows it
    upright[5:12, 4:9] = 255
    Image.fromarray(upright).save(tmp_path / "mask.png")
    assert_ok(sairbench("inpaint", "telea", tmp_path / "photo.png", tmp_path / "mask.png", "-o", tmp_path / "o.png"))
    out = np.asarray(Image.open(tmp_path / "o.png"))
    shown = np.rot90(stored, k=-1)  # orientation 6: rotate 90 degrees clockwise to display
    assert out.shape == (30, 20, 3) and np.array_equal(out[upright == 0], shown[upright == 0])
    # the same mask stored sideways with its own orientation tag reads the same
    _with_orientation(np.rot90(upright, k=1).copy(), tmp_path / "mask6.png", 6)
    assert_ok(sairbench("inpaint", "telea", tmp_path / "photo.png", tmp_path / "mask6.png", "-o", tmp_path / "o6.png"))
    assert np.array_equal(np.asarray(Image.open(tmp_path / "o6.png")), out)


@pytest.mark.parametrize("colour", [0, 255])
def test_mask_drawn_in_the_alpha_channel_is_read_from_it(tmp_path, caplog, colour):
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)
    Image.fromarray(img).save(tmp_path / "img.png")
    alpha = np.zeros((24, 24), np.uint8)
    alpha[6:14, 8:18] = 255  # the shape, drawn opaque on a transparent layer of one colour
    rgba = np.dstack([np.full((24, 24, 3), colour, np.uint8), alpha])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "mask.png")
    result = sairbench("inpaint", "telea", tmp_path / "img.png", tmp_path / "mask.png", "-o", tmp_path / "o.png")
    assert_ok(result)
    out = np.asarray(Image.open(tmp_path / "o.png"))
    hole = alpha > 0
    assert np.array_equal(out[~hole], img[~hole])  # known pixels kept: not "everything is a hole"
    assert not np.array_equal(out[hole], img[hole])  # the hole was filled: not "no hole"
    assert "alpha channel" in caplog.text + result.stderr  # one warning line says how the mask was read


def _huge_png(path: Path, width: int, height: int) -> Path:
    """A valid all-zero grey PNG of width x height, written row by row (no large array in memory)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    z, row, parts = zlib.compressobj(1), b"\0" * (width + 1), []
    for _ in range(height):
        parts.append(z.compress(row))
    parts.append(z.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b""))
    return path


def test_a_144_megapixel_mask_is_refused_from_its_header(tmp_path, monkeypatch):
    from PIL import ImageFile

    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "i.png")
    _huge_png(tmp_path / "m.png", 12000, 12000)
    load = ImageFile.ImageFile.load

    def guarded(self):
        if self.size[0] * self.size[1] > 1_000_000:
            raise AssertionError(f"decoded a {self.size} image")
        return load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", guarded)
    line = error_line(sairbench("inpaint", "telea", tmp_path / "i.png", tmp_path / "m.png", "-o", tmp_path / "o.png"))
    assert "m.png" in line and "144.0 megapixels" in line and "pixel budget" in line


# ---------------------------------------------------------------- 5. --overwrite deletes only what the suite wrote


def test_masks_generate_overwrite_keeps_other_files(tmp_path):
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "thesis.tex").write_text("months of work")
    line = error_line(sairbench("masks", "generate", "-o", folder, "--per-bucket", "1", "--size", "32", "--overwrite"))
    assert str(folder) in line and "not a mask set written by sairbench" in line and "empty folder" in line
    assert (folder / "thesis.tex").read_text() == "months of work"
    owned = tmp_path / "set"
    assert_ok(sairbench("masks", "generate", "-o", owned, "--per-bucket", "1", "--size", "32"))
    assert_ok(sairbench("masks", "generate", "-o", owned, "--per-bucket", "2", "--size", "32", "--overwrite"))
    assert len(list(owned.glob("*.png"))) == 6
    (owned / "notes.txt").write_text("mine")
    line = error_line(sairbench("masks", "generate", "-o", owned, "--per-bucket", "1", "--size", "32", "--overwrite"))
    assert "notes.txt" in line
    assert (owned / "notes.txt").read_text() == "mine" and len(list(owned.glob("*.png"))) == 6


# ---------------------------------------------------------------- 6. disk full while writing


def _full_disk(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_masks_generate_on_a_full_disk_is_one_line(tmp_path, monkeypatch):
    out = tmp_path / "set"
    assert_ok(sairbench("masks", "generate", "-o", out, "--per-bucket", "1", "--size", "32"))
    before = (out / "manifest.json").read_bytes()
    monkeypatch.setattr(Path, "write_bytes", _full_disk)
    line = error_line(sairbench("masks", "generate", "-o", out, "--per-bucket", "2", "--size", "32", "--overwrite"))
    assert str(out) in line and os.strerror(errno.ENOSPC) in line
    assert (out / "manifest.json").read_bytes() == before and _leftovers(tmp_path) == []


def test_masks_export_on_a_full_disk_is_one_line(tmp_path, proto, monkeypatch):
    monkeypatch.setattr(pd.DataFrame, "to_csv", _full_disk)
    out = tmp_path / "export"
    line = error_line(sairbench("masks", "export", "--protocol", proto, "-o", out))
    assert str(out) in line and os.strerror(errno.ENOSPC) in line
    assert not out.exists() and _leftovers(tmp_path) == []


def test_inpaint_on_a_full_disk_is_one_line(tmp_path, monkeypatch):
    Image.fromarray(np.full((8, 8, 3), 70, np.uint8)).save(tmp_path / "i.png")
    _mask_png(tmp_path / "m.png", 3, side=8)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "o.png").write_bytes(b"earlier result")
    monkeypatch.setattr(Image.Image, "save", _full_disk)
    line = error_line(sairbench("inpaint", "telea", tmp_path / "i.png", tmp_path / "m.png", "-o",
                                tmp_path / "out" / "o.png"))
    assert str(tmp_path / "out" / "o.png") in line and os.strerror(errno.ENOSPC) in line
    assert (tmp_path / "out" / "o.png").read_bytes() == b"earlier result" and _leftovers(tmp_path / "out") == []


def test_the_per_bucket_limit_says_how_to_raise_it_and_can_be_raised(tmp_path, monkeypatch):
    from sairbench.protocol import MAX_PER_BUCKET, MAX_PER_BUCKET_ENV

    line = error_line(sairbench("run", "-m", "telea", "--limit", "1", "--per-bucket", str(MAX_PER_BUCKET + 1),
                                "--results", str(tmp_path)))
    assert f"above the limit of {MAX_PER_BUCKET}" in line and f"${MAX_PER_BUCKET_ENV}" in line
    monkeypatch.setenv(MAX_PER_BUCKET_ENV, str(MAX_PER_BUCKET + 1))
    from sairbench.protocol import Protocol

    assert Protocol("p").with_per_bucket(MAX_PER_BUCKET + 1).masks.per_bucket == MAX_PER_BUCKET + 1
