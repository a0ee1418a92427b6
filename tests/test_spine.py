"""The spine: one registry (every model builds and inpaints), name@tag through shards and merge,
a throwaway preset row end to end, one safe checkpoint loader, no import cycles."""

import json
import pickle
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from sairbench.checkpoint import build, load_checkpoint, load_model, save_checkpoint, shipped_path
from sairbench.errors import SairbenchError
from sairbench.registry import create_model, list_models, parse_name, unregister_model
from tests.helpers import PROTO, invoke

ROOT = Path(__file__).resolve().parents[1]


def _image_and_mask(size=32):
    g = torch.Generator().manual_seed(0)
    image = torch.rand(1, 3, size, size, generator=g)
    mask = torch.zeros(1, 1, size, size)
    mask[..., 8:20, 10:24] = 1
    return image, mask


@pytest.mark.parametrize("spec", list_models(), ids=lambda s: s.name)
def test_every_registered_model_builds_and_inpaints(spec):
    ok, why = spec.available()
    if not ok:
        pytest.skip(f"{spec.name} cannot run here: {why}")
    model = create_model(spec.name)
    image, mask = _image_and_mask()
    with torch.inference_mode():
        out = model.inpaint(image * (1 - mask), mask)
    assert out.shape == image.shape and torch.isfinite(out).all()
    assert float(out.min()) >= 0 and float(out.max()) <= 1
    hole = mask.bool().expand_as(image)
    assert not torch.equal(out[hole], torch.zeros_like(out[hole]))  # the hole is filled, not left black


def test_parse_name_splits_tags_and_refuses_paths():
    assert parse_name("liif@ft6000") == ("liif", "ft6000")
    assert parse_name("telea") == ("telea", None)
    for bad in ("liif@../../v", "../x", "liif@", "Liif", "a/b"):
        with pytest.raises(SairbenchError, match="NAME@TAG"):
            parse_name(bad)


def test_a_shipped_stage_loads_by_tag():
    if not shipped_path("liif@ft6000").is_file():
        pytest.skip("liif@ft6000 not shipped")
    model = create_model("liif@ft6000")
    assert model.checkpoint_info["step"] == 6000 and model.checkpoint_info["model"]["name"] == "liif"


@pytest.fixture()
def proto(tmp_path):
    p = tmp_path / "mini.toml"
    p.write_text(PROTO.replace('names = ["telea", "navier-stokes"]', 'names = ["liif@small"]'))
    return p


def _small_liif(tmp_path) -> Path:
    invoke(["train", "liif", "--steps", "1", "--batch", "2", "--queries", "16", "--image-size", "32",
            "--threads", "1", "--out", str(tmp_path / "ck")])
    return tmp_path / "ck" / "last.pt"


def test_sharded_run_of_a_tagged_model_merges_with_its_model_info(tmp_path, proto):
    ck = _small_liif(tmp_path)
    res = tmp_path / "results"
    common = ["run", "--protocol", str(proto), "--results", str(res), "--name", "s", "--checkpoint", f"liif@small={ck}"]
    invoke([*common, "--shard", "1/2"])  # one chunk of 9 pairs: this shard has it all and writes the tables
    invoke([*common, "--shard", "2/2"])  # the same folder, joined (no --resume needed)
    meta = json.loads((res / "s" / "meta.json").read_text())
    assert meta["model_info"]["liif@small"]["checkpoint_step"] == 1
    (res / "s" / "meta.json").unlink()
    invoke(["merge", str(res / "s")])
    meta = json.loads((res / "s" / "meta.json").read_text())
    assert meta["models"] == ["liif@small"]
    assert meta["model_info"]["liif@small"]["checkpoint_step"] == 1
    assert meta["model_info"]["liif@small"]["class"] == "ImplicitInpainter"
    rows = pd.read_parquet(res / "s" / "per_image.parquet")
    assert set(rows["model"]) == {"liif@small"} and len(rows) == 9


