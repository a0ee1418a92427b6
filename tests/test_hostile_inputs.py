"""Hostile and careless inputs: every PIL mode, grey and all-hole masks, partial or
mismatched prediction sets in `eval`, bad `inpaint` options, and the pixel budget / tiles."""

from __future__ import annotations

import logging
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

import sairbench.tiling as tiling
from sairbench.errors import SairbenchError
from sairbench.io import read_image, read_mask
from tests.helpers import PROTO, flat_image_and_mask, invoke


def _one_line(err) -> str:
    msg = str(err.value)
    assert "\n" not in msg
    return msg


# ---------------------------------------------------------------- 1. image modes


def test_16bit_grayscale_png_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 1, 128, 129], [256, 1000, 32767, 32768], [40000, 65279, 65534, 65535]], np.uint16)
    Image.fromarray(values).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode in ("I;16", "I")
    got = read_image(tmp_path / "g16.png")
    expected = np.floor(values.astype(np.float64) * 255 / 65535 + 0.5).astype(np.uint8)
    assert got.shape == (3, 4, 3) and np.array_equal(got[..., 0], expected)
    assert np.array_equal(got[..., 0], got[..., 2])
    # a mid-grey 16-bit photo is not 89 % white any more
    ramp = (np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) * 16).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "ramp.png")
    assert (read_image(tmp_path / "ramp.png") == 255).mean() < 0.01


def test_32bit_integer_and_float_images(tmp_path):
    def tiff(arr, mode, name):
        Image.fromarray(arr, mode).save(tmp_path / name)
        return tmp_path / name

    i16 = np.array([[0, 300, 65535]], np.int32)
    assert read_image(tiff(i16, "I", "i16.tif"))[0, :, 0].tolist() == [0, 1, 255]
    i8 = np.array([[0, 7, 255]], np.int32)
    assert read_image(tiff(i8, "I", "i8.tif"))[0, :, 0].tolist() == [0, 7, 255]
    with pytest.raises(SairbenchError, match="mode I") as err:
        read_image(tiff(np.array([[-5, 70000]], np.int32), "I", "bad.tif"))
    assert "bad.tif" in _one_line(err)

    unit = np.array([[0.0, 0.5, 1.0, 0.2]], np.float32)
    assert read_image(tiff(unit, "F", "unit.tif"))[0, :, 1].tolist() == [0, 128, 255, 51]
    byte = np.array([[0.0, 2.4, 254.6, 255.0]], np.float32)
    assert read_image(tiff(byte, "F", "byte.tif"))[0, :, 1].tolist() == [0, 2, 255, 255]
    for arr, name in ((np.array([[-1.0, 2.0]], np.float32), "neg.tif"), (np.array([[0.0, 300.0]], np.float32), "big.tif"),
                      (np.array([[0.0, np.nan]], np.float32), "nan.tif")):
        with pytest.raises(SairbenchError, match="mode F") as err:
            read_image(tiff(arr, "F", name))
        assert name in _one_line(err)


