"""End-to-end command line: run, report, inpaint, masks, and one-line errors on bad input."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from sairbench.errors import SairbenchError
from tests.helpers import invoke





def test_run_twice_gives_identical_numbers_and_never_overwrites(tmp_path, proto):
    res = tmp_path / "results"
    invoke(["run", "--protocol", str(proto), "--results", str(res), "--name", "a"])
    invoke(["run", "--protocol", str(proto), "--results", str(res), "--name", "a"])  # same name: new folder
    a, b = res / "a", res / "a-2"
    for f in ("per_image.parquet", "summary.csv", "summary.parquet", "meta.json"):
        assert (a / f).is_file() and (b / f).is_file()
    pa, pb = pd.read_parquet(a / "per_image.parquet"), pd.read_parquet(b / "per_image.parquet")
    pd.testing.assert_frame_equal(pa, pb)
    assert len(pa) == 2 * 3 * 3  # models x buckets x images
    assert set(pa.columns) >= {"image", "mask", "bucket", "ratio", "model", "psnr", "ssim", "l1", "lpips"}
    summary = pd.read_csv(a / "summary.csv")
    buckets = set(summary["bucket"]) - {"all"}
    assert buckets == {"0-20%", "20-40%", "40-60%"}
    assert set(summary["metric"]) == {"psnr", "ssim", "l1", "lpips"}
    meta = json.loads((a / "meta.json").read_text())
    assert meta["seed"] == 3 and "psnr" in meta["conventions"] and "torch" in meta["versions"]
    if not meta["lpips"]["available"]:
        assert pa["lpips"].isna().all()  # never a made-up value
    # ratios in the rows are the hole ratios of the masks as applied, inside their bucket
    for b_, lo, hi in (("0-20%", 0, 0.2), ("20-40%", 0.2, 0.4), ("40-60%", 0.4, 0.6)):
        r = pa[pa.bucket == b_]["ratio"]
        assert ((r >= lo) & (r <= hi)).all()


def test_resume_skips_finished_rows(tmp_path, proto):
    res = tmp_path / "results"
    invoke(["run", "--protocol", str(proto), "--results", str(res), "--name", "r"])
    first = pd.read_parquet(res / "r" / "per_image.parquet")
    part = next((res / "r" / "parts" / "telea").glob("*.parquet"))
    part.unlink()  # as if the run had been killed before this chunk
    (res / "r" / "per_image.parquet").unlink()
    invoke(["run", "--protocol", str(proto), "--results", str(res), "--name", "r", "--resume"])
    pd.testing.assert_frame_equal(first, pd.read_parquet(res / "r" / "per_image.parquet"))


def test_report_renders_latex_and_markdown(tmp_path, proto):
    res = tmp_path / "results"
    invoke(["run", "--protocol", str(proto), "--results", str(res), "--name", "x"])
    invoke(["report", str(res / "x"), "--out", str(tmp_path / "rep"), "--published", "table1_celebahq"])
    tex = (tmp_path / "rep" / "report.tex").read_text()
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "\\toprule" in tex and "\\textbf{" in tex and "telea" in tex
    assert "misf" in tex.lower()  # published rows included
    assert "| telea" in md or "telea |" in md


def test_masks_generate_is_seeded(tmp_path):
    invoke(["masks", "generate", "--out", str(tmp_path / "m1"), "--per-bucket", "2", "--size", "32", "--seed", "5"])
    invoke(["masks", "generate", "--out", str(tmp_path / "m2"), "--per-bucket", "2", "--size", "32", "--seed", "5"])
    m1 = json.loads((tmp_path / "m1" / "manifest.json").read_text())
    m2 = json.loads((tmp_path / "m2" / "manifest.json").read_text())
    assert [e["sha256"] for e in m1["masks"]] == [e["sha256"] for e in m2["masks"]]


def _small_checkpoint(tmp_path):
    from sairbench.train import Schedule, TrainConfig, train
    from tests.test_train import small_model

    cfg = TrainConfig(model="liif", image_size=32, schedule=Schedule.preset("tiny", 1, 2), queries=16,
                      out=str(tmp_path / "ck"), threads=1)
    return train(cfg, progress=False, model=small_model())


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA"])
def test_inpaint_any_photo_and_size(tmp_path, mode):
    ck = _small_checkpoint(tmp_path)
    img = (np.random.default_rng(0).random((30, 42, 3)) * 255).astype(np.uint8)
    Image.fromarray(img).convert(mode).save(tmp_path / "in.png")
    mask = np.zeros((30, 42), np.uint8)
    mask[5:20, 10:30] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    invoke(["inpaint", str(ck), str(tmp_path / "in.png"), str(tmp_path / "mask.png"), "--out", str(tmp_path / "o.png")])
    out = np.asarray(Image.open(tmp_path / "o.png"))
    assert out.shape == (30, 42, 3)
    known = mask == 0
    ref = np.asarray(Image.open(tmp_path / "in.png").convert("RGB"))
    assert np.array_equal(out[known], ref[known])  # known pixels kept at the input size
    if mode == "RGB":  # the hole is queried alone, and answers as the whole-image query does there
        from sairbench.checkpoint import load_model

        x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255
        m = torch.from_numpy(mask > 0)[None, None].float()
        full = load_model(ck).inpaint(x * (1 - m), m, region="all")[0].permute(1, 2, 0).clamp(0, 1).numpy()
        assert np.abs(out[~known].astype(int) - np.round(full[~known] * 255).astype(int)).max() <= 1
    invoke(["inpaint", str(ck), str(tmp_path / "in.png"), str(tmp_path / "mask.png"), "--out", str(tmp_path / "big.png"),
            "--size", "84x60"])
    assert np.asarray(Image.open(tmp_path / "big.png")).shape == (60, 84, 3)


def test_bad_inputs_raise_clear_errors(tmp_path, proto):
    (tmp_path / "corrupt.png").write_bytes(b"\x89PNG garbage")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "small_mask.png")
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "img.png")
    cases = [
        (["inpaint", "telea", str(tmp_path / "corrupt.png"), str(tmp_path / "small_mask.png"), "-o", str(tmp_path / "o.png")], "corrupt.png"),
        (["inpaint", "telea", str(tmp_path / "img.png"), str(tmp_path / "small_mask.png"), "-o", str(tmp_path / "o.png")], "small_mask.png"),
        (["inpaint", "no-such-model", str(tmp_path / "img.png"), str(tmp_path / "small_mask.png"), "-o", str(tmp_path / "o.png")], "unknown model"),
        (["run", "--protocol", "no-such-protocol"], "unknown protocol"),
        (["run", "--protocol", str(proto), "--model", "nope"], "unknown model"),
        (["run", "--protocol", str(proto), "--dataset", "folder", "--data-root", str(tmp_path / "empty")], "empty"),
        (["inpaint", "telea", str(tmp_path / "img.png"), str(tmp_path / "img.png"), "-o", str(tmp_path / "o.png"), "--size", "12x"], "--size"),
    ]
    (tmp_path / "empty").mkdir()
    for args, needle in cases:
        with pytest.raises(SairbenchError) as err:
            invoke(args)
        msg = str(err.value)
        assert "\n" not in msg
        assert needle.lower() in msg.lower(), (args, msg)
    assert not (tmp_path / "o.png").exists()


def test_main_prints_one_line_and_exits_2(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "sairbench", "run", "--protocol", "no-such-protocol"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "unknown protocol" in lines[0] and "Traceback" not in proc.stderr


def test_models_lists_every_registered_model(capsys):
    invoke(["models"])
    out = capsys.readouterr().out
    for name in ("telea", "navier-stokes", "biharmonic", "liif", "lte", "sair", "nfs", "ous"):
        assert name in out


def test_run_a_checkpoint_variant(tmp_path, proto):
    ck = _small_checkpoint(tmp_path)
    res = tmp_path / "results"
    invoke(["run", "--protocol", str(proto), "--results", str(res), "--name", "v", "--model", "liif@small",
            "--checkpoint", f"liif@small={ck}"])
    rows = pd.read_parquet(res / "v" / "per_image.parquet")
    assert set(rows["model"]) == {"liif@small"} and len(rows) == 9
    meta = json.loads((res / "v" / "meta.json").read_text())
    assert meta["model_info"]["liif@small"]["checkpoint_step"] == 1
    with pytest.raises(SairbenchError, match="--checkpoint"):
        invoke(["run", "--protocol", str(proto), "--results", str(res), "--model", "liif@other"])


def test_train_missing_trains_with_the_recorded_command(tmp_path, proto, monkeypatch):
    import sairbench.shipped as shipped

    recipes = {"liif": {"steps": 2, "batch": 2, "queries": 16, "image_size": 32, "threads": 1}}
    monkeypatch.setattr(shipped, "recipe_of", recipes.get)
    monkeypatch.setattr(shipped, "shipped_path", lambda name, *a, **k: tmp_path / "none" / f"{name}.safetensors")
    monkeypatch.chdir(tmp_path)
    invoke(["run", "--protocol", str(proto), "--results", str(tmp_path / "res"), "--name", "tm", "--model", "liif",
            "--train-missing"])
    ckpt = tmp_path / "runs" / "train-missing" / "liif" / "last.pt"
    from sairbench.checkpoint import load_checkpoint

    assert load_checkpoint(ckpt)["step"] == 2
    rows = pd.read_parquet(tmp_path / "res" / "tm" / "per_image.parquet")
    assert set(rows["model"]) == {"liif"} and len(rows) == 9


def test_train_missing_follows_the_semantic_chain(tmp_path, monkeypatch):
    """Cold cache: sair needs sir, which needs the semantic encoder; each is trained once, in order."""
    import sairbench.shipped as shipped
    from sairbench.checkpoint import load_checkpoint

    tiny = {"steps": 1, "batch": 2, "queries": 8, "image_size": 32, "threads": 1}
    recipes = {
        "semantic": tiny,
        "sir": {**tiny, "semantic_checkpoint": "{semantic}"},
        "sair@base": {**tiny, "sir_checkpoint": "{sir}"},
        "sair": {**tiny, "hole_fraction": 1.0, "init": "{sair@base}", "sir_checkpoint": "{sir}"},
    }
    monkeypatch.setattr(shipped, "recipe_of", recipes.get)
    monkeypatch.setattr(shipped, "shipped_path", lambda name, *a, **k: tmp_path / "none" / f"{name}.safetensors")
    got = shipped.train_missing_models(["sair"], runs_root=str(tmp_path / "runs"))
    assert set(got) == {"semantic", "sir", "sair@base", "sair"}
    sair = load_checkpoint(got["sair"])
    sir = load_checkpoint(got["sir"])
    assert sair["train"]["sir_checkpoint"] == got["sir"] and sir["train"]["semantic_checkpoint"] == got["semantic"]
    assert sair["train"]["init"] == got["sair@base"] and sair["train"]["hole_fraction"] == 1.0
    assert shipped.train_missing_models(["sair"], runs_root=str(tmp_path / "runs")) == got  # nothing retrained
