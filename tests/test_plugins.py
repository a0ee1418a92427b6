"""The plugin API (docs/plugins.md): the example package of examples/ installed with pip and used
through the `sairbench` command, and each promise of the API on its own (in-process, with the
example's entry points made visible to ``importlib.metadata`` and every registry restored after)."""

from __future__ import annotations

import contextlib
import importlib.metadata as md
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from sairbench.errors import SairbenchError
from tests.commands_helpers import assert_ok, error_line, sairbench
from tests.helpers import PROTO, invoke

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "sairbench-example-plugin"
TINY = ("--limit", "2", "--per-bucket", "1", "--threads", "1")


def example_entry_points() -> list[md.EntryPoint]:
    """The entry points the example's pyproject.toml declares, as pip would install them."""
    groups = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]["entry-points"]
    return [md.EntryPoint(name, value, group) for group, table in groups.items() for name, value in table.items()]


@contextlib.contextmanager
def installed(*extra: md.EntryPoint, example: bool = True, path: Path | None = None):
    """The example plugin's entry points (and ``extra``) visible to this process as if installed;
    afterwards every registry, the plugin loader and ``sys.modules`` are as they were."""
    from sairbench import plugins, preset, registry
    from sairbench import parts as parts_mod
    from sairbench.data.registry import DATASETS
    from sairbench.metrics.registry import METRICS

    import sairbench.models  # noqa: F401  (the built-in parts, registered before the snapshot)

    registry.list_models()  # the suite's own entry points, loaded before the snapshot
    tables = [registry._REGISTRY, parts_mod._PARTS, METRICS, DATASETS, preset.APPEARANCE, preset.APPEARANCE_DIM,
              preset.DECODER]
    saved = [dict(t) for t in tables]
    done, status = set(plugins._DONE), list(plugins._STATUS)
    eps = (example_entry_points() if example else []) + list(extra)
    real = md.entry_points
    modules = set(sys.modules)
    with pytest.MonkeyPatch.context() as mp:
        for folder in ([EXAMPLE] if example else []) + ([path] if path else []):
            mp.syspath_prepend(str(folder))

        def entry_points(**kw):
            if set(kw) != {"group"}:  # other callers (torch's own plugins) see the real ones
                return real(**kw)
            return md.EntryPoints([*real(**kw), *[e for e in eps if e.group == kw["group"]]])

        mp.setattr(md, "entry_points", entry_points)
        plugins._DONE.clear()
        plugins._STATUS.clear()
        try:
            yield
        finally:
            for table, old in zip(tables, saved):
                table.clear()
                table.update(old)
            plugins._DONE.clear()
            plugins._DONE.update(done)
            plugins._STATUS[:] = status
            for name in set(sys.modules) - modules:
                if name.startswith(("sairbench_example_plugin", "bad_plugin")):
                    del sys.modules[name]


