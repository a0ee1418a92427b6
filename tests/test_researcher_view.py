"""What a researcher reads: the terminal table (legend, directions, the best of each bucket marked
in a way that survives a pipe, "wrote <folder>"), one short LPIPS line, `sairbench models` at 80
columns with every runnable stage, and inpaint's progress counted in hole pixels."""

import re

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from tests.commands_helpers import assert_ok, sairbench

RUN = ["--limit", "3", "--per-bucket", "2", "--threads", "1"]


@pytest.fixture(scope="module")
def run_output(tmp_path_factory):
    import sairbench.errors as errors
    import sairbench.metrics.lpips_scorer as lpips_scorer

    errors._WARNED.clear()  # the line is said once per process: make this run the first to say it
    lpips_scorer._DEFAULT_SCORERS.clear()
    res = tmp_path_factory.mktemp("res")
    out = sairbench("run", "-m", "telea", "-m", "biharmonic", "-m", "liif", *RUN, "--results", str(res), "--name", "t",
                    env={"COLUMNS": "120"})
    assert_ok(out)
    return out, res / "t"


def test_the_table_has_a_legend_directions_and_says_where_it_wrote(run_output):
    out, folder = run_output
    assert "± = 95 % CI over images" in out.stdout and "↑ higher is better, ↓ lower" in out.stdout
    assert "psnr ↑" in out.stdout and "l1 ↓" in out.stdout
    assert out.stdout.rstrip().splitlines()[-1] == f"wrote {folder}"


def test_each_bucket_lists_its_best_model_first_and_marks_each_best_value(run_output):
    out, folder = run_output
    summary = pd.read_csv(folder / "summary.csv")
    rows = [line for line in out.stdout.splitlines() if re.match(r"^│ \S+ +│ \d", line)]
    for bucket in ("0-20%", "20-40%", "40-60%"):
        psnr = summary[(summary.bucket == bucket) & (summary.metric == "psnr")].set_index("model")["mean"]
        shown = [r for r in rows if f"│ {bucket}" in r]
        assert shown[0].split("│")[1].strip() == psnr.idxmax()  # a piped log shows plain text
        cells = [c.strip() for c in shown[0].split("│")]
        assert cells[3].endswith("*")  # the bucket's best PSNR is marked
        assert sum(r.split("│")[3].strip().endswith("*") for r in shown) >= 1
        l1 = summary[(summary.bucket == bucket) & (summary.metric == "l1")].set_index("model")["mean"]
        best_l1 = [r for r in shown if r.split("│")[5].strip().endswith("*")]
        assert {r.split("│")[1].strip() for r in best_l1} >= {l1.round(3).idxmin()}


def test_lpips_without_weights_is_one_short_line_with_the_fix(run_output):
    from sairbench.metrics.vgg16_weights import find_vgg16_weights

    if find_vgg16_weights()[0] is not None:
        pytest.skip("VGG16 weights are present here")
    out, _ = run_output
    lines = [ln for ln in (out.stdout + out.stderr).splitlines() if "LPIPS" in ln and "NaN" in ln]
    assert len(lines) == 1 and len(lines[0]) <= 100 and "SAIRBENCH_VGG16_WEIGHTS" in lines[0], lines


def test_models_fits_80_columns_and_lists_every_stage():
    out = sairbench("models", env={"COLUMNS": "80"})
    assert_ok(out)
    assert max(len(line) for line in out.stdout.splitlines()) <= 80
    names = {line.split()[0] for line in out.stdout.splitlines() if line.strip() and line.startswith(" ")}
    assert {"liif", "liif@ft6000", "sair@gpu4000-step1600", "liif@photos", "telea", "lama"} <= names
    detail = sairbench("models", "liif@ft6000")
    assert_ok(detail)
    assert "recipe: sairbench train liif" in detail.stdout and "trained on: synthetic-faces 64x64" in detail.stdout


def test_every_shipped_checkpoint_has_a_recipe_that_rebuilds_it():
    from sairbench.checkpoint import SHIPPED_DIR
    from sairbench.shipped import runnable_models

    rows = {r["file"]: r for r in runnable_models() if r["file"]}
    for path in SHIPPED_DIR.glob("*.safetensors"):
        row = rows.get(str(path))
        assert row is not None, f"{path.name} is shipped but no command names it"
        assert row["recipe"].startswith("sairbench train"), f"{path.name} has no recipe"


def test_inpaint_progress_counts_hole_pixels(tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (48, 48, 3), dtype=np.uint8)).save(tmp_path / "img.png")
    hole = np.zeros((48, 48), np.uint8)
    hole[10:20, 10:30] = 255
    Image.fromarray(hole).save(tmp_path / "mask.png")
    out = sairbench("inpaint", "liif@photos", str(tmp_path / "img.png"), str(tmp_path / "mask.png"),
                    "-o", str(tmp_path / "out.png"), "--threads", "1", env={"SAIRBENCH_PROGRESS_EVERY": "0"})
    assert_ok(out)
    done = [ln for ln in out.stdout.splitlines() if "hole pixels" in ln and ln.rstrip().endswith("done")]
    assert done and "200/200 hole pixels" in done[-1], out.stdout


def _commands(command, prefix=()):
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield (*prefix, name)
        yield from _commands(sub, (*prefix, name))


def test_every_help_text_is_clean():
    import typer

    from sairbench.cli.common import app

    for words in [(), *_commands(typer.main.get_command(app))]:
        out = sairbench(*words, "--help", env={"COLUMNS": "100"})
        assert out.exit_code == 0, out.describe()
        assert "<bool>" not in out.stdout, f"sairbench {' '.join(words)} --help shows <bool>"


def test_mask_commands_take_their_defaults_and_size_from_the_protocol(tmp_path):
    import json

    assert_ok(sairbench("masks", "generate", "-o", str(tmp_path / "g"), "--per-bucket", "1"))
    meta = json.loads((tmp_path / "g" / "manifest.json").read_text())["meta"]
    assert meta["size"] == 64  # the default protocol's evaluation size on the built-in data
    assert_ok(sairbench("masks", "export", "-o", str(tmp_path / "e"), "--limit", "1", "--per-bucket", "1", "--size", "32"))
    gts = list((tmp_path / "e" / "gt").glob("*.png"))
    assert gts and all(Image.open(p).size == (32, 32) for p in gts)
    assert json.loads((tmp_path / "e" / "export.json").read_text())["dataset"]["size"] == 32


def test_a_run_says_its_expected_time_before_it_starts(tmp_path, monkeypatch):
    import sairbench.timings as timings

    monkeypatch.setattr(timings, "SHOW_ABOVE_S", 0.0)
    monkeypatch.setenv("SAIRBENCH_CACHE_DIR", str(tmp_path / "cache"))  # no timings of earlier tests
    args = ["run", "-m", "telea", "--limit", "2", "--per-bucket", "1", "--threads", "1", "--results", str(tmp_path)]
    first = sairbench(*args)
    assert_ok(first)
    assert "no earlier timing of telea" in first.stdout
    second = sairbench(*args)
    assert_ok(second)
    lines = second.stdout.splitlines()
    expected = [i for i, ln in enumerate(lines) if ln.startswith("expected time: about")]
    assert expected and expected[0] < next(i for i, ln in enumerate(lines) if "telea" in ln and "│" in ln)
