"""Contract tests of the commands users type, generated from what the project lists: every protocol
file, every registered model and shipped stage, every command of README.md's "Commands" table,
every command line of docs/reproduce.md (on tiny trees in the real data layouts) and `report --html`
over every kind of run folder.

Each command goes through the console script's ``main`` (tests/commands_helpers.py) and keeps the
contract: it exits 0, or exits non-zero with one ``error:`` line and no traceback. Where the data,
weights or checkpoint a command needs are here, it must exit 0. Settings are tiny (2 images, 1 mask
per bucket, 2 training steps, 1 thread); the run folders several tests read are built once per module.
"""

from __future__ import annotations

import html
import os
import re
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from sairbench.checkpoint import SHIPPED_DIR
from sairbench.registry import get_spec, list_models, parse_name
from sairbench.semantic.text import PROMPT_TEMPLATES
from tests.commands_helpers import (ROOT, assert_contract, assert_ok, clear_user_env, doc_commands, error_line,
                                    readme_commands, sairbench, with_table2_stages)
from tests.helpers import ade20k_tree, celeba_tree, liu2018_masks

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

TINY = ("--limit", "2", "--per-bucket", "1", "--threads", "1")


@pytest.fixture(autouse=True)
def _no_user_env(monkeypatch):
    clear_user_env(monkeypatch)


@pytest.fixture(scope="module")
def module_env():
    with pytest.MonkeyPatch.context() as mp:
        clear_user_env(mp)
        yield mp


def _ends(kind: str):
    """A stand-in for ``list_models`` that ends `sairbench models` in the way ``kind`` names."""
    import sys

    from sairbench.errors import SairbenchError

    def end():
        if kind == "one-line error":
            raise SairbenchError("no such thing here.")
        if kind == "traceback":
            raise RuntimeError("boom")
        if kind == "silent exit 1":
            raise SystemExit(1)
        print("error: first line", file=sys.stderr)  # "error then more lines"
        print("second line", file=sys.stderr)
        raise SystemExit(2)

    return end


@pytest.mark.parametrize("kind", ["one-line error", "traceback", "silent exit 1", "error then more lines"])
def test_the_contract_check(kind, monkeypatch):
    """assert_contract passes exit 0, a one-line error and a usage error (one line plus the usage
    hint); it fails a traceback, a non-zero exit without an error line, and an error of several lines."""
    assert_contract(sairbench("--version"))
    assert_contract(sairbench("run", "--no-such-option"))
    monkeypatch.setattr("sairbench.registry.list_models", _ends(kind))
    result = sairbench("models")
    if kind == "one-line error":
        assert error_line(result) == "error: no such thing here." and result.exit_code == 2
    else:
        with pytest.raises(pytest.fail.Exception):
            assert_contract(result)


def _run_folder(results: Path) -> Path:
    """The one run folder a command wrote under ``results``."""
    runs = [p.parent for p in results.glob("*/meta.json")]
    assert len(runs) == 1, f"expected one run folder under {results}, found {runs}"
    return runs[0]


# --- 1. every protocol file --------------------------------------------------------------------

PROTOCOLS = sorted(p.stem for p in (ROOT / "protocols").glob("*.toml"))


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_every_protocol_runs_or_says_what_it_needs(protocol, tmp_path):
    """A protocol on the built-in data runs; one whose data is not here (the photo corpus, a data
    root) says so in one line."""
    result = sairbench("run", "--protocol", protocol, *TINY, "--results", tmp_path)
    assert_contract(result)
    spec = tomllib.loads((ROOT / "protocols" / f"{protocol}.toml").read_text())
    if spec["dataset"]["name"] == "synthetic-faces":  # built in: always here
        assert_ok(result)
    if result.exit_code == 0:
        summary = pd.read_csv(_run_folder(tmp_path) / "summary.csv")
        assert len(summary) > 0


# --- 2. every registered model and shipped stage -----------------------------------------------

def _shipped_tags(name: str) -> set[str]:
    """Stage tags of the shipped files of model ``name`` (``<name>-<tag>-<size>-<dataset>.safetensors``)."""
    pattern = re.compile(rf"{re.escape(name)}-(.+?)-(?:tiny|paper)-.+\.safetensors")
    return {m.group(1) for p in SHIPPED_DIR.glob(f"{name}-*.safetensors") if (m := pattern.fullmatch(p.name))}