def _photo(folder: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(folder / "img.png")
    hole = np.zeros((40, 48), np.uint8)
    hole[10:25, 12:30] = 255
    Image.fromarray(hole).save(folder / "mask.png")
    return folder / "img.png", folder / "mask.png"


PLUGIN_PROTO = """
name = "plug"
seed = 1
[dataset]
name = "noise"
limit = 2
[masks]
source = "generated"
per_bucket = 1
[metrics]
names = ["psnr", "psnr_hole", "mae_hole"]
[models]
names = ["mean-fill", "plain-liif", "telea"]
"""


# --- the example package, pip-installed, through the command -----------------------------------

def test_the_example_package_installed_with_pip_works_through_the_command(tmp_path):
    """pip installs examples/sairbench-example-plugin (offline, into a folder of its own, so the
    environment other tests share is untouched); every command then treats its model, part and
    preset row, metric and dataset as the suite's own."""
    src = tmp_path / "src"
    shutil.copytree(EXAMPLE, src)  # the build writes next to the sources: never into the repository
    target = tmp_path / "site"
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                          "--no-index", "--target", str(target), str(src)], capture_output=True, text=True, timeout=120)
    assert pip.returncode == 0, pip.stderr[-2000:]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAIRBENCH_") or k == "SAIRBENCH_CACHE_DIR"}
    env.update(PYTHONPATH=os.pathsep.join([str(target), str(ROOT)]), OMP_NUM_THREADS="1", COLUMNS="200")

    def cli(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "sairbench", *map(str, args)], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and "Traceback" not in done.stderr, f"sairbench {' '.join(map(str, args))}:\n" \
            f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        return done.stdout

    listed = cli("models")
    assert re.search(r"mean-fill\s+plugin\s+-\s+yes", listed)
    assert re.search(r"plain-liif\s+implicit\s+-\s+no: needs a", listed)
    about = cli("models", "plain-liif")
    assert "sairbench-example-plugin" in about and "none shipped" in about and "shipped tiny" not in about

    out = cli("run", *TINY, "--results", "res", "--name", "default")  # a plain run: every model available here
    models = set(pd.read_parquet(tmp_path / "res" / "default" / "per_image.parquet")["model"])
    assert {"mean-fill", "liif", "telea"} <= models and "plain-liif" not in models
    assert re.search(r"left out \(not available here\): .*plain-liif \(needs a checkpoint\)", out)

    cli("train", "plain-liif", "--dataset", "noise", "--steps", "2", "--batch", "2", "--queries", "16",
        "--image-size", "32", "--threads", "1", "--out", "ck")
    image, mask = _photo(tmp_path)
    cli("inpaint", "ck/last.pt", image, mask, "-o", "out.png")  # a fresh process reads the plugin part's checkpoint
    assert Image.open(tmp_path / "out.png").size == (48, 40)

    (tmp_path / "p.toml").write_text(PLUGIN_PROTO)
    cli("run", "--protocol", "p.toml", "--checkpoint", "plain-liif=ck/last.pt", "--threads", "1", "--results", "res",
        "--name", "plug")
    rows = pd.read_parquet(tmp_path / "res" / "plug" / "per_image.parquet")
    assert set(rows["model"]) == {"mean-fill", "plain-liif", "telea"} and rows["mae_hole"].notna().all()
    assert json.loads((tmp_path / "res" / "plug" / "meta.json").read_text())["conventions"]["mae_hole"].startswith("MAE")
    report = cli("report", "res/plug", "--out", "rep")
    assert "MAE (hole)↓" in report and "MAE (hole)" in (tmp_path / "rep" / "report.md").read_text()


# --- 1. registration: listed, chosen, trained, loaded; failures listed ---------------------------

def test_a_default_run_chooses_plugin_models_and_lists_what_it_leaves_out():
    from sairbench.evaluate import select_models

    with installed():
        names, skipped = select_models(["available"])
        assert "mean-fill" in names and "telea" in names
        assert "no shipped checkpoint" in skipped["plain-liif"] and "sairbench train plain-liif" in skipped["plain-liif"]
        names, skipped = select_models(["available"], {"plain-liif": "ck.pt"})
        assert "plain-liif" in names and "plain-liif" not in skipped


def test_a_broken_plugin_is_listed_with_its_reason_and_breaks_nothing():
    bad = [md.EntryPoint("broken-metric", "sairbench_no_such_module:M", "sairbench.metrics"),
           md.EntryPoint("not-a-row", "sairbench_example_plugin.models:MeanFill", "sairbench.datasets"),
           md.EntryPoint("broken-model", "sairbench_no_such_module", "sairbench.models"),
           md.EntryPoint("mae-wrong-name", "sairbench_example_plugin.metrics:MAE_HOLE", "sairbench.metrics")]
    with installed(*bad):
        listed = sairbench("plugins")
        assert_ok(listed)
        text = " ".join(listed.stdout.split())
        assert re.search(r"broken-metric \S+ no \(below\)", text)
        assert "broken-metric (sairbench.metrics, sairbench_no_such_module:M): ModuleNotFoundError" in text
        assert re.search(r"not-a-row \(sairbench.datasets, \S+\): SairbenchError: .*is not a sairbench.data.DatasetRow", text)
        assert "call the entry point 'mae_hole'" in text
        assert re.search(r"mean-fill \S+ yes", text)  # the rest loads
        models = sairbench("models")
        assert_ok(models)
        assert "broken-metric (sairbench.metrics" in " ".join(models.stdout.split())
        from sairbench.metrics import get_metric
        from sairbench.registry import get_spec

        assert get_metric("mae_hole").title == "MAE (hole)"
        assert get_spec("broken-model").available()[0] is False
        assert "plugin failed to load: ModuleNotFoundError" in get_spec("broken-model").available()[1]


