"""Geometric self-ensemble: a wrapper around any inpainter whose answer is equivariant to its
transforms, recorded in a checkpoint's inference settings (outside the spec), applied by the loader
and selectable per run / per inpaint."""

import json

import pandas as pd
import pytest
import torch

from sairbench.checkpoint import build, set_inference, upgrade
from sairbench.errors import SairbenchError
from sairbench.models.implicit import ImplicitInpainter
from sairbench.models.self_ensemble import SelfEnsemble, unwrap, with_self_ensemble
from tests.helpers import invoke
from tests.test_train import SMALL_SPEC


def _model(n=1, **extra):
    torch.manual_seed(0)
    return with_self_ensemble(ImplicitInpainter(**{**SMALL_SPEC, **extra}), n)


def _inputs(h=24, w=20):
    g = torch.Generator().manual_seed(1)
    x = torch.rand(1, 3, h, w, generator=g)
    m = torch.zeros(1, 1, h, w)
    m[..., 5:15, 3:11] = 1
    m[..., 18:21, 12:19] = 1
    return x * (1 - m), m


@pytest.mark.parametrize("region", ["all", "hole"])
def test_the_averaged_model_is_equivariant_to_flips_and_the_transpose(region):
    x, m = _inputs()
    plain, ens = _model(1), _model(8)
    h = lambda t: t.flip(-1)  # noqa: E731
    t = lambda z: z.transpose(-1, -2)  # noqa: E731
    y = ens.inpaint(x, m, region=region)
    assert torch.allclose(ens.inpaint(h(x), h(m), region=region), h(y), atol=1e-6)
    assert torch.allclose(ens.inpaint(t(x), t(m), region=region), t(y), atol=1e-6)
    # the plain model is not equivariant, so the property above is earned by the averaging
    p = plain.inpaint(x, m, region=region)
    assert (plain.inpaint(h(x), h(m), region=region) - h(p)).abs().max() > 1e-3
    # and the ensemble is the mean of the transformed plain answers
    two = _model(2).inpaint(x, m, region=region)
    assert torch.allclose(two, (p + h(plain.inpaint(h(x), h(m), region=region))) / 2, atol=1e-6)


def test_off_is_the_plain_model_and_sizes_follow_the_transpose():
    x, m = _inputs()
    torch.manual_seed(0)
    a = ImplicitInpainter(**SMALL_SPEC)
    assert torch.equal(_model(1).inpaint(x, m), a.inpaint(x, m))
    out = _model(8).inpaint(x, m, size=(30, 50))  # super-resolved, non-square: transposed passes swap sizes
    assert out.shape == (1, 3, 30, 50)


def test_the_wrapper_forwards_the_model_and_is_set_unset_and_rewrapped():
    model = _model(1)
    assert isinstance(model, ImplicitInpainter) and "self_ensemble" not in model.spec["args"]
    ens = with_self_ensemble(model, 8)
    assert isinstance(ens, SelfEnsemble) and ens.self_ensemble == 8 and ens.inference == {"self_ensemble": 8}
    assert (ens.name, ens.any_size, ens.min_side, ens.tileable, ens.spec) == \
           (model.name, True, model.min_side, model.tileable, model.spec)
    assert ens.state_dict().keys() == model.state_dict().keys() and ens.semantic is None
    assert with_self_ensemble(ens, None) is ens and with_self_ensemble(ens, 1) is model
    assert with_self_ensemble(model, 1) is model and unwrap(ens) is model
    four = with_self_ensemble(ens, 4)
    assert four.inner is model and four.self_ensemble == 4  # never a wrapper of a wrapper
    assert ens.to("cpu") is ens and not ens.eval().training
    for bad in (3, 0, True):
        with pytest.raises(SairbenchError, match="self-ensemble"):
            with_self_ensemble(model, bad)


