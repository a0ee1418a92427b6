"""The photo models' options as parts of their own: a fill of the hole for the appearance encoder
(``hole-fill``: pull-push or biharmonic), an AppEncoder upsampling that cannot print a grid on a
constant region (``app-resize-conv``) and a LIIF decoder predicting a correction to its input
(``liif-residual``); the preset rows that swap them in, and specs that hold them as arguments,
rewritten as parts on reading (``checkpoint.upgrade``)."""

import pytest
import torch

from sairbench.checkpoint import build as build_model, load_checkpoint, upgrade
from sairbench.errors import SairbenchError
from sairbench.models.encoders import AppEncoder, AppEncoderResizeConv
from sairbench.models.implicit import ImplicitInpainter
from sairbench.models.prefill import HoleFill, pull_push, smooth_fill
from sairbench.train import Schedule, TrainConfig, train

PULL_PUSH = {"name": "hole-fill", "args": {"method": "pull-push"}}
SMOOTH = {"name": "hole-fill", "args": {"method": "smooth"}}
PP_SPEC = {
    "appearance": {"name": "app-resize-conv", "args": {"widths": [8, 8, 8], "n_resblocks": 1}},
    "decoder": {"name": "liif-decoder", "args": {"in_dim": 8, "hidden": [16, 16]}},
    "semantic": None, "name": "liif", "input_fill": PULL_PUSH,
}


def _hole(n=1, size=32):
    m = torch.zeros(n, 1, size, size)
    m[..., 6:26, 10:30] = 1
    return m


def test_pull_push_keeps_known_pixels_and_fills_with_a_convex_combination():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 37, 50)
    m = (torch.rand(2, 1, 37, 50) > 0.3).float()
    y = pull_push(x * (1 - m), m)
    assert torch.equal(y * (1 - m), x * (1 - m))
    lo = x.masked_fill(m.bool(), 2).amin(dim=(2, 3), keepdim=True)
    hi = x.masked_fill(m.bool(), -1).amax(dim=(2, 3), keepdim=True)
    assert ((y >= lo - 1e-6) & (y <= hi + 1e-6)).all()  # averages of known colours only


def test_pull_push_reaches_across_any_distance():
    x = torch.zeros(1, 1, 40, 40)
    m = torch.ones(1, 1, 40, 40)
    x[0, 0, 0, 0], m[0, 0, 0, 0] = 0.7, 0  # a single known pixel
    assert torch.allclose(pull_push(x, m), torch.full_like(x, 0.7))
    left = torch.zeros(1, 1, 16, 64)
    hole = torch.ones(1, 1, 16, 64)
    left[..., :4], hole[..., :4] = 1.0, 0  # white on the far left, black on the far right
    left[..., -4:], hole[..., -4:] = 0.0, 0
    row = pull_push(left, hole)[0, 0, 8]
    assert row[8] > row[32] > row[56]  # a smooth blend from side to side, not a constant


def test_smooth_fill_is_biharmonic_it_continues_a_linear_ramp_exactly():
    yy, xx = torch.meshgrid(torch.arange(24.0), torch.arange(30.0), indexing="ij")
    ramp = torch.stack([0.02 * yy + 0.01 * xx, 0.5 - 0.015 * xx, 0.3 + 0 * xx])[None]
    m = torch.zeros(1, 1, 24, 30)
    m[..., 3:20, 4:12] = 1  # two pixels or more from the border: L^2 of a ramp is 0 there
    m[..., 6:9, 12:26] = 1
    filled = smooth_fill(ramp * (1 - m), m)
    assert torch.allclose(filled, ramp, atol=1e-5)
    assert not torch.allclose(pull_push(ramp * (1 - m), m), ramp, atol=1e-3)  # a pyramid fill does not


def test_an_untrained_residual_model_returns_its_prefill_and_both_paths_agree():
    torch.manual_seed(0)
    spec = {**PP_SPEC, "input_fill": SMOOTH,
            "decoder": {"name": "liif-residual", "args": {"in_dim": 8, "hidden": [16, 16]}}}
    model = ImplicitInpainter(**spec).eval()
    x, m = torch.rand(2, 3, 32, 32), _hole(2)
    out = model.inpaint(x * (1 - m), m, region="hole")
    expected = (smooth_fill(x * 2 - 1, m) * 0.5 + 0.5).clamp(0, 1)
    assert torch.allclose(out * m, expected * m, atol=1e-5)
    torch.nn.init.normal_(model.decoder.imnet[-1].weight, std=0.1)  # as after training
    assert torch.allclose(model.inpaint(x * (1 - m), m), model.inpaint(x * (1 - m), m, fast=False), atol=1e-5)


