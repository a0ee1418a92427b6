"""Reports: published tables, loading result folders, LaTeX/Markdown tables, paired tests."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sairbench.errors import SairbenchError
from sairbench.metrics import conventions_dict
from sairbench.report import (
    bucket_label,
    canonical_bucket,
    latex_escape,
    load_published,
    load_results,
    paired_table,
    render_latex,
    render_markdown,
    write_report,
)
from sairbench.stats import mean_ci95

PUBLISHED = Path(__file__).resolve().parents[1] / "results" / "published"
METRIC_COLS = ("psnr", "ssim", "l1", "lpips")


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def make_run(folder: Path, models=("telea", "navier-stokes", "biharmonic"), n=12, seed=0, *,
             protocol="liu2018-masks", dataset="synthetic-faces", ssim_convention="skimage", offsets=None,
             meta_extra=None):
    """Write a result folder like `sairbench run` does: per_image.parquet, summary.csv, meta.json
    (``meta_extra`` entries added to / replacing those of meta.json)."""
    rng = np.random.default_rng(seed)
    offsets = offsets or {m: i * 0.5 for i, m in enumerate(models)}
    rows = []
    for bucket, base in (("0-20", 34.0), ("20-40", 27.0), ("40-60", 22.0)):
        for i in range(n):
            noise = rng.normal(0, 1)
            for m in models:
                off = offsets[m]
                rows.append({
                    "image": f"img{i:03d}", "mask": f"{bucket}/m{i:03d}", "bucket": bucket, "ratio": 0.1,
                    "model": m, "psnr": base + off + noise + rng.normal(0, 0.2),
                    "ssim": 0.9 + 0.01 * off + rng.normal(0, 0.002), "l1": 0.03 - 0.002 * off + abs(rng.normal(0, 1e-4)),
                    "lpips": np.nan,
                })
    per_image = pd.DataFrame(rows)
    folder.mkdir(parents=True, exist_ok=True)
    per_image.to_parquet(folder / "per_image.parquet")
    summary = []
    for (m, b), g in list(per_image.groupby(["model", "bucket"], sort=False)) + [
        ((m, "all"), g) for m, g in per_image.groupby("model", sort=False)
    ]:
        for met in METRIC_COLS:
            mu, ci = mean_ci95(g[met])
            summary.append({"model": m, "bucket": b, "metric": met, "mean": mu, "ci95": ci, "n": len(g)})
    pd.DataFrame(summary).to_csv(folder / "summary.csv", index=False)
    meta = {"protocol": protocol, "dataset": dataset, "seed": seed, "conventions": conventions_dict(ssim_convention),
            "semantic_encoder": "none", "versions": {"sairbench": "0.1.0"}, "created": "2024-01-01T00:00:00",
            **(meta_extra or {})}
    (folder / "meta.json").write_text(json.dumps(meta))
    return folder


def _strip_groups(spec: str) -> str:
    """Remove @{...} / p{...} argument groups (nested braces) from a column spec."""
    out, i = [], 0
    while i < len(spec):
        if spec[i] in "@" and i + 1 < len(spec) and spec[i + 1] == "{":
            depth, i = 0, i + 1
            while True:
                depth += {"{": 1, "}": -1}.get(spec[i], 0)
                i += 1
                if depth == 0:
                    break
            continue
        out.append(spec[i])
        i += 1
    return "".join(out)


def check_latex_structure(tex: str) -> int:
    """Balanced braces, matched \\begin/\\end, and every tabular row with the spec's column count.
    Returns the number of tabular rows checked."""
    depth, i = 0, 0
    while i < len(tex):
        c = tex[i]
        if c == "\\":
            i += 2
            continue
        if c == "%":  # comment to end of line
            while i < len(tex) and tex[i] != "\n":
                i += 1
            continue
        depth += {"{": 1, "}": -1}.get(c, 0)
        assert depth >= 0, f"unbalanced '}}' near: {tex[max(0, i - 40):i + 1]!r}"
        i += 1
    assert depth == 0, "unbalanced braces"

    stack = []
    for kind, env in re.findall(r"\\(begin|end)\{([^}]*)\}", tex):
        if kind == "begin":
            stack.append(env)
        else:
            assert stack and stack[-1] == env, f"\\end{{{env}}} does not close {stack[-1:] or 'nothing'}"
            stack.pop()
    assert not stack, f"unclosed environments {stack}"

    rows = 0
    for m in re.finditer(r"\\begin\{tabular\}\{", tex):
        j, d = m.end(), 1
        while d:
            d += {"{": 1, "}": -1}.get(tex[j], 0)
            j += 1
        spec = tex[m.end():j - 1]
        ncols = sum(ch in "lcr" for ch in _strip_groups(spec))
        end = tex.index("\\end{tabular}", j)
        for line in tex[j:end].splitlines():
            line = line.strip()
            if not line.endswith("\\\\"):
                continue
            cells = re.split(r"(?<!\\)&", line[:-2])
            span = 0
            for cell in cells:
                mc = re.search(r"\\multicolumn\{(\d+)\}", cell)
                span += int(mc.group(1)) if mc else 1
            assert span == ncols, f"row has {span} columns, spec {spec!r} has {ncols}: {line}"
            rows += 1
    return rows


@pytest.fixture
def run_dir(tmp_path):
    return make_run(tmp_path / "run_a")


# ---------------------------------------------------------------------------------------------
# published tables
# ---------------------------------------------------------------------------------------------


def test_published_csvs_parse_with_right_counts():
    expected = {"table1_celebahq": 84, "table2_ade20k": 84, "table4_encoders": 8, "table6_ablations": 8, "table6_miou": 2}
    assert sorted(p.stem for p in PUBLISHED.glob("*.csv")) == sorted(expected)
    for name, count in expected.items():
        raw = pd.read_csv(PUBLISHED / f"{name}.csv")
        assert list(raw.columns) == ["model", "bucket", "metric", "value", "table", "dataset", "source"]
        assert len(raw) == count and (raw["source"] == "published").all()
        assert not raw.duplicated(["model", "bucket", "metric"]).any()
        assert raw["value"].notna().all()
    t1 = load_published("table1_celebahq")
    assert sorted(t1["model"].unique()) == sorted(["edgeconnect", "rfrnet", "jpgnet", "lama", "misf", "liif", "sair"])
    assert sorted(t1["bucket"].unique()) == ["0-20", "20-40", "40-60"]
    assert set(t1["metric"]) == set(METRIC_COLS) and (t1["dataset"] == "CelebA-HQ").all()


def _value(df, model, bucket, metric):
    return df[(df.model == model) & (df.bucket == bucket) & (df.metric == metric)]["value"].item()


def test_published_spot_values():
    t1, t2 = load_published("table1_celebahq"), load_published("table2_ade20k")
    assert _value(t1, "sair", "0-20", "psnr") == 37.97
    assert _value(t1, "lama", "20-40", "lpips") == 0.029
    assert _value(t1, "misf", "40-60", "ssim") == 0.868
    assert _value(t2, "sair", "40-60", "lpips") == 0.193
    assert _value(t2, "rfrnet", "40-60", "lpips") == 0.340
    assert _value(t2, "jpgnet", "0-20", "psnr") == 31.65
    t4, t6 = load_published("table4_encoders"), load_published("table6_ablations")
    assert _value(t4, "semlte", "all", "psnr") == 31.97 and _value(t4, "edsr-wo", "all", "ssim") == 0.892
    assert _value(t6, "sam-encoder", "all", "psnr") == 31.72 and _value(t6, "sair", "all", "ssim") == 0.944
    miou = load_published("table6_miou")
    assert dict(zip(miou["model"], miou["value"])) == {"clip-encoder": 0.17, "clip-encoder+sir": 0.45}
    assert (miou["metric"] == "miou").all()
    # consistent with the paper's text: NFS is 2.04 dB / 2.1 % SSIM below SAIR; SIR adds 0.28 mIoU
    assert _value(t6, "sair", "all", "psnr") - _value(t6, "nfs", "all", "psnr") == pytest.approx(2.04)
    assert _value(t6, "sair", "all", "ssim") - _value(t6, "nfs", "all", "ssim") == pytest.approx(0.021)
    assert _value(t1, "sair", "20-40", "psnr") - _value(t1, "lama", "20-40", "psnr") == pytest.approx(2.35)


def test_load_published_names():
    t = load_published("table4")  # unique prefix
    assert set(t["table"]) == {"table4"} and "mean" in t and t["ci95"].isna().all()
    with pytest.raises(SairbenchError, match="unknown published table 'table6'"):
        load_published("table6")  # two tables start with it
    with pytest.raises(SairbenchError, match="unknown published table"):
        load_published("table9")


# ---------------------------------------------------------------------------------------------
# loading results
# ---------------------------------------------------------------------------------------------


def test_load_results(run_dir, tmp_path):
    other = make_run(tmp_path / "run_b", models=("telea", "biharmonic"), seed=1, meta_extra={"seed": 0})
    summary, per_image, metas = load_results([run_dir, other])
    assert {"telea [run_a]", "telea [run_b]", "navier-stokes", "biharmonic [run_b]"} <= set(summary["model"])
    # runs of other settings (here the seed) never share a table: their models keep their names
    seeded = make_run(tmp_path / "run_c", models=("telea",), seed=1)
    s2, _, _ = load_results([run_dir, seeded])
    assert set(s2["model"]) == {"telea", "navier-stokes", "biharmonic"}
    assert set(per_image["model"]) == set(summary["model"])
    assert [m["_run"] for m in metas] == ["run_a", "run_b"]
    assert (summary["protocol"] == "liu2018-masks").all() and (summary["source"] == "run").all()
    s1, p1, _ = load_results(run_dir)
    assert set(s1["model"]) == {"telea", "navier-stokes", "biharmonic"} and len(p1) == 3 * 3 * 12


def test_load_results_errors(tmp_path, run_dir):
    with pytest.raises(SairbenchError, match="no such result folder"):
        load_results([tmp_path / "nope"])
    broken = tmp_path / "broken"
    shutil.copytree(run_dir, broken)
    (broken / "summary.csv").unlink()
    with pytest.raises(SairbenchError, match="summary.csv: missing"):
        load_results([broken])
    shutil.copy(run_dir / "summary.csv", broken / "summary.csv")
    (broken / "meta.json").write_text("{not json")
    with pytest.raises(SairbenchError, match="meta.json: not readable JSON"):
        load_results([broken])


# ---------------------------------------------------------------------------------------------
# tables
# ---------------------------------------------------------------------------------------------


def _summary():
    rows = []
    data = {
        "telea": {"psnr": 30.0, "ssim": 0.90, "l1": 0.020, "lpips": np.nan},
        "my_model": {"psnr": 31.5, "ssim": 0.89, "l1": 0.015, "lpips": np.nan},
        "biharmonic": {"psnr": 29.0, "ssim": 0.95, "l1": 0.030, "lpips": np.nan},
    }
    for b, shift in (("0-20", 5), ("20-40", 0)):
        for m, vals in data.items():
            for met, v in vals.items():
                rows.append({"model": m, "bucket": b, "metric": met, "mean": v + (shift if met == "psnr" else 0),
                             "ci95": 0.1, "n": 10})
    return pd.DataFrame(rows)


def _latex_row(tex: str, name: str) -> list[str]:
    line = next(l for l in tex.splitlines() if l.startswith(name + " ") or l.startswith(name + "$"))
    return [c.strip() for c in re.split(r"(?<!\\)&", line.rstrip("\\ ").rstrip())]


def test_render_latex_best_bold_and_shape():
    pub = load_published("table1_celebahq")
    tex = render_latex(_summary(), ["0-20", "20-40"], list(METRIC_COLS), "Results on faces_v2", "tab:main",
                       published_df=pub, footnote="SSIM 7x7; 100% composited", dataset="synthetic-faces")
    assert check_latex_structure(tex) == 2 + 3 + 7
    assert "\\toprule" in tex and "\\bottomrule" in tex and "\\cmidrule(lr){2-5}" in tex
    assert "\\multicolumn{4}{c}{0\\%--20\\%}" in tex and "PSNR$\\uparrow$" in tex and "L1$\\downarrow$" in tex
    mine = _latex_row(tex, "my\\_model")
    assert mine[1] == "\\textbf{36.50}" and mine[3] == "\\textbf{0.015}" and mine[2] == "0.890"
    assert mine[4] == "--"  # NaN LPIPS
    bih = _latex_row(tex, "biharmonic")
    assert bih[2] == "\\textbf{0.950}" and bih[1] == "34.00"
    sair = _latex_row(tex, "sair")
    assert sair[0] == "sair$^\\dagger$" and sair[1] == "37.97"  # better, but published: not bold
    assert "\\textbf" not in "".join(sair)
    assert "faces\\_v2" in tex and "100\\% composited" in tex
    assert "not comparable" in tex and "Table 1, CelebA-HQ" in tex


def test_render_latex_bold_published_when_asked_and_ties():
    s = _summary()
    s.loc[(s.model == "telea") & (s.metric == "l1"), "mean"] = 0.0151  # prints as 0.015: a tie
    tex = render_latex(s, ["20-40"], ["l1"], "c", "l")
    assert _latex_row(tex, "telea")[1] == "\\textbf{0.015}" and _latex_row(tex, "my\\_model")[1] == "\\textbf{0.015}"
    pub = load_published("table1_celebahq")
    tex = render_latex(s, ["0-20"], ["psnr"], "c", "l", published_df=pub, bold_published=True)
    assert _latex_row(tex, "sair")[1] == "\\textbf{37.97}" and _latex_row(tex, "my\\_model")[1] == "36.50"
    only_pub = render_latex(None, ["0-20"], ["psnr"], "c", "l", published_df=pub)
    assert _latex_row(only_pub, "sair")[1] == "\\textbf{37.97}"
    check_latex_structure(only_pub)


def test_render_markdown():
    pub = load_published("table6_ablations")
    s = _summary().assign(bucket=lambda d: d["bucket"].replace({"20-40": "all"}))
    md = render_markdown(s, ["0-20", "all"], ["psnr", "ssim"], "Ablations", "tab:abl", published_df=pub)
    lines = [l for l in md.splitlines() if l.startswith("|")]
    assert lines[0].startswith("| Method | PSNR↑ 0–20% | SSIM↑ 0–20% | PSNR↑ All mask ratios")
    assert all(l.count("|") == lines[0].count("|") for l in lines)
    row = next(l for l in lines if l.startswith("| my\\_model"))
    assert "**36.50**" in row
    nfs = next(l for l in lines if l.startswith("| nfs †"))
    assert "n/a" in nfs and "**" not in nfs and "30.32" in nfs
    assert "† As published" in md


def test_bucket_names_and_escaping():
    assert canonical_bucket("0-20%") == canonical_bucket("0.0-0.2") == canonical_bucket("[0, 20)") == "0-20"
    assert canonical_bucket("All") == "all" and canonical_bucket("weird") == "weird"
    assert bucket_label("40-60") == "40\\%--60\\%" and bucket_label("all", "md") == "All mask ratios"
    assert latex_escape("a_b & c% $x$ #1 {y} ~ ^ \\") == (
        "a\\_b \\& c\\% \\$x\\$ \\#1 \\{y\\} \\textasciitilde{} \\textasciicircum{} \\textbackslash{}"
    )
    assert latex_escape("±×μ☃") == "$\\pm$$\\times$$\\mu$?"


# ---------------------------------------------------------------------------------------------
# paired tests
# ---------------------------------------------------------------------------------------------


def test_paired_table_pairs_same_images_and_masks(run_dir):
    _, per_image, _ = load_results(run_dir)
    shuffled = per_image.sample(frac=1.0, random_state=0)  # order must not matter
    table = paired_table(shuffled, "psnr", n_boot=500)
    assert list(table["bucket"].unique()) == ["0-20", "20-40", "40-60", "all"]
    assert len(table) == 4 * 3
    row = table[(table.bucket == "all") & (table.model_a == "telea") & (table.model_b == "biharmonic")].iloc[0]
    assert row["n"] == 36 and row["mean_diff"] == pytest.approx(-1.0, abs=0.15)
    assert row["ci_low"] < -0.8 and row["ci_high"] < 0 and row["p_wilcoxon"] < 1e-6
    assert row["better"] == "biharmonic"
    # the exact paired differences
    wide = per_image[per_image.bucket == "0-20"].pivot(index=["image", "mask"], columns="model", values="psnr")
    r0 = table[(table.bucket == "0-20") & (table.model_a == "telea") & (table.model_b == "navier-stokes")].iloc[0]
    assert r0["mean_diff"] == pytest.approx((wide["telea"] - wide["navier-stokes"]).mean())
    l1 = paired_table(per_image, "l1", pairs=[("telea", "biharmonic")], n_boot=200)
    assert (l1["better"] == "biharmonic").all()  # lower L1 is better
    lp = paired_table(per_image, "lpips", n_boot=200)
    assert lp["n"].eq(0).all() and lp["better"].eq("").all()


def test_paired_table_errors(run_dir):
    _, per_image, _ = load_results(run_dir)
    with pytest.raises(SairbenchError, match="no per-image results for model 'lama'"):
        paired_table(per_image, "psnr", pairs=[("telea", "lama")])
    with pytest.raises(SairbenchError, match="twice"):
        paired_table(pd.concat([per_image, per_image.head(1)]), "psnr")
    with pytest.raises(SairbenchError, match="no 'fid' column"):
        paired_table(per_image, "fid")


# ---------------------------------------------------------------------------------------------
# whole reports
# ---------------------------------------------------------------------------------------------


def test_write_report(run_dir, tmp_path):
    out = tmp_path / "report"
    paths = write_report([run_dir], out, include_published=["table1_celebahq", "table6_miou"], n_boot=200)
    assert paths == [out / "report.tex", out / "report.md"]
    tex, md = paths[0].read_text(), paths[1].read_text()
    check_latex_structure(tex)
    assert tex.startswith("\\documentclass") and tex.rstrip().endswith("\\end{document}")
    assert "Paired differences in PSNR" in tex and "Paired differences in LPIPS" not in tex  # LPIPS all NaN
    assert "sair$^\\dagger$" in tex and "Published: table6\\_miou" in tex
    assert "Semantic encoder: none" in md and "7x7 uniform window" in md
    assert md.count("| telea − navier-stokes |") == 3  # PSNR, SSIM, L1
    assert not list(out.glob("*.tmp")) and not list(out.glob(".*.tmp"))


def test_write_report_separates_conventions_and_datasets(run_dir, tmp_path):
    lama = make_run(tmp_path / "run_lama", ssim_convention="lama")
    md = write_report([run_dir, lama], tmp_path / "report", n_boot=100)[1].read_text()
    assert md.count("## liu2018-masks · synthetic-faces · 12 images × 3 buckets · SSIM ") == 2  # never one table of both conventions
    assert "## liu2018-masks · synthetic-faces · 12 images × 3 buckets · SSIM skimage\n" in md and " · SSIM lama\n" in md
    other = make_run(tmp_path / "run_photos", dataset="photos", ssim_convention="lama")
    paths = write_report([run_dir, other], tmp_path / "r2", n_boot=100)  # different datasets: two tables
    text = paths[1].read_text()
    assert text.count("## liu2018-masks · ") == 2 and "· SSIM" not in text  # titles differ already


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed")
def test_report_compiles_with_pdflatex(run_dir, tmp_path):
    out = tmp_path / "report"
    tex_path, _ = write_report([run_dir], out, include_published=["table1_celebahq", "table4_encoders", "table6_miou"],
                               n_boot=100, show_ci=True)
    proc = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", tex_path.name],
        cwd=out, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert (out / "report.pdf").stat().st_size > 1000


# ---------------------------------------------------------------------------------------------
# one table per setting, incomplete runs, row order
# ---------------------------------------------------------------------------------------------


def _ds(limit):
    return {"dataset": {"name": "synthetic-faces", "split": "test", "size": 32, "limit": limit}}


def _table_lines(md: str, section: str) -> list[str]:
    """The main table's rows (not the header) of the Markdown section titled ``section``."""
    body = md.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    rows = body.split("|:---|", 1)[1].split("\n\n", 1)[0]
    return [ln for ln in rows.splitlines() if ln.startswith("| ")]


