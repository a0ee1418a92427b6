"""`sairbench report --html`: one self-contained page, checked as a browser renders it (headless Chromium)."""

import html
import json
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from tests.helpers import invoke
from tests.test_report import make_run

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser")) if p), None)


def _runs(tmp_path):
    """Two runs of other limits (two tables) and a qualitative figure in the first run's folder."""
    ds = {"name": "synthetic-faces", "split": "test", "size": 32, "limit": 3}
    lp = {"lpips": {"available": False, "reason": "torchvision's VGG16 ImageNet weights are not in the cache"}}
    a = make_run(tmp_path / "results" / "lim3", meta_extra={"dataset": ds, "masks": {"source": "generated", "seed": 0}, **lp})
    b = make_run(tmp_path / "results" / "lim5", models=("telea", "biharmonic"),
                 meta_extra={"dataset": {**ds, "limit": 5}, "masks": {"source": "generated", "seed": 0}, **lp})
    (a / "figures").mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 90, 3), dtype=np.uint8)).save(a / "figures" / "qualitative.png")
    return a, b


def _chromium(*args, cwd):
    """Run headless Chromium with ``args``; its stdout."""
    cmd = [CHROMIUM, "--headless", "--disable-gpu", "--no-sandbox", "--disable-dev-shm-usage", "--hide-scrollbars",
           f"--user-data-dir={cwd / 'chromium-profile'}", "--virtual-time-budget=10000", *args]
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_report_html_is_self_contained(tmp_path):
    a, b = _runs(tmp_path)
    invoke(["report", str(a), str(b), "--out", str(tmp_path / "rep"), "--html"])
    page = (tmp_path / "rep" / "report.html").read_text(encoding="utf-8")
    assert (tmp_path / "rep" / "report.tex").is_file() and (tmp_path / "rep" / "report.md").is_file()
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    srcs = re.findall(r'<img src="([^"]*)"', page)
    assert len(srcs) == 5 and all(s.startswith("data:image/png;base64,") for s in srcs)  # 2 curves, 2 differences, 1 grid
    assert not re.search(r'(src|href)="(https?:|file:|//)', page) and "<link" not in page  # nothing outside the file
    assert page.count('<table class="results"') == 2 and page.count('<table class="paired"') == 6
    for row in ("<th>limit</th><td>3</td>", "<th>limit</th><td>5</td>", "<th>size</th><td>32</td>",
                "<th>masks</th><td>generated (seed 0)</td>", "<th>seed</th><td>0</td>",
                "<th>LPIPS</th><td>unavailable (VGG16 weights not found)</td>", "<th>versions</th><td>sairbench 0.1.0</td>"):
        assert row in page, row  # the meta.json facts of each run


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium); "
                                             "the rendered HTML report is not checked")
def test_report_html_renders_in_chromium(tmp_path):
    a, b = _runs(tmp_path)
    invoke(["report", str(a), str(b), "--out", str(tmp_path / "rep"), "--html", "--published", "table1_celebahq"])
    url = (tmp_path / "rep" / "report.html").resolve().as_uri()

    dom = _chromium("--dump-dom", url, cwd=tmp_path)
    m = re.search(r'<body[^>]*\sdata-rendered="([^"]*)"', dom)
    assert m, "the page's script did not run: no data-rendered on <body>"
    rendered = json.loads(html.unescape(m.group(1)))
    # what the browser laid out: 2 result tables (limit 3 and 5), 3 + 2 run rows + 7 published rows each,
    # 3 paired tables per table, and every embedded figure decoded
    assert rendered == {"results_tables": 2, "model_rows": 3 + 2 + 2 * 7, "paired_tables": 6, "figures": 5,
                        "figures_expected": 5}
    summary = re.search(r'<p id="page-summary">([^<]*)</p>', dom).group(1)
    assert summary == "2 results tables, 19 model rows, 6 paired-test tables, 5 of 5 figures shown."
    titles = re.findall(r"<h2>([^<]*)</h2>", dom)
    assert titles == ["liu2018-masks · synthetic-faces · 32×32 · 12 images × 3 buckets · limit 3", "liu2018-masks · synthetic-faces · 32×32 · 12 images × 3 buckets · limit 5"]

    shot = tmp_path / "shot.png"
    _chromium("--window-size=1000,1400", f"--screenshot={shot}", url, cwd=tmp_path)
    with Image.open(shot) as im:
        pixels = np.asarray(im.convert("RGB"))
    assert pixels.shape[:2] == (1400, 1000)
    dark = (pixels.sum(axis=-1) < 200).mean()
    assert 0.002 < dark < 0.5 and len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50  # text and figures drawn
