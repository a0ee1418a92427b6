"""What the suite stores is checked before it is used: part files against their records (merge
refuses, --resume recomputes), cache entries against their digests (recomputed), links out of
--results (refused), meta.json against the run's own record (refused), failed writes (one line,
nothing half-written). Every command runs through the console entry point (tests/commands_helpers.py)."""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from tests.commands_helpers import assert_ok, error_line, sairbench

TINY = ["--limit", "2", "--per-bucket", "1", "--size", "32", "--threads", "1"]


def _run(res: Path, name: str, *extra, models=("telea", "navier-stokes")):
    """``sairbench run`` of the default protocol on ``models`` at the tiny sizes."""
    return sairbench("run", "--results", res, "--name", name, *[a for m in models for a in ("-m", m)], *TINY, *extra)


def _files(folder: Path) -> dict[str, bytes]:
    """{relative path: bytes} of every file under ``folder`` (links not followed)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def sharded(tmp_path_factory):
    """A run made by `--shard 1/2` and `--shard 2/2` into one folder (the second finishes it)."""
    res = tmp_path_factory.mktemp("integrity") / "r"
    assert_ok(_run(res, "s", "--shard", "1/2"))
    assert_ok(_run(res, "s", "--shard", "2/2"))
    return res / "s"


def _one_row(part: Path, other: Path) -> None:
    pd.read_parquet(part).head(1).to_parquet(part, index=False)


def _no_bucket(part: Path, other: Path) -> None:
    pd.read_parquet(part).drop(columns=["bucket"]).to_parquet(part, index=False)


def _edited(part: Path, other: Path) -> None:
    df = pd.read_parquet(part)
    df.loc[0, "psnr"] = 99.0
    df.to_parquet(part, index=False)


def _other_model(part: Path, other: Path) -> None:
    shutil.copyfile(other, part)


def _other_model_with_record(part: Path, other: Path) -> None:
    shutil.copyfile(other, part)
    shutil.copyfile(other.with_suffix(".json"), part.with_suffix(".json"))


def _unlisted(part: Path, other: Path) -> None:
    part.with_suffix(".json").unlink()


TAMPER = {"other-model": _other_model, "other-model-and-record": _other_model_with_record, "one-row": _one_row,
          "no-bucket": _no_bucket, "edited": _edited, "unlisted": _unlisted}


@pytest.mark.parametrize("how", list(TAMPER))
def test_a_tampered_part_is_refused_by_merge_and_recomputed_by_resume(tmp_path, sharded, how):
    run = tmp_path / "r" / "s"
    shutil.copytree(sharded, run)
    reference = pd.read_parquet(run / "per_image.parquet")
    part = run / "parts" / "telea" / "000000.parquet"
    TAMPER[how](part, run / "parts" / "navier-stokes" / "000000.parquet")

    line = error_line(sairbench("merge", run))
    assert f"{part}:" in line and "--resume" in line, line

    result = _run(tmp_path / "r", "s", "--resume")
    assert_ok(result)
    warned = [w for w in result.stderr.splitlines() if str(part) in w]
    assert len(warned) == 1 and "recomputing it" in warned[0], result.stderr
    assert pd.read_parquet(run / "per_image.parquet").equals(reference)
    assert_ok(sairbench("merge", run))  # the recomputed part matches its record again


def _feature_run(tmp_path: Path, name: str, cached: bool) -> pd.DataFrame:
    env = {"SAIRBENCH_CACHE_DIR": str(tmp_path / "cache"), "SAIRBENCH_FEATURE_CACHE": "1" if cached else None}
    assert_ok(sairbench("run", "--results", tmp_path / "r", "--name", name, "-m", "sair", *TINY, env=env))
    return pd.read_parquet(tmp_path / "r" / name / "per_image.parquet")


def _entry(path: Path) -> tuple[dict, bytes]:
    """(metadata, value bytes) of a safetensors cache entry (the header's key order varies by write)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return f.metadata(), f.get_tensor("value").numpy().tobytes()


def test_a_damaged_or_swapped_cache_entry_is_recomputed(tmp_path):
    env = {"SAIRBENCH_CACHE_DIR": str(tmp_path / "cache")}
    assert_ok(sairbench("cache", "build", "-m", "sair", *TINY, env=env))
    entries = sorted((tmp_path / "cache" / "features").glob("*.safetensors"))
    assert len(entries) == 6  # 2 images x 3 buckets x 1 mask
    good = {p: _entry(p) for p in entries}
    flipped = bytearray(entries[0].read_bytes())
    for k in range(1, 65):  # the last 64 bytes: the end of the stored values
        flipped[-k] ^= 0xFF
    entries[0].write_bytes(bytes(flipped))
    shutil.copyfile(entries[2], entries[1])  # another valid entry in its place

    plain = _feature_run(tmp_path, "plain", cached=False)
    cached = _feature_run(tmp_path, "cached", cached=True)
    assert cached.equals(plain)
    assert {p: _entry(p) for p in entries} == good  # both rewritten as computed


@pytest.mark.parametrize("linked", ["run", "parts", "model"])
def test_resume_refuses_links_out_of_results(tmp_path, linked):
    res = tmp_path / "r"
    assert_ok(_run(res, "k"))
    run = res / "k"
    (run / "parts" / "telea" / "000000.parquet").unlink()  # a resume would write it
    inside = {"run": run, "parts": run / "parts", "model": run / "parts" / "telea"}[linked]
    outside = tmp_path / "elsewhere" / inside.name
    outside.parent.mkdir()
    shutil.move(str(inside), str(outside))
    inside.symlink_to(outside, target_is_directory=True)
    before = _files(outside)

    line = error_line(_run(res, "k", "--resume"))
    assert f"{inside}: a symbolic link" in line and "outside" in line, line
    assert _files(outside) == before


META_EDITS = {
    "dataset.name": lambda m: m["dataset"].update(name="celeba-hq"),
    "dataset.limit": lambda m: m["dataset"].update(limit=1000),
    "protocol": lambda m: m.update(protocol="ablations"),
    "options.size": lambda m: m["options"]["size"].update(value=256),
}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    res = tmp_path_factory.mktemp("report") / "r"
    assert_ok(_run(res, "f"))
    return res / "f"


def test_report_reads_an_untouched_run(tmp_path, finished):
    assert_ok(sairbench("report", finished, "--out", tmp_path / "rep"))


@pytest.mark.parametrize("what", list(META_EDITS))
def test_report_refuses_a_meta_json_that_disagrees_with_run_json(tmp_path, finished, what):
    run = tmp_path / "f"
    shutil.copytree(finished, run)
    meta = json.loads((run / "meta.json").read_text())
    META_EDITS[what](meta)
    (run / "meta.json").write_text(json.dumps(meta))
    line = error_line(sairbench("report", run, "--out", tmp_path / "rep"))
    assert f"{run / 'meta.json'}: its {what} " in line, line
    assert not (tmp_path / "rep").exists()


def test_a_failed_write_is_one_line_and_keeps_earlier_files(tmp_path, monkeypatch):
    res = tmp_path / "r"
    assert_ok(_run(res, "s", "--shard", "1/2"))
    run = res / "s"
    before = _files(run)
    part = run / "parts" / "navier-stokes" / "000000.parquet"  # what shard 2/2 writes
    if os.geteuid() == 0:  # root writes into read-only folders: a full disk instead
        def full_disk(df, path, *args, **kwargs):
            Path(path).write_bytes(b"PAR1 half")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        monkeypatch.setattr(pd.DataFrame, "to_parquet", full_disk)
    else:
        for d in [run, *[p for p in run.rglob("*") if p.is_dir()]]:
            d.chmod(0o555)
    try:
        line = error_line(_run(res, "s", "--shard", "2/2"))
    finally:
        for d in [run, *[p for p in run.rglob("*") if p.is_dir()]]:
            d.chmod(0o755)
    assert "could not write" in line, line
    if os.geteuid() == 0:
        assert f"{part}: could not write (No space left on device)" in line, line
    else:
        assert f"{run}" in line, line
    after = _files(run)
    assert not [p for p in after if p.endswith(".tmp")], sorted(after)  # nothing half-written
    assert not part.exists() and not part.with_suffix(".json").exists()
    rewritten = {"options.json"}  # which shard ran
    for name, data in before.items():
        if name not in rewritten:
            assert after[name] == data, name
    assert "model_info/telea.json" in before  # one file per model: the first shard's is kept as it was
    json.loads(after["options.json"])
