"""Hostile checkpoints, training snapshots and protocol files: each is refused in one line naming the
file (and the key, argument or tensor at fault) before a model is built, a download is started or a
result is written; a damaged newest snapshot falls back to the previous one with one warning line."""

import json
import shutil
import socket
from pathlib import Path

import pytest
import torch

from sairbench.checkpoint import SHIPPED_DIR, load_checkpoint, load_model
from sairbench.errors import SairbenchError
from tests.commands_helpers import error_line, sairbench
from tests.helpers import PROTO, flat_image_and_mask, invoke

TINY = ["--batch", "2", "--queries", "16", "--image-size", "32", "--threads", "1"]
SMALL = ["--limit", "2", "--per-bucket", "1", "--size", "32"]


def shipped(name: str) -> dict:
    return load_checkpoint(SHIPPED_DIR / f"{name}-tiny-synthetic-faces.safetensors")


def save(ckpt: dict, path: Path) -> Path:
    torch.save(ckpt, path)
    return path


def set_arg(ckpt: dict, where: str, value) -> dict:
    """``ckpt`` with the spec argument ``where`` ("appearance.widths": the appearance part's
    ``widths``) set to ``value``."""
    *parts, key = where.split(".")
    node = ckpt["model"]["args"]
    for part in parts:
        node = node["args"][part]
    node["args"][key] = value
    return ckpt


def run_with(proto: Path, tmp_path: Path, model: str, path: Path) -> list[str]:
    return ["run", "--protocol", str(proto), "--results", str(tmp_path / "r"), "-m", model, "--checkpoint",
            f"{model}={path}", *SMALL, "--threads", "1"]


# --- 1. the spec and the metadata -------------------------------------------------------------
@pytest.mark.parametrize("where, value, match", [
    ("appearance.widths", "abc", r"'appearance.widths' is str 'abc', not a list of whole numbers"),
    ("appearance.widths", [{"w": 32}, 48, 64], r"'appearance.widths' is list .*not a list of whole numbers"),
    ("appearance.widths", [-32, 48, 64], r"'appearance.widths' = -32 is out of range"),
    ("decoder.hidden", [0, 128, 128], r"'decoder.hidden' = 0 is out of range"),
    ("decoder.in_dim", "32", r"'decoder.in_dim' is str '32', not a whole number"),
    ("appearance.n_resblocks", 300, r"'appearance.n_resblocks' = 300 is out of range \(from 0 to 256\)"),
    ("decoder.skip_tol", float("nan"), r"'decoder.skip_tol' is float nan, not a finite number"),
    ("decoder.in_dim", 16, r"decoder in_dim is 16, but the model needs 32"),
    ("decoder.colour", 1, r"unknown argument 'decoder.colour'"),
])
def test_a_malformed_spec_is_one_line_naming_the_file_and_argument(tmp_path, proto, where, value, match):
    path = save(set_arg(shipped("liif"), where, value), tmp_path / "bad.pt")
    with pytest.raises(SairbenchError, match=rf"^{path}: its model spec .*{match}"):
        invoke(run_with(proto, tmp_path, "liif", path))


def test_huge_widths_are_refused_before_any_tensor_is_allocated(tmp_path, monkeypatch):
    ckpt = set_arg(set_arg(shipped("liif"), "appearance.widths", [65536] * 3), "decoder.in_dim", 65536)
    path = save(ckpt, tmp_path / "huge.pt")
    with pytest.raises(SairbenchError, match=r"huge.pt: the model it describes has .* over the bound of 4.00 GiB; "
                                             r".*set \$SAIRBENCH_MAX_MODEL_BYTES"):
        load_model(path)


def test_the_model_size_bound_comes_from_the_environment(tmp_path, proto, monkeypatch):
    path = save(shipped("liif"), tmp_path / "liif.pt")
    monkeypatch.setenv("SAIRBENCH_MAX_MODEL_BYTES", "100000")
    with pytest.raises(SairbenchError, match=r"liif.pt: the model it describes has [\d.]+ M parameters .*over the bound "
                                             r"of 0.00 GiB.*SAIRBENCH_MAX_MODEL_BYTES"):
        invoke(run_with(proto, tmp_path, "liif", path))
    monkeypatch.setenv("SAIRBENCH_MAX_MODEL_BYTES", "lots")
    with pytest.raises(SairbenchError, match=r"SAIRBENCH_MAX_MODEL_BYTES='lots': give a positive number of bytes"):
        load_model(path)


