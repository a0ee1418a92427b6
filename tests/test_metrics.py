"""Metrics against independent computations (formulas, a numpy SSIM, the lpips package itself)."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from sairbench import metrics
from sairbench.errors import SairbenchError
from sairbench.metrics import (
    CONVENTIONS,
    HIGHER_IS_BETTER,
    IMAGE_METRICS,
    METRICS,
    LPIPSScorer,
    Metric,
    l1,
    l1_batch,
    psnr,
    psnr_batch,
    score_batch,
    ssim,
    ssim_batch,
    summary_values,
    to_uint8,
)


def _smooth_pair(h=24, w=20, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 9 % 256, yy * 7 % 256, (xx + yy) * 5 % 256], -1).astype(np.float64)
    gt = np.clip(base + rng.normal(0, 10, base.shape), 0, 255).astype(np.uint8)
    pred = np.clip(gt.astype(np.float64) + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
    return pred, gt


# ---------------------------------------------------------------------------------------------
# constants and conversion
# ---------------------------------------------------------------------------------------------


def test_contract_constants():
    assert metrics.default_metrics() == ["psnr", "ssim", "l1", "lpips"]
    assert IMAGE_METRICS == ("psnr", "ssim", "l1", "lpips", "psnr_hole", "l1_hole")  # the in-hole ones: when named
    assert list(METRICS) == ["psnr", "ssim", "l1", "lpips", "psnr_hole", "l1_hole", "miou", "miou_hole", "fid", "kid"]
    assert metrics.default_metrics("sir-miou") == ["miou"]
    assert HIGHER_IS_BETTER == {"psnr": True, "ssim": True, "l1": False, "lpips": False, "psnr_hole": True,
                                "l1_hole": False, "miou": True, "miou_hole": True, "fid": False, "kid": False}
    assert list(CONVENTIONS) == ["common", *metrics.default_metrics()]
    for m in metrics.default_metrics():
        assert isinstance(CONVENTIONS[m], str) and CONVENTIONS[m] == METRICS[m].convention
    assert "7x7" in CONVENTIONS["ssim"] and "data_range=255" in CONVENTIONS["psnr"]
    assert "[-1, 1]" in CONVENTIONS["lpips"]
    lama = metrics.conventions_dict("lama")
    assert lama["ssim_convention"] == "lama" and "11x11" in lama["ssim"]


def test_to_uint8_torch_and_numpy():
    t = torch.tensor([0.0, 0.5, 1.0, -0.2, 1.3, float("nan")]).reshape(1, 1, 6).expand(3, 1, 6)
    out = to_uint8(t)
    assert out.dtype == np.uint8 and out.shape == (1, 6, 3)
    assert out[0, :, 0].tolist() == [0, 128, 255, 0, 255, 0]
    arr = np.full((4, 5, 3), 0.2)
    assert to_uint8(arr).shape == (4, 5, 3) and np.all(to_uint8(arr) == 51)
    batch = torch.rand(2, 3, 4, 5)
    ub = to_uint8(batch)
    assert ub.shape == (2, 4, 5, 3)
    np.testing.assert_array_equal(ub[1], to_uint8(batch[1]))
    u8 = np.zeros((3, 3, 3), np.uint8)
    assert to_uint8(u8) is u8
    with pytest.raises(ValueError):
        to_uint8(torch.rand(4, 5))


# ---------------------------------------------------------------------------------------------
# PSNR, SSIM, L1
# ---------------------------------------------------------------------------------------------


def test_psnr_known_values():
    gt = np.zeros((8, 8, 3), np.uint8)
    pred = np.full((8, 8, 3), 10, np.uint8)
    assert psnr(pred, gt) == pytest.approx(20 * math.log10(255 / 10), abs=1e-9)
    p, g = _smooth_pair()
    mse = np.mean((p.astype(np.float64) - g) ** 2)
    assert psnr(p, g) == pytest.approx(10 * math.log10(255**2 / mse), abs=1e-9)
    assert psnr(gt, gt) == float("inf")


def test_psnr_summary_cap():
    vals = summary_values("psnr", [float("inf"), 30.0, float("nan"), 120.0])
    assert vals[0] == metrics.PSNR_CAP_DB and vals[1] == 30.0 and math.isnan(vals[2]) and vals[3] == 100.0
    assert summary_values("ssim", [float("inf")])[0] == float("inf")


def _numpy_ssim(a: np.ndarray, b: np.ndarray, window: np.ndarray, sample_cov: bool) -> float:
    """Independent SSIM: explicit windows over the valid region, per channel, then averaged."""
    from numpy.lib.stride_tricks import sliding_window_view

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    np_ = window.size
    norm = np_ / (np_ - 1) if sample_cov else 1.0
    vals = []
    for c in range(a.shape[-1]):
        x = sliding_window_view(a[..., c].astype(np.float64), window.shape)
        y = sliding_window_view(b[..., c].astype(np.float64), window.shape)
        mx = (x * window).sum((-1, -2))
        my = (y * window).sum((-1, -2))
        vx = ((x * x) * window).sum((-1, -2)) - mx**2
        vy = ((y * y) * window).sum((-1, -2)) - my**2
        cxy = ((x * y) * window).sum((-1, -2)) - mx * my
        vx, vy, cxy = vx * norm, vy * norm, cxy * norm
        s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
        vals.append(s.mean())
    return float(np.mean(vals))


def test_ssim_identical_is_one():
    p, g = _smooth_pair()
    assert ssim(g, g) == pytest.approx(1.0, abs=1e-12)
    assert ssim(g, g, convention="lama") == pytest.approx(1.0, abs=1e-12)
    assert ssim(p, g) < 0.99


def test_ssim_matches_numpy_skimage_convention():
    p, g = _smooth_pair(24, 20, seed=1)
    window = np.full((7, 7), 1 / 49)
    assert ssim(p, g) == pytest.approx(_numpy_ssim(p, g, window, sample_cov=True), abs=1e-9)


def test_ssim_matches_numpy_skimage_gaussian_convention():
    p, g = _smooth_pair(30, 26, seed=2)
    x = np.arange(-5, 6)
    k = np.exp(-(x**2) / (2 * 1.5**2))
    k /= k.sum()
    window = np.outer(k, k)
    assert ssim(p, g, convention="skimage-gaussian") == pytest.approx(_numpy_ssim(p, g, window, sample_cov=False), abs=1e-7)
    assert ssim(p, g, "skimage-gaussian") != pytest.approx(ssim(p, g, "skimage"), abs=1e-4)


def test_ssim_unknown_convention():
    p, g = _smooth_pair()
    with pytest.raises(SairbenchError, match="SSIM convention"):
        ssim(p, g, convention="matlab")


def test_l1_known_value():
    gt = np.zeros((4, 4, 3), np.uint8)
    pred = gt.copy()
    pred[..., 0] = 51  # one channel off by 0.2 -> mean over all channels 0.2 / 3
    assert l1(pred, gt) == pytest.approx(0.2 / 3, abs=1e-12)
    assert l1(gt, gt) == 0.0


def test_metric_inputs_are_checked():
    with pytest.raises(ValueError, match="uint8"):
        psnr(np.zeros((4, 4, 3)), np.zeros((4, 4, 3)))
    with pytest.raises(ValueError, match="shape"):
        l1(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 5, 3), np.uint8))


# ---------------------------------------------------------------------------------------------
# batched PSNR, SSIM, L1 against the per-image definitions
# ---------------------------------------------------------------------------------------------


def _noisy_batch(n, h, w, seed):
    """n random pairs (N, H, W, 3) uint8; pair 0 identical, pair 1 black vs white (if n > 1)."""
    rng = np.random.default_rng(seed)
    gts = rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8)
    preds = np.clip(gts.astype(int) + rng.integers(-60, 61, gts.shape), 0, 255).astype(np.uint8)
    preds[0] = gts[0]
    if n > 1:
        gts[1], preds[1] = 0, 255
    return preds, gts


BATCH_SIZES = [(1, 1), (2, 3), (5, 6), (7, 7), (9, 13), (31, 17), (64, 48)]


@pytest.mark.parametrize("h,w", BATCH_SIZES)
def test_psnr_and_l1_batch_equal_per_image(h, w):
    preds, gts = _noisy_batch(4, h, w, seed=h * 100 + w)
    ref_psnr = [psnr(preds[i], gts[i]) for i in range(4)]
    ref_l1 = [l1(preds[i], gts[i]) for i in range(4)]
    np.testing.assert_array_equal(psnr_batch(preds, gts), ref_psnr)
    np.testing.assert_array_equal(l1_batch(preds, gts), ref_l1)
    assert psnr_batch(preds, gts)[0] == float("inf") and l1_batch(preds, gts)[0] == 0.0


def _skimage_ssim(pred, gt, convention):
    from skimage.metrics import structural_similarity

    extra = {} if convention == "skimage" else {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False}
    return structural_similarity(gt, pred, data_range=255, channel_axis=-1, **extra)


@pytest.mark.parametrize("convention", ["skimage", "skimage-gaussian"])
@pytest.mark.parametrize("h,w", [(7, 7), (9, 13), (11, 11), (12, 31), (31, 17), (64, 48)])
def test_ssim_batch_matches_skimage(convention, h, w):
    if convention == "skimage-gaussian" and min(h, w) < 11:
        pytest.skip("the 11x11 window needs 11 px")
    preds, gts = _noisy_batch(5, h, w, seed=h * 100 + w)
    preds[2] = gts[2] // 2
    ours = ssim_batch(preds, gts, convention)
    ref = [_skimage_ssim(preds[i], gts[i], convention) for i in range(5)]
    assert ours.shape == (5,) and ours.dtype == np.float64
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-9)
    assert ours[0] == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("convention,side", [("skimage", 6), ("skimage-gaussian", 10)])
def test_ssim_batch_too_small_raises_like_skimage(convention, side):
    preds, gts = _noisy_batch(2, side, side + 20, seed=0)
    with pytest.raises(ValueError):
        _skimage_ssim(preds[0], gts[0], convention)
    with pytest.raises(ValueError, match="window"):
        ssim_batch(preds, gts, convention)


def test_batched_metrics_chunk_boundaries(monkeypatch):
    preds, gts = _noisy_batch(7, 16, 12, seed=5)
    whole = score_batch(preds, gts, metrics=("psnr", "ssim", "l1"))
    monkeypatch.setattr("sairbench.metrics.pixel.DIFF_CHUNK_PIXELS", 3 * 16 * 12)
    monkeypatch.setattr("sairbench.metrics.pixel.SSIM_CHUNK_PIXELS", 2 * 16 * 12)
    chunked = score_batch(preds, gts, metrics=("psnr", "ssim", "l1"))
    for m in whole:
        np.testing.assert_array_equal(chunked[m], whole[m])
    np.testing.assert_allclose(whole["ssim"], [_skimage_ssim(preds[i], gts[i], "skimage") for i in range(7)], atol=1e-9)


def test_batched_metrics_check_inputs():
    preds, gts = _noisy_batch(2, 8, 8, seed=0)
    with pytest.raises(ValueError, match="uint8"):
        psnr_batch(preds.astype(np.float64), gts)
    with pytest.raises(ValueError, match="shape"):
        ssim_batch(preds, gts[:, :7])
    single = score_batch(preds[1], gts[1], metrics=("psnr", "l1"))
    assert single["psnr"].shape == (1,) and single["l1"][0] == l1(preds[1], gts[1])


# ---------------------------------------------------------------------------------------------
# LPIPS
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def no_vgg_weights(tmp_path, monkeypatch):
    """A machine without VGG16 weights: empty hub cache, no environment variable, fresh warnings."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.delenv(metrics.VGG16_ENV, raising=False)
    monkeypatch.setattr("sairbench.errors._WARNED", set())
    return tmp_path


