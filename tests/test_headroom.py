"""The semantic-headroom study: the label map as a semantic source, the warm start that makes every
variant start as the LIIF it comes from, the decomposition, and the commands, run through the
console script on fabricated CelebAMask-HQ and ADE20K trees."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from sairbench.checkpoint import shipped_path
from sairbench.errors import SairbenchError
from sairbench.headroom import EFFECTS, decompose, variant_of
from sairbench.semantic.labels import IGNORE, LabelEmbedding
from tests.commands_helpers import assert_ok, clear_user_env, error_line, sairbench
from tests.helpers import ade20k_tree, celeba_tree

STEPS = ("--steps", "2", "--threads", "1", "--size", "tiny")


@pytest.fixture(autouse=True)
def _no_user_env(monkeypatch):
    clear_user_env(monkeypatch)


def _labels_encoder(reveal_hole: bool) -> LabelEmbedding:
    enc = LabelEmbedding(["a", "b", "c"], embed_dim=4, stride=2, reveal_hole=reveal_hole)
    return enc.set_class_table(torch.eye(3, 4) * 2)  # normalised to one-hot rows


def test_label_embedding_reference_values():
    """A pure cell takes its class's embedding, a mixed cell the pixel average, unlabelled pixels
    count as nothing; with the hole hidden a cell inside it is zero and a half-hidden one averages
    the known pixels it has (their share of the cell)."""
    labels = torch.tensor([[[0, 0, 1, 2],
                            [0, 0, 1, IGNORE],
                            [2, 2, 0, 0],
                            [2, 2, 0, 0]]])
    image = torch.zeros(1, 3, 4, 4)
    mask = torch.zeros(1, 1, 4, 4)
    mask[..., 2:, 2:] = 1  # the bottom-right cell is missing
    mask[..., 0, 0] = 1  # one pixel of the top-left cell
    oracle = _labels_encoder(True)(image, mask, labels)[0]
    assert torch.allclose(oracle[:, 0, 0], torch.tensor([1.0, 0, 0, 0]))
    assert torch.allclose(oracle[:, 0, 1], torch.tensor([0, 0.5, 0.25, 0]))  # 2 x b, 1 x c, 1 unlabelled
    assert torch.allclose(oracle[:, 1, 0], torch.tensor([0, 0, 1.0, 0]))
    assert torch.allclose(oracle[:, 1, 1], torch.tensor([1.0, 0, 0, 0]))
    hidden = _labels_encoder(False)(image, mask, labels)[0]
    assert torch.allclose(hidden[:, 1, 1], torch.zeros(4))
    assert torch.allclose(hidden[:, 0, 0], torch.tensor([0.75, 0, 0, 0]))
    assert torch.equal(hidden[:, 0, 1], oracle[:, 0, 1])


def test_label_embedding_refuses_missing_or_mismatched_labels():
    enc = _labels_encoder(True)
    with pytest.raises(SairbenchError, match="semantic-headroom"):
        enc(torch.zeros(1, 3, 4, 4))
    with pytest.raises(SairbenchError, match="do not match"):
        enc(torch.zeros(1, 3, 4, 4), None, torch.zeros(1, 4, 5, dtype=torch.long))
    with pytest.raises(SairbenchError, match="class table"):
        enc.set_class_table(torch.zeros(2, 4))


def _label_spec(classes: list[str], embed_dim: int = 64) -> dict:
    return {"name": "label-embedding", "args": {"classes": classes, "embed_dim": embed_dim, "stride": 4,
                                                "reveal_hole": False, "source": "test", "name": "labels-test"}}


@pytest.mark.parametrize("name", ["sair", "nfs", "oracle", "labels-sir"])
def test_a_variant_warm_started_from_liif_answers_as_that_liif(name):
    """Every semantic variant starts as the shipped LIIF: its appearance encoder and decoder are
    LIIF's and the decoder's semantic input starts at zero weight."""
    from sairbench.checkpoint import load_model
    from sairbench.registry import get_spec
    from sairbench.train import make_config
    from sairbench.train.loop import load_init_weights

    torch.manual_seed(0)
    preset = get_spec(name).preset
    if preset.encoder == "label-embedding":
        encoder = _label_spec([f"c{k}" for k in range(5)])
    else:
        from sairbench.checkpoint import load_checkpoint

        encoder = load_checkpoint(shipped_path("sir"))["model"]["args"]["args"]["encoder"]
    model = preset.build("tiny", encoder=encoder)
    if model.reads_labels:
        model.semantic.encoder.set_class_table(torch.randn(5, 64))
    liif_file = shipped_path("liif")
    load_init_weights(model, make_config(name, init=str(liif_file), size="tiny"))
    liif = load_model(liif_file)
    image, mask = torch.rand(2, 3, 32, 32), torch.zeros(2, 1, 32, 32)
    mask[..., 8:24, 4:20] = 1
    labels = torch.randint(0, 5, (2, 32, 32))
    out = model.inpaint(image, mask, labels=labels if model.reads_labels else None)
    assert torch.allclose(out, liif.inpaint(image, mask), atol=1e-5)
    assert model.decoder.extra_weight().abs().sum() == 0


def _per_image(effects: dict[str, float], seeds=("headroom-s1", "headroom-s2"), n: int = 40) -> pd.DataFrame:
    """Per-image PSNR of every variant and seed: a base value per image, plus the variant's offset,
    plus a seed offset of +-0.05."""
    rng = np.random.default_rng(0)
    base = rng.normal(25, 2, n)
    rows = []
    for k, seed in enumerate(seeds):
        for model, offset in effects.items():
            for i in range(n):
                rows.append({"model": f"{model}@{seed}", "image": f"im{i}", "mask": f"m{i}",
                             "bucket": "20-40%" if i % 2 else "40-60%", "psnr": base[i] + offset + (k - 0.5) * 0.1 * (model == "oracle")})
    return pd.DataFrame(rows)


def test_decomposition_reference_values():
    """Known offsets per variant give those differences, the headroom splits exactly into its three
    parts, the share captured is their ratio and the seed column shows each seed's own value."""
    per_image = _per_image({"liif": 0.0, "nfs": 0.1, "sair": 0.3, "labels-sir": 0.7, "oracle": 1.2})
    table = decompose(per_image, "psnr", n_boot=200)
    all_ = table[table["bucket"] == "all"].set_index("effect")
    assert all_.loc["perfect semantics", "mean"] == pytest.approx(1.2)
    assert all_.loc["SIR filling error", "mean"] == pytest.approx(0.5)
    assert all_.loc["encoder error", "mean"] == pytest.approx(0.4)
    assert all_.loc["SAIR gain", "mean"] == pytest.approx(0.3)
    assert all_.loc["SIR over no fill", "mean"] == pytest.approx(0.2)
    parts = sum(all_.loc[e, "mean"] for e in ("SIR filling error", "encoder error", "SAIR gain"))
    assert parts == pytest.approx(all_.loc["perfect semantics", "mean"])
    assert all_.loc["share captured", "mean"] == pytest.approx(0.25)
    assert all_.loc["perfect semantics", "seed_spread"] == pytest.approx(0.1)
    assert "s1: +1.150" in all_.loc["perfect semantics", "by_seed"]
    assert set(table["bucket"]) == {"20-40%", "40-60%", "all"}
    assert [e.name for e in EFFECTS] == list(all_.index[:len(EFFECTS)])