def test_a_learned_plugin_variant_trains_and_its_checkpoint_loads_in_a_fresh_process_state(tmp_path):
    """`train NAME` trains a plugin's preset row; reading its checkpoint loads the plugin's parts
    first (a process that has not loaded them yet: `inpaint PATH`, `run --checkpoint`)."""
    from sairbench import parts, plugins

    with installed():
        invoke(["train", "plain-liif", "--dataset", "noise", "--steps", "2", "--batch", "2", "--queries", "16",
                "--image-size", "32", "--threads", "1", "--out", str(tmp_path / "ck")])
        parts._PARTS.pop("plain-conv-encoder")  # as in a fresh process: the part not yet registered
        plugins._DONE.discard("sairbench.parts")
        sys.modules.pop("sairbench_example_plugin.parts", None)
        image, mask = _photo(tmp_path)
        invoke(["inpaint", str(tmp_path / "ck" / "last.pt"), str(image), str(mask), "-o", str(tmp_path / "o.png")])
        assert Image.open(tmp_path / "o.png").size == (48, 40)


# --- parts declare their preset row ---------------------------------------------------------------

def test_a_preset_row_reads_the_parts_own_declaration():
    from sairbench.parts import register
    from sairbench.preset import Preset, register_part_row

    with installed():
        spec = Preset("t", "plain-conv-encoder", "liif", None, "t").spec("tiny")["args"]
        assert spec["appearance"] == {"name": "plain-conv-encoder", "args": {"width": 16, "depth": 3}}
        assert spec["decoder"]["args"]["in_dim"] == 16 and spec["decoder"]["name"] == "liif-decoder"
        assert Preset("t", "plain-conv-encoder", "lte", None, "t").spec("paper")["args"]["decoder"]["args"]["in_dim"] == 64

        @register("undeclared-encoder")
        class Undeclared:  # a part that says nothing about its width
            pass

        with pytest.raises(SairbenchError, match=r"part 'undeclared-encoder' does not declare its appearance row.*"
                                                 r"describe\(size\)"):
            Preset("u", "undeclared-encoder", "liif", None, "u").spec("tiny")
        with pytest.raises(SairbenchError, match="appearance 'nope' is not one of its rows .* nor a registered part"):
            Preset("n", "nope", "liif", None, "n").spec("tiny")
        from sairbench.models.decoders import LIIFDecoder

        @register("small-liif-decoder")
        class SmallLIIF(LIIFDecoder):
            @classmethod
            def describe(cls, size):
                return {"args": {"hidden": [24, 24]}}

        model = Preset("s", "plain-conv-encoder", "small-liif-decoder", None, "s").build("tiny")
        assert model.decoder.spec == {"name": "small-liif-decoder", "args": {"hidden": [24, 24], "in_dim": 16}}
        register_part_row("appearance", "app-wide", "app-encoder",
                          {"tiny": {"widths": [8, 8, 8], "n_resblocks": 1}, "paper": {"widths": [96, 128, 256]}},
                          {"tiny": 8, "paper": 96})
        model = Preset("w", "app-wide", "lte", None, "w").build("tiny")
        assert model.encoder.out_dim == 8 and model.decoder.spec["args"]["in_dim"] == 8
        with pytest.raises(SairbenchError, match="no args/out_dim for size 'paper'"):
            register_part_row("appearance", "half", "app-encoder", {"tiny": {}}, {"tiny": 8})


