"""LaMa and CoordFill inside the suite: the released key layouts, safe reading of released files
(a crafted malicious checkpoint is not executed), inpainting at the protocol sizes, the one-line
layout error, conversion to safetensors, and `sairbench run` with random weights in the released
layout."""

import json
import math
import os
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from sairbench.errors import SairbenchError
from sairbench.registry import get_spec
from sairbench_baselines import coordfill as cf
from sairbench_baselines import lama
from sairbench_baselines.released import Opaque, ReleasedFile, convert_main, pad_symmetric, read_state_dict
from tests.helpers import invoke

ROOT = Path(__file__).resolve().parents[1]


class TrainingConfig:
    """Stands in for the configuration objects a Lightning checkpoint pickles."""

    def __init__(self):
        self.generator = {"kind": "ffc_resnet", "n_blocks": 18}
        self.lr = 1e-3


class Payload:
    """A crafted object whose unpickling would run a shell command (creating ``marker``)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def random_(net: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random weights and BN statistics (positive variances), so every tensor of the layout matters."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in net.state_dict().items():
            if t.dtype.is_floating_point:
                t.copy_(torch.rand(t.shape, generator=g) * 0.5 + 0.75 if name.endswith("running_var")
                        else torch.randn(t.shape, generator=g) * (0.05 if t.dim() > 1 else 0.1))
    return net.eval()


def save_lightning(gen: torch.nn.Module, path: Path, extra: dict | None = None) -> Path:
    """big-lama's container: a Lightning checkpoint, weights under ``state_dict`` as ``generator.*``
    next to other modules' weights and pickled non-tensor objects."""
    sd = OrderedDict((f"generator.{k}", v) for k, v in gen.state_dict().items())
    sd["discriminator.model0.0.ffc.convl2l.weight"] = torch.randn(64, 3, 4, 4)
    torch.save({"epoch": 40, "global_step": 123456, "pytorch-lightning_version": "1.2.9", "state_dict": sd,
                "hyper_parameters": TrainingConfig(), "callbacks": {"ModelCheckpoint": TrainingConfig()},
                "optimizer_states": [{"state": {}, "param_groups": [{"lr": 1e-3}]}], **(extra or {})}, path)
    return path


def save_coordfill(net: torch.nn.Module, path: Path) -> Path:
    """CoordFill's container: ``torch.save(model.encoder.state_dict())``."""
    torch.save(net.state_dict(), path)
    return path