@pytest.fixture(scope="module")
def vgg_file(tmp_path_factory):
    """A randomly initialised torchvision VGG16 (features only) saved like torchvision's file."""
    from types import SimpleNamespace

    from torchvision.models import vgg

    torch.manual_seed(123)
    features = vgg.make_layers(vgg.cfgs["D"], batch_norm=False)  # torchvision's vgg16().features
    for m in features.modules():
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.normal_(m.bias, 0, 0.1)  # non-zero biases, so the mapping of biases is tested
    path = tmp_path_factory.mktemp("vgg") / "vgg16-random.pth"
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, path)
    return path, SimpleNamespace(features=features)


def _batch(n=2, h=48, w=40, seed=0):
    rng = np.random.default_rng(seed)
    gts = rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8)
    preds = np.clip(gts.astype(int) + rng.integers(-40, 41, gts.shape), 0, 255).astype(np.uint8)
    return preds, gts


def test_lpips_unavailable_is_nan_with_one_warning(no_vgg_weights):
    with pytest.warns(RuntimeWarning, match="LPIPS is NaN"):
        scorer = LPIPSScorer()
    assert scorer.available is False and "vgg16-397923af.pth" in scorer.reason
    preds, gts = _batch(3, 16, 16)
    out = scorer(preds, gts)
    assert out.shape == (3,) and np.all(np.isnan(out))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = LPIPSScorer()  # same reason: no second warning
        assert np.all(np.isnan(again(preds, gts)))
    vals = score_batch(preds, gts, lpips_scorer=scorer)
    assert list(vals) == metrics.default_metrics() and np.all(np.isnan(vals["lpips"]))
    assert np.all(np.isfinite(vals["psnr"]))


