"""A convention named after a peer computes that peer's formula.

* SSIM "lama" against LaMa's evaluator (advimman/lama, saicinpainting/evaluation/losses/ssim.py,
  class SSIM as SSIMScore calls it), written out here with numpy: explicit zero padding, per
  channel, on [0, 1] values, the whole map averaged per image; on Telea fills of synthetic-faces
  images with generated masks, at 64x64 and 256x256.
* SSIM "skimage-gaussian" (what "lama" computed before: scikit-image's Gaussian SSIM on the valid
  region) and the default "skimage" against scikit-image itself.
* The SIR probe's mIoU ("mmsegmentation's") against mmsegmentation's IoUMetric written out here.
* The default convention against the SAIR release's test.py scoring, and the one difference the
  docs state (rounding, where test.py truncates).
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sairbench.errors import SairbenchError
from sairbench.metrics import METRICS, SSIM_CONVENTIONS, conventions_dict, psnr_batch, ssim, ssim_batch, summary_values, to_uint8
from sairbench.metrics.registry import SSIM_CONVENTION_TEXT
from tests.helpers import invoke

SKIMAGE_TEXT = ("SSIM: scikit-image, uint8 RGB, data_range=255, channel_axis=-1, 7x7 uniform window, "
                "sample covariance.")


def _telea_fills(size: int, n: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """(preds, gts) uint8 (n, size, size, 3): synthetic-faces test images, one generated mask per
    bucket, the hole filled by OpenCV's Telea (radius 3)."""
    from sairbench.data import get_dataset
    from sairbench.masks import generate_mask_set

    ds = get_dataset("synthetic-faces", size=size, limit=n, labels=False)
    masks = generate_mask_set(1, (size, size), seed=size)
    gts = np.stack([ds[i].image for i in range(n)])
    preds = np.stack([cv2.inpaint(gts[i], masks[i % len(masks)].mask.astype(np.uint8) * 255, 3, cv2.INPAINT_TELEA)
                      for i in range(n)])
    assert not np.array_equal(preds, gts)
    return preds, gts


def _lama_ssim_numpy(preds: np.ndarray, gts: np.ndarray) -> np.ndarray:
    """LaMa's SSIM per image, written out: img1 = prediction, img2 = target, both uint8 / 255; an
    11x11 window of exp(-(x - 5)^2 / (2 * 1.5^2)) normalised, correlated with every channel of the
    zero-padded (5 px) image; the map's mean over channels, then rows, then columns."""
    g = np.exp(-((np.arange(11) - 5.0) ** 2) / (2 * 1.5**2))
    g /= g.sum()
    window = np.outer(g, g)
    out = []
    for p, t in zip(preds, gts):
        img1 = p.astype(np.float64).transpose(2, 0, 1) / 255.0
        img2 = t.astype(np.float64).transpose(2, 0, 1) / 255.0
        c, h, w = img1.shape

        def conv(a):
            padded = np.zeros((c, h + 10, w + 10))
            padded[:, 5:5 + h, 5:5 + w] = a
            acc = np.zeros((c, h, w))
            for i in range(11):
                for j in range(11):
                    acc += window[i, j] * padded[:, i:i + h, j:j + w]
            return acc

        mu1, mu2 = conv(img1), conv(img2)
        sigma1_sq = conv(img1 * img1) - mu1**2
        sigma2_sq = conv(img2 * img2) - mu2**2
        sigma12 = conv(img1 * img2) - mu1 * mu2
        c1, c2 = 0.01**2, 0.03**2
        ssim_map = ((2 * mu1 * mu2 + c1) * (2 * sigma12 + c2)) / ((mu1**2 + mu2**2 + c1) * (sigma1_sq + sigma2_sq + c2))
        out.append(ssim_map.mean(0).mean(0).mean(0))
    return np.array(out)


# --------------------------------------------------------------------------------------- "lama"


