"""A hostile or careless user gets one clear line, never a
traceback, a silently wrong number, code execution or a write outside the chosen folder."""

import json
import os
import stat
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import torch

from sairbench.errors import SairbenchError
from tests.helpers import invoke

TINY = ["--batch", "2", "--queries", "16", "--image-size", "32", "--threads", "1"]
PWNED = Path("/tmp/sairbench-hostile-pwned")


class _Boom:
    def __reduce__(self):
        return (Path.touch, (PWNED,))


@pytest.fixture()
def evil(tmp_path):
    PWNED.unlink(missing_ok=True)
    path = tmp_path / "evil.pt"
    torch.save({"model": {"name": "liif", "size": "tiny", "args": {}, "sd": {}}, "step": 1, "x": _Boom()}, path)
    yield path
    assert not PWNED.exists(), "a checkpoint ran code"


def test_no_entry_point_unpickles_code(tmp_path, proto, evil):
    calls = [
        ["run", "--protocol", str(proto), "--results", str(tmp_path / "r"), "-m", "liif", "--checkpoint", f"liif={evil}"],
        ["train", "sair", "--steps", "1", *TINY, "--sir-checkpoint", str(evil), "--out", str(tmp_path / "a")],
        ["train", "sir", "--steps", "1", *TINY, "--semantic-checkpoint", str(evil), "--out", str(tmp_path / "b")],
        ["train", "liif", "--steps", "1", *TINY, "--init", str(evil), "--out", str(tmp_path / "c")],
    ]
    for args in calls:
        with pytest.raises(SairbenchError, match="evil.pt"):
            invoke(args)
    planted = tmp_path / "d"
    planted.mkdir()
    (planted / "last.pt").write_bytes(evil.read_bytes())
    with pytest.raises(SairbenchError, match="no checkpoint to resume .*unreadable: last.pt"):
        invoke(["train", "liif", "--steps", "1", *TINY, "--out", str(planted), "--resume"])


def test_a_torchscript_clip_archive_needs_an_explicit_opt_in(tmp_path, monkeypatch):
    from sairbench.semantic.clip_dense import ENV_ALLOW_TORCHSCRIPT, DenseCLIPEncoder

    archive = tmp_path / "ViT-B-16.pt"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("ViT-B-16/code/__torch__.py", "import os\n")
        zf.writestr("ViT-B-16/constants.pkl", b"")
    monkeypatch.delenv(ENV_ALLOW_TORCHSCRIPT, raising=False)
    with pytest.raises(SairbenchError, match=f"TorchScript archive.*{ENV_ALLOW_TORCHSCRIPT}=1"):
        DenseCLIPEncoder(pretrained=str(archive))


@pytest.mark.parametrize("name", ["../../x", "/tmp/abs", "a/b", ".."])
def test_run_names_stay_inside_the_results_folder(tmp_path, proto, name):
    with pytest.raises(SairbenchError, match="--name"):
        invoke(["run", "--protocol", str(proto), "--results", str(tmp_path / "r"), "--name", name])
    assert not (tmp_path / "x").exists() and not Path("/tmp/abs").exists()


def test_a_tag_cannot_name_a_path(tmp_path, proto):
    with pytest.raises(SairbenchError, match="NAME@TAG"):
        invoke(["run", "--protocol", str(proto), "--results", str(tmp_path / "r"), "-m", "liif@../../v"])
    assert not list(tmp_path.rglob("*.parquet"))


BASE = 'name = "p"\n'


@pytest.mark.parametrize("text,match", [
    (BASE + '[dataset]\nnmae = "x"\n', "unknown key 'dataset.nmae'"),
    (BASE + 'kind = "foo"\n', "kind = 'foo'"),
    (BASE + '[models]\nnames = "telea"\n', "'models.names' = 'telea' must be of type list"),
    (BASE + "dataset = 5\n", "'dataset' must be a table"),
    (BASE + '[dataset]\nsize = "big"\n', "'dataset.size' = 'big' must be of type int"),
    (BASE + 'seed = "abc"\n', "'seed' = 'abc' must be of type int"),
])
def test_protocol_typos_and_types_are_one_line(tmp_path, text, match):
    from sairbench.protocol import load_protocol

    p = tmp_path / "p.toml"
    p.write_text(text)
    with pytest.raises(SairbenchError, match=match):
        load_protocol(str(p))


@pytest.mark.parametrize("flag,value", [("--steps", "0"), ("--steps", "-5"), ("--batch", "0"), ("--save-every", "0"),
                                        ("--queries", "-1"), ("--image-size", "0"), ("--workers", "-1")])