def test_alpha_palette_cmyk_bilevel_and_lab(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)
    alpha = np.zeros((6, 5), np.uint8)  # fully transparent: the colour under it is kept (alpha dropped)
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(tmp_path / "rgba.png")
    assert np.array_equal(read_image(tmp_path / "rgba.png"), rgb)

    gray = rng.integers(0, 256, (6, 5), dtype=np.uint8)
    Image.fromarray(np.dstack([gray, alpha]), "LA").save(tmp_path / "la.png")
    assert np.array_equal(read_image(tmp_path / "la.png"), np.repeat(gray[..., None], 3, axis=2))

    pal = Image.new("P", (3, 2))
    pal.putpalette([10, 20, 30, 200, 100, 50] + [0] * 762)
    pal.putdata([0, 1, 1, 0, 1, 0])
    pal.save(tmp_path / "p.png")
    got = read_image(tmp_path / "p.png")
    assert got[0, 0].tolist() == [10, 20, 30] and got[0, 1].tolist() == [200, 100, 50]

    cmyk = rng.integers(0, 256, (4, 4, 4), dtype=np.uint8)
    Image.fromarray(cmyk, "CMYK").save(tmp_path / "cmyk.tif")
    c = cmyk.astype(np.int64)
    expected = np.floor(np.stack([(255 - c[..., i]) * (255 - c[..., 3]) for i in range(3)], -1) / 255 + 0.5)
    assert np.array_equal(read_image(tmp_path / "cmyk.tif"), expected.astype(np.uint8))

    bits = np.array([[0, 1, 1], [1, 0, 0]], bool)
    Image.fromarray(bits).save(tmp_path / "bits.png")
    assert Image.open(tmp_path / "bits.png").mode == "1"
    assert np.array_equal(read_image(tmp_path / "bits.png")[..., 0], bits.astype(np.uint8) * 255)

    Image.new("LAB", (4, 4)).save(tmp_path / "lab.tif")
    with pytest.raises(SairbenchError, match="mode LAB") as err:
        read_image(tmp_path / "lab.tif")
    assert "lab.tif" in _one_line(err)


def test_16bit_and_float_masks(tmp_path):
    m16 = np.array([[0, 65535, 40000, 20000]], np.uint16)
    Image.fromarray(m16).save(tmp_path / "m16.png")
    assert read_mask(tmp_path / "m16.png", warn=False).tolist() == [[False, True, True, False]]


# ---------------------------------------------------------------- 2. mask warnings


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "sairbench.io" and r.levelno == logging.WARNING]


def test_grey_and_all_hole_masks_warn_once(tmp_path, caplog):
    grey = np.zeros((10, 10), np.uint8)
    grey[2:5, 2:5] = 255
    grey[6, :7] = 100  # 7 grey pixels, below the threshold
    Image.fromarray(grey).save(tmp_path / "grey.png")
    with caplog.at_level(logging.WARNING, logger="sairbench.io"):
        hole = read_mask(tmp_path / "grey.png")
        read_mask(tmp_path / "grey.png")  # the same file again: no second line
    assert hole.sum() == 9
    lines = _warnings(caplog)
    assert len(lines) == 1 and "\n" not in lines[0]
    assert "grey.png" in lines[0] and "7 of 100 pixels are grey" in lines[0] and "thresholded at 128" in lines[0]

    caplog.clear()
    Image.fromarray(np.full((8, 8), 255, np.uint8)).save(tmp_path / "full.png")
    with caplog.at_level(logging.WARNING, logger="sairbench.io"):
        assert read_mask(tmp_path / "full.png").all()
    lines = _warnings(caplog)
    assert len(lines) == 1 and "full.png" in lines[0] and "every pixel is missing: the output is invented" in lines[0]

    caplog.clear()
    binary = np.zeros((8, 8), np.uint8)
    binary[:3] = 255
    Image.fromarray(binary).save(tmp_path / "binary.png")
    with caplog.at_level(logging.WARNING, logger="sairbench.io"):
        read_mask(tmp_path / "binary.png")
    assert _warnings(caplog) == []