@pytest.mark.parametrize("size", [64, 256])
def test_lama_is_lamas_evaluator_formula_on_telea_fills(size):
    preds, gts = _telea_fills(size)
    ours = ssim_batch(preds, gts, "lama")
    ref = _lama_ssim_numpy(preds, gts)
    assert ours.dtype == np.float64 and ours.shape == (3,)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-6)
    for i in range(3):
        assert ssim(preds[i], gts[i], "lama") == pytest.approx(ref[i], abs=1e-6)
    # the zero-padded border counts in LaMa's mean: not the valid-region Gaussian SSIM
    assert np.max(np.abs(ours - ssim_batch(preds, gts, "skimage-gaussian"))) > 1e-4


def test_lama_agrees_with_lamas_float32_run():
    """LaMa's evaluator runs F.conv2d in float32 (groups = channels, padding 5); the float64 value
    here is within float32 rounding of it."""
    preds, gts = _telea_fills(64)
    img1 = torch.from_numpy(preds).permute(0, 3, 1, 2).float() / 255
    img2 = torch.from_numpy(gts).permute(0, 3, 1, 2).float() / 255
    g = torch.exp(-((torch.arange(11, dtype=torch.float32) - 5) ** 2) / 4.5)
    g = g / g.sum()
    window = (g[:, None] @ g[None, :]).expand(3, 1, 11, 11).contiguous()

    def conv(a):
        return F.conv2d(a, window, padding=5, groups=3)

    mu1, mu2 = conv(img1), conv(img2)
    s1, s2, s12 = conv(img1 * img1) - mu1**2, conv(img2 * img2) - mu2**2, conv(img1 * img2) - mu1 * mu2
    m = ((2 * mu1 * mu2 + 1e-4) * (2 * s12 + 9e-4)) / ((mu1**2 + mu2**2 + 1e-4) * (s1 + s2 + 9e-4))
    np.testing.assert_allclose(ssim_batch(preds, gts, "lama"), m.mean(1).mean(1).mean(1).double().numpy(),
                               rtol=0, atol=2e-5)


def test_lama_hostile_images():
    rng = np.random.default_rng(0)
    tiny_p, tiny_g = (rng.integers(0, 256, (2, 5, 7, 3), dtype=np.uint8) for _ in range(2))
    # smaller than the window: LaMa's zero padding still gives a value; the valid-region one refuses
    np.testing.assert_allclose(ssim_batch(tiny_p, tiny_g, "lama"), _lama_ssim_numpy(tiny_p, tiny_g), rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="window"):
        ssim_batch(tiny_p, tiny_g, "skimage-gaussian")
    black = np.zeros((1, 16, 16, 3), np.uint8)
    white = np.full((1, 16, 16, 3), 255, np.uint8)
    assert ssim_batch(black, black, "lama")[0] == pytest.approx(1.0, abs=1e-12)  # C1, C2 keep 0/0 away
    assert ssim_batch(white, black, "lama")[0] == pytest.approx(_lama_ssim_numpy(white, black)[0], abs=1e-9)
    assert ssim_batch(white, black, "lama")[0] < 0.01
    one_row = rng.integers(0, 256, (3, 1, 40, 3), dtype=np.uint8)
    np.testing.assert_allclose(ssim_batch(one_row, one_row[::-1], "lama"),
                               _lama_ssim_numpy(one_row, one_row[::-1]), rtol=0, atol=1e-6)


def test_lama_batch_chunks_do_not_change_values(monkeypatch):
    preds, gts = _telea_fills(64)
    whole = ssim_batch(preds, gts, "lama")
    monkeypatch.setattr("sairbench.metrics.pixel.SSIM_CHUNK_PIXELS", 64 * 64)  # one image per chunk
    np.testing.assert_array_equal(ssim_batch(preds, gts, "lama"), whole)


# ------------------------------------------------------------------- "skimage", "skimage-gaussian"


def test_skimage_gaussian_is_the_former_lama_and_skimage_is_unchanged():
    from skimage.metrics import structural_similarity

    preds, gts = _telea_fills(64)
    gauss = [structural_similarity(gts[i], preds[i], data_range=255, channel_axis=-1, gaussian_weights=True,
                                   sigma=1.5, use_sample_covariance=False) for i in range(3)]
    plain = [structural_similarity(gts[i], preds[i], data_range=255, channel_axis=-1) for i in range(3)]
    np.testing.assert_allclose(ssim_batch(preds, gts, "skimage-gaussian"), gauss, rtol=0, atol=1e-9)
    np.testing.assert_allclose(ssim_batch(preds, gts, "skimage"), plain, rtol=0, atol=1e-9)
    np.testing.assert_allclose(ssim_batch(preds, gts), plain, rtol=0, atol=1e-9)
    assert ssim(preds[0], gts[0], "skimage-gaussian") == pytest.approx(gauss[0], abs=1e-12)


