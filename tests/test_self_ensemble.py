"""Geometric self-ensemble: the averaged model is equivariant to its transforms, recorded in the spec,
and selectable per run / per inpaint."""

import json

import pandas as pd
import pytest
import torch

from sairbench.checkpoint import build
from sairbench.errors import SairbenchError
from sairbench.models.implicit import ImplicitInpainter
from tests.helpers import invoke
from tests.test_train import SMALL_SPEC


def _model(n=1, **extra):
    torch.manual_seed(0)
    return ImplicitInpainter(**{**SMALL_SPEC, **extra}, self_ensemble=n)


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


def test_the_setting_is_recorded_in_the_spec_and_rebuilt():
    model = _model(1)
    assert "self_ensemble" not in model.spec["args"]  # the paper's models keep their spec
    model.set_self_ensemble(8)
    again = build({"model": {"name": "liif", "args": model.spec, "sd": model.state_dict()}})
    assert again.self_ensemble == 8 and again.spec["args"]["self_ensemble"] == 8
    again.set_self_ensemble(1)
    assert "self_ensemble" not in again.spec["args"]
    for bad in (3, 0, True):
        with pytest.raises(SairbenchError, match="self-ensemble"):
            model.set_self_ensemble(bad)


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


def test_train_records_the_inference_setting_in_the_checkpoint():
    from sairbench.train import make_config

    assert make_config("liif", self_ensemble=8).model_options() == {"self_ensemble": 8}
    assert make_config("liif").model_options() == {}
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