def test_inpaint_prints_one_warning_line_for_a_grey_mask(tmp_path):
    Image.fromarray(np.full((16, 16, 3), 90, np.uint8)).save(tmp_path / "img.png")
    mask = np.zeros((16, 16), np.uint8)
    mask[4:9, 4:9] = 200
    Image.fromarray(mask).save(tmp_path / "grey_mask.png")
    proc = subprocess.run([sys.executable, "-m", "sairbench", "inpaint", "telea", str(tmp_path / "img.png"),
                           str(tmp_path / "grey_mask.png"), "-o", str(tmp_path / "o.png")],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "grey_mask.png" in lines[0] and "25 of 256 pixels are grey" in lines[0]


def _outside_folders(tmp_path, images=("a", "b"), masks=("m1", "m2"), preds=None, mask_value=255):
    gt, mk, pr = tmp_path / "gt", tmp_path / "masks", tmp_path / "preds"
    for d in (gt, mk, pr):
        d.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for i in images:
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(gt / f"{i}.png")
    for k, m in enumerate(masks):
        arr = np.zeros((16, 16), np.uint8)
        arr[2 + k:8 + k, 3:9] = mask_value
        Image.fromarray(arr).save(mk / f"{m}.png")
    for i, m in preds if preds is not None else [(i, m) for i in images for m in masks]:
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(pr / f"{i}__{m}.png")
    return ["eval", "--pred-dir", str(pr), "--gt-dir", str(gt), "--mask-dir", str(mk), "--results", str(tmp_path / "res")]


def test_eval_warns_about_a_grey_mask(tmp_path, caplog):
    args = _outside_folders(tmp_path, images=("a",), masks=("m1",), mask_value=180)
    with caplog.at_level(logging.WARNING, logger="sairbench.io"):
        invoke(args + ["--name", "grey"])
    lines = [ln for ln in _warnings(caplog) if "m1.png" in ln]
    assert len(lines) == 1 and "36 of 256 pixels are grey" in lines[0]


# ---------------------------------------------------------------- 3. eval: whole sets, exact pairs


def test_eval_without_pairs_csv_refuses_partial_sets(tmp_path):
    # b has a prediction for m1 only
    args = _outside_folders(tmp_path / "x", preds=[("a", "m1"), ("a", "m2"), ("b", "m1")])
    with pytest.raises(SairbenchError, match="image 'b' has 1 predictions but 'a' has 2") as err:
        invoke(args + ["--name", "p"])
    _one_line(err)
    # no prediction at all for b
    args = _outside_folders(tmp_path / "y", preds=[("a", "m1"), ("a", "m2")])
    with pytest.raises(SairbenchError, match="no prediction uses this ground truth") as err:
        invoke(args + ["--name", "p"])
    assert "b.png" in _one_line(err)
    # a mask no prediction uses
    args = _outside_folders(tmp_path / "z", preds=[("a", "m1"), ("b", "m1")])
    with pytest.raises(SairbenchError, match="no prediction uses this mask") as err:
        invoke(args + ["--name", "p"])
    assert "m2.png" in _one_line(err)
    # a prediction that matches nothing
    args = _outside_folders(tmp_path / "w")
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "w" / "preds" / "c__m1.png")
    with pytest.raises(SairbenchError, match="matches no ground truth x mask pair") as err:
        invoke(args + ["--name", "p"])
    assert "c__m1.png" in _one_line(err)
    assert not (tmp_path / "x" / "res").exists()
    # the complete set is scored
    args = _outside_folders(tmp_path / "ok")
    invoke(args + ["--name", "full"])
    assert len(pd.read_parquet(tmp_path / "ok" / "res" / "full" / "per_image.parquet")) == 4


@pytest.fixture()
def exported(tmp_path):
    proto = tmp_path / "mini.toml"
    proto.write_text(PROTO)
    out = tmp_path / "export"
    invoke(["masks", "export", "--protocol", str(proto), "--limit", "3", "--out", str(out)])
    preds = tmp_path / "preds"
    preds.mkdir()
    pairs = pd.read_csv(out / "pairs.csv", keep_default_na=False, dtype=str)
    for r in pairs.itertuples():  # any prediction of the right size will do: errors come before scoring
        (preds / f"{r.pred_name}.png").write_bytes((out / "inputs" / r.input_file).read_bytes())
    return out, preds, pairs


def _eval_args(tmp_path, out, preds, name="p"):
    return ["eval", "--pred-dir", str(preds), "--gt-dir", str(out / "gt"), "--mask-dir", str(out / "masks"),
            "--pairs", str(out / "pairs.csv"), "--results", str(tmp_path / "res"), "--name", name]