def test_a_throwaway_preset_row_trains_saves_loads_and_runs(tmp_path):
    """Adding a variant is one row: register it, train it a step, run it through a protocol."""
    from sairbench.preset import Preset
    from sairbench_baselines.presets import register_preset

    row = Preset("edsr-lte", "edsr", "lte", None, "throwaway: LTE decoder on the EDSR-baseline encoder")
    register_preset(row)
    try:
        invoke(["train", "edsr-lte", "--steps", "2", "--batch", "2", "--queries", "16", "--image-size", "32",
                "--threads", "1", "--out", str(tmp_path / "ck")])
        ck = tmp_path / "ck" / "last.pt"
        model = load_model(ck)
        assert type(model.encoder).__name__ == "EDSRBaseline" and type(model.decoder).__name__ == "LTEDecoder"
        p = tmp_path / "p.toml"
        p.write_text(PROTO.replace('names = ["telea", "navier-stokes"]', 'names = ["edsr-lte"]'))
        invoke(["run", "--protocol", str(p), "--results", str(tmp_path / "res"), "--name", "r",
                "--checkpoint", f"edsr-lte={ck}"])
        rows = pd.read_parquet(tmp_path / "res" / "r" / "per_image.parquet")
        assert set(rows["model"]) == {"edsr-lte"} and rows["psnr"].notna().all()
    finally:
        unregister_model("edsr-lte")


class _Boom:
    def __reduce__(self):
        return (Path.touch, (Path("/tmp/sairbench-pwned"),))


def test_a_checkpoint_cannot_run_code(tmp_path):
    target = Path("/tmp/sairbench-pwned")
    target.unlink(missing_ok=True)
    evil = tmp_path / "last.pt"
    torch.save({"model": {"name": "liif", "args": {}, "sd": {}}, "x": _Boom()}, evil)
    with pytest.raises(SairbenchError, match="objects other than tensors"):
        load_checkpoint(evil)
    raw = tmp_path / "raw.pt"
    raw.write_bytes(pickle.dumps(_Boom()))
    with pytest.raises(SairbenchError):
        load_model(raw)
    for args in (["inpaint", str(evil), "a.png", "b.png", "-o", str(tmp_path / "o.png")],
                 ["train", "liif", "--init", str(evil), "--steps", "1", "--out", str(tmp_path / "t")]):
        with pytest.raises(SairbenchError):
            invoke(args)
    assert not target.exists()


def test_one_loader_rebuilds_every_stored_kind_strictly(tmp_path):
    for name in ("liif", "sair", "sir", "semantic"):
        path = shipped_path(name)
        if not path.is_file():
            pytest.skip(f"{path.name} not shipped")
        ckpt = load_checkpoint(path)
        assert ckpt["format"] == 2 and {"name", "args"} <= set(ckpt["model"]["args"])
        model = build(ckpt, str(path))
        assert model.spec["name"] == ckpt["model"]["args"]["name"]
    ckpt = load_checkpoint(shipped_path("liif"))
    ckpt["model"]["sd"]["decoder.extra"] = torch.zeros(1)
    del ckpt["model"]["sd"][next(iter(ckpt["model"]["sd"]))]
    save_checkpoint(tmp_path / "bad.pt", ckpt)
    with pytest.raises(SairbenchError, match=r"bad.pt: its weights do not fit .*unexpected \['decoder.extra'\]"):
        load_model(tmp_path / "bad.pt")
    with pytest.raises(SairbenchError, match="not a semantic-branch"):
        load_model(shipped_path("liif"), expect=("semantic-branch",))


def test_no_import_cycles_and_no_module_over_400_lines():
    tool = Path(__file__).resolve().parent / "tools" / "import_cycles.py"
    out = subprocess.run([sys.executable, str(tool), str(ROOT), "sairbench", "baselines"], capture_output=True,
                         text=True, check=True).stdout
    assert "cycles=0" in out, out
    sizes = {p: len(p.read_text().splitlines())
             for pkg in ("sairbench", "baselines") for p in (ROOT / pkg).rglob("*.py")}
    assert max(sizes.values()) <= 400, max(sizes, key=sizes.get)
