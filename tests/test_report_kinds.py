"""`sairbench report` over runs of different kinds: an inpainting run and a SIR mIoU probe run."""

import re

import pytest

from sairbench.report.settings import group_runs
from tests.helpers import PROTO, invoke


@pytest.fixture(scope="module")
def mixed_runs(tmp_path_factory):
    """Two run folders made by `sairbench run` under one results folder: the SIR mIoU probe
    (protocol sir-miou, 2 images) and a tiny inpainting run (telea and navier-stokes, 2 images x
    1 mask per bucket at 32x32)."""
    root = tmp_path_factory.mktemp("kinds")
    proto_file = root / "mini.toml"
    proto_file.write_text(PROTO.replace("limit = 3", "limit = 2").replace("per_bucket = 2", "per_bucket = 1"))
    results = str(root / "results")
    invoke(["run", "--protocol", str(proto_file), "--results", results, "--threads", "1"])
    invoke(["run", "--protocol", "sir-miou", "--limit", "2", "--results", results, "--threads", "1"])
    return root, root / "results" / "mini_synthetic-faces", root / "results" / "sir-miou_synthetic-faces"


def test_report_html_over_inpainting_and_sir_miou_runs(mixed_runs):
    root, inpainting, miou = mixed_runs
    out = root / "rep"
    invoke(["report", str(inpainting), str(miou), "--out", str(out), "--html"])  # raises on a non-zero exit
    page = (out / "report.html").read_text(encoding="utf-8")
    assert re.findall(r"<h2>([^<]*)</h2>", page) == ["mini · synthetic-faces · 32×32 · 2 images × 3 buckets",
                                                              "sir-miou · synthetic-faces · 64×64 · 2 images × 3 buckets"]
    assert page.count('<table class="results"') == 2
    tables = page.split('<table class="results"')[1:]
    inpainting_table, miou_table = tables[0].split("</table>")[0], tables[1].split("</table>")[0]
    assert "PSNR↑" in inpainting_table and "mIoU" not in inpainting_table
    assert "mIoU↑" in miou_table and "mIoU (hole)↑" in miou_table and "PSNR" not in miou_table
    assert "encoder+sir" in miou_table and "telea" in inpainting_table
    assert "semantic encoder upsampled naively vs encoder + SIR" in miou_table  # its caption says what it measures
    # the hole-ratio curves and the differences to the reference of the inpainting section only; no paired
    # tests of the one-number-per-set mIoU
    assert re.findall(r'<figure data-figure="([^"]*)"><img src="data:image/png;base64,', page) == [
        "ratio_curves", "ratio_difference"]
    assert "Paired differences in mIoU" not in page and "Paired differences in PSNR" in page
    assert "<th>kind</th><td>sir-miou</td>" in page and "not measured (sir-miou run)" in page
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "## mini · synthetic-faces · 32×32 · 2 images × 3 buckets\n" in md and "## sir-miou · synthetic-faces · 64×64 · 2 images × 3 buckets\n" in md


def test_report_sir_miou_run_takes_published_table6_rows(mixed_runs):
    root, inpainting, miou = mixed_runs
    out = root / "rep-published"
    invoke(["report", str(miou), str(inpainting), "--out", str(out), "--published", "table6_miou"])
    md = (out / "report.md").read_text(encoding="utf-8")
    miou_section = md.split("## sir-miou · synthetic-faces")[1].split("\n## ")[0]
    assert "clip-encoder+sir †" in miou_section
    assert "clip-encoder" not in md.split("## mini · synthetic-faces")[1].split("\n## ")[0]


def test_runs_of_different_kinds_never_share_a_table():
    base = {"protocol": "custom", "dataset": "synthetic-faces", "seed": 0}
    groups = group_runs([{**base, "_run": "a", "_dir": "a"}, {**base, "kind": "sir-miou", "_run": "b", "_dir": "b"},
                         {**base, "kind": "inpainting", "_run": "c", "_dir": "c"}])
    assert [(g.kind, g.runs) for g in groups] == [("inpainting", ["a", "c"]), ("sir-miou", ["b"])]
    assert groups[1].differs == ["kind sir-miou"]