def test_eval_matches_ground_truth_by_the_exact_pair(tmp_path, exported):
    out, preds, pairs = exported
    gt_files = list(dict.fromkeys(pairs["gt_file"]))
    assert len(gt_files) == 3
    # a row whose gt_file points at another image's ground truth
    bad = pairs.copy()
    bad.loc[0, "gt_file"] = gt_files[1]
    bad.to_csv(out / "pairs.csv", index=False)
    with pytest.raises(SairbenchError, match="row 2") as err:
        invoke(_eval_args(tmp_path, out, preds))
    assert gt_files[1] in _one_line(err)
    # the same with pred_name and input_file edited to match: the image column still disagrees
    bad.loc[0, "pred_name"] = f"{gt_files[1][:-4]}__{bad.loc[0, 'mask_file'][:-4]}"
    bad.loc[0, "input_file"] = bad.loc[0, "pred_name"] + ".png"
    bad.to_csv(out / "pairs.csv", index=False)
    with pytest.raises(SairbenchError, match="row 2"):
        invoke(_eval_args(tmp_path, out, preds))
    # pairs.csv intact, but the ground-truth files swapped on disk: caught against the exported inputs
    pairs.to_csv(out / "pairs.csv", index=False)
    a, b = out / "gt" / gt_files[0], out / "gt" / gt_files[1]
    data_a, data_b = a.read_bytes(), b.read_bytes()
    a.write_bytes(data_b)
    b.write_bytes(data_a)
    with pytest.raises(SairbenchError, match="differs outside the hole") as err:
        invoke(_eval_args(tmp_path, out, preds))
    assert gt_files[0] in _one_line(err)
    a.write_bytes(data_a)
    b.write_bytes(data_b)
    # a gt stored under another extension is not matched by its stem
    a.rename(a.with_suffix(".jpg"))
    with pytest.raises(SairbenchError, match="missing"):
        invoke(_eval_args(tmp_path, out, preds))
    a.with_suffix(".jpg").rename(a)
    # a gt_file that is a path, not a file name
    bad = pairs.copy()
    bad.loc[0, "gt_file"] = "../masks/" + pairs.loc[0, "mask_file"]
    bad.to_csv(out / "pairs.csv", index=False)
    with pytest.raises(SairbenchError, match="not a plain file name"):
        invoke(_eval_args(tmp_path, out, preds))
    assert not (tmp_path / "res").exists()
    pairs.to_csv(out / "pairs.csv", index=False)
    invoke(_eval_args(tmp_path, out, preds, name="ok"))
    assert len(pd.read_parquet(tmp_path / "res" / "ok" / "per_image.parquet")) == len(pairs)


# ---------------------------------------------------------------- 4. inpaint options


@pytest.fixture()
def files(tmp_path):
    flat_image_and_mask(tmp_path, 16, 120, (slice(4, 10), slice(5, 11)))
    Image.fromarray(np.full((1, 1, 3), 50, np.uint8)).save(tmp_path / "tiny.png")
    Image.fromarray(np.full((1, 1), 255, np.uint8)).save(tmp_path / "tiny_mask.png")
    Image.fromarray(np.full((3, 3, 3), 50, np.uint8)).save(tmp_path / "three.png")
    Image.fromarray(np.zeros((3, 3), np.uint8)).save(tmp_path / "three_mask.png")
    return tmp_path


def _inpaint(files, *extra, model="telea", image="img.png", mask="mask.png", out="o.png"):
    return ["inpaint", model, str(files / image), str(files / mask), "-o", str(files / out), *extra]