def _deep(depth: int):
    value = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("edit, match", [
    (lambda c: c.update(model=[c["model"]]), r"not a sairbench checkpoint"),
    (lambda c: c["model"].update(size={"tiny": 1}), r"its 'model.size' entry is dict .*not a string"),
    (lambda c: c["model"].update(inference=[8]), r"its 'model.inference' entry is list .*not a table"),
    (lambda c: c.update(step="10"), r"its 'step' entry is str '10', not a whole number >= 0"),
    (lambda c: c.update(history="lots"), r"its 'history' entry is str .*not a list of tables"),
    (lambda c: c.update(train=_deep(200)), r"its metadata nests deeper than 32 levels"),
    (lambda c: c["model"]["sd"].update({"extra": "text"}), r"its weights entry 'extra' is str 'text', not a tensor"),
])
def test_malformed_metadata_is_one_line_naming_the_file(tmp_path, proto, edit, match):
    ckpt = shipped("liif")
    edit(ckpt)
    path = save(ckpt, tmp_path / "meta.pt")
    with pytest.raises(SairbenchError, match=rf"^{path}: .*{match}"):
        invoke(run_with(proto, tmp_path, "liif", path))


@pytest.mark.parametrize("depth", [100, 100_000])
def test_deeply_nested_safetensors_metadata_is_one_line(tmp_path, picture, depth):
    from safetensors.torch import save_file

    ckpt = shipped("liif")
    meta = json.dumps({k: v for k, v in ckpt.items() if k != "model"} | {
        "model": {k: v for k, v in ckpt["model"].items() if k != "sd"}})
    meta = meta[:-1] + ', "deep": ' + "[" * depth + "]" * depth + "}"
    path = tmp_path / "deep.safetensors"
    save_file({k: v.contiguous() for k, v in ckpt["model"]["sd"].items()}, str(path), metadata={"sairbench": meta})
    result = sairbench("inpaint", path, *picture, "-o", tmp_path / "o.png")
    assert error_line(result).startswith(f"error: {path}: ")


# --- 2. non-finite weights, through every loader ------------------------------------------------
def _poisoned(name: str, tmp_path: Path, value=float("nan")) -> tuple[Path, str]:
    """A shipped checkpoint with one value of its second tensor set to ``value``; (file, tensor)."""
    ckpt = shipped(name)
    key = sorted(ckpt["model"]["sd"])[1]
    ckpt["model"]["sd"][key] = ckpt["model"]["sd"][key].clone()
    ckpt["model"]["sd"][key].view(-1)[0] = value
    return save(ckpt, tmp_path / f"{name}-{value}.pt"), key


@pytest.fixture()
def picture(tmp_path):
    return flat_image_and_mask(tmp_path, 32, 128, (slice(8, 16), slice(8, 16)), ("in.png", "mask.png"))


def test_non_finite_weights_are_refused_by_every_loader(tmp_path, proto, picture):
    liif, key = _poisoned("liif", tmp_path)
    inf_liif, inf_key = _poisoned("liif", tmp_path, float("inf"))
    sir, sir_key = _poisoned("sir", tmp_path)
    semantic, semantic_key = _poisoned("semantic", tmp_path)
    calls = [
        (run_with(proto, tmp_path, "liif", liif), liif, key),
        (run_with(proto, tmp_path, "liif", inf_liif), inf_liif, inf_key),
        (["inpaint", str(liif), *map(str, picture), "-o", str(tmp_path / "o.png")], liif, key),
        (["run", "--protocol", "sir-miou", "--results", str(tmp_path / "p"), "--checkpoint", f"sir={sir}", *SMALL],
         sir, sir_key),
        (["train", "liif", "--steps", "1", *TINY, "--init", str(liif), "--out", str(tmp_path / "a")], liif, key),
        (["train", "sair", "--steps", "1", *TINY, "--sir-checkpoint", str(sir), "--out", str(tmp_path / "b")], sir, sir_key),
        (["train", "sir", "--steps", "1", *TINY, "--semantic-checkpoint", str(semantic), "--out", str(tmp_path / "c")],
         semantic, semantic_key),
    ]
    for args, path, bad in calls:
        with pytest.raises(SairbenchError, match=rf"^{path}: its tensor '{bad}' holds NaN or Inf values"):
            invoke(args)
    assert not (tmp_path / "a" / "last.pt").exists() and not (tmp_path / "b" / "last.pt").exists()


# --- 3. no spec starts a download ---------------------------------------------------------------
@pytest.fixture()
def offline(monkeypatch):
    """open_clip's model factory and every socket fail loudly (and are recorded) if called."""
    import open_clip

    calls = []

    def boom(*args, **kwargs):
        calls.append(args)
        raise AssertionError("a network call or a CLIP download was started")

    monkeypatch.setattr(open_clip, "create_model", boom)
    monkeypatch.setattr(socket.socket, "connect", boom)
    monkeypatch.setattr(socket, "create_connection", boom)
    monkeypatch.delenv("SAIRBENCH_CLIP_WEIGHTS", raising=False)
    return calls