def test_resize_conv_upsampling_has_no_grid_where_the_transposed_one_has():
    torch.manual_seed(0)
    flat = torch.full((1, 4, 96, 96), 0.3)
    core = (slice(None), slice(None), slice(40, 56), slice(40, 56))  # beyond the reach of the zero-padded border
    transposed = AppEncoder(widths=(8, 8, 8), n_resblocks=1)(flat)[core]
    resized = AppEncoderResizeConv(widths=(8, 8, 8), n_resblocks=1)(flat)[core]
    assert transposed.std(dim=(2, 3)).max() > 1e-3  # the period-2 pattern of the paper's reading
    assert resized.std(dim=(2, 3)).max() < 1e-6
    with pytest.raises(ValueError, match="hole-fill"):
        HoleFill("bicubic")


def test_a_prefill_model_records_its_options_and_tiles_like_one_pass(monkeypatch):
    from sairbench import tiling

    torch.manual_seed(0)
    model = ImplicitInpainter(**PP_SPEC).eval()
    assert model.spec["args"]["input_fill"] == PULL_PUSH and model.input_fill.method == "pull-push"
    assert not list(model.input_fill.parameters())  # no weights: the state dict is the paper's
    x, m = torch.rand(1, 3, 192, 192), torch.zeros(1, 1, 192, 192)
    m[..., 20:172, 30:170] = 1  # a hole wider than a tile and its margin (40 px here)
    masked = x * (1 - m)
    whole = model.inpaint(masked, m, tile=None)
    monkeypatch.setattr(tiling, "TILE_ABOVE", 0)  # tile even this small input
    seen = []
    real = model.gen_feat
    monkeypatch.setattr(model, "gen_feat", lambda im, ma, values=None: seen.append((im, ma, values)) or real(im, ma, values))
    tiled = model.inpaint(masked, m, tile=32)
    assert torch.allclose(tiled, whole, atol=1e-5)
    assert len(seen) > 1 and all(v is not None for _, _, v in seen)
    # each tile sees its share of the whole image's prefill, which its own prefill would not give
    assert any(not torch.allclose(v, model.encoder_values(im, ma), atol=1e-3) for im, ma, v in seen)
    plain = ImplicitInpainter(**{**PP_SPEC, "input_fill": None}).eval()
    assert "input_fill" not in plain.spec["args"]
    plain.load_state_dict(model.state_dict())
    assert not torch.equal(plain.inpaint(masked, m) * m, whole * m)  # the fill reaches the encoder


def test_training_with_photo_options_warm_starts_from_the_paper_model(tmp_path, capsys):
    def cfg(out, **kw):
        return TrainConfig(model="liif", image_size=32, schedule=Schedule.preset("tiny", 2, 2), queries=32,
                           save_every=100, out=str(tmp_path / out), threads=1, **kw)

    first = train(cfg("paper"), progress=False)
    photo = train(cfg("photo", init=str(first), prefill="pull-push", upsample="resize-conv", loss="l2"), progress=False)
    assert "start fresh" in capsys.readouterr().err
    ckpt = load_checkpoint(photo)
    assert ckpt["train"]["loss"] == "l2"
    from sairbench.train import make_config

    with pytest.raises(SairbenchError, match="--loss"):
        make_config("liif", loss="huber")
    args = ckpt["model"]["args"]["args"]
    assert args["input_fill"] == PULL_PUSH and args["appearance"]["name"] == "app-resize-conv"
    model = build_model(ckpt)  # rebuilds from the checkpoint alone
    assert model.input_fill.method == "pull-push"
    assert "input_fill" not in load_checkpoint(first)["model"]["args"]["args"]  # the paper's spec is unchanged
    with pytest.raises(SairbenchError, match="--input-residual"):
        train(TrainConfig(model="lte", image_size=32, schedule=Schedule.preset("tiny", 1, 2), queries=32,
                          out=str(tmp_path / "l"), threads=1, input_residual=True), progress=False)
    with pytest.raises(SairbenchError, match="--upsample"):
        train(TrainConfig(model="edsr-wo", image_size=32, schedule=Schedule.preset("tiny", 1, 2), queries=32,
                          out=str(tmp_path / "e"), threads=1, upsample="resize-conv"), progress=False)