def test_lpips_missing_given_file_is_unavailable(no_vgg_weights, tmp_path):
    with pytest.warns(RuntimeWarning):
        scorer = LPIPSScorer(backbone_weights=tmp_path / "nope.pth")
    assert not scorer.available and "nope.pth" in scorer.reason


def test_lpips_bad_weights_file_is_unavailable(no_vgg_weights, tmp_path):
    bad = tmp_path / "bad.pth"
    torch.save({"something": torch.zeros(3)}, bad)
    with pytest.warns(RuntimeWarning, match="not a torchvision VGG16"):
        scorer = LPIPSScorer(backbone_weights=bad)
    assert not scorer.available
    assert np.all(np.isnan(scorer(*_batch(1, 16, 16))))


def test_lpips_equals_lpips_package_with_same_trunk(vgg_file, no_vgg_weights, monkeypatch):
    import lpips

    path, tv_model = vgg_file
    scorer = LPIPSScorer(backbone_weights=path)
    assert scorer.available and not scorer.random_backbone
    preds, gts = _batch(3)
    ours = scorer(preds, gts)

    # reference: the lpips package slicing the very same torchvision model itself
    monkeypatch.setattr(lpips.pretrained_networks.tv, "vgg16", lambda *a, **k: tv_model)
    ref_net = lpips.LPIPS(net="vgg", verbose=False).eval()
    with torch.no_grad():
        x0 = torch.from_numpy(preds).permute(0, 3, 1, 2).float() / 127.5 - 1
        x1 = torch.from_numpy(gts).permute(0, 3, 1, 2).float() / 127.5 - 1
        ref = ref_net(x0, x1).flatten().double().numpy()
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-6)
    assert np.all(ours > 0)
    same = scorer(gts, gts)
    assert np.all(np.abs(same) < 1e-6)

    # the environment variable finds the same file
    monkeypatch.setenv(metrics.VGG16_ENV, str(path))
    via_env = LPIPSScorer()
    assert via_env.available and via_env.weights_path == path
    np.testing.assert_allclose(via_env(preds, gts), ours, rtol=1e-6)

    # and so does the torch hub cache, under torchvision's file name
    monkeypatch.delenv(metrics.VGG16_ENV)
    cache = Path(torch.hub.get_dir()) / "checkpoints"
    cache.mkdir(parents=True)
    (cache / metrics.VGG16_FILENAME).symlink_to(path)
    via_cache = LPIPSScorer()
    assert via_cache.available and via_cache.weights_path == cache / metrics.VGG16_FILENAME


