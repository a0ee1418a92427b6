"""Outside methods (masks export + eval) and shard merging."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from sairbench.errors import SairbenchError
from tests.helpers import PROTO, invoke

METRICS = ["psnr", "ssim", "l1", "lpips"]
KEYS = ["image", "mask", "bucket", "ratio"]




@pytest.fixture()
def exported(tmp_path, proto):
    out = tmp_path / "export"
    invoke(["masks", "export", "--protocol", str(proto), "--limit", "3", "--out", str(out)])
    return out


def _telea_predictions(export, pred_dir, ext="png"):
    """telea's raw outputs on the exported inputs, saved as <pred_name>.<ext>."""
    from sairbench.io import read_image, read_mask
    from sairbench.metrics import to_uint8
    from sairbench.registry import create_model

    model = create_model("telea")
    pairs = pd.read_csv(export / "pairs.csv")
    pred_dir.mkdir()
    for r in pairs.itertuples():
        x = read_image(export / "inputs" / r.input_file)
        m = read_mask(export / "masks" / r.mask_file)
        xt = torch.from_numpy(np.array(x)).permute(2, 0, 1)[None].float().div(255)
        mt = torch.from_numpy(m)[None, None].float()
        pred = model.inpaint(xt, mt)
        Image.fromarray(to_uint8(pred[0])).save(pred_dir / f"{r.pred_name}.{ext}")
    return pairs


def test_export_writes_the_protocols_masks_inputs_and_gt(exported):
    from sairbench.data import get_dataset
    from sairbench.masks import read_mask_set

    pairs = pd.read_csv(exported / "pairs.csv")
    assert list(pairs.columns[:5]) == ["image", "mask", "bucket", "ratio", "mask_file"]
    assert len(pairs) == 3 * 3
    assert set(pairs["bucket"]) == {"0-20%", "20-40%", "40-60%"}
    masks = {m.name: m for m in read_mask_set(exported / "masks")}  # sha256-checked
    ds = get_dataset("synthetic-faces", size=32, limit=3, seed=3)
    names = [ds.sample_name(i) for i in range(3)]
    for r in pairs.itertuples():
        gt = np.asarray(Image.open(exported / "gt" / r.gt_file).convert("RGB"))
        assert np.array_equal(gt, ds[names.index(r.image)].image)
        hole = masks[r.mask_file[:-4]].mask
        assert abs(hole.mean() - r.ratio) < 1e-12
        inp = np.asarray(Image.open(exported / "inputs" / r.input_file).convert("RGB"))
        assert (inp[hole] == 0).all() and np.array_equal(inp[~hole], gt[~hole])
        assert r.input_file == f"{r.pred_name}.png"
        for f in (r.mask_file, r.gt_file, r.input_file):
            assert all(c.isalnum() or c in "._-" for c in f)
    meta = json.loads((exported / "export.json").read_text())
    assert meta["protocol"] == "mini" and meta["metrics"] == METRICS