def test_decomposition_needs_a_seed_group_with_both_variants():
    per_image = _per_image({"liif": 0.0}, seeds=("a",))
    per_image = pd.concat([per_image, _per_image({"oracle": 1.0}, seeds=("b",))])
    with pytest.raises(SairbenchError, match="no pair"):
        decompose(per_image)
    assert variant_of("sair@headroom-s2") == ("encoder-sir", "headroom", "s2")
    assert variant_of("liif@mine") == ("none", "mine", "")
    assert variant_of("telea") is None


def test_studies_of_one_run_are_decomposed_apart():
    """Two schedules in one run (``headroom-sK`` and ``long-s1``) never mix: each its own rows (the
    one seed of ``long`` carries its -0.05 offset)."""
    short = _per_image({"liif": 0.0, "oracle": 1.0})
    long = _per_image({"liif": 0.0, "oracle": 2.0}, seeds=("long-s1",))
    table = decompose(pd.concat([short, long]), "psnr", n_boot=200)
    heads = table[(table["bucket"] == "all") & (table["effect"] == "perfect semantics")].set_index("study")
    assert heads.loc["headroom", "mean"] == pytest.approx(1.0) and heads.loc["headroom", "seeds"] == 2
    assert heads.loc["long", "mean"] == pytest.approx(1.95) and heads.loc["long", "seeds"] == 1