def test_lpips_random_backbone_is_seeded(no_vgg_weights):
    preds, gts = _batch(2, 32, 32, seed=3)
    with pytest.warns(RuntimeWarning, match="RANDOM"):
        a = LPIPSScorer(allow_random_backbone=True, seed=7)
    b = LPIPSScorer(allow_random_backbone=True, seed=7)
    assert a.available and a.random_backbone
    va, vb = a(preds, gts), b(preds, gts)
    np.testing.assert_array_equal(va, vb)
    assert np.all(np.isfinite(va)) and np.all(va > 0)
    assert np.all(np.abs(a(gts, gts)) < 1e-6)
    wa = a.model.net.slice1[0].weight
    with pytest.warns(RuntimeWarning, match="seed 8"):
        c = LPIPSScorer(allow_random_backbone=True, seed=8)
    assert not torch.equal(wa, c.model.net.slice1[0].weight)


def test_score_batch_matches_single_image_functions():
    preds, gts = _batch(3, 16, 16, seed=4)

    class Fake:
        def __call__(self, p, g):
            return np.arange(len(p), dtype=np.float64)

    out = score_batch(preds, gts, lpips_scorer=Fake(), ssim_convention="lama")
    for i in range(3):
        assert out["psnr"][i] == psnr(preds[i], gts[i])
        assert out["ssim"][i] == pytest.approx(ssim(preds[i], gts[i], "lama"), abs=1e-12)
        assert out["l1"][i] == l1(preds[i], gts[i])
    np.testing.assert_array_equal(out["lpips"], [0, 1, 2])
    only = score_batch(preds, gts, metrics=("l1",))
    assert list(only) == ["l1"]
    with pytest.raises(SairbenchError, match="unknown metric"):
        score_batch(preds, gts, metrics=("fid",))


