"""FID and KID: pytorch-fid's Inception features from a local file (random weights here), the FID
formula against pytorch-fid's, KID against loops, NaN with one short line without weights, and
fid/kid rows per bucket from `sairbench run`, nothing ever downloaded."""

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from sairbench.digest import weights_digest
from sairbench.errors import SairbenchError
from sairbench.metrics.fid import _fid_counts, fid_ci95, frechet_distance, kid, kid_ci95
from sairbench.metrics.fid_inception import FID_WEIGHTS_FILENAME, InceptionFeatures, build_fid_inception
from tests.commands_helpers import assert_ok, error_line, sairbench
from tests.helpers import invoke

PROTO = """
name = "fidproto"
seed = 0
[dataset]
name = "synthetic-faces"
split = "test"
[masks]
source = "generated"
per_bucket = 1
[metrics]
names = ["psnr", "fid", "kid"]
[models]
names = ["telea", "biharmonic"]
"""
RUN = ["--limit", "2", "--size", "32", "--threads", "1"]


def random_fid_weights(path, seed: int) -> dict:
    """A random FID Inception state dict (He-initialised convolutions, random batch-norm statistics)
    saved at ``path``; returned."""
    torch.manual_seed(seed)
    net = build_fid_inception()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.Conv2d):
                fan_in = m.in_channels * m.kernel_size[0] * m.kernel_size[1]
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * math.sqrt(2 / fan_in))
            elif isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
    state = net.state_dict()
    torch.save(state, path)
    return state


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    path = tmp_path_factory.mktemp("fidw") / FID_WEIGHTS_FILENAME
    return path, random_fid_weights(path, seed=0)


@pytest.fixture()
def offline(monkeypatch, tmp_path):
    """An empty torch hub cache, fresh process-wide scorers and warnings, and every download refused."""
    import pytorch_fid.inception

    def no_download(*args, **kwargs):
        raise AssertionError(f"download attempted: {args[:1]}")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.delenv("SAIRBENCH_FID_WEIGHTS", raising=False)
    for target in ("torch.hub.load_state_dict_from_url", "torch.hub.download_url_to_file",
                   "pytorch_fid.inception.load_state_dict_from_url"):
        monkeypatch.setattr(target, no_download)
    monkeypatch.setattr("sairbench.metrics.fid_inception._DEFAULT", {})
    monkeypatch.setattr("sairbench.errors._WARNED", set())
    return pytorch_fid.inception


def _images(n: int, h: int, w: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def test_features_and_fid_equal_pytorch_fids(weights, offline, monkeypatch):
    from pytorch_fid.fid_score import calculate_frechet_distance

    path, state = weights
    monkeypatch.setattr(offline, "load_state_dict_from_url", lambda *a, **k: state)  # its weights: the same dict
    ref_net = offline.InceptionV3([3]).eval()  # resize_input=True, normalize_input=True by default
    images = np.concatenate([_images(3, 24, 40, 1), 255 - _images(3, 24, 40, 1) // 2])  # not square, not 299
    ours = InceptionFeatures(weights=path)
    assert ours.available and ours.weights_sha256 == weights_digest(state)
    got = ours(images)
    with torch.no_grad():
        ref = ref_net(torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255)[0].squeeze(3).squeeze(2).numpy()
    assert got.shape == (6, 2048) and got.std() > 0.1  # not a degenerate (all-zero) network
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)
    x, y = got[:3].astype(np.float64), got[3:].astype(np.float64)
    for cols in (slice(0, 128), slice(0, 2)):  # fewer images than dimensions (rank-deficient), and more
        a, b = x[:, cols], y[:, cols]
        want = calculate_frechet_distance(a.mean(0), np.atleast_2d(np.cov(a, rowvar=False)),
                                          b.mean(0), np.atleast_2d(np.cov(b, rowvar=False)))
        assert frechet_distance(a, b) == pytest.approx(want, rel=1e-6)


@pytest.mark.slow
def test_fid_equals_pytorch_fids_at_2048_dimensions(weights):
    from pytorch_fid.fid_score import calculate_frechet_distance

    mpmath = pytest.importorskip("mpmath")
    feats = InceptionFeatures(weights=weights[0])(_images(8, 32, 32, 5)).astype(np.float64)
    x, y = feats[:4], feats[4:]
    want = calculate_frechet_distance(x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False))
    # sqrtm of this rank-3 2048 x 2048 product is itself off by ~3e-6 (scipy warns it is singular)
    assert frechet_distance(x, y) == pytest.approx(want, rel=1e-5)
    mpmath.mp.dps = 40  # the exact value: the singular values of Xc Yc^T (4 x 4) in 40 digits
    xc, yc = x - x.mean(0), y - y.mean(0)
    tr_sqrt = sum(mpmath.svd_r(mpmath.matrix((xc @ yc.T).tolist()), compute_uv=False)) / 3
    d = x.mean(0) - y.mean(0)
    exact = float(mpmath.mpf(d @ d) + mpmath.mpf((xc * xc).sum() / 3) + mpmath.mpf((yc * yc).sum() / 3) - 2 * tr_sqrt)
    assert frechet_distance(x, y) == pytest.approx(exact, rel=1e-12)


def test_fid_of_repeated_pairs_and_its_interval():
    rng = np.random.default_rng(0)
    x, y = rng.random((7, 12)), rng.random((7, 12)) + 0.2
    counts = np.array([0, 3, 1, 0, 2, 1, 0])
    repeated = frechet_distance(np.repeat(x, counts, 0), np.repeat(y, counts, 0))
    assert _fid_counts(x, y, counts) == pytest.approx(repeated, rel=1e-12)
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-12)
    ci = fid_ci95(x, y, n_boot=50, seed=1)
    assert 0 < ci < 10 and ci == fid_ci95(x, y, n_boot=50, seed=1) != fid_ci95(x, y, n_boot=50, seed=2)
    assert math.isnan(frechet_distance(x[:1], y[:1])) and math.isnan(fid_ci95(x[:1], y[:1]))