def test_convention_texts_say_what_is_computed():
    assert SSIM_CONVENTIONS == ("skimage", "skimage-gaussian", "lama")
    assert conventions_dict()["ssim"] == SKIMAGE_TEXT  # the default run's meta.json is unchanged
    lama = conventions_dict("lama")
    assert lama["ssim_convention"] == "lama"
    for part in ("LaMa's evaluator", "advimman/lama", "saicinpainting/evaluation/losses/ssim.py", "zero padding",
                 "C1 = 0.01^2", "every pixel"):
        assert part in lama["ssim"], part
    gauss = conventions_dict("skimage-gaussian")["ssim"]
    assert "valid region" in gauss and "use_sample_covariance=False" in gauss
    # only the convention named after LaMa speaks of LaMa
    assert [k for k, v in SSIM_CONVENTION_TEXT.items() if "lama" in v.lower()] == ["lama"]
    for name in SSIM_CONVENTIONS:
        assert f"'{name}'" in METRICS["ssim"].convention
    with pytest.raises(SairbenchError, match="use one of skimage, skimage-gaussian, lama"):
        conventions_dict("LaMa")


# ------------------------------------------------------------------------ protocols and run folders

PROTO = """
name = "lama-ssim"
seed = 3
[dataset]
name = "synthetic-faces"
split = "test"
size = 32
limit = 2
[masks]
source = "generated"
per_bucket = 1
[metrics]
names = ["psnr", "ssim"]
ssim = "{ssim}"
[models]
names = ["telea"]
"""


@pytest.fixture(scope="module")
def lama_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("lama-ssim")
    proto = root / "p.toml"
    proto.write_text(PROTO.format(ssim="lama"))
    invoke(["run", "--protocol", str(proto), "--results", str(root / "r"), "--name", "a", "--threads", "1"])
    return proto, root / "r" / "a"


def test_a_protocol_with_ssim_lama_runs_and_records_it(lama_run):
    _, run = lama_run
    meta = json.loads((run / "meta.json").read_text())
    assert meta["conventions"]["ssim_convention"] == "lama"
    assert meta["conventions"]["ssim"] == SSIM_CONVENTION_TEXT["lama"]
    assert json.loads((run / "run.json").read_text())["ssim_definition"] == SSIM_CONVENTION_TEXT["lama"]
    import pandas as pd

    rows = pd.read_parquet(run / "per_image.parquet")
    assert len(rows) == 6 and rows["ssim"].between(0, 1).all()


def test_resume_refuses_a_run_scored_under_the_former_lama(lama_run, tmp_path):
    """A folder written before "lama" became LaMa's formula has no ssim_definition in run.json:
    its parts hold the valid-region Gaussian SSIM, so --resume must not add new-formula rows."""
    import shutil

    from sairbench.runfolder import fingerprint_of

    proto, run = lama_run
    old = tmp_path / "r" / "a"
    shutil.copytree(run, old)
    settings = json.loads((old / "run.json").read_text())
    settings.pop("fingerprint")
    settings.pop("ssim_definition")
    (old / "run.json").write_text(json.dumps({"fingerprint": fingerprint_of(settings), **settings}, indent=2))
    with pytest.raises(SairbenchError, match="run.json: that run used other settings"):
        invoke(["run", "--protocol", str(proto), "--results", str(tmp_path / "r"), "--name", "a", "--threads", "1",
                "--resume"])