def test_lpips_channels_last_gives_the_same_values(no_vgg_weights):
    preds, gts = _batch(3, 32, 40, seed=6)
    with pytest.warns(RuntimeWarning, match="RANDOM"):
        nchw = LPIPSScorer(allow_random_backbone=True, seed=1, channels_last=False)
    nhwc = LPIPSScorer(allow_random_backbone=True, seed=1, channels_last=True)
    assert nhwc.model.net.slice1[0].weight.is_contiguous(memory_format=torch.channels_last)
    np.testing.assert_allclose(nhwc(preds, gts), nchw(preds, gts), rtol=1e-5, atol=1e-7)


def test_default_lpips_scorer_per_device(no_vgg_weights, monkeypatch):
    monkeypatch.setattr("sairbench.metrics.lpips_scorer._DEFAULT_SCORERS", {})
    with pytest.warns(RuntimeWarning, match="LPIPS is NaN"):
        cpu = metrics.default_lpips_scorer()
    assert cpu.device == "cpu" and metrics.default_lpips_scorer("cpu") is cpu
    seen = []
    monkeypatch.setattr("sairbench.metrics.lpips_scorer.LPIPSScorer", lambda device="cpu": seen.append(device) or cpu)
    preds, gts = _batch(1, 16, 16)
    score_batch(preds, gts, metrics=("lpips",), device="cuda:0")
    assert seen == ["cuda:0"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_lpips_on_cuda_matches_cpu(no_vgg_weights):
    preds, gts = _batch(4, 64, 64, seed=7)
    with pytest.warns(RuntimeWarning, match="RANDOM"):
        cpu = LPIPSScorer(allow_random_backbone=True, seed=2)
    gpu = LPIPSScorer(allow_random_backbone=True, seed=2, device="cuda")
    assert next(gpu.model.parameters()).is_cuda
    np.testing.assert_allclose(gpu(preds, gts), cpu(preds, gts), rtol=1e-5)


# ---------------------------------------------------------------------------------------------
# the metric registry: one record per metric, read by scoring, reports, protocols
# ---------------------------------------------------------------------------------------------


def test_registry_records_are_frozen_and_complete():
    for name, m in METRICS.items():
        assert isinstance(m, Metric) and m.name == name and m.title and m.convention
        assert m.direction in ("higher", "lower") and m.decimals >= 0
        assert (m.fn is not None) == (name in IMAGE_METRICS)
    with pytest.raises(AttributeError):
        METRICS["psnr"].decimals = 5  # frozen
    with pytest.raises(ValueError, match="direction"):
        Metric("x", "sideways", 2, "text", False, None)
    assert METRICS["psnr"].label == "PSNR (dB) ↑" and METRICS["lpips"].label == "LPIPS ↓"
    with pytest.raises(SairbenchError, match="unknown metric 'nope'; known: psnr"):
        metrics.get_metric("nope")


def test_score_batch_uses_each_records_scorer():
    preds, gts = _batch(3, 16, 12, seed=4)
    vals = score_batch(preds, gts, ["l1", "ssim", "psnr"], ssim_convention="lama")
    assert list(vals) == ["l1", "ssim", "psnr"]
    ctx = metrics.ScoreContext("lama")
    for name in vals:
        np.testing.assert_array_equal(vals[name], METRICS[name].fn(preds, gts, ctx))
    np.testing.assert_array_equal(vals["ssim"], ssim_batch(preds, gts, "lama"))
    with pytest.raises(SairbenchError, match="unknown metric.*miou"):
        score_batch(preds, gts, ["miou"])  # a whole-set metric of the SIR probe: nothing to score per image


def test_report_and_summary_read_the_registry():
    from sairbench.report.naming import DECIMALS, DIRECTION, METRIC_NAMES, format_number, metric_title

    for name, m in METRICS.items():
        assert DIRECTION[name] == m.higher_is_better and DECIMALS[name] == m.decimals and METRIC_NAMES[name] == m.title
    assert metric_title("l1") == "L1↓" and metric_title("miou_hole") == "mIoU (hole)↑"
    assert format_number(0.12345, "miou_hole", "md") == "0.12" and format_number(31.456, "psnr", "md") == "31.46"
    assert summary_values("psnr", [math.inf])[0] == METRICS["psnr"].cap
    assert summary_values("l1", [math.inf])[0] == math.inf


def test_protocol_metric_names_checked_against_the_registry(tmp_path):
    from sairbench.protocol import load_protocol

    base = 'name = "p"\n[metrics]\n'
    bad = tmp_path / "bad.toml"
    bad.write_text(base + 'names = ["psnr", "psnrr"]\n')
    with pytest.raises(SairbenchError, match=r"bad.toml: 'metrics.names': unknown metric\(s\) 'psnrr'.*known: psnr, ssim, l1, lpips"):
        load_protocol(str(bad))
    miou_in_inpainting = tmp_path / "m.toml"
    miou_in_inpainting.write_text(base + 'names = ["miou"]\n')
    with pytest.raises(SairbenchError, match="for a protocol of kind inpainting"):
        load_protocol(str(miou_in_inpainting))
    ssim = tmp_path / "s.toml"
    ssim.write_text(base + 'ssim = "gauss"\n')
    with pytest.raises(SairbenchError, match="'metrics.ssim' = 'gauss' is not one of skimage, skimage-gaussian, lama"):
        load_protocol(str(ssim))
    plain = tmp_path / "plain.toml"
    plain.write_text('name = "plain"\n')
    assert load_protocol(str(plain)).metrics.names == metrics.default_metrics()
    probe = tmp_path / "probe.toml"
    probe.write_text('name = "probe"\nkind = "sir-miou"\n')
    assert load_protocol(str(probe)).metrics.names == ["miou"]