@pytest.mark.parametrize("case, needle", [
    ((dict(model="liif", image="tiny.png", mask="tiny_mask.png"), ()), "at least 4x4"),
    ((dict(model="liif", image="three.png", mask="three_mask.png"), ()), "at least 4x4"),
    ((dict(out="."), ()), "existing folder"),
    ((dict(out="o.jpg"), ()), ".png"),
    ((dict(out="img.png/o.png"), ()), "is a file"),
    ((dict(), ("--precision", "fp8")), "fp32, fp16, bf16"),
    ((dict(model="liif"), ("--precision", "fp8")), "fp32, fp16, bf16"),
    ((dict(), ("--device", "banana")), "--device"),
    ((dict(), ("--size", "0x16")), "--size"),
    ((dict(), ("--size", "-4x4")), "--size"),
    ((dict(), ("--size", "16")), "--size"),
    ((dict(), ("--size", "axb")), "--size"),
    ((dict(model="liif"), ("--size", "100000x100000")), "--size 100000x100000"),
    ((dict(), ("--hole-value", "300")), "--hole-value"),
    ((dict(), ("--max-pixels", "zero")), "--max-pixels"),
    ((dict(), ("--max-pixels", "0")), "--max-pixels"),
])
def test_inpaint_refuses_bad_options_in_one_line(files, case, needle):
    kw, extra = case
    out = files / kw.get("out", "o.png")
    existed = out.exists()
    with pytest.raises(SairbenchError) as err:
        invoke(_inpaint(files, *extra, **kw))
    assert needle.lower() in _one_line(err).lower()
    assert out.exists() == existed


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_cuda_without_a_gpu(files):
    with pytest.raises(SairbenchError, match="CUDA is not available here; use --device cpu"):
        invoke(_inpaint(files, "--device", "cuda"))


def test_tiny_images_through_classical_and_the_model_guard(files):
    invoke(_inpaint(files, model="telea", image="tiny.png", mask="tiny_mask.png"))
    assert np.asarray(Image.open(files / "o.png")).shape == (1, 1, 3)
    from sairbench_baselines.presets import build_preset

    model = build_preset("liif", "tiny")
    assert model.min_side == 4 and build_preset("edsr-wo", "tiny").min_side == 1
    with pytest.raises(SairbenchError, match="at least 4x4"):
        model.inpaint(torch.rand(1, 3, 1, 1), torch.zeros(1, 1, 1, 1))
    with pytest.raises(SairbenchError, match="fp32, fp16, bf16"):
        model.inpaint(torch.rand(1, 3, 8, 8), torch.zeros(1, 1, 8, 8), precision="fp8")


def test_main_exits_2_with_one_line(files):
    proc = subprocess.run([sys.executable, "-m", "sairbench", *_inpaint(files, "--precision", "fp8")],
                          capture_output=True, text=True, cwd=files)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and "Traceback" not in proc.stderr and "fp8" in lines[0]


# ---------------------------------------------------------------- 5. pixel budget and tiles


def test_pixel_budget_option_and_environment(files, monkeypatch):
    with pytest.raises(SairbenchError, match="--max-pixels") as err:
        invoke(_inpaint(files, "--max-pixels", "100"))
    assert "img.png" in _one_line(err) and "SAIRBENCH_MAX_PIXELS" in str(err.value)
    monkeypatch.setenv("SAIRBENCH_MAX_PIXELS", "200")
    with pytest.raises(SairbenchError, match="above the pixel budget of 200 pixels"):
        invoke(_inpaint(files))
    invoke(_inpaint(files, "--max-pixels", "256"))  # the option wins over the environment
    assert (files / "o.png").is_file()
    monkeypatch.setenv("SAIRBENCH_MAX_PIXELS", "lots")
    with pytest.raises(SairbenchError, match=r"\$SAIRBENCH_MAX_PIXELS"):
        invoke(_inpaint(files))
    monkeypatch.delenv("SAIRBENCH_MAX_PIXELS")
    # the output counts too
    with pytest.raises(SairbenchError, match="--size 64x64"):
        invoke(_inpaint(files, "--size", "64x64", "--max-pixels", "1000", model="liif"))
    assert tiling.parse_pixels("16M") == 16_000_000 and tiling.parse_pixels("2.5e6") == 2_500_000