def _on_encoder(ckpt: dict, encoder: dict) -> dict:
    """``ckpt`` (a SIR or a SAIR) with its semantic encoder replaced by ``encoder`` (weights dropped)."""
    branch = ckpt["model"]["args"] if ckpt["model"]["args"]["name"] == "semantic-branch" \
        else ckpt["model"]["args"]["args"]["semantic"]
    branch["args"]["encoder"] = encoder
    prefix = "encoder." if branch is ckpt["model"]["args"] else "semantic.encoder."
    ckpt["model"]["sd"] = {k: v for k, v in ckpt["model"]["sd"].items() if not k.startswith(prefix)}
    return ckpt


@pytest.mark.parametrize("encoder, match", [
    ({"name": "clip-dense", "args": {"pretrained": "openai"}},
     r"encoder.pretrained' = 'openai' to clip-dense, which a checkpoint may not: only --clip-weights or "
     r"\$SAIRBENCH_CLIP_WEIGHTS may name CLIP weights"),
    ({"name": "clip-dense", "args": {"model_name": "hf-hub:timm/vit_base_patch16_clip_224.openai"}},
     r"encoder.model_name' = 'hf-hub:.*' names a download"),
    ({"name": "clip-dense", "args": {"weights_file": "https://example.org/ViT-B-16.pt"}}, r"names a download"),
    ({"name": "sam-encoder", "args": {"checkpoint": "/tmp/sam_vit_b.pth"}},
     r"encoder.checkpoint' = '/tmp/sam_vit_b.pth' to sam-encoder, which a checkpoint may not: only "
     r"\$SAIRBENCH_SAM_CHECKPOINT may name the SAM file"),
])
def test_no_spec_names_weights_to_fetch(tmp_path, proto, offline, encoder, match):
    sir = save(_on_encoder(shipped("sir"), encoder), tmp_path / "sir.pt")
    sair = save(_on_encoder(shipped("sair"), {**encoder, "args": {**encoder["args"]}}), tmp_path / "sair.pt")
    for args, path in (
            (["train", "sair", "--steps", "1", *TINY, "--sir-checkpoint", str(sir), "--out", str(tmp_path / "t")], sir),
            (run_with(proto, tmp_path, "sair", sair), sair),
            (["run", "--protocol", "sir-miou", "--results", str(tmp_path / "p"), "--checkpoint", f"sir={sir}", *SMALL], sir)):
        with pytest.raises(SairbenchError, match=rf"^{path}: its model spec .*{match}"):
            invoke(args)
    assert offline == []


# --- 4. training snapshots ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def snapshots(tmp_path_factory):
    """A 2-step liif training run: last.pt and step_000001.pt, step_000002.pt."""
    out = tmp_path_factory.mktemp("snapshots") / "liif"
    invoke(["train", "liif", "--steps", "2", *TINY, "--save-every", "1", "--keep-every", "1", "--out", str(out)])
    return out


def _resume(out: Path) -> list[str]:
    return ["train", "liif", "--steps", "3", *TINY, "--out", str(out), "--resume"]


def _lte(snap: dict) -> dict:
    other = shipped("lte")
    other.update({k: snap[k] for k in ("optimizer", "rng", "step")})
    return other


def _optimizer_shape(snap: dict) -> dict:
    snap["optimizer"]["state"][0]["exp_avg"] = torch.zeros(3)
    return snap


@pytest.mark.parametrize("edit, match", [
    (lambda s: s.update(step="two"), r"its 'step' entry is str 'two'"),
    (lambda s: s.update(step=2.5), r"its 'step' entry is float 2.5"),
    (lambda s: s.pop("rng"), r"its random state 'rng.torch' is NoneType None, not a torch.uint8 tensor"),
    (lambda s: s["rng"].update(torch=s["rng"]["torch"].float()), r"its random state 'rng.torch' is a torch.float32 tensor"),
    (lambda s: s["optimizer"].pop("param_groups"), r"its 'optimizer' entry is dict .*not an optimizer state"),
    (lambda s: s["optimizer"]["param_groups"][0].update(betas="fast"), r"its optimizer setting 'betas' is str 'fast'"),
    (_optimizer_shape, r"its optimizer state 'exp_avg' of parameter 0 has shape \(3,\), not the parameter's"),
    (lambda s: s["optimizer"]["state"][0]["exp_avg"].fill_(float("inf")), r"optimizer state 'exp_avg' of parameter 0 "
                                                                            r"holds NaN or Inf"),
    (lambda s: s["model"]["sd"]["decoder.imnet.0.weight"].fill_(float("nan")),
     r"its tensor 'decoder.imnet.0.weight' holds NaN or Inf values"),
    (_lte, r"holds 'lte' \(tiny\), not 'liif' \(tiny\)"),
])
def test_a_malformed_snapshot_is_one_line_naming_the_file(tmp_path, snapshots, edit, match):
    snap = torch.load(snapshots / "last.pt", weights_only=True)
    edited = edit(snap)
    snap = edited if isinstance(edited, dict) and "model" in edited else snap
    out = tmp_path / "out"
    out.mkdir()
    save(snap, out / "last.pt")
    with pytest.raises(SairbenchError, match=rf"last.pt.*{match}"):
        invoke(_resume(out))