def _model_names() -> list[str]:
    names = []
    for spec in list_models():
        tags = _shipped_tags(spec.name) | ({t for t in spec.preset.recipes if t} if spec.preset is not None else set())
        names += [spec.name, *(f"{spec.name}@{t}" for t in sorted(tags))]
    return names


@pytest.mark.parametrize("model", _model_names())
def test_every_model_runs_or_says_why_not(model, tmp_path):
    """A model (or shipped stage) available here runs; one that is not says why in one line. A
    model that reads label maps (a semantic-headroom oracle) runs under that protocol, and the
    default protocol refuses it in one line naming it."""
    base, tag = parse_name(model)
    available, why = get_spec(base).available(tag)
    preset = get_spec(base).preset
    if preset is not None and preset.reads_labels:
        assert model in error_line(sairbench("run", "-m", model, *TINY, "--results", tmp_path / "refused"))
        result = sairbench("run", "--protocol", "semantic-headroom", "-m", model, *TINY, "--results", tmp_path)
    else:
        result = sairbench("run", "-m", model, *TINY, "--results", tmp_path)
    if available:
        assert_ok(result)
        summary = pd.read_csv(_run_folder(tmp_path) / "summary.csv")
        assert set(summary["model"]) == {model}
    else:
        assert model in error_line(result), f"the error should name {model} ({why})"


def test_the_shipped_stages_are_among_the_cases():
    names = _model_names()
    assert "liif@ft6000" in names and "sair@gpu4000-step1600" in names and "liif@photos" in names


# --- the run folders several tests read ----------------------------------------------------------

@pytest.fixture(scope="module")
def folders(tmp_path_factory, module_env):
    """kind -> (the result of the command that built it, folder): an inpainting run, a SIR mIoU run,
    a semantic-headroom run (two of its variants), a `masks export`, an outside method scored by `eval` (the masked inputs as its outputs) and a
    run in two shards (`--shard 1/2`, `--shard 2/2` into one folder; the last writes the tables)."""
    root = tmp_path_factory.mktemp("commands")
    res = root / "results"
    built = {
        "inpainting": (sairbench("run", "-m", "liif", "-m", "telea", *TINY, "--results", res, "--name", "inpainting"),
                       res / "inpainting"),
        "sir-miou": (sairbench("run", "--protocol", "sir-miou", *TINY, "--results", res, "--name", "sir-miou"),
                     res / "sir-miou"),
        "headroom": (sairbench("run", "--protocol", "semantic-headroom", "-m", "liif@headroom-s1", "-m",
                               "oracle@headroom-s1", *TINY, "--results", res, "--name", "headroom"), res / "headroom"),
        "export": (sairbench("masks", "export", "--protocol", "liu2018-masks", "-o", root / "export", "--limit", "2"),
                   root / "export"),
    }
    exp = root / "export"
    built["outside"] = built["export"] if built["export"][0].exit_code else (
        sairbench("eval", "--pred-dir", exp / "inputs", "--gt-dir", exp / "gt", "--mask-dir", exp / "masks",
                  "--name", "outside", "--results", res, "--threads", "1"), res / "outside")
    for shard in ("1/2", "2/2"):
        built["shards"] = (sairbench("run", "-m", "telea", "-m", "liif", *TINY, "--shard", shard, "--results", res,
                                     "--name", "shards"), res / "shards")
        if built["shards"][0].exit_code:
            break
    return built


def need(folders, kind: str) -> Path:
    """The folder of ``kind``; fails (with the command's output) when building it failed."""
    result, path = folders[kind]
    assert_ok(result)
    return path


# --- 3. README.md's "Commands" table -------------------------------------------------------------

README = (ROOT / "README.md").read_text(encoding="utf-8")

