"""One run over several processes: torchrun's ranks (or SLURM's tasks) take the chunks of one run
folder, and the one that finds every chunk done writes the tables, equal to a single process's."""

import json
import subprocess
import sys

import pandas as pd
import pytest

from tests.commands_helpers import assert_ok, sairbench

ARGS = ["run", "-m", "telea", "-m", "liif", "--limit", "30", "--per-bucket", "2", "--threads", "1"]


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    res = tmp_path_factory.mktemp("single")
    assert_ok(sairbench(*ARGS, "--results", str(res), "--name", "one"))
    return pd.read_parquet(res / "one" / "per_image.parquet")


def test_torchrun_ranks_share_one_folder_and_equal_one_process(tmp_path, single):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "sairbench", *ARGS, "--results", str(tmp_path), "--name", "tr"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**__import__("os").environ,
                                                                                  "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "tr" / "per_image.parquet"), single)
    meta = json.loads((tmp_path / "tr" / "meta.json").read_text())
    assert meta["options"]["shard"]["source"] == "env" and set(meta["model_info"]) == {"telea", "liif"}
    assert [p.name for p in tmp_path.iterdir()] == ["tr"]  # one folder for both ranks


def test_slurm_tasks_take_their_chunks_and_the_last_writes_the_tables(tmp_path, single, monkeypatch):
    monkeypatch.setenv("SLURM_NTASKS", "2")
    outs = []
    for rank in ("1", "0"):
        monkeypatch.setenv("SLURM_PROCID", rank)
        outs.append(sairbench(*ARGS, "--results", str(tmp_path), "--name", "sl"))
        assert_ok(outs[-1])
    assert "shard 2/2 written" in outs[0].stdout and not (tmp_path / "sl" / "summary.csv").stat().st_size == 0
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "sl" / "per_image.parquet"), single)


def test_a_launcher_rank_out_of_range_is_one_line(tmp_path, monkeypatch):
    from tests.commands_helpers import error_line

    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "2")
    line = error_line(sairbench(*ARGS, "--results", str(tmp_path)))
    assert "$RANK=3 is not in 0..1" in line
