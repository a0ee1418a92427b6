"""Figures: metric against hole ratio and the qualitative grid, on a tiny classical-only run."""

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from sairbench.errors import SairbenchError
from tests.helpers import PROTO, invoke





@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fig")
    (tmp / "mini.toml").write_text(PROTO)
    invoke(["run", "--protocol", str(tmp / "mini.toml"), "--results", str(tmp / "res"), "--name", "r"])
    return tmp / "res" / "r"


def test_figures_written(run, tmp_path):
    out = tmp_path / "figs"
    invoke(["figures", str(run), "--out", str(out), "--images", "2"])
    for stem in ("ratio_curves", "qualitative"):
        png, pdf = out / f"{stem}.png", out / f"{stem}.pdf"
        assert png.is_file() and pdf.is_file()
        assert pdf.read_bytes()[:5] == b"%PDF-" and 2_000 < pdf.stat().st_size < 5_000_000
        with Image.open(png) as im:
            im.load()
            w, h = im.size
        assert 200 < w < 5000 and 150 < h < 5000 and 2_000 < png.stat().st_size < 5_000_000
    with Image.open(out / "qualitative.png") as im:
        w, h = im.size
    assert w > 1.2 * h  # 2 rows x 4 columns (input, telea, navier-stokes, ground truth), names under the inputs
    curves = pd.read_csv(out / "ratio_curves.csv")
    assert set(curves["model"]) == {"telea", "navier-stokes"}
    per = pd.read_parquet(run / "per_image.parquet")
    if per["lpips"].isna().all():
        assert set(curves["metric"]) == {"psnr"}  # one PSNR panel, the title says "LPIPS unavailable"
    # every image of a model is in exactly one bin
    psnr = curves[curves["metric"] == "psnr"]
    assert psnr.groupby("model")["n"].sum().to_dict() == {"telea": 9, "navier-stokes": 9}
    assert ((psnr["ratio"] >= psnr["bin_lo"]) & (psnr["ratio"] <= psnr["bin_hi"])).all()


def test_grid_outputs_match_the_run(run):
    """The grid re-runs each model on the run's own pairs: its PSNR equals the run's rows."""
    from sairbench.figures import qualitative_outputs
    from sairbench.metrics import psnr

    pairs, inputs, outputs, gts = qualitative_outputs(run, n_images=3)
    per = pd.read_parquet(run / "per_image.parquet")
    assert [p.bucket for p in pairs] == ["40-60%"] * 3
    for model, outs in outputs.items():
        for p, o, g in zip(pairs, outs, gts):
            row = per[(per.model == model) & (per.image == p.image) & (per["mask"] == p.mask)]
            assert len(row) == 1 and abs(row["psnr"].iloc[0] - psnr(o, g)) < 1e-9
    for p, inp, g in zip(pairs, inputs, gts):
        hole = inp.min(axis=-1) == 255
        assert abs(hole.mean() - p.ratio) < 0.05 and np.array_equal(inp[~hole], g[~hole])


def test_figures_default_folder_and_errors(run, tmp_path):
    invoke(["figures", str(run), "--images", "1", "--no-grid"])
    assert (run / "figures" / "ratio_curves.png").is_file()
    with pytest.raises(SairbenchError, match="--image"):
        invoke(["figures", str(run), "--out", str(tmp_path / "x"), "--image", "no-such-image"])
    with pytest.raises(SairbenchError, match="bucket"):
        invoke(["figures", str(run), "--out", str(tmp_path / "x"), "--bucket", "90-100%"])
    with pytest.raises(SairbenchError, match="per_image"):
        invoke(["figures", str(tmp_path), "--out", str(tmp_path / "x")])
