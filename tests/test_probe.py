"""The SIR mIoU probe (paper Tab. 6): the mIoU convention, segmentation, the protocol end to end."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn as nn

from sairbench.data import CELEBAMASK_CLASSES
from sairbench.errors import SairbenchError
from sairbench.models import make
from sairbench.options import RunOptions
from sairbench.probe import bootstrap_miou_ci95, class_counts, miou, segment
from sairbench.protocol import Protocol, load_protocol

# image 0: a 3x4 label map with two ignore pixels; image 1: all class 0, predicted right
LABEL0 = [[0, 0, 1, 1],
          [0, 0, 1, 1],
          [2, 2, 255, 255]]
PRED0 = [[0, 1, 1, 1],
         [0, 0, 1, 2],
         [2, 0, 0, 1]]


def _set(n_images=1):
    label = np.array([LABEL0, np.zeros((3, 4))][:n_images], dtype=np.int64)
    pred = np.array([PRED0, np.zeros((3, 4))][:n_images], dtype=np.int64)
    return pred, label


def test_miou_hand_computed_one_image():
    pred, label = _set(1)
    # class 0: I=3, U=4+4-3=5; class 1: I=3, U=5; class 2: I=1, U=2+2-1=3; class 3: absent -> NaN
    m, per_class = miou(pred, label, n_classes=4)
    np.testing.assert_allclose(per_class[:3], [0.6, 0.6, 1 / 3])
    assert math.isnan(per_class[3])
    assert m == pytest.approx((0.6 + 0.6 + 1 / 3) / 3)


def test_miou_accumulates_over_the_set_not_per_image():
    pred, label = _set(2)
    m, per_class = miou(pred, label, n_classes=4)
    # image 1 adds 12 right pixels of class 0: I=15, U=17
    np.testing.assert_allclose(per_class[:3], [15 / 17, 0.6, 1 / 3])
    assert m == pytest.approx((15 / 17 + 0.6 + 1 / 3) / 3)
    per_image_mean = (miou(pred[:1], label[:1], 4)[0] + miou(pred[1:], label[1:], 4)[0]) / 2
    assert m != pytest.approx(per_image_mean)
    # torch tensors are accepted too
    assert miou(torch.from_numpy(pred), torch.from_numpy(label), 4)[0] == pytest.approx(m)


def test_miou_region_and_ignore():
    pred, label = _set(2)
    region = np.zeros_like(label, dtype=bool)
    region[0, :, 3] = True  # last column of image 0: (label 1, pred 1), (label 1, pred 2), (ignore, pred 1)
    m, per_class = miou(pred, label, n_classes=4, region=region)
    # class 1: I=1, U=1+2-1=2; class 2 predicted but absent from the label: IoU 0 (counted);
    # classes 0 and 3 have union 0 in the region: NaN; the ignore pixel's prediction is dropped
    assert math.isnan(per_class[0]) and math.isnan(per_class[3])
    assert per_class[1] == pytest.approx(0.5)
    assert per_class[2] == 0.0
    assert m == pytest.approx(0.25)
    # an empty region: no class left
    m_empty, pc_empty = miou(pred, label, 4, region=np.zeros_like(region))
    assert math.isnan(m_empty) and np.isnan(pc_empty).all()


def test_class_counts_rejects_out_of_range():
    with pytest.raises(ValueError):
        class_counts(np.array([[5]]), np.array([[0]]), n_classes=4)


def test_bootstrap_ci_is_seeded_and_zero_for_identical_images():
    pred, label = _set(1)
    c = class_counts(pred, label, 4)
    same = np.stack([c] * 5)
    assert bootstrap_miou_ci95(same, seed=0) == pytest.approx(0.0, abs=1e-12)
    rng = np.random.default_rng(1)
    counts = np.stack([class_counts(rng.integers(0, 3, (3, 4)), label[0], 4) for _ in range(6)])
    a, b = bootstrap_miou_ci95(counts, seed=3), bootstrap_miou_ci95(counts, seed=3)
    assert a == b and a > 0
    assert math.isnan(bootstrap_miou_ci95(counts[:1]))


def _spec(embed_dim=16):
    return {"name": "semantic-branch", "args": {
        "encoder": {"name": "indomain-encoder", "args": {"classes": list(CELEBAMASK_CLASSES), "embed_dim": embed_dim, "width": 16}},
        "filler": "sir", "sir": {"hidden": [16], "context_layers": 1, "context_width": 16}}}


def test_segment_naive_and_sir_paths():
    torch.manual_seed(0)
    branch = make(_spec(embed_dim=4)).eval()
    e = torch.eye(4)
    class_emb = e[:3] * 2.0  # (L=3, C=4); segment normalises it
    # SIR made to answer class 2's direction everywhere: last layer weight 0, bias = e2
    last = [m for m in branch.sir.decoder.imnet if isinstance(m, nn.Linear)][-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(e[2] * 3.0)
    image = torch.rand(1, 3, 8, 8)
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., 2:6, 2:6] = 1
    with torch.no_grad():
        state = branch.gen_feat(image * (1 - mask), mask)
        assert state["emb"].shape[-2:] == (2, 2)
        # masked embedding grid: left column class 0, right column class 1
        state["emb"] = torch.stack([e[0], e[1]], dim=-1).view(4, 1, 2).expand(4, 2, 2).unsqueeze(0).clone()
        naive = segment(branch, state, class_emb, (8, 8), use_sir=False)
        sir = segment(branch, state, class_emb, (8, 8), use_sir=True)
    expected = torch.zeros(1, 8, 8, dtype=torch.long)
    expected[..., 4:] = 1  # bilinear upsampling of a 2-cell row to 8 pixels: 4 + 4
    assert naive.shape == (1, 8, 8) and naive.dtype == torch.long
    assert torch.equal(naive, expected)
    assert torch.equal(sir, torch.full((1, 8, 8), 2))


def test_segment_sir_matches_dense_in_chunks(monkeypatch):
    torch.manual_seed(0)
    branch = make(_spec()).eval()
    image, mask = torch.rand(2, 3, 16, 16), (torch.rand(2, 1, 16, 16) > 0.6).float()
    class_emb = branch.encoder.class_embeddings()
    with torch.no_grad():
        state = branch.gen_feat(image * (1 - mask), mask)
        ref = torch.einsum("bchw,lc->blhw", nn.functional.normalize(branch.dense(state, (16, 16)), dim=1), class_emb).argmax(1)
        monkeypatch.setattr("sairbench.models.sir.DENSE_CHUNK", 100)  # several chunks, one across the image boundary
        got = segment(branch, state, class_emb, (16, 16), use_sir=True)
    assert torch.equal(got, ref)


def _tiny_protocol():
    return Protocol(name="sir-miou-test", kind="sir-miou",
                    dataset={"name": "synthetic-faces", "split": "test", "size": 64, "limit": 4},
                    masks={"source": "generated", "per_bucket": 2}, metrics={"names": ["miou"]},
                    models={"names": ["sir"]})


@pytest.fixture
def sir_checkpoint(tmp_path):
    torch.manual_seed(0)
    spec = _spec()
    branch = make(spec)
    path = tmp_path / "sir.pt"
    torch.save({"model": {"name": "sir", "size": "tiny", "args": spec, "sd": branch.state_dict()}, "step": 0}, path)
    return path


def test_run_miou_probe_end_to_end(tmp_path, sir_checkpoint):
    from sairbench.run import run_protocol

    def job():
        return RunOptions(protocol=_tiny_protocol(), results=str(tmp_path / "results"),
                          checkpoint=[f"sir={sir_checkpoint}"]).resolve(progress=False)

    out = run_protocol(job())
    for f in ("per_image.parquet", "summary.csv", "meta.json", "run.json"):
        assert (out / f).is_file(), f
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary.columns) == ["model", "bucket", "metric", "mean", "ci95", "n"]
    assert set(summary["model"]) == {"encoder", "encoder+sir"}
    assert set(summary["metric"]) == {"miou", "miou_hole"}
    assert set(summary["bucket"]) == {"0-20%", "20-40%", "40-60%", "all"}
    assert len(summary) == 2 * 4 * 2
    assert summary["mean"].between(0, 1).all()
    assert (summary["n"] == 4).all()
    per_image = pd.read_parquet(out / "per_image.parquet")
    assert len(per_image) == 4 * 3 * 2
    assert {"image", "mask", "bucket", "ratio", "model", "variant", "pixel_acc", "pixel_acc_hole"} <= set(per_image.columns)
    assert per_image["pixel_acc"].between(0, 1).all()
    meta = json.loads((out / "meta.json").read_text())
    assert meta["protocol"] == "sir-miou-test" and meta["kind"] == "sir-miou"
    assert set(meta["semantic_encoder"].values()) == {"indomain"}
    assert "nanmean" in meta["conventions"]["miou"]
    assert meta["masks"]["source"] == "generated"
    # a second run never overwrites the first
    again = run_protocol(job())
    assert again != out and again.name.endswith("-2")
    pd.testing.assert_frame_equal(pd.read_csv(again / "summary.csv"), summary)


def test_missing_checkpoint_is_a_clear_error(tmp_path, monkeypatch):
    import sairbench.checkpoint as checkpoint
    from sairbench.probe import run_miou_probe

    monkeypatch.setattr(checkpoint, "shipped_path", lambda *a, **k: tmp_path / "sir-tiny-synthetic-faces.safetensors")
    with pytest.raises(SairbenchError, match=r"sairbench train semantic.*sairbench train sir.*--train-missing"):
        run_miou_probe(RunOptions(protocol=_tiny_protocol(), results=str(tmp_path / "results")).resolve(progress=False))
    assert not (tmp_path / "results").exists()


def test_protocol_file():
    proto = load_protocol("sir-miou")
    assert proto.kind == "sir-miou"
    from sairbench.pairs import dataset_settings

    assert proto.dataset["name"] == "synthetic-faces" and dataset_settings(proto)["limit"] == 100
    assert proto.models["names"] == ["sir"] and proto.metrics["names"] == ["miou"]