def test_report_one_table_per_limit(tmp_path):
    a = make_run(tmp_path / "lim3", meta_extra=_ds(3))
    b = make_run(tmp_path / "lim5", models=("telea", "biharmonic"), seed=2, meta_extra={**_ds(5), "seed": 0})
    tex, md = (p.read_text() for p in write_report([a, b], tmp_path / "rep", n_boot=100))
    check_latex_structure(tex)
    assert md.count("## liu2018-masks · synthetic-faces · 32×32 · 12 images × 3 buckets · limit 3\n") == 1
    assert md.count("## liu2018-masks · synthetic-faces · 32×32 · 12 images × 3 buckets · limit 5\n") == 1
    assert tex.count("\\begin{tabular}") == 2 + 2 * 3  # a main table and 3 paired tables per setting
    notes = re.findall(r"<sub>(Runs: .*?)</sub>", md)
    assert len(notes) == 2 and notes[0] != notes[1]
    assert "Runs: lim3. Dataset: synthetic-faces (split test, size 32, limit 3)" in notes[0]
    assert "Runs: lim5. Dataset: synthetic-faces (split test, size 32, limit 5)" in notes[1]
    lim5 = _table_lines(md, "liu2018-masks · synthetic-faces · 32×32 · 12 images × 3 buckets · limit 5")
    assert [ln.split("|")[1].strip() for ln in lim5] == ["biharmonic", "telea"]  # no navier-stokes, no "[run]"