def test_training_numbers_are_checked_at_the_edge(tmp_path, flag, value):
    with pytest.raises(SairbenchError, match=f"{flag} {value}"):
        invoke(["train", "liif", flag, value, "--out", str(tmp_path / "t")])
    assert not (tmp_path / "t").exists()


def test_devices_and_limits_are_checked(tmp_path, proto):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(SairbenchError, match="CUDA is not available"):
        invoke(["run", "--protocol", str(proto), "--results", str(tmp_path / "r"), "--device", "cuda"])
    with pytest.raises(SairbenchError, match="CUDA is not available"):
        invoke(["train", "liif", "--device", "cuda", "--out", str(tmp_path / "t")])
    with pytest.raises(SairbenchError, match="--limit -1"):
        invoke(["run", "--protocol", str(proto), "--results", str(tmp_path / "r"), "--limit", "-1"])
    with pytest.raises(SairbenchError, match="numbered from 1"):
        invoke(["run", "--protocol", str(proto), "--results", str(tmp_path / "r"), "--shard", "0/2"])


def test_resume_keeps_model_info_skipped_and_the_whole_elapsed_time(tmp_path, proto):
    res = tmp_path / "r"
    base = ["run", "--protocol", str(proto), "--results", str(res), "--name", "k"]
    invoke(base)
    run = res / "k"
    full = pd.read_parquet(run / "per_image.parquet")
    first = json.loads((run / "meta.json").read_text())
    # as if killed while the second model ran: its parts and the tables are gone
    for f in ("meta.json", "per_image.parquet", "summary.csv", "summary.parquet"):
        (run / f).unlink()
    for p in (run / "parts" / "navier-stokes").glob("*.parquet"):
        p.unlink()
    invoke([*base, "--resume"])
    meta = json.loads((run / "meta.json").read_text())
    assert meta["model_info"]["telea"] == first["model_info"]["telea"]
    assert set(meta["semantic_encoder"]) == {"telea", "navier-stokes"}
    assert len(json.loads((run / "elapsed.json").read_text())) == 2
    assert meta["elapsed_s"] == pytest.approx(sum(json.loads((run / "elapsed.json").read_text())))
    pd.testing.assert_frame_equal(pd.read_parquet(run / "per_image.parquet"), full)


def test_a_damaged_part_is_recomputed_on_resume_and_named_by_merge(tmp_path, proto):
    res = tmp_path / "r"
    base = ["run", "--protocol", str(proto), "--results", str(res), "--name", "d"]
    invoke(base)
    run = res / "d"
    full = pd.read_parquet(run / "per_image.parquet")
    part = next((run / "parts" / "telea").glob("*.parquet"))
    part.write_bytes(b"not parquet")
    with pytest.raises(SairbenchError, match=f"{part.name}: damaged part file"):
        invoke(["merge", str(run)])
    with pytest.warns(UserWarning, match="damaged part file"):
        invoke([*base, "--resume"])
    pd.testing.assert_frame_equal(pd.read_parquet(run / "per_image.parquet"), full)


def test_train_resume_uses_the_newest_snapshot(tmp_path):
    out = tmp_path / "t"
    invoke(["train", "liif", "--steps", "4", *TINY, "--save-every", "4", "--keep-every", "2", "--out", str(out)])
    (out / "last.pt").unlink()  # killed between a snapshot and the next last.pt
    from sairbench.train.loop import newest_snapshot

    ckpt, path = newest_snapshot(out)
    assert path.name == "step_000004.pt" and ckpt["step"] == 4
    with pytest.raises(SairbenchError, match="no checkpoint to resume"):
        invoke(["train", "liif", "--steps", "4", *TINY, "--out", str(tmp_path / "empty"), "--resume"])


def test_results_follow_the_umask(tmp_path, proto):
    old = os.umask(0o022)
    try:
        invoke(["run", "--protocol", str(proto), "--results", str(tmp_path / "r"), "--name", "u"])
    finally:
        os.umask(old)
    mode = stat.S_IMODE((tmp_path / "r" / "u" / "summary.csv").stat().st_mode)
    assert mode == 0o644


def test_report_out_onto_a_file_is_one_line(tmp_path, proto):
    invoke(["run", "--protocol", str(proto), "--results", str(tmp_path / "r"), "--name", "x"])
    target = tmp_path / "afile"
    target.write_text("keep me")
    with pytest.raises(SairbenchError, match="is a file, not a folder"):
        invoke(["report", str(tmp_path / "r" / "x"), "--out", str(target)])
    assert target.read_text() == "keep me"