def test_a_damaged_newest_snapshot_falls_back_with_one_warning(tmp_path, snapshots):
    out = tmp_path / "out"
    shutil.copytree(snapshots, out)
    (out / "step_000002.pt").unlink()
    snap = torch.load(out / "last.pt", weights_only=True)
    snap["model"]["sd"]["decoder.imnet.0.bias"].fill_(float("nan"))
    save(snap, out / "last.pt")
    result = sairbench(*_resume(out))
    assert result.exit_code == 0, result.describe()
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "last.pt unreadable" in warnings[0] and "holds NaN or Inf" in warnings[0] \
        and "resuming from" in warnings[0] and "step_000001.pt (step 1)" in warnings[0], result.stderr
    assert load_checkpoint(out / "last.pt")["step"] == 3


# --- 5. protocol files --------------------------------------------------------------------------
@pytest.mark.parametrize("old, new, key", [
    ("seed = 3", "seed = -1", "seed"),
    ("limit = 3", "limit = 0", "dataset.limit"),
    ("size = 32", "size = 0", "dataset.size"),
    ("per_bucket = 2", "per_bucket = 0", "masks.per_bucket"),
    ("per_bucket = 2", "per_bucket = 10001", "masks.per_bucket"),
    ("per_bucket = 2", "per_bucket = 2\nhole_value = -1", "masks.hole_value"),
    ("per_bucket = 2", "per_bucket = 2\nhole_value = 256", "masks.hole_value"),
    ('names = ["psnr", "ssim", "l1", "lpips"]', "names = []", "metrics.names"),
    ('source = "generated"', 'source = "downloaded"', "masks.source"),
    ('name = "mini"', 'name = "mini"\ndescription = ' + "[" * 5000 + "]" * 5000, ""),
    ('name = "mini"', 'name = "mini"\ndescription = ' + "[" * 50 + "]" * 50, "description"),
], ids=["seed", "limit", "size", "per-bucket-0", "per-bucket-huge", "hole-value-negative", "hole-value-256",
        "no-metric", "mask-source", "nested-5000", "nested-50"])
def test_a_protocol_value_out_of_range_is_refused_at_load(tmp_path, old, new, key):
    proto = tmp_path / "mini.toml"
    proto.write_text(PROTO.replace(old, new))
    result = sairbench("run", "--protocol", proto, "--results", tmp_path / "r", "--threads", "1")
    line = error_line(result)
    assert line.startswith(f"error: {proto}: ") and "--data-root" not in line, line
    assert f"'{key}'" in line if key else "nest too deep" in line, line
    assert not (tmp_path / "r").exists()


def test_a_protocol_name_that_is_no_folder_name_is_blamed_on_the_protocol(tmp_path):
    proto = tmp_path / "mini.toml"
    proto.write_text(PROTO.replace('name = "mini"', 'name = "../up"'))
    with pytest.raises(SairbenchError, match=rf"^{proto}: 'name' = '../up' is not one folder name"):
        invoke(["run", "--protocol", str(proto), "--results", str(tmp_path / "r"), *SMALL])
    invoke(["run", "--protocol", str(proto), "--results", str(tmp_path / "r"), "--name", "ok", *SMALL])
    assert (tmp_path / "r" / "ok" / "per_image.parquet").is_file()


def test_what_real_models_hold_passes_the_spec_checks():
    from sairbench.checkpoint_checks import check_model, check_spec

    ade20k = {"name": "semantic-branch", "args": {"encoder": {"name": "indomain-encoder", "args": {
        "classes": [f"class{i}" for i in range(150)], "embed_dim": 64}}, "sir": {"hidden": [128, 128], "context_layers": 0}}}
    clip = {"name": "semantic-branch", "args": {"encoder": {"name": "clip-dense", "args": {
        "model_name": "ViT-B-16", "input_size": [224, 224], "quick_gelu": None, "weights_sha256": "ab" * 32,
        "weights_file": "ViT-B-16.pt"}}, "filler": "none"}}
    for spec in (ade20k, clip):
        check_spec(spec, "x.pt")
        check_model(spec, {}, "x.pt")
    with pytest.raises(SairbenchError, match=r"'sir.hidden' lists 65 widths \(at most 64\)"):
        check_spec({**ade20k, "args": {**ade20k["args"], "sir": {"hidden": [8] * 65}}}, "x.pt")
