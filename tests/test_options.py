"""The options records: what the user typed, resolved once with its sources, passed whole to each
protocol kind and training stage, refused in one line where it cannot be honoured."""

import json
import time

import pytest

from sairbench.errors import SairbenchError
from sairbench.options import RunOptions
from tests.helpers import PROTO, ade20k_tree, invoke

TINY = ["--steps", "1", "--batch", "1", "--queries", "8", "--image-size", "32", "--threads", "1"]
MIOU = ["run", "--protocol", "sir-miou", "--limit", "2", "--per-bucket", "1", "--threads", "1"]


def test_sir_miou_runs_through_the_command_and_times_the_whole_job(tmp_path, monkeypatch):
    import sairbench.probe as probe

    real = probe._class_embeddings
    monkeypatch.setattr(probe, "_class_embeddings", lambda *a: time.sleep(0.3) or real(*a))
    invoke([*MIOU, "--results", str(tmp_path), "--name", "p"])
    meta = json.loads((tmp_path / "p" / "meta.json").read_text())
    assert meta["kind"] == "sir-miou" and meta["options"]["limit"] == {"value": 2, "source": "flag"}
    assert meta["options"]["size"] == {"value": 64, "source": "dataset"}
    assert meta["elapsed_one_time_s"]["class_embeddings"] >= 0.3
    assert meta["elapsed_s"] >= sum(meta["elapsed_one_time_s"].values())


@pytest.mark.parametrize("extra,flag", [(["--self-ensemble", "8"], "--self-ensemble"), (["--shard", "1/2"], "--shard")])
def test_sir_miou_refuses_what_it_cannot_honour_in_one_line(tmp_path, extra, flag):
    with pytest.raises(SairbenchError, match=f"^{flag} does not apply to a sir-miou protocol .*; drop {flag}.$"):
        invoke([*MIOU, "--results", str(tmp_path), *extra])
    assert not any(tmp_path.iterdir())  # refused before anything is written


def test_sources_of_each_value(tmp_path, monkeypatch):
    proto = tmp_path / "p.toml"
    proto.write_text(PROTO)
    monkeypatch.setenv("SAIRBENCH_LIU2018_MASKS", str(tmp_path))
    opts = RunOptions(protocol=str(proto), size=48).resolve({"protocol", "size"})
    src = opts.sources
    assert (src["protocol"], src["size"], src["limit"], src["per_bucket"], src["mask_dir"]) == \
        ("flag", "flag", "protocol", "protocol", "env")
    assert src["fit"] == "dataset" and src["model"] == "protocol" and src["self_ensemble"] == "checkpoint"
    assert opts.size == 48 and opts.mask_dir == str(tmp_path) and opts.record()["size"] == {"value": 48, "source": "flag"}
    assert RunOptions(protocol=str(proto), size=48).resolve().sources["size"] == "flag"  # library use: non-defaults


def test_cache_build_takes_the_run_options_and_fills_what_the_run_reads(tmp_path, monkeypatch):
    from sairbench.models.sir import SemanticBranch

    args = ["--limit", "2", "--per-bucket", "1", "--fit", "resize", "--size", "32", "--threads", "1", "-m", "sair"]
    invoke(["cache", "build", *args])
    calls = []
    real = SemanticBranch.encoder_key
    monkeypatch.setenv("SAIRBENCH_FEATURE_CACHE", "1")
    monkeypatch.setattr("sairbench.cache.cached_batch",
                        _counting(calls, __import__("sairbench.cache", fromlist=["x"]).cached_batch))
    invoke(["run", *args, "--results", str(tmp_path), "--name", "r"])
    assert calls and all(c == 0 for c in calls), calls  # every feature read from the cache
    assert real is SemanticBranch.encoder_key


def _counting(calls, cached_batch):
    def wrapped(kind, keys, compute):
        computed = []
        out = cached_batch(kind, keys, lambda: computed.append(1) or compute())
        calls.append(len(computed))
        return out
    return wrapped


def test_cache_build_refuses_run_only_options(tmp_path):
    from sairbench.feature_cache import build_feature_cache

    opts = RunOptions(name="x").resolve({"name"})
    with pytest.raises(SairbenchError, match="^--name does not apply to `sairbench cache build`"):
        build_feature_cache(opts)


@pytest.mark.parametrize("stage,extra,flag", [
    ("semantic", ["--clip-weights", "w.pt"], "--clip-weights"),
    ("liif", ["--clip-weights", "w.pt"], "--clip-weights"),
    ("liif", ["--sir-checkpoint", "x.pt"], "--sir-checkpoint"),
    ("sir", ["--joint"], "--joint"),
    ("sir", ["--prefill", "smooth"], "--prefill"),
    ("sair", ["--semantic-encoder", "clip"], "--semantic-encoder"),
])
def test_a_stage_refuses_options_it_does_not_use(tmp_path, stage, extra, flag):
    with pytest.raises(SairbenchError, match=f"^{flag} does not apply to `train {stage}`"):
        invoke(["train", stage, *TINY, *extra, "--out", str(tmp_path / "t")])
    assert not (tmp_path / "t" / "last.pt").exists()


@pytest.mark.parametrize("stage,flag", [("sir", "--semantic-checkpoint"), ("sair", "--sir-checkpoint")])
def test_shipped_faces_stages_are_not_built_on_for_other_data(tmp_path, stage, flag):
    from sairbench.checkpoint import shipped_path

    root = ade20k_tree(tmp_path / "ADEChallengeData2016")
    args = ["train", stage, "--dataset", "ade20k", "--data-root", str(root), *TINY]
    with pytest.raises(SairbenchError, match=f"trained on 'synthetic-faces'.*pass {flag}"):
        invoke([*args, "--out", str(tmp_path / "refused")])
    named = shipped_path("semantic" if stage == "sir" else "sir")
    invoke([*args, flag, str(named), "--out", str(tmp_path / "named")])  # named explicitly: the user's choice
    assert (tmp_path / "named" / "last.pt").is_file()


def test_a_later_stage_inherits_size_from_the_checkpoint_it_builds_on(tmp_path):
    from sairbench.checkpoint import load_checkpoint

    invoke(["train", "sir", "--size", "paper", *TINY, "--out", str(tmp_path / "sir")])
    sir = str(tmp_path / "sir" / "last.pt")
    invoke(["train", "nfs", *TINY, "--sir-checkpoint", sir, "--out", str(tmp_path / "nfs")])  # no SIR: own size
    invoke(["train", "ous", *TINY, "--sir-checkpoint", sir, "--out", str(tmp_path / "ous")])
    ckpt = load_checkpoint(tmp_path / "ous" / "last.pt")
    assert ckpt["model"]["size"] == "paper" and ckpt["train"]["sources"]["size"] == "checkpoint"
    with pytest.raises(SairbenchError, match="trained with size 'paper' but --size tiny was given"):
        invoke(["train", "ous", *TINY, "--size", "tiny", "--sir-checkpoint", sir, "--out", str(tmp_path / "x")])