def test_a_row_whose_part_is_missing_is_listed_as_not_ready_with_the_reason():
    from sairbench.preset import Preset, register_preset
    from sairbench.registry import get_spec

    with installed():
        register_preset(Preset("ghost", "ghost-encoder", "liif", None, "a row naming an absent part"))
        ok, why = get_spec("ghost").available()
        assert not ok and "appearance 'ghost-encoder' is not one of its rows" in why


# --- 3. the Inpainter contract, checked at registration / when built -----------------------------

BAD_PLUGIN = '''
from sairbench.inpainter import Inpainter


class AnySize(Inpainter):
    """Answers any size but cannot be asked for the hole alone."""
    any_size = True

    def inpaint(self, image, mask, size=None):
        return image


def make_any_size(**kw):
    return AnySize()
'''


def test_an_any_size_model_without_region_is_refused_in_one_line(tmp_path):
    from sairbench.evaluate import select_models

    (tmp_path / "bad_plugin.py").write_text(BAD_PLUGIN)
    eps = [md.EntryPoint("any-size-class", "bad_plugin:AnySize", "sairbench.models"),
           md.EntryPoint("any-size-function", "bad_plugin:make_any_size", "sairbench.models")]
    with installed(*eps, example=False, path=tmp_path):
        names, skipped = select_models(["available"])
        assert "any-size-class" not in names and "takes no region= keyword" in skipped["any-size-class"]
        shown = sairbench("models", "any-size-class")
        assert_ok(shown)
        assert "takes no region= keyword" in " ".join(shown.stdout.split())
        line = error_line(sairbench("run", "-m", "any-size-function", *TINY, "--size", "32",
                                    "--results", str(tmp_path / "r")))
        assert "model 'any-size-function' any_size = True, but its inpaint takes no region= keyword" in line
        assert "add region: str" in line


def test_the_contract_check_reads_the_signature():
    from sairbench.inpainter import Inpainter, contract_problem

    class Plain(Inpainter):
        def inpaint(self, image, mask, size=None):
            return image

    class Kw(Inpainter):
        any_size = True

        def inpaint(self, image, mask, size=None, **kw):
            return image

    class NoSize(Inpainter):
        def inpaint(self, image, mask):
            return image

    class Needy(Inpainter):
        def inpaint(self, image, mask, size, scale):
            return image

    assert contract_problem(Plain) is None and contract_problem(Kw()) is None
    assert "size as its third parameter" in contract_problem(NoSize)
    assert "requires 'size'" in contract_problem(Needy)
    assert "to(device)" in contract_problem(type("Duck", (), {"inpaint": lambda self, i, m, size=None: i}))
    from sairbench.models.implicit import ImplicitInpainter
    from sairbench.registry import list_models

    assert contract_problem(ImplicitInpainter) is None
    assert not [s.name for s in list_models() if "contract" in s.available()[1] or "its inpaint" in s.available()[1]]


# --- 2. metrics get the masks; the in-hole metrics -------------------------------------------------

def test_in_hole_metrics_are_computed_over_the_hole_alone():
    from sairbench.metrics import score_batch

    gt = np.zeros((2, 8, 8, 3), np.uint8)
    pred = gt.copy()
    hole = np.zeros((2, 8, 8), bool)
    hole[0, :2, :2] = True  # 4 hole pixels, 12 values
    pred[0, 0, 0] = 30  # squared error 3 * 900 in the hole
    pred[0, 3, 3] = 90  # outside the hole: not counted
    hole[1, 1, 1] = True  # image 1: hole answered exactly
    vals = score_batch(pred, gt, ["psnr_hole", "l1_hole", "psnr"], masks=hole)
    assert vals["psnr_hole"][0] == pytest.approx(10 * np.log10(255**2 / (3 * 900 / 12)))
    assert vals["l1_hole"][0] == pytest.approx(90 / 12 / 255)
    assert vals["psnr_hole"][1] == np.inf and vals["l1_hole"][1] == 0
    no_hole = score_batch(pred[:1], gt[:1], ["psnr_hole", "l1_hole"], masks=np.zeros((1, 8, 8), bool))
    assert np.isnan(no_hole["psnr_hole"][0]) and np.isnan(no_hole["l1_hole"][0])
    with pytest.raises(SairbenchError, match="reads the hole masks, and none were given; pass masks="):
        score_batch(pred, gt, ["psnr_hole"])
    plain = score_batch(pred, gt, ["psnr", "ssim", "l1"])
    with_masks = score_batch(pred, gt, ["psnr", "ssim", "l1"], masks=hole)
    for k in plain:
        np.testing.assert_array_equal(plain[k], with_masks[k])  # the built-ins do not read the masks