def _kid_by_loops(x, y, subsets, size, seed):
    """KID written out: per subset of pairs, the mean over i != j of
    k(x_i, x_j) + k(y_i, y_j) - k(x_i, y_j) - k(x_j, y_i), k(a, b) = (a.b / d + 1)^3."""
    n, d = x.shape
    m = min(size, n)
    rng = np.random.RandomState(seed)
    draws = [rng.choice(n, m, replace=False) for _ in range(subsets)] if m < n else [np.arange(n)]

    def k(a, b):
        return (sum(float(a[t]) * float(b[t]) for t in range(d)) / d + 1.0) ** 3

    vals = []
    for s in draws:
        total = 0.0
        for i in s:
            for j in s:
                if i != j:
                    total += k(x[i], x[j]) + k(y[i], y[j]) - k(x[i], y[j]) - k(x[j], y[i])
        vals.append(total / (m * (m - 1)))
    return sum(vals) / len(vals)


def test_kid_equals_a_written_out_kid():
    rng = np.random.default_rng(3)
    x, y = rng.random((9, 6)), rng.random((9, 6)) * 1.5
    assert kid(x, y, subsets=4, subset_size=5, seed=7) == pytest.approx(_kid_by_loops(x, y, 4, 5, 7), abs=1e-9)
    assert kid(x, y, subset_size=1000) == pytest.approx(_kid_by_loops(x, y, 100, 1000, 0), abs=1e-9)
    # a perfect output scores 0, not below: the matched output-ground-truth terms are left out
    assert kid(x, x) == pytest.approx(0.0, abs=1e-12)
    ci = kid_ci95(x, y, n_boot=50, seed=0)
    assert 0 < ci < 1 and math.isnan(kid(x[:1], y[:1])) and math.isnan(kid_ci95(x[:1], y[:1]))


def _run(tmp_path, name, *extra, env=None):
    proto = tmp_path / "fid.toml"
    proto.write_text(PROTO)
    return sairbench("run", "--protocol", proto, *RUN, "--results", tmp_path / "res", "--name", name, *extra, env=env)


def test_without_weights_fid_and_kid_are_nan_with_the_reason_and_one_line(tmp_path, offline):
    out = _run(tmp_path, "nofid", env={"SAIRBENCH_FID_WEIGHTS": None, "COLUMNS": "120"})
    assert_ok(out)
    lines = [ln for ln in (out.stdout + out.stderr).splitlines() if "FID/KID" in ln]
    assert len(lines) == 1 and len(lines[0]) <= 100 and "SAIRBENCH_FID_WEIGHTS" in lines[0], lines
    folder = tmp_path / "res" / "nofid"
    summary = pd.read_csv(folder / "summary.csv")
    sets = summary[summary.metric.isin(["fid", "kid"])]
    assert len(sets) == 2 * 2 * 4 and sets["mean"].isna().all() and (sets["n"] == 0).all()  # models x (3 buckets + all)
    assert summary[summary.metric == "psnr"]["mean"].notna().all()
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["fid"]["available"] is False and meta["fid"]["inception_sha256"] is None
    assert FID_WEIGHTS_FILENAME in meta["fid"]["reason"] and "SAIRBENCH_FID_WEIGHTS" in meta["fid"]["reason"]


@pytest.mark.parametrize("content", ["not a torch file", "pickle", "other layout"])
def test_a_wrong_weights_file_gives_nan_and_the_reason(tmp_path, offline, monkeypatch, content):
    bad = tmp_path / "bad.pth"
    if content == "not a torch file":
        bad.write_text("hello")
    elif content == "pickle":  # weights_only=True refuses to build arbitrary objects
        torch.save({"w": torch.zeros(1), "obj": SairbenchError("x")}, bad)
    else:
        torch.save({"fc.weight": torch.zeros(3, 3)}, bad)
    monkeypatch.setenv("SAIRBENCH_FID_WEIGHTS", str(bad))
    with pytest.warns(RuntimeWarning, match="FID/KID are NaN") as caught:
        feats = InceptionFeatures()
    assert not feats.available and str(bad) in feats.reason and feats.weights_sha256 is None
    assert len(caught) == 1 and len(str(caught[0].message)) <= 100
    with pytest.raises(RuntimeError):
        feats(_images(1, 8, 8, 0))


