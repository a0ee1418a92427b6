"""What a newcomer hits first. Usage errors are one line + the usage hint (exit 2), bare
`sairbench` shows help (exit 0), Ctrl-C says how to resume (exit 130), --version names the commit
of the shipped checkpoints, progress is visible in a log file, LPIPS is explained once."""

import os
import signal
import subprocess
import sys
import time

import pytest

from sairbench.metrics import find_vgg16_weights
from tests.helpers import PROTO

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}


def sairbench(*args, timeout=300, env=None):
    return subprocess.run([sys.executable, "-m", "sairbench", *args], capture_output=True, text=True,
                          timeout=timeout, env=env or ENV)


def test_usage_errors_are_one_line_and_exit_2():
    proc = sairbench("run", "--bogus")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "No such option: --bogus" in proc.stderr
    assert "Try 'sairbench run --help'" in proc.stderr


def test_bare_command_shows_help_and_exits_0():
    proc = sairbench()
    assert proc.returncode == 0 and "Usage" in proc.stdout and "Traceback" not in proc.stdout + proc.stderr


def test_version_names_the_shipped_checkpoints():
    proc = sairbench("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("sairbench ") and "shipped checkpoints" in proc.stdout


def test_ctrl_c_prints_the_resume_hint_and_exits_130(tmp_path):
    cmd = [sys.executable, "-m", "sairbench", "train", "liif", "--steps", "100000", "--batch", "2", "--queries", "16",
           "--image-size", "32", "--threads", "1", "--save-every", "50", "--out", str(tmp_path / "t")]
    # a suite started in the background (`cmd &`) hands its children SIGINT ignored: restore it
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while not (tmp_path / "t" / "last.pt").exists() and time.time() < deadline:  # training is under way
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    assert "--resume" in err and "Traceback" not in err


def test_progress_lines_in_a_log_file_and_one_lpips_line(tmp_path):
    proto = tmp_path / "mini.toml"
    proto.write_text(PROTO)
    env = {**ENV, "SAIRBENCH_PROGRESS_EVERY": "0"}
    proc = sairbench("run", "--protocol", str(proto), "--results", str(tmp_path / "r"), "--threads", "1", env=env)
    assert proc.returncode == 0, proc.stderr
    lines = [ln for ln in proc.stdout.splitlines() if " pairs, " in ln and "elapsed" in ln]
    assert lines and ("ETA" in lines[0] or lines[0].endswith("done"))
    if find_vgg16_weights()[0] is None:
        assert (proc.stdout + proc.stderr).count("LPIPS is NaN") == 1


@pytest.mark.parametrize("bad", ["0/2", "3/2", "a/b"])
def test_shards_are_numbered_from_1(tmp_path, bad):
    proto = tmp_path / "mini.toml"
    proto.write_text(PROTO)
    proc = sairbench("run", "--protocol", str(proto), "--results", str(tmp_path / "r"), "--shard", bad)
    assert proc.returncode == 2 and "--shard" in proc.stderr and "1/2" in proc.stderr


def test_inpaint_shows_progress_in_a_log(tmp_path):
    import numpy as np
    from PIL import Image

    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "i.png")
    m = np.zeros((64, 64), np.uint8)
    m[20:40, 20:40] = 255
    Image.fromarray(m).save(tmp_path / "m.png")
    env = {**ENV, "SAIRBENCH_PROGRESS_EVERY": "0"}
    proc = sairbench("inpaint", "liif", str(tmp_path / "i.png"), str(tmp_path / "m.png"), "-o", str(tmp_path / "o.png"),
                     "--size", "256x256", "--threads", "1", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "inpaint liif: 65536/65536 pixels" in proc.stdout


def test_the_printed_run_table_is_sorted_best_first(tmp_path, capsys):
    import pandas as pd

    from tests.helpers import invoke

    proto = tmp_path / "mini.toml"
    proto.write_text(PROTO.replace('names = ["telea", "navier-stokes"]', 'names = ["telea", "navier-stokes", "biharmonic"]'))
    invoke(["run", "--protocol", str(proto), "--results", str(tmp_path / "r"), "--name", "s"])
    out = capsys.readouterr().out
    summary = pd.read_csv(tmp_path / "r" / "s" / "summary.csv")
    psnr = summary[(summary.bucket == "0-20%") & (summary.metric == "psnr")].sort_values("mean", ascending=False)
    rows = [ln.split("│")[1].strip() for ln in out.splitlines() if ln.startswith("│") and "0-20%" in ln]
    assert rows == list(psnr["model"]) and "best first" in out  # each bucket's best model on top