def test_eval_reproduces_run_numbers(tmp_path, proto, exported):
    res = tmp_path / "results"
    invoke(["run", "--protocol", str(proto), "--results", str(res), "--name", "ref", "--limit", "3"])
    ref = pd.read_parquet(res / "ref" / "per_image.parquet")
    ref = ref[ref["model"] == "telea"].reset_index(drop=True)

    _telea_predictions(exported, tmp_path / "preds")
    invoke(["eval", "--pred-dir", str(tmp_path / "preds"), "--gt-dir", str(exported / "gt"),
            "--mask-dir", str(exported / "masks"), "--name", "telea-outside", "--results", str(res)])
    got = pd.read_parquet(res / "telea-outside" / "per_image.parquet")
    assert (got["model"] == "telea-outside").all()
    assert list(got.columns) == list(ref.columns)
    pd.testing.assert_frame_equal(got[KEYS], ref[KEYS])
    for m in METRICS:
        a, b = got[m].to_numpy(), ref[m].to_numpy()
        assert np.array_equal(np.isnan(a), np.isnan(b))
        ok = ~np.isnan(a)
        np.testing.assert_allclose(a[ok], b[ok], rtol=0, atol=1e-9)
    meta = json.loads((res / "telea-outside" / "meta.json").read_text())
    ref_meta = json.loads((res / "ref" / "meta.json").read_text())
    assert meta["source"] == "outside" and meta["models"] == ["telea-outside"]
    assert meta["conventions"] == ref_meta["conventions"] and meta["protocol"] == "mini"
    for f in ("summary.csv", "summary.parquet"):
        assert (res / "telea-outside" / f).is_file()
    # the same numbers in the summary, and the outside method sits in the same report table
    s_out = pd.read_csv(res / "telea-outside" / "summary.csv")
    s_ref = pd.read_csv(res / "ref" / "summary.csv")
    s_ref = s_ref[s_ref["model"] == "telea"].reset_index(drop=True)
    np.testing.assert_allclose(s_out["mean"], s_ref["mean"], rtol=0, atol=1e-9, equal_nan=True)
    invoke(["report", str(res / "ref"), str(res / "telea-outside"), "--out", str(tmp_path / "rep")])
    md = (tmp_path / "rep" / "report.md").read_text()
    assert md.count("## mini · synthetic-faces") == 1 and "telea-outside" in md

    # only the hole of a prediction counts: noise outside it changes nothing
    noisy = tmp_path / "noisy"
    noisy.mkdir()
    rng = np.random.default_rng(0)
    for r in pd.read_csv(exported / "pairs.csv").itertuples():
        pred = np.asarray(Image.open(tmp_path / "preds" / f"{r.pred_name}.png").convert("RGB"))
        hole = np.asarray(Image.open(exported / "masks" / r.mask_file)) >= 128
        junk = rng.integers(0, 256, pred.shape, dtype=np.uint8)
        Image.fromarray(np.where(hole[..., None], pred, junk)).save(noisy / f"{r.pred_name}.png")
    invoke(["eval", "--pred-dir", str(noisy), "--gt-dir", str(exported / "gt"),
            "--mask-dir", str(exported / "masks"), "--name", "noisy", "--results", str(res)])
    pd.testing.assert_frame_equal(pd.read_parquet(res / "noisy" / "per_image.parquet").drop(columns="model"),
                                  got.drop(columns="model"))

    # never overwritten: the same name again gets a numbered sibling
    invoke(["eval", "--pred-dir", str(tmp_path / "preds"), "--gt-dir", str(exported / "gt"),
            "--mask-dir", str(exported / "masks"), "--name", "telea-outside", "--results", str(res),
            "--pairs", str(exported / "pairs.csv"), "--protocol", str(proto)])
    again = pd.read_parquet(res / "telea-outside-2" / "per_image.parquet")
    pd.testing.assert_frame_equal(again, got)


def test_eval_accepts_jpg_and_no_pairs_csv(tmp_path, exported):
    """Without pairs.csv the pairs come from the names <image>__<mask>; JPEG predictions are read."""
    pairs = _telea_predictions(exported, tmp_path / "preds", ext="jpg")
    gt, masks = tmp_path / "gt", tmp_path / "masks"
    gt.mkdir()
    masks.mkdir()
    for f in (exported / "gt").iterdir():
        (gt / f.name).write_bytes(f.read_bytes())
    for f in (exported / "masks").glob("*.png"):
        (masks / f.name).write_bytes(f.read_bytes())
    invoke(["eval", "--pred-dir", str(tmp_path / "preds"), "--gt-dir", str(gt), "--mask-dir", str(masks),
            "--name", "jpg", "--results", str(tmp_path / "res")])
    got = pd.read_parquet(tmp_path / "res" / "jpg" / "per_image.parquet")
    assert len(got) == len(pairs)
    assert set(got["bucket"]) == set(pairs["bucket"])
    assert np.isfinite(got["psnr"]).all()


def test_eval_errors(tmp_path, exported):
    pairs = _telea_predictions(exported, tmp_path / "preds")
    args = ["eval", "--gt-dir", str(exported / "gt"), "--mask-dir", str(exported / "masks"),
            "--results", str(tmp_path / "res")]
    # missing predictions: one error, how many and the first name
    partial = tmp_path / "partial"
    partial.mkdir()
    for r in list(pairs.itertuples())[:2]:
        (partial / f"{r.pred_name}.png").write_bytes((tmp_path / "preds" / f"{r.pred_name}.png").read_bytes())
    with pytest.raises(SairbenchError) as err:
        invoke(args + ["--pred-dir", str(partial), "--name", "p"])
    msg = str(err.value)
    assert "7 of 9 predictions missing" in msg and pairs["pred_name"][2] in msg and "\n" not in msg
    # wrong size: the file is named
    bad = pairs["pred_name"][4]
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "preds" / f"{bad}.png")
    with pytest.raises(SairbenchError) as err:
        invoke(args + ["--pred-dir", str(tmp_path / "preds"), "--name", "p"])
    assert f"{bad}.png" in str(err.value) and "16x16" in str(err.value)
    # a corrupt prediction is named too
    (tmp_path / "preds" / f"{bad}.png").write_bytes(b"\x89PNG garbage")
    with pytest.raises(SairbenchError, match=bad):
        invoke(args + ["--pred-dir", str(tmp_path / "preds"), "--name", "p"])
    # no such folder, and a name that cannot be a folder
    with pytest.raises(SairbenchError, match="no such prediction folder"):
        invoke(args + ["--pred-dir", str(tmp_path / "nope"), "--name", "p"])
    with pytest.raises(SairbenchError, match="--name"):
        invoke(args + ["--pred-dir", str(tmp_path / "preds"), "--name", "a/b"])
    assert not (tmp_path / "res" / "p").exists()