def test_huge_image_refused_before_decoding(tmp_path):
    Image.new("1", (8000, 8000)).save(tmp_path / "huge.png")  # a few kB on disk, 64 megapixels
    Image.new("1", (8000, 8000)).save(tmp_path / "huge_mask.png")
    for model in ("liif", "telea"):
        with pytest.raises(SairbenchError, match="64.0 megapixels is above the pixel budget of 16.0") as err:
            invoke(["inpaint", model, str(tmp_path / "huge.png"), str(tmp_path / "huge_mask.png"), "-o",
                    str(tmp_path / "o.png")])
        assert "huge.png" in _one_line(err)


def test_models_check_the_budget_themselves():
    from sairbench.registry import create_model
    from sairbench_baselines.presets import build_preset

    x, m = torch.rand(1, 3, 16, 16), torch.zeros(1, 1, 16, 16)
    with tiling.pixel_budget(255):
        with pytest.raises(SairbenchError, match="model telea: the input is 16x16"):
            create_model("telea").inpaint(x, m)
        with pytest.raises(SairbenchError, match="model liif: the input is 16x16"):
            build_preset("liif", "tiny").inpaint(x, m)
    with tiling.pixel_budget(256 * tiling.UNTILED_FACTOR - 1):
        from tests.test_semantic_branch import ENC

        with pytest.raises(SairbenchError, match="not tiled"):
            build_preset("sair", "tiny", encoder=ENC).inpaint(x, m)
        build_preset("liif", "tiny").inpaint(x, m)


def test_receptive_radius_bounds_the_real_one():
    from sairbench.models.encoders import AppEncoder, EDSRBaseline

    torch.manual_seed(0)
    for enc in (AppEncoder(widths=(8, 12, 16), n_resblocks=2), EDSRBaseline(n_resblocks=2, n_feats=8)):
        x = torch.rand(1, 4, 96, 96)
        y = x.clone()
        y[..., 48, 49] += 1.0
        with torch.no_grad():
            diff = (enc(y) - enc(x)).abs().sum(1)[0]
        rows, cols = torch.nonzero(diff > 0, as_tuple=True)
        reach = max((rows - 48).abs().max().item(), (cols - 49).abs().max().item())
        assert 0 < reach <= tiling.receptive_radius(enc)


@pytest.mark.parametrize("preset", ["liif", "lte", "edsr-wo"])
def test_tiles_give_the_untiled_output(preset, monkeypatch):
    from sairbench_baselines.presets import build_preset

    torch.manual_seed(0)
    model = build_preset(preset, "tiny")
    x = torch.rand(1, 3, 96, 80)
    m = torch.zeros(1, 1, 96, 80)
    m[..., 10:50, 20:60] = 1
    for size in (None, (192, 160), (40, 50)):
        ref = model.inpaint(x, m, size=size)
        monkeypatch.setattr(tiling, "TILE_ABOVE", 0)
        seen = []
        real = model.gen_feat
        monkeypatch.setattr(model, "gen_feat", lambda im, mk, values=None: seen.append(im.shape[-2:]) or real(im, mk, values))
        got = model.inpaint(x, m, size=size, tile=16)
        monkeypatch.undo()
        assert len(seen) == 30 and max(max(s) for s in seen) <= 16 + 2 * tiling.model_margin(model)
        assert (got - ref).abs().max() < 1e-4, (preset, size)
    # sides that are not multiples of the stride: padded for the tiles, same size out
    monkeypatch.setattr(tiling, "TILE_ABOVE", 0)
    out = model.inpaint(torch.rand(1, 3, 30, 45), torch.zeros(1, 1, 30, 45), tile=8)
    assert out.shape == (1, 3, 30, 45) and torch.isfinite(out).all()