# --- the commands, on the built-in data and on the real layouts ------------------------------------

def test_every_shipped_variant_loads_and_reads_labels_only_as_an_oracle():
    from sairbench.registry import create_model

    for name in ("liif", "nfs", "sair", "labels-sir", "oracle"):
        for seed in (1, 2):
            model = create_model(f"{name}@headroom-s{seed}")
            assert model.reads_labels == (name in ("labels-sir", "oracle"))
            if model.reads_labels:
                assert model.semantic.encoder.reveal_hole == (name == "oracle")


def test_label_readers_are_refused_outside_the_headroom_protocol(tmp_path):
    line = error_line(sairbench("run", "-m", "oracle@headroom-s1", "--limit", "2", "--per-bucket", "1",
                                "--results", tmp_path))
    assert "oracle@headroom-s1" in line and "semantic-headroom" in line
    line = error_line(sairbench("run", "--protocol", "semantic-headroom", "--self-ensemble", "2", "--limit", "2",
                                "--per-bucket", "1", "--results", tmp_path))
    assert "--self-ensemble" in line
    assert not list(tmp_path.iterdir())  # refused before any folder was made


def test_the_protocol_refuses_data_without_labels(tmp_path):
    from PIL import Image

    folder = tmp_path / "photos"
    folder.mkdir()
    for k in range(2):
        Image.fromarray(np.full((16, 16, 3), 40 * k, np.uint8)).save(folder / f"p{k}.png")
    line = error_line(sairbench("run", "--protocol", "semantic-headroom", "--dataset", "folder", "--data-root", folder,
                                "--per-bucket", "1", "--results", tmp_path / "r"))
    assert "label maps" in line and "folder" in line
    line = error_line(sairbench("train", "sir", "--semantic-encoder", "labels", "--dataset", "folder", "--data-root",
                                folder, *STEPS, "--out", tmp_path / "sir"))
    assert "labels" in line


def _chain(tmp_path: Path, dataset: str, root: Path) -> dict[str, str]:
    """Every variant of the study trained 2 steps on ``dataset`` through the commands users type;
    returns the --checkpoint values."""
    data = ("--dataset", dataset, "--data-root", root, "--image-size", "32")
    runs = tmp_path / "runs"
    ck = lambda n: str(runs / n / "last.pt")  # noqa: E731
    assert_ok(sairbench("train", "semantic", *data, *STEPS, "--out", runs / "semantic"))
    assert_ok(sairbench("train", "sir", *data, *STEPS, "--semantic-checkpoint", ck("semantic"), "--out", runs / "sir"))
    assert_ok(sairbench("train", "sir", "--semantic-encoder", "labels", *data, *STEPS,
                        "--semantic-checkpoint", ck("semantic"), "--out", runs / "sir-labels"))
    assert_ok(sairbench("train", "liif", *data, *STEPS, "--out", runs / "liif-base"))
    out = {}
    for name, sir in (("liif", None), ("nfs", "sir"), ("sair", "sir"), ("labels-sir", "sir-labels"), ("oracle", "sir-labels")):
        extra = ("--sir-checkpoint", ck(sir)) if sir else ()
        assert_ok(sairbench("train", name, *data, *STEPS, *extra, "--init", ck("liif-base"), "--hole-fraction", "1.0",
                            "--seed", "1", "--out", runs / name))
        out[f"{name}@mine"] = ck(name)
    return out