def test_export_refuses_a_non_empty_folder(tmp_path, proto, exported):
    with pytest.raises(SairbenchError, match="export"):
        invoke(["masks", "export", "--protocol", str(proto), "--out", str(exported)])


def test_safe_names():
    from sairbench.outside import _unique_safe, safe_name

    assert safe_name("a/b c__d.png") == "a_b_c_d.png"
    assert safe_name("../x") == "x"
    assert "__" not in safe_name("x____y")
    names = _unique_safe(["A b", "A_b", "a-b"])
    assert len(set(v.lower() for v in names.values())) == 3


# ---------------------------------------------------------------- shards


def _rows(run):
    return pd.read_parquet(run / "per_image.parquet")


def test_shards_in_one_folder_give_the_unsharded_rows(tmp_path, proto):
    res = tmp_path / "results"
    invoke(["run", "--protocol", str(proto), "--results", str(res), "--name", "full"])
    invoke(["run", "--protocol", str(proto), "--results", str(res), "--name", "sh", "--shard", "1/2"])
    assert not (res / "sh" / "per_image.parquet").exists()
    with pytest.raises(SairbenchError) as err:
        invoke(["merge", str(res / "sh")])
    assert "1 of 2 chunks missing" in str(err.value) and "navier-stokes/000000" in str(err.value)
    invoke(["run", "--protocol", str(proto), "--results", str(res), "--name", "sh", "--shard", "2/2"])  # same folder, no --resume needed
    pd.testing.assert_frame_equal(_rows(res / "sh"), _rows(res / "full"))
    (res / "sh" / "per_image.parquet").unlink()
    invoke(["merge", str(res / "sh")])
    pd.testing.assert_frame_equal(_rows(res / "sh"), _rows(res / "full"))
    pd.testing.assert_frame_equal(pd.read_csv(res / "sh" / "summary.csv"), pd.read_csv(res / "full" / "summary.csv"))
    meta = json.loads((res / "sh" / "meta.json").read_text())
    assert meta["models"] == ["telea", "navier-stokes"] and meta["model_info"]["telea"]["class"]


def test_shards_in_separate_folders_merge(tmp_path, proto):
    res = tmp_path / "results"
    invoke(["run", "--protocol", str(proto), "--results", str(res), "--name", "full"])
    invoke(["run", "--protocol", str(proto), "--results", str(res), "--name", "p0", "--shard", "1/2"])
    invoke(["run", "--protocol", str(proto), "--results", str(res), "--name", "p1", "--shard", "2/2"])
    invoke(["merge", str(res / "p0"), str(res / "p1")])
    pd.testing.assert_frame_equal(_rows(res / "p0"), _rows(res / "full"))
    # shards of another run (other options) are refused
    invoke(["run", "--protocol", str(proto), "--results", str(res), "--name", "q1", "--shard", "2/2", "--limit", "2"])
    with pytest.raises(SairbenchError, match="fingerprint"):
        invoke(["merge", str(res / "p0"), str(res / "q1")])
    with pytest.raises(SairbenchError, match="run.json"):
        invoke(["merge", str(tmp_path)])


def test_protocol_with_some_models_unavailable(tmp_path):
    """Only the available models of a protocol run; the others are listed as skipped."""
    p = tmp_path / "some.toml"
    # sam-encoder needs a SAM checkpoint, which this suite never ships
    p.write_text(PROTO.replace('names = ["telea", "navier-stokes"]', 'names = ["telea", "sam-encoder"]')
                 .replace("limit = 3", "limit = 1"))
    invoke(["run", "--protocol", str(p), "--results", str(tmp_path / "res"), "--name", "s"])
    meta = json.loads((tmp_path / "res" / "s" / "meta.json").read_text())
    assert meta["models"] == ["telea"] and "sam-encoder" in meta["skipped_models"]
    summary = pd.read_csv(tmp_path / "res" / "s" / "summary.csv")
    assert "all" in set(summary["bucket"])
    from sairbench.report import write_report

    tex, md = write_report([tmp_path / "res" / "s"], tmp_path / "rep", buckets=["all"])
    header = next(ln for ln in md.read_text().splitlines() if ln.startswith("| Method"))
    assert "All mask ratios" in header and "0–20%" not in header


def test_ablations_protocol_loads():
    from sairbench.protocol import load_protocol

    p = load_protocol("ablations")
    assert p.models["names"] == ["sair", "nfs", "ous", "sam-encoder", "edsr-wo", "edsr-w", "lte", "semlte", "liif"]
    from sairbench.pairs import dataset_settings

    assert p.dataset["name"] == "synthetic-faces" and p.dataset.size is None  # the dataset's defaults:
    assert dataset_settings(p)["size"] == 64 and dataset_settings(p)["limit"] == 100
    assert p.metrics["names"] == METRICS