# one concrete, tiny invocation per command of the table; {name} is a path the test provides
README_COMMANDS: dict[str, list[str]] = {
    "models": ["models"],
    "plugins": ["plugins"],
    "run": ["run", "--protocol", "liu2018-masks", "--dataset", "synthetic-faces", "--model", "telea", "--size", "32",
            "--limit", "2", "--per-bucket", "1", "--fit", "resize", "--shard", "1/1", "--threads", "1",
            "--results", "{tmp}/results"],
    "report": ["report", "{inpainting}", "--published", "table1_celebahq", "--html", "--out", "{tmp}/report"],
    "train": ["train", "liif", "--dataset", "synthetic-faces", "--size", "tiny", "--schedule", "tiny", "--steps", "2",
              "--batch", "2", "--queries", "8", "--image-size", "32", "--threads", "1", "--out", "{tmp}/liif"],
    "inpaint": ["inpaint", "{image}", "{mask}", "-o", "{tmp}/out.png", "--size", "48x48", "--self-ensemble", "1",
                "--threads", "1"],
    "--version": ["--version"],
    "cache build": ["cache", "build", "--protocol", "liu2018-masks", "-m", "sair", "--limit", "2", "--size", "32",
                    "--threads", "1"],
    "cache info": ["cache", "info"],
    "photos fetch": ["photos", "fetch", "-o", "{tmp}/photos", "--package", "mate-backgrounds"],
    "masks generate": ["masks", "generate", "-o", "{tmp}/masks", "--per-bucket", "1", "--size", "32", "--seed", "0"],
    "masks export": ["masks", "export", "--protocol", "liu2018-masks", "-o", "{tmp}/export", "--limit", "2"],
    "eval": ["eval", "--pred-dir", "{export}/inputs", "--gt-dir", "{export}/gt", "--mask-dir", "{export}/masks",
             "--name", "readme-eval", "--results", "{tmp}/results", "--threads", "1"],
    "merge": ["merge", "{shards}", "--threads", "1"],
    "figures": ["figures", "{inpainting}", "--images", "1", "--threads", "1", "--out", "{tmp}/figures"],
}
# `apt-get` here is a stand-in that fails as an offline machine does: the fetch must say so in one line
README_ERRORS = {"photos fetch": "apt-get download mate-backgrounds"}
FAKE_APT_GET = "#!/bin/sh\necho 'E: Unable to locate package' >&2\nexit 100\n"


def test_every_readme_command_has_an_invocation():
    documented = readme_commands(README)
    assert "run" in documented and "cache info" in documented  # the table was found and read
    missing = [c for c in documented if c not in README_COMMANDS]
    stale = [c for c in README_COMMANDS if c not in documented]
    assert not missing, f"README.md documents {missing}; give each a tiny invocation in README_COMMANDS"
    assert not stale, f"README_COMMANDS has {stale}, which README.md's Commands table does not list"


@pytest.mark.parametrize("command", readme_commands(README))
def test_every_readme_command_keeps_the_contract(command, folders, tmp_path, monkeypatch):
    if command not in README_COMMANDS:
        pytest.fail(f"README.md documents `sairbench {command}`, which README_COMMANDS does not map to an invocation")
    template = README_COMMANDS[command]
    paths = {"tmp": tmp_path, "image": tmp_path / "photo.png", "mask": tmp_path / "mask.png"}
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(paths["image"])
    hole = np.zeros((40, 40), np.uint8)
    hole[10:25, 12:30] = 255
    Image.fromarray(hole).save(paths["mask"])
    for kind in ("inpainting", "export", "shards"):
        if any(f"{{{kind}}}" in a for a in template):
            paths[kind] = need(folders, kind)
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "apt-get").write_text(FAKE_APT_GET)
    (fake_bin / "apt-get").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake_bin}{os.pathsep}{os.environ['PATH']}")
    result = sairbench(*(a.format(**paths) for a in template))
    if command in README_ERRORS:
        assert README_ERRORS[command] in error_line(result)
    else:
        assert_ok(result)


# --- 4. docs/reproduce.md on tiny trees in the real layouts --------------------------------------

with tempfile.TemporaryDirectory() as _tmp:
    REPRODUCE = with_table2_stages(doc_commands((ROOT / "docs" / "reproduce.md").read_text(encoding="utf-8"),
                                                Path(_tmp)))
# the variables of docs/reproduce.md that point at downloads; doc_session gives each a stand-in
DOWNLOADS = ("SAIRBENCH_DATA_ROOT", "SAIRBENCH_LIU2018_MASKS", "SAIRBENCH_CLIP_WEIGHTS", "SAIRBENCH_VGG16_WEIGHTS")
# appended to the doc's own options (the last value of an option wins): tiny sizes, steps, one thread, CPU
SHRINK = {"train": ["--image-size", "32", "--steps", "2", "--batch", "2", "--queries", "8", "--threads", "1",
                    "--device", "cpu"],
          "run": ["--size", "32", "--limit", "2", "--per-bucket", "1", "--threads", "1", "--device", "cpu"]}