def holes(size: int, batch: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(size)
    image = torch.rand(batch, 3, size, size, generator=g)
    mask = torch.zeros(batch, 1, size, size)
    mask[..., size // 4: size // 2, size // 3: 2 * size // 3] = 1
    mask[..., -3:, :5] = 1  # a hole touching the padded border
    return image, mask


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """Full-size random generators saved in the released containers (built once)."""
    d = tmp_path_factory.mktemp("released")
    torch.manual_seed(0)
    gen, net = random_(lama.LamaGenerator()), random_(cf.CoordFillNet(), 1)
    return {"lama": save_lightning(gen, d / "best.ckpt"), "coordfill": save_coordfill(net, d / "encoder-epoch-last.pth"),
            "dir": d}


# ---------------------------------------------------------------- the released layouts


def test_lama_layout_is_big_lamas():
    sd = lama.LamaGenerator().state_dict()
    assert len(sd) == 989 and sum(v.numel() for v in sd.values()) == 51_057_179
    shapes = {"model.1.ffc.convl2l.weight": (64, 4, 7, 7), "model.2.ffc.convl2l.weight": (128, 64, 3, 3),
              "model.4.ffc.convl2g.weight": (384, 256, 3, 3), "model.4.bn_g.running_var": (384,),
              "model.5.conv1.ffc.convg2g.conv1.0.weight": (192, 384, 1, 1),
              "model.5.conv1.ffc.convg2g.conv1.1.running_mean": (192,),
              "model.5.conv1.ffc.convg2g.fu.conv_layer.weight": (384, 384, 1, 1),
              "model.22.conv2.ffc.convg2l.weight": (128, 384, 3, 3), "model.22.conv2.bn_g.num_batches_tracked": (),
              "model.24.weight": (512, 256, 3, 3), "model.31.running_var": (64,),
              "model.34.weight": (3, 64, 7, 7), "model.34.bias": (3,)}
    for key, shape in shapes.items():
        assert tuple(sd[key].shape) == shape, key
    assert not any(k.startswith(("model.0.", "model.23.", "model.33.", "model.35.")) for k in sd)
    assert not any(".convl2g." in k or ".convg2" in k for k in sd if k.startswith(("model.1.", "model.2.", "model.3.")))


def test_coordfill_layout_is_the_released_encoders():
    sd = cf.CoordFillNet().state_dict()
    assert len(sd) == 272 and sum(v.numel() for v in sd.values()) == 31_655_879
    shapes = {"asap.lowres_stream.out_para.0.weight": (12995, 513), "asap.lowres_stream.out_para.0.bias": (12995,),
              "refine.dowm.1.ffc.convl2l.weight": (64, 4, 7, 7), "refine.dowm.2.ffc.convl2l.weight": (128, 64, 4, 4),
              "refine.dowm.4.ffc.convl2g.weight": (384, 256, 4, 4), "refine.dowm.4.bn_g.weight": (384,),
              "refine.block1.add.ffc.convg2g.conv1.0.weight": (192, 384, 1, 1),
              "refine.block1.add.ffc.convg2g.fu.bn.running_var": (384,),
              "refine.block3.minus.ffc.convl2l.weight": (128, 513, 3, 3),
              "refine.block6.mask.ffc.convg2l.weight": (1, 384, 3, 3), "refine.block6.mask.bn_l.weight": (1,)}
    for key, shape in shapes.items():
        assert tuple(sd[key].shape) == shape, key
    assert not any(".convg2g.conv1.1." in k for k in sd)  # CoordFill's spectral conv1 has no BN
    assert cf.mlp_splits()[1] == 12995 == 4 * 64 + 64 + 3 * (64 * 64 + 64) + 64 * 3 + 3


# ---------------------------------------------------------------- safe reading


def test_a_malicious_checkpoint_is_not_executed(tmp_path):
    marker = tmp_path / "pwned"
    gen = random_(lama.LamaGenerator(8, 1))
    bad = save_lightning(gen, tmp_path / "bad.ckpt", {"hyper_parameters": Payload(marker), "loops": [Payload(marker)]})
    # the payload is live: an ordinary torch.load (weights_only=False) in another process runs it
    code = f"import torch; torch.load({str(bad)!r}, weights_only=False)"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, timeout=120)
    assert marker.exists()
    marker.unlink()
    f = ReleasedFile(bad)
    assert isinstance(f.root["hyper_parameters"], Opaque) and "system" in f.root["hyper_parameters"].global_name
    f.close()
    model = lama.make_lama(str(bad), ngf=8, n_blocks=1)  # the weights load; the payload stays inert
    assert model.checkpoint_info["step"] == 123456 and not marker.exists()
    # a payload where a weight should be: refused in one line, not run
    sd = {f"generator.{k}": v for k, v in gen.state_dict().items()}
    sd["generator.model.1.ffc.convl2l.weight"] = Payload(marker)
    torch.save({"state_dict": sd}, tmp_path / "bad2.ckpt")
    with pytest.raises(SairbenchError, match="model.1.ffc.convl2l.weight' of its state dict is not a tensor"):
        lama.make_lama(str(tmp_path / "bad2.ckpt"), ngf=8, n_blocks=1)
    assert not marker.exists()


def test_not_a_checkpoint_is_one_line(tmp_path):
    (tmp_path / "x.ckpt").write_bytes(b"\x80\x04K\x01.")  # a bare pickle, not a torch zip
    with pytest.raises(SairbenchError, match="not a PyTorch zip checkpoint"):
        read_state_dict(tmp_path / "x.ckpt")
    with pytest.raises(SairbenchError, match="no such file"):
        read_state_dict(tmp_path / "missing.pth")


def test_layout_mismatch_names_the_first_key(tmp_path, released):
    small = random_(lama.LamaGenerator(8, 1))
    with pytest.raises(SairbenchError) as err:  # a smaller generator: first key has another shape
        lama.make_lama(str(save_lightning(small, tmp_path / "small.ckpt")))
    msg = str(err.value)
    assert "\n" not in msg and "first mismatched key 'model.1.ffc.convl2l.weight' has shape [8, 4, 7, 7]" in msg
    sd = random_(cf.CoordFillNet(8)).state_dict()
    sd["refine.block2.add.ffc.convl2g.weight_renamed"] = sd.pop("refine.block2.add.ffc.convl2g.weight")
    torch.save(sd, tmp_path / "renamed.pth")
    with pytest.raises(SairbenchError, match="first mismatched key 'refine.block2.add.ffc.convl2g.weight' is missing"):
        cf.make_coordfill(str(tmp_path / "renamed.pth"), width=8)
    sd["refine.block2.add.ffc.convl2g.weight"] = sd.pop("refine.block2.add.ffc.convl2g.weight_renamed")
    sd["refine.extra.weight"] = torch.zeros(1)
    torch.save(sd, tmp_path / "extra.pth")
    with pytest.raises(SairbenchError, match="first mismatched key 'refine.extra.weight' is not in it"):
        cf.make_coordfill(str(tmp_path / "extra.pth"), width=8)
    with pytest.raises(SairbenchError, match="not the CoordFill .* layout"):  # LaMa's file is no CoordFill file
        cf.make_coordfill(str(released["lama"]))


# ---------------------------------------------------------------- inpainting


@pytest.mark.parametrize("size", [64, 256])
def test_both_load_and_inpaint_at_the_protocol_sizes(tmp_path, size):
    gen, net = random_(lama.LamaGenerator(8, 2)), random_(cf.CoordFillNet(8), 1)
    models = [lama.make_lama(str(save_lightning(gen, tmp_path / "l.ckpt")), ngf=8, n_blocks=2),
              cf.make_coordfill(str(save_coordfill(net, tmp_path / "c.pth")), width=8)]
    image, mask = holes(size, batch=2)
    for model, src in zip(models, (gen, net)):
        assert all(torch.equal(v, src.state_dict()[k]) for k, v in model.net.state_dict().items())
        out = model.inpaint(image * (1 - mask), mask)
        assert out.shape == image.shape and torch.isfinite(out).all() and 0 <= float(out.min()) <= float(out.max()) <= 1
        assert torch.equal(out * (1 - mask), image * (1 - mask))  # composited: known pixels as given
        assert float((out - image * (1 - mask)).abs()[mask.expand_as(out).bool()].mean()) > 1e-3  # the hole is filled
        with pytest.raises(SairbenchError, match="answers the input size only"):
            model.inpaint(image, mask, size=(2 * size, 2 * size))


def test_lama_pads_like_its_predict_script():
    x = torch.arange(2 * 3 * 5 * 7, dtype=torch.float32).reshape(2, 3, 5, 7)
    ref = np.pad(x.numpy(), ((0, 0), (0, 0), (0, 3), (0, 9)), mode="symmetric")
    assert np.array_equal(pad_symmetric(x, 8, 16).numpy(), ref)
    gen = random_(lama.LamaGenerator(8, 1))
    model = lama.LamaInpainter(gen, "lama", {})
    image, mask = torch.rand(1, 3, 13, 21), torch.zeros(1, 1, 13, 21)
    mask[..., 3:9, 4:12] = 1
    inp = torch.cat([image * (1 - mask), mask], 1)
    with torch.no_grad():
        want = gen(torch.from_numpy(np.pad(inp.numpy(), ((0, 0), (0, 0), (0, 3), (0, 3)), mode="symmetric")))
    out = model.inpaint(image * (1 - mask), mask)
    assert torch.allclose(out, want[..., :13, :21] * mask + image * (1 - mask), atol=1e-6)


def test_coordfill_queries_each_pixel_with_its_cells_mlp():
    """The tiled, hole-only query equals a pixel-by-pixel evaluation of the released formulas."""
    net = random_(cf.CoordFillNet(8), 2)
    s, g = 128, 32
    k = s // g
    image, mask = holes(s)
    known = 1 - mask
    x = (image * 2 - 1) * known
    with torch.no_grad():
        out = net(x, known)
        lr = torch.nn.functional.interpolate(x, size=(256, 256), mode="bilinear", align_corners=False)
        lk = torch.nn.functional.interpolate(known, size=(256, 256), mode="nearest")
        feats = net.refine(torch.cat([lr * lk, lk], 1))[0].permute(1, 2, 0)
        axis = (torch.arange(s) % k).float() / k  # the release's code, over the whole axis
        xc = axis / (axis.max() / (7 / 8))
        yc = xc / (axis.max() / (7 / 8))
        for py, px in [(33, 45), (40, 60), (63, 84), (127, 0), (125, 4)]:
            assert mask[0, 0, py, px] == 1
            cell = torch.cat([feats[py // k, px // k], torch.tensor([g / s])])
            p = net.asap.lowres_stream.out_para[0](cell)
            h = torch.stack([torch.cos(2 * math.pi * xc[px]), torch.sin(2 * math.pi * xc[px]),
                             torch.cos(2 * math.pi * yc[py]), torch.sin(2 * math.pi * yc[py])])
            i, chans = 0, cf.MLP
            for layer, (cin, cout) in enumerate(zip(chans[:-1], chans[1:])):
                bias, i = p[i:i + cout], i + cout
                weight, i = p[i:i + cin * cout].reshape(cin, cout), i + cin * cout
                h = h @ weight + bias
                h = torch.tanh(h) if layer == len(chans) - 2 else torch.nn.functional.leaky_relu(h, 0.01)
            assert torch.allclose(out[0, :, py, px], h, atol=1e-5), (py, px)
        assert torch.equal(out * known, x * known)


def test_coordfill_pads_to_a_square_multiple_of_32():
    model = cf.CoordFillInpainter(random_(cf.CoordFillNet(8)), "coordfill", {})
    seen = []
    model.net.register_forward_pre_hook(lambda m, args: seen.append(tuple(args[0].shape[-2:])))
    for h, w in [(32, 32), (64, 64), (70, 40), (256, 256)]:
        image, mask = torch.rand(1, 3, h, w), torch.zeros(1, 1, h, w)
        mask[..., h // 3: h // 2, w // 3: w // 2] = 1
        out = model.inpaint(image * (1 - mask), mask)
        assert out.shape == image.shape and torch.isfinite(out).all()
    assert seen == [(64, 64), (64, 64), (96, 96), (256, 256)]


# ---------------------------------------------------------------- conversion, registry, the CLI


def test_convert_writes_safetensors_in_another_process(tmp_path, released):
    out = tmp_path / "lama.safetensors"
    r = subprocess.run([sys.executable, "-m", "sairbench_baselines.lama", "convert", str(released["lama"]), str(out)],
                       cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0 and "989 tensors" in r.stdout, r.stdout + r.stderr
    image, mask = holes(64)
    a, b = lama.make_lama(str(out)), lama.make_lama(str(released["lama"]))
    assert torch.equal(a.inpaint(image, mask), b.inpaint(image, mask))
    assert convert_main(["convert", str(released["coordfill"]), str(tmp_path / "cf.safetensors")], "coordfill",
                        cf.CoordFillNet, "", cf.LAYOUT) == 0
    assert len(read_state_dict(tmp_path / "cf.safetensors")[0]) == 272
    assert convert_main(["convert", str(released["coordfill"]), str(tmp_path / "x.safetensors")], "lama",
                        lama.LamaGenerator, lama.PREFIX, lama.LAYOUT) == 2  # wrong layout: refused


def test_without_files_models_say_what_to_download(monkeypatch, tmp_path):
    monkeypatch.delenv(lama.ENV, raising=False)
    monkeypatch.delenv(cf.ENV, raising=False)
    ok, why = get_spec("lama").available()
    assert not ok and "big-lama.zip" in why and "big-lama/models/best.ckpt" in why and lama.ENV in why
    ok, why = get_spec("coordfill").available()
    assert not ok and "github.com/NiFangBaAGe/CoordFill" in why and cf.ENV in why
    with pytest.raises(SairbenchError, match="big-lama.zip"):
        lama.make_lama()
    monkeypatch.setenv(cf.ENV, str(tmp_path / "nope.pth"))
    assert "is not a file" in get_spec("coordfill").available()[1]


def test_sairbench_run_with_both_peers(tmp_path, released):
    res = tmp_path / "res"
    invoke(["run", "--protocol", "liu2018-masks", "-m", "lama", "-m", "coordfill",
            "--checkpoint", f"lama={released['lama']}", "--checkpoint", f"coordfill={released['coordfill']}",
            "--limit", "2", "--per-bucket", "1", "--results", str(res), "--name", "peers"])
    rows = pd.read_parquet(res / "peers" / "per_image.parquet")
    assert set(rows["model"]) == {"lama", "coordfill"} and rows["psnr"].notna().all() and len(rows) == 2 * 2 * 3
    meta = json.loads((res / "peers" / "meta.json").read_text())
    info = meta["model_info"]
    assert info["lama"]["class"] == "LamaInpainter" and info["lama"]["checkpoint_step"] == 123456
    assert "multiple of 8" in info["lama"]["size"]["resolution"]
    assert info["coordfill"]["class"] == "CoordFillInpainter" and "32x32" in info["coordfill"]["size"]["resolution"]
    assert info["coordfill"]["size"]["file"] == str(released["coordfill"])


def test_published_and_in_suite_lama_rows_side_by_side(tmp_path):
    """The paper's LaMa row (marked †, not recomputed) next to the suite's own."""
    from sairbench.report import write_report
    from tests.test_report import make_run

    make_run(tmp_path / "r", models=("lama", "coordfill", "liif"), dataset="celeba-hq")
    md = write_report([tmp_path / "r"], tmp_path / "out", ["table1_celebahq"])[1].read_text()
    rows = [line.split("|")[1].strip() for line in md.splitlines() if line.startswith("| lama")]
    assert "lama" in rows and "lama †" in rows
    assert "As published in the SAIR paper" in md