@pytest.mark.parametrize("dataset", ["celeba-hq", "ade20k"])
def test_the_whole_study_on_the_real_layouts(dataset, tmp_path):
    root = tmp_path / "data"
    (celeba_tree if dataset == "celeba-hq" else ade20k_tree)(root)
    checkpoints = _chain(tmp_path, dataset, root)
    flags = [a for name, path in checkpoints.items() for a in ("-m", name, "--checkpoint", f"{name}={path}")]
    result = sairbench("run", "--protocol", "semantic-headroom", "--dataset", dataset, "--data-root", root,
                       "--size", "32", "--per-bucket", "1", "--threads", "1", *flags, "--results", tmp_path / "results")
    assert_ok(result)
    assert "semantic headroom" in result.stdout
    (run,) = (tmp_path / "results").iterdir()
    table = pd.read_csv(run / "headroom.csv")
    assert set(table["effect"]) == {e.name for e in EFFECTS} | {"share captured"}
    assert set(table["metric"]) == {"psnr", "ssim"}
    per_image = pd.read_parquet(run / "per_image.parquet")
    oracle = decompose(per_image, "psnr", n_boot=200)
    got = table[table["metric"] == "psnr"].reset_index(drop=True)
    assert np.allclose(got["mean"], oracle["mean"], equal_nan=True)  # the file is the decomposition of its rows
    assert_ok(sairbench("report", run, "--out", tmp_path / "report"))
    text = (tmp_path / "report" / "report.md").read_text()
    assert "Semantic headroom in PSNR" in text and "oracle − none" in text and "labels-sir − encoder-sir" in text
    # the qualitative grid predicts as the run did: the oracles get their label maps
    assert_ok(sairbench("figures", run, "--images", "1", "--threads", "1", "--out", tmp_path / "figures"))
    assert (tmp_path / "figures" / "qualitative.png").is_file()


def test_shards_of_a_headroom_run_end_with_its_decomposition(tmp_path):
    """The last shard (or `merge`) writes headroom.csv from the merged rows, as one process does."""
    models = ("-m", "liif@headroom-s1", "-m", "oracle@headroom-s1")
    tiny = ("--limit", "2", "--per-bucket", "1", "--threads", "1")
    one = sairbench("run", "--protocol", "semantic-headroom", *models, *tiny, "--results", tmp_path, "--name", "one")
    assert_ok(one)
    for shard in ("1/2", "2/2"):
        assert_ok(sairbench("run", "--protocol", "semantic-headroom", *models, *tiny, "--shard", shard,
                            "--results", tmp_path, "--name", "sharded"))
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "sharded" / "headroom.csv"),
                                  pd.read_csv(tmp_path / "one" / "headroom.csv"))


def test_a_variant_refuses_the_wrong_semantic_stage(tmp_path):
    """The oracle over an encoder SIR, or labels embedded with another dataset's encoder: one line each."""
    line = error_line(sairbench("train", "oracle", *STEPS, "--sir-checkpoint", shipped_path("sir"),
                                "--out", tmp_path / "oracle"))
    assert "label-embedding" in line
    root = ade20k_tree(tmp_path / "ade")
    line = error_line(sairbench("train", "sir", "--semantic-encoder", "labels", "--dataset", "ade20k", "--data-root",
                                root, *STEPS, "--semantic-checkpoint", shipped_path("semantic"), "--out", tmp_path / "sir"))
    assert "classes" in line and "ade20k" in line