def test_shipped_protocols_accept_every_convention(tmp_path):
    from pathlib import Path

    from sairbench.protocol import load_protocol

    root = Path(__file__).resolve().parents[1] / "protocols"
    text = (root / "liu2018-masks.toml").read_text()
    assert 'ssim = "skimage"' in text and '"lama"' in text and '"skimage-gaussian"' in text  # the comment names them
    assert load_protocol(str(root / "liu2018-masks.toml")).metrics.ssim == "skimage"
    for name in SSIM_CONVENTIONS:
        p = tmp_path / f"{name}.toml"
        p.write_text(text.replace('ssim = "skimage"', f'ssim = "{name}"', 1))
        assert load_protocol(str(p)).metrics.ssim == name
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace('ssim = "skimage"', 'ssim = "lama-style"', 1))
    with pytest.raises(SairbenchError, match=r"bad.toml: 'metrics.ssim' = 'lama-style' is not one of skimage, "
                                             r"skimage-gaussian, lama"):
        load_protocol(str(bad))


# ------------------------------------------------------------------- the other peer-named conventions


def _mmseg_miou(preds, labels, n_classes, ignore=255):
    """mmsegmentation's IoUMetric, written out: per image, drop ignored label pixels, float
    histograms (torch.histc) of the intersection, the prediction and the label; sum them over the
    set; IoU = intersection / union (0 / 0 = NaN; divided in float64 here); mIoU = nanmean."""
    inter_t = union_t = 0
    for p, t in zip(preds, labels):
        p, t = torch.as_tensor(p), torch.as_tensor(t)
        keep = t != ignore
        p, t = p[keep].float(), t[keep].float()
        hist = lambda v: torch.histc(v, bins=n_classes, min=0, max=n_classes - 1)  # noqa: E731
        area_i, area_p, area_t = hist(p[p == t]), hist(p), hist(t)
        inter_t = inter_t + area_i
        union_t = union_t + area_p + area_t - area_i
    iou = (inter_t.double() / union_t.double()).numpy()  # counts exact in float32; mmseg divides in float32 (~1e-7)
    return float(np.nanmean(iou)), iou


def test_miou_is_mmsegmentations():
    from sairbench.probe import miou

    rng = np.random.default_rng(3)
    n_classes = 7
    labels = rng.integers(0, 5, (4, 12, 10))  # classes 5 and 6 never in a label
    labels[:, :2] = 255
    preds = np.where(rng.random(labels.shape) < 0.6, labels, rng.integers(0, 7, labels.shape)) % n_classes
    preds[preds == 5] = 0  # class 5: neither labelled nor predicted -> NaN, skipped; class 6: predicted only -> 0
    value, per_class = miou(preds, labels, n_classes)
    ref, ref_class = _mmseg_miou(preds, labels, n_classes)
    assert value == pytest.approx(ref, abs=1e-12)
    np.testing.assert_allclose(per_class, ref_class, rtol=0, atol=1e-12)
    assert np.isnan(per_class[5]) and per_class[6] == 0.0
    region = rng.random(labels.shape) < 0.4  # the hole region: mmseg with the rest ignored
    value, _ = miou(preds, labels, n_classes, region=region)
    assert value == pytest.approx(_mmseg_miou(preds, np.where(region, labels, 255), n_classes)[0], abs=1e-12)


def test_default_scores_as_the_sair_release_test_py_except_quantisation():
    """tsingqguo/sair test.py: min(100, compare_psnr(gt, pre)) and compare_ssim(gt, pre,
    data_range=255, channel_axis=2) on uint8 images it makes by truncation (astype(np.uint8))."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    preds, gts = _telea_fills(64)
    preds[1] = gts[1]
    sair_psnr = [min(100, peak_signal_noise_ratio(gts[i], preds[i])) if not np.array_equal(gts[i], preds[i]) else 100
                 for i in range(3)]
    sair_ssim = [structural_similarity(gts[i], preds[i], data_range=255, channel_axis=2) for i in range(3)]
    np.testing.assert_allclose(summary_values("psnr", psnr_batch(preds, gts)), sair_psnr, rtol=0, atol=1e-9)
    np.testing.assert_allclose(ssim_batch(preds, gts), sair_ssim, rtol=0, atol=1e-9)
    x = np.full((2, 2, 3), 0.7 / 255)  # the stated difference: this suite rounds, test.py truncates
    assert to_uint8(x)[0, 0, 0] == 1 and (np.clip(x, 0, 1) * 255.0).astype(np.uint8)[0, 0, 0] == 0