def test_report_rows_sorted_best_first_published_after(run_dir, tmp_path, capsys):
    from tests.helpers import invoke

    invoke(["report", str(run_dir), "--out", str(tmp_path / "rep"), "--published", "table1_celebahq"])
    printed = capsys.readouterr().out
    md = (tmp_path / "rep" / "report.md").read_text()
    rows = _table_lines(md, "liu2018-masks · synthetic-faces · 12 images × 3 buckets")
    names = [ln.split("|")[1].strip() for ln in rows]
    # offsets make biharmonic best, then navier-stokes, then telea (PSNR over all buckets)
    assert names[:3] == ["biharmonic", "navier-stokes", "telea"] and all(n.endswith("†") for n in names[3:])
    assert names[3] == "sair †"  # published rows sorted too, after the runs
    assert rows[0].count("**") == 2 * 3 * 4  # PSNR, SSIM, L1 best in 3 buckets + all
    tex = (tmp_path / "rep" / "report.tex").read_text()
    assert _latex_row(tex, "biharmonic")[1].startswith("\\textbf{")
    # the printed table: same order, published rows without an "all" value left out
    order = [printed.find(f" {m} ") for m in ("biharmonic", "navier-stokes", "telea")]
    assert -1 not in order and order == sorted(order) and "sair" not in printed


def test_report_lists_incomplete_runs(tmp_path, monkeypatch, capsys):
    from tests.helpers import invoke

    make_run(tmp_path / "results" / "done")
    (tmp_path / "results" / "half" / "parts").mkdir(parents=True)
    (tmp_path / "results" / "half" / "run.json").write_text("{}")
    (tmp_path / "results" / "notes").mkdir()  # no trace of a run: not listed
    monkeypatch.chdir(tmp_path)
    invoke(["report", "--out", "rep"])
    out = capsys.readouterr().out
    assert "skipped incomplete runs: results/half" in out.replace("\n", " ") and "notes" not in out
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "Skipped incomplete runs (no summary.csv or meta.json): results/half." in md and "## liu2018-masks" in md