def test_the_checkpoint_records_it_outside_the_spec_and_the_loader_applies_it():
    model = _model(1)
    ckpt = {"model": {"name": "liif", "args": model.spec, "sd": model.state_dict()}}
    assert build(ckpt).__class__ is ImplicitInpainter
    set_inference(ckpt, self_ensemble=8)
    assert ckpt["model"]["inference"] == {"self_ensemble": 8} and "self_ensemble" not in ckpt["model"]["args"]["args"]
    again = build(ckpt)
    assert isinstance(again, SelfEnsemble) and again.self_ensemble == 8
    assert again.checkpoint_info["model"]["inference"] == {"self_ensemble": 8}
    x, m = _inputs()
    assert torch.equal(again.inpaint(x, m), _model(8).inpaint(x, m))
    assert set_inference(ckpt, self_ensemble=None)["model"]["inference"] == {"self_ensemble": 8}  # None: as it is
    assert "inference" not in set_inference(ckpt, self_ensemble=1)["model"]  # 1 is the default: not recorded
    # a spec that held the setting as a model argument is read as the inference setting
    old = {"model": {"name": "liif", "sd": model.state_dict(),
                     "args": {"name": "implicit-inpainter", "args": {**model.spec["args"], "self_ensemble": 4}}}}
    old = upgrade(old)
    assert old["model"]["args"] == model.spec and old["model"]["inference"] == {"self_ensemble": 4}
    assert build(old).self_ensemble == 4
    for bad, match in (({"self_ensemble": 3}, "self-ensemble 3"), ({"tta": 2}, "unknown inference settings")):
        with pytest.raises(SairbenchError, match=match):
            build({"model": {**ckpt["model"], "inference": bad}}, "x.pt")


def test_any_inpainter_can_be_wrapped():
    from sairbench.registry import create_model

    telea = create_model("telea")
    ens = with_self_ensemble(telea, 2)
    x, m = _inputs(24, 24)
    flip = lambda t: t.flip(-1)  # noqa: E731
    expected = (telea.inpaint(x, m).float() + flip(telea.inpaint(flip(x), flip(m))).float()) / 2
    assert torch.equal(ens.inpaint(x, m), expected)
    assert ens.name == telea.name and ens.any_size is False and ens.to("cpu") is ens


def test_run_applies_and_records_the_self_ensemble(tmp_path, proto):
    from tests.test_cli import _small_checkpoint

    ck = _small_checkpoint(tmp_path)
    res = tmp_path / "results"
    common = ["run", "--protocol", str(proto), "--results", str(res), "--model", "liif@small",
              "--checkpoint", f"liif@small={ck}"]
    invoke([*common, "--name", "off"])
    invoke([*common, "--name", "x8", "--self-ensemble", "8"])
    meta = json.loads((res / "x8" / "meta.json").read_text())
    assert meta["model_info"]["liif@small"]["self_ensemble"] == 8
    assert "self_ensemble" not in json.loads((res / "off" / "meta.json").read_text())["model_info"]["liif@small"]
    a, b = (pd.read_parquet(res / n / "per_image.parquet") for n in ("off", "x8"))
    assert (a["psnr"] - b["psnr"]).abs().max() > 1e-6  # other predictions, same pairs
    assert list(a["image"]) == list(b["image"]) and list(a["mask"]) == list(b["mask"])


def test_train_checks_the_inference_setting():
    from sairbench.train import make_config

    with pytest.raises(SairbenchError, match="--self-ensemble 3"):
        make_config("liif", self_ensemble=3)


def test_the_report_says_which_models_average(tmp_path, proto):
    from sairbench.report.settings import describe_self_ensembles
    from tests.test_cli import _small_checkpoint

    assert describe_self_ensembles([{"model_info": {"telea": {"class": "Telea"}}}]) == ""
    metas = [{"model_info": {"a": {"self_ensemble": 8}, "b": {}}},
             {"model_info": {"c": {"self_ensemble": 2}, "a": {"self_ensemble": 8}}}]
    assert describe_self_ensembles(metas) == "x2 (c); x8 (a)"
    ck = _small_checkpoint(tmp_path)
    res = tmp_path / "results"
    invoke(["run", "--protocol", str(proto), "--results", str(res), "--name", "x4", "--model", "liif@small",
            "--checkpoint", f"liif@small={ck}", "--self-ensemble", "4"])
    invoke(["report", str(res / "x4"), "--out", str(tmp_path / "rep")])
    assert "Self-ensemble (mean over flips/transposes): x4 (liif@small)" in (tmp_path / "rep" / "report.md").read_text()