def test_run_writes_fid_and_kid_per_bucket_and_pins_the_weights(tmp_path, weights, offline, monkeypatch):
    from sairbench.metrics.set_level import FEATURE_COLUMNS

    path, state = weights
    monkeypatch.setenv("SAIRBENCH_FID_WEIGHTS", str(path))
    proto = tmp_path / "fid.toml"
    proto.write_text(PROTO)
    invoke(["run", "--protocol", str(proto), *RUN, "--results", str(tmp_path / "res"), "--name", "f"])
    folder = tmp_path / "res" / "f"
    summary = pd.read_csv(folder / "summary.csv")
    assert list(dict.fromkeys(summary.metric)) == ["psnr", "fid", "kid"]
    sets = summary[summary.metric.isin(["fid", "kid"])]
    assert sorted(set(sets.bucket)) == ["0-20%", "20-40%", "40-60%", "all"] and len(sets) == 2 * 8
    assert np.isfinite(sets["mean"]).all() and (sets[sets.bucket != "all"]["n"] == 2).all()
    assert (sets[sets.bucket == "all"]["n"] == 6).all()
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["fid"] == {"available": True, "reason": "", "inception_file": str(path),
                           "inception_sha256": weights_digest(state)}
    assert "pool3" in meta["conventions"]["fid"] and "(x.y / 2048 + 1)^3" in meta["conventions"]["kid"]
    per_image = pd.read_parquet(folder / "per_image.parquet")
    assert not set(FEATURE_COLUMNS) & set(per_image.columns)
    # the summary's FID of a bucket is that of the features its parts hold for that bucket's pairs
    part = pd.read_parquet(next((folder / "parts" / "biharmonic").glob("*.parquet")))
    rows = part[part.bucket == "20-40%"]
    x, y = (np.stack([np.frombuffer(b, "<f4") for b in rows[c]]) for c in FEATURE_COLUMNS)
    assert len(rows) == 2 and np.abs(x - y).max() > 0
    fid_row = sets[(sets.bucket == "20-40%") & (sets.metric == "fid") & (sets.model == "biharmonic")]
    assert float(fid_row["mean"].iloc[0]) == pytest.approx(frechet_distance(x, y), rel=1e-12)
    for shard in ("1/2", "2/2"):  # two invocations, each its chunks: the features travel in the parts
        invoke(["run", "--protocol", str(proto), *RUN, "--results", str(tmp_path / "res"), "--name", "s",
                "--shard", shard])
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "res" / "s" / "summary.csv"), summary)
    invoke(["report", str(folder), "--out", str(tmp_path / "report")])  # the report shows them with their convention
    report = (tmp_path / "report" / "report.md").read_text()
    assert "FID↓ 20–40%" in report and "KID↓ All mask ratios" in report and "pool3 features (2048-d)" in report
    # resuming with other weights would mix two networks' features: refused by the run's fingerprint
    other = tmp_path / "other.pth"
    random_fid_weights(other, seed=1)
    monkeypatch.setenv("SAIRBENCH_FID_WEIGHTS", str(other))
    with pytest.raises(SairbenchError, match="other settings"):
        invoke(["run", "--protocol", str(proto), *RUN, "--results", str(tmp_path / "res"), "--name", "f", "--resume"])


def test_eval_refuses_fid_and_kid_in_one_line(tmp_path, offline):
    """`sairbench eval` scores per image: a protocol naming fid/kid gets the fix, nothing is written."""
    proto = tmp_path / "fid.toml"
    proto.write_text(PROTO)
    invoke(["masks", "export", "--protocol", str(proto), "--limit", "2", "--size", "32", "--out", str(tmp_path / "ex")])
    pairs = pd.read_csv(tmp_path / "ex" / "pairs.csv")
    (tmp_path / "preds").mkdir()
    for r in pairs.itertuples():  # the inputs as predictions: any image of the right size
        shown = (tmp_path / "ex" / "inputs" / r.input_file).read_bytes()
        (tmp_path / "preds" / f"{r.pred_name}.png").write_bytes(shown)
    out = sairbench("eval", "--pred-dir", tmp_path / "preds", "--gt-dir", tmp_path / "ex" / "gt", "--mask-dir",
                    tmp_path / "ex" / "masks", "--name", "o", "--results", tmp_path / "res")
    line = error_line(out)
    assert "fid, kid" in line and "scored over sets by `sairbench run` only" in line and "drop them" in line
    assert not (tmp_path / "res" / "o").exists()