def _photo_results():
    import importlib.util

    spec = importlib.util.spec_from_file_location("photo_results", ROOT / "bench" / "photo_results.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_run_and_eval_score_the_hole_and_agree_with_the_photo_results(tmp_path):
    """`run` and `eval` hand the masks to the metrics; psnr_hole is bench/photo_results.py's in-hole
    PSNR (psnr + 10 log10 ratio) and a plugin metric named by the protocol is scored alike."""
    proto = tmp_path / "p.toml"
    proto.write_text(PROTO.replace('names = ["psnr", "ssim", "l1", "lpips"]',
                                   'names = ["psnr", "psnr_hole", "l1_hole", "mae_hole"]')
                     .replace("limit = 3", "limit = 2").replace("per_bucket = 2", "per_bucket = 1")
                     .replace('["telea", "navier-stokes"]', '["telea", "liif"]'))
    with installed():
        invoke(["run", "--protocol", str(proto), "--results", str(tmp_path / "res"), "--name", "r", "--threads", "1"])
        rows = pd.read_parquet(tmp_path / "res" / "r" / "per_image.parquet")
        photo = _photo_results()
        np.testing.assert_allclose(rows["psnr_hole"], photo.read_run(tmp_path / "res" / "r")[0]["psnr_hole"])
        np.testing.assert_allclose(rows["psnr_hole"], rows["psnr"] + 10 * np.log10(rows["ratio"]), rtol=0, atol=1e-9)
        np.testing.assert_allclose(rows["mae_hole"], 255 * rows["l1_hole"], rtol=0, atol=1e-9)
        rows.drop(columns=["psnr_hole"]).to_parquet(tmp_path / "res" / "r" / "per_image.parquet")
        np.testing.assert_allclose(photo.read_run(tmp_path / "res" / "r")[0]["psnr_hole"], rows["psnr_hole"],
                                   rtol=0, atol=1e-9)  # a run without the metric: the bench's formula, same values
        exp = tmp_path / "exp"
        invoke(["masks", "export", "--protocol", str(proto), "-o", str(exp)])
        invoke(["eval", "--pred-dir", str(exp / "inputs"), "--gt-dir", str(exp / "gt"), "--mask-dir", str(exp / "masks"),
                "--name", "outside", "--results", str(tmp_path / "res"), "--protocol", str(proto), "--threads", "1"])
        out = pd.read_parquet(tmp_path / "res" / "outside" / "per_image.parquet")
        assert out["mae_hole"].notna().all() and out["l1_hole"].gt(0).all()
        np.testing.assert_allclose(out["psnr_hole"], out["psnr"] + 10 * np.log10(out["ratio"]), rtol=0, atol=1e-9)


def test_a_plugin_metric_is_checked_like_a_built_in(tmp_path):
    from sairbench.metrics import Metric, register_metric
    from sairbench.protocol import load_protocol

    with installed():
        p = tmp_path / "p.toml"
        p.write_text('name = "p"\n[metrics]\nnames = ["psnr", "mae_hole"]\n')
        assert load_protocol(str(p)).metrics.names == ["psnr", "mae_hole"]
        from sairbench.report.naming import DECIMALS, DIRECTION, metric_title

        assert DIRECTION["mae_hole"] is False and DECIMALS["mae_hole"] == 2 and metric_title("mae_hole") == "MAE (hole)↓"
        for bad, why in ((Metric("psnr", "higher", 2, "x", False, lambda p, g, c: p), "registered already"),
                         (Metric("Bad-Name", "higher", 2, "x", False, lambda p, g, c: p), "lower-case letters"),
                         (Metric("model", "higher", 2, "x", False, lambda p, g, c: p), "lower-case letters"),
                         (Metric("nofn", "higher", 2, "x", False, None), "needs fn")):
            with pytest.raises(SairbenchError, match=why):
                register_metric(bad)
        register_metric(Metric("wrong_len", "higher", 2, "x", False, lambda p, g, c: np.zeros(1)))
        from sairbench.metrics import score_batch

        with pytest.raises(SairbenchError, match="'wrong_len' gave 1 values for a batch of 2"):
            score_batch(np.zeros((2, 8, 8, 3), np.uint8), np.zeros((2, 8, 8, 3), np.uint8), ["wrong_len"])


# --- datasets ---------------------------------------------------------------------------------------

def test_a_plugin_dataset_opens_by_name_and_the_folder_dataset_names_its_flag(tmp_path):
    from sairbench.data import get_dataset, protocol_defaults

    with installed():
        ds = get_dataset("noise", split="test", size=24, seed=3)
        assert len(ds) == 16 and ds[0].image.shape == (24, 24, 3) and ds[0].image.dtype == np.uint8
        assert protocol_defaults("noise") == {"size": 32, "limit": 16, "fit": "center-crop"}
        assert not np.array_equal(ds[0].image, get_dataset("noise", split="train", size=24, seed=3)[0].image)
    line = error_line(sairbench("run", "--dataset", "folder", "-m", "telea", *TINY, "--results", str(tmp_path)))
    assert "--data-root" in line and "--root" not in line.replace("--data-root", "")


# --- 5. the messages say the right flag ---------------------------------------------------------

def test_inpaint_of_an_unavailable_model_says_how_to_get_it(tmp_path):
    image, mask = _photo(tmp_path)
    with installed():
        for name in ("plain-liif", "sam-encoder"):
            line = error_line(sairbench("inpaint", name, image, mask, "-o", tmp_path / "o.png"))
            assert f"model '{name}' cannot run here" in line and "--checkpoint" not in line
            assert f"`sairbench inpaint runs/{name}/last.pt IMAGE MASK -o OUT.png`" in line
        line = error_line(sairbench("inpaint", "lama", image, mask, "-o", tmp_path / "o.png"))
        assert "--checkpoint" not in line and "$SAIRBENCH_LAMA_CHECKPOINT" in line


def test_models_says_what_a_plugin_preset_needs():
    with installed():
        shown = sairbench("models", "plain-liif")
        assert_ok(shown)
        text = " ".join(shown.stdout.split())
        assert "needs: a checkpoint trained with `sairbench train plain-liif` (none shipped)" in text
        assert "shipped tiny" not in text
    from sairbench.registry import get_spec

    assert get_spec("liif").needs == "checkpoint (shipped tiny for synthetic-faces)"  # the built-ins' unchanged


# --- 4. the documentation holds the example whole -------------------------------------------------

def test_docs_quote_the_example_whole_and_each_file_is_short():
    doc = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    for path in sorted((EXAMPLE / "sairbench_example_plugin").glob("*.py")):
        text = path.read_text(encoding="utf-8")
        assert len(text.splitlines()) < 40, f"{path.name} is over 40 lines"
        if path.name != "__init__.py":
            assert text.strip() in doc, f"docs/plugins.md does not quote {path.name} as it is"
    entry_points = (EXAMPLE / "pyproject.toml").read_text(encoding="utf-8").split("# One table", 1)[1].split("\n", 1)[1]
    assert entry_points.strip() in doc
    for group in ("sairbench.models", "sairbench.parts", "sairbench.metrics", "sairbench.datasets"):
        assert f'[project.entry-points."{group}"]' in doc
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "\n## Plugins\n" in readme and "docs/plugins.md" in readme.split("\n## Plugins\n")[1]