def test_shipping_a_photo_model_names_its_dataset(tmp_path, monkeypatch):
    from sairbench import checkpoint, shipped

    run = train(TrainConfig(model="liif", dataset="photos", image_size=32, schedule=Schedule.preset("tiny", 1, 2),
                            queries=16, out=str(tmp_path / "run"), threads=1), progress=False)
    monkeypatch.setattr(checkpoint, "SHIPPED_DIR", tmp_path / "shipped")
    monkeypatch.setattr(shipped, "write_checkpoints_doc", lambda: None)
    (tmp_path / "shipped").mkdir()
    monkeypatch.setattr(shipped, "recipe_of", lambda name: {"steps": 1, "self_ensemble": 8})
    target = shipped.ship(run.parent, "liif@photos")
    assert target.name == "liif-photos-tiny-photos.safetensors"
    assert checkpoint.shipped_path("liif@photos") == target
    # the recipe's inference setting (chosen after training) is the shipped model's
    model = checkpoint.load_model(target)
    assert model.self_ensemble == 8 and "--self-ensemble 8" in model.checkpoint_info["provenance"]["recipe"]
    assert model.checkpoint_info["model"]["inference"] == {"self_ensemble": 8}  # outside the model's spec
    assert "self_ensemble" not in model.spec["args"] and type(model.inner).__name__ == "ImplicitInpainter"


def test_a_warm_start_into_a_residual_decoder_keeps_its_zero_last_layer(tmp_path):
    def cfg(out, **kw):
        c = TrainConfig(model="liif", image_size=32, schedule=Schedule.preset("tiny", 1, 2), queries=16,
                        save_every=100, out=str(tmp_path / out), threads=1, **kw)
        c.schedule.lr = c.schedule.lr_final = 1e-12  # steps that cannot move the weights
        return c

    first = train(cfg("colour"), progress=False)
    warm = train(cfg("residual", init=str(first), input_residual=True, prefill="smooth"), progress=False)
    a, b = load_checkpoint(first)["model"]["sd"], load_checkpoint(warm)["model"]["sd"]
    last = [k for k in b if k.startswith("decoder.imnet.")][-2:]
    assert all(b[k].abs().max() < 1e-9 for k in last)  # starts as the prefill, not as a colour predictor
    assert all(torch.allclose(a[k], b[k], atol=1e-9) for k in b if k not in last)


def test_stop_at_ends_early_on_the_full_schedule(tmp_path):
    cfg = TrainConfig(model="liif", image_size=32, schedule=Schedule.preset("tiny", 6, 2), queries=16,
                      save_every=100, out=str(tmp_path / "s"), threads=1, stop_at=3)
    ckpt = load_checkpoint(train(cfg, progress=False))
    assert ckpt["step"] == 3 and ckpt["train"]["stop_at"] == 3
    lr = ckpt["optimizer"]["param_groups"][0]["lr"]
    assert lr == pytest.approx(Schedule.preset("tiny", 6, 2).lr_at(2, 1))  # the 6-step schedule, not a 3-step one
    assert lr != pytest.approx(Schedule.preset("tiny", 3, 2).lr_at(2, 1))
    from sairbench.train import make_config

    with pytest.raises(SairbenchError, match="--stop-at"):
        make_config("liif", stop_at=0)