class DocSession:
    """docs/reproduce.md's calls run in order in one working folder (relative paths such as
    runs/celeba/sir and results/ land there), each once, a later call running the earlier ones first.

    CLIP's class embeddings are built from one prompt template instead of all of
    ``sairbench.semantic.text.PROMPT_TEMPLATES`` (ADE20K's 150 classes times every template take
    minutes of CLIP text tower on one CPU thread; the number of templates changes no command line)."""

    def __init__(self, workdir: Path, stand_ins: dict[str, str | None]):
        self.workdir, self.stand_ins, self.results = workdir, stand_ins, []

    def result(self, k: int):
        while len(self.results) <= k:
            argv, doc_env = REPRODUCE[len(self.results)]
            with pytest.MonkeyPatch.context() as mp:
                clear_user_env(mp)
                mp.chdir(self.workdir)
                mp.setattr("sairbench.semantic.text.PROMPT_TEMPLATES", PROMPT_TEMPLATES[:1])
                for key, value in doc_env.items():
                    value = self.stand_ins.get(key, value)
                    if value is None:
                        mp.delenv(key, raising=False)
                    else:
                        mp.setenv(key, str(value))
                self.results.append(sairbench(*argv, *SHRINK.get(argv[0], [])))
        return self.results[k]


@pytest.fixture(scope="module")
def doc_session(tmp_path_factory, module_env):
    """The downloads of docs/reproduce.md's section 0, fabricated: CelebAMask-HQ and ADE20K trees
    under the data root, NVIDIA's mask folder, a randomly initialised CLIP ViT-B/16 state dict (no
    VGG16: LPIPS is NaN, as documented)."""
    import torch

    from sairbench.semantic.clip_dense import DenseCLIPEncoder

    root = tmp_path_factory.mktemp("reproduce")
    data = root / "data"
    celeba_tree(data / "CelebAMask-HQ")
    ade20k_tree(data / "ADEChallengeData2016")
    liu2018_masks(data / "testing_mask_dataset")
    torch.manual_seed(0)
    torch.save(DenseCLIPEncoder(pretrained=None).model.state_dict(), root / "ViT-B-16.pt")
    (root / "work").mkdir()
    stand_ins = {"SAIRBENCH_DATA_ROOT": str(data), "SAIRBENCH_LIU2018_MASKS": str(data / "testing_mask_dataset"),
                 "SAIRBENCH_CLIP_WEIGHTS": str(root / "ViT-B-16.pt"), "SAIRBENCH_VGG16_WEIGHTS": None}
    assert set(stand_ins) == set(DOWNLOADS)
    yield DocSession(root / "work", stand_ins)
    (root / "ViT-B-16.pt").unlink()  # 600 MB; pytest keeps its last temporary folders


def test_reproduce_doc_was_read():
    words = [" ".join(argv[:2]) for argv, _ in REPRODUCE]
    assert "train sir" in words and "run --protocol" in words and "report results/liu2018-masks_celeba-hq" in words
    for _, env in REPRODUCE:  # every download the doc points at has a stand-in here
        for key, value in env.items():
            assert not value.startswith("/") or key in DOWNLOADS, f"{key}={value}: give the test a stand-in"


@pytest.mark.parametrize("k", range(len(REPRODUCE)),
                         ids=[f"{k:02d}-{' '.join(a[:2])}" for k, (a, _) in enumerate(REPRODUCE)])
def test_every_reproduce_line_runs_on_the_real_layouts(k, doc_session):
    assert_ok(doc_session.result(k))


# --- 5. report --html over every kind of run folder ----------------------------------------------

KINDS = ("inpainting", "sir-miou", "headroom", "outside", "shards")


@pytest.mark.parametrize("kinds", [*([k] for k in KINDS), list(KINDS)], ids=[*KINDS, "all-kinds"])
def test_report_html_over_every_kind_of_run(kinds, folders, tmp_path):
    runs = [need(folders, k) for k in kinds]
    result = sairbench("report", *runs, "--html", "--out", tmp_path / "report")
    assert_ok(result)
    page = (tmp_path / "report" / "report.html").read_text(encoding="utf-8")
    assert page.lstrip().lower().startswith("<!doctype html")
    for run in runs:  # every run's models are on the page
        for model in set(pd.read_csv(run / "summary.csv")["model"]):
            assert html.escape(model) in page, f"{model} of {run.name} is not in report.html"
    if "headroom" in kinds:  # the kind's own table: the decomposition
        text = html.unescape(re.sub(r"<[^>]+>", "", page))
        assert "Semantic headroom in PSNR" in text and "oracle − none" in text