def test_the_preset_rows_swap_in_the_photo_parts():
    from sairbench_baselines.presets import PRESETS

    liif, lte, edsr = PRESETS["liif"], PRESETS["lte"], PRESETS["edsr-wo"]
    assert liif.photo_options() == {}
    opts = liif.photo_options("smooth", "resize-conv", True)
    assert opts == {"input_fill": "smooth", "appearance": "app-resize-conv", "decoder": "liif-residual"}
    args = liif.spec("tiny", **opts)["args"]
    paper = liif.spec("tiny")["args"]
    assert args["input_fill"] == SMOOTH and "input_fill" not in paper
    assert args["appearance"] == {**paper["appearance"], "name": "app-resize-conv"}
    assert args["decoder"] == {**paper["decoder"], "name": "liif-residual"}
    model = liif.build("tiny", **opts)
    assert isinstance(model.encoder, AppEncoderResizeConv) and model.decoder.imnet[-1].weight.abs().max() == 0
    assert lte.photo_options("pull-push", "resize-conv") == {"input_fill": "pull-push", "appearance": "app-resize-conv"}
    for call, match in ((lambda: lte.photo_options(input_residual=True), "--input-residual: 'lte' has an LTE"),
                        (lambda: edsr.photo_options(upsample="resize-conv"), "--upsample resize-conv: 'edsr-wo' has no"),
                        (lambda: liif.photo_options(prefill="mean"), "--prefill mean"),
                        (lambda: liif.photo_options(upsample="bicubic"), "--upsample bicubic"),
                        (lambda: liif.spec("tiny", appearance="vit"), "appearance 'vit' is not one of its rows"),
                        (lambda: PRESETS["ous"].spec("tiny", appearance="app"), "it has no appearance encoder"),
                        (lambda: liif.spec("tiny", input_fill="zero"), "input fill 'zero'")):
        with pytest.raises(SairbenchError, match=match):
            call()


def test_specs_with_the_options_as_arguments_are_read_as_the_parts():
    from sairbench.checkpoint import shipped_path

    torch.manual_seed(0)
    new = ImplicitInpainter(**{**PP_SPEC, "input_fill": SMOOTH,
                               "decoder": {"name": "liif-residual", "args": {"in_dim": 8, "hidden": [16, 16]}}}).eval()
    torch.nn.init.normal_(new.decoder.imnet[-1].weight, std=0.1)
    old_args = {"appearance": {"name": "app-encoder", "args": {"widths": [8, 8, 8], "n_resblocks": 1,
                                                                "upsample": "resize-conv"}},
                "decoder": {"name": "liif-decoder", "args": {"in_dim": 8, "hidden": [16, 16], "input_residual": True}},
                "semantic": None, "name": "liif", "prefill": "smooth", "self_ensemble": 2}
    ckpt = upgrade({"model": {"name": "liif", "args": {"name": "implicit-inpainter", "args": old_args},
                              "sd": new.state_dict()}})
    assert ckpt["model"]["args"] == new.spec and ckpt["model"]["inference"] == {"self_ensemble": 2}
    old = build_model(ckpt)
    x, m = torch.rand(1, 3, 32, 32), _hole()
    from sairbench.models.self_ensemble import with_self_ensemble

    assert torch.equal(old.inpaint(x * (1 - m), m), with_self_ensemble(new, 2).inpaint(x * (1 - m), m))
    plain = {"appearance": {"name": "app-encoder", "args": {"widths": [8, 8, 8], "upsample": "transposed"}},
             "decoder": {"name": "liif-decoder", "args": {"in_dim": 8, "input_residual": False}},
             "name": "liif", "prefill": "zero", "self_ensemble": 1}
    ckpt = upgrade({"model": {"name": "liif", "args": {"name": "implicit-inpainter", "args": plain}, "sd": {}}})
    assert ckpt["model"]["args"]["args"] == {"appearance": {"name": "app-encoder", "args": {"widths": [8, 8, 8]}},
                                             "decoder": {"name": "liif-decoder", "args": {"in_dim": 8}}, "name": "liif"}
    assert "inference" not in ckpt["model"]
    # the shipped photo checkpoints hold the arguments; they load as the parts
    path = shipped_path("liif@photos-residual")
    if not path.is_file():
        pytest.skip(f"{path.name} not shipped")
    args = load_checkpoint(path)["model"]["args"]["args"]
    assert args["input_fill"] == SMOOTH and args["appearance"]["name"] == "app-resize-conv"
    assert args["decoder"]["name"] == "liif-residual" and "input_residual" not in args["decoder"]["args"]
    from sairbench_baselines.presets import PRESETS

    assert PRESETS["liif"].spec("tiny", **PRESETS["liif"].photo_options("smooth", "resize-conv", True))["args"] == \
        {"semantic": None, **args}
