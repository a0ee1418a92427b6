"""What a researcher sees in `sairbench report`: the newest run's row per model (older runs named
as superseded), titles in words, a page that fits a 1280-px window, and the difference figure."""

import html
import json
import re

import numpy as np
import pandas as pd
import pytest

from tests.helpers import invoke
from tests.test_report_html import CHROMIUM, _chromium

TINY = ["--limit", "3", "--per-bucket", "1", "--size", "32", "--threads", "1"]


@pytest.fixture(scope="module")
def repeated(tmp_path_factory):
    """Three runs of equal settings under one results folder: telea + biharmonic twice (identical
    runs), then biharmonic alone."""
    root = tmp_path_factory.mktemp("repeated")
    results = root / "R"
    for models in (["telea", "biharmonic"], ["telea", "biharmonic"], ["biharmonic"]):
        invoke(["run", *[a for m in models for a in ("-m", m)], *TINY, "--results", str(results)])
    runs = sorted(p.name for p in results.iterdir())
    assert runs == ["liu2018-masks_synthetic-faces", "liu2018-masks_synthetic-faces-2", "liu2018-masks_synthetic-faces-3"]
    return root, results


def _main_rows(md: str) -> list[str]:
    """The model names of the first section's main table."""
    body = md.split("\n## ", 1)[1].split("|:---|", 1)[1].split("\n\n", 1)[0]
    return [ln.split("|")[1].strip().replace("\\", "") for ln in body.splitlines() if ln.startswith("| ")]


def _paired_rows(md: str, metric: str) -> list[str]:
    """The pair names of the paired-test table in ``metric``."""
    body = md.split(f"**Paired differences in {metric}:", 1)[1].split("|:---|", 1)[1].split("\n\n", 1)[0]
    return [ln.split("|")[1].strip() for ln in body.splitlines() if ln.startswith("| ")]


def _superseded(text: str) -> list[str]:
    """The superseded lines of a Markdown report, unescaped."""
    return [ln.replace("\\", "") for ln in re.findall(r"<sub>(Superseded: [^<]*)</sub>", text)]


def test_report_shows_each_model_once_from_its_newest_run(repeated, capsys):
    root, results = repeated
    r1, r2, r3 = (f"liu2018-masks_synthetic-faces{s}" for s in ("", "-2", "-3"))
    invoke(["report", "--results", str(results), "--out", str(root / "rep"), "--html"])
    printed = capsys.readouterr().out
    md = (root / "rep" / "report.md").read_text(encoding="utf-8")
    assert md.count("\n## ") == 1  # equal settings: one table
    assert sorted(_main_rows(md)) == ["biharmonic", "telea"]  # no "biharmonic [run]" twice
    assert _paired_rows(md, "PSNR") == ["telea − biharmonic"]  # one pair, not six
    # biharmonic from the newest run (3), telea from run 2; run 1 and run 2's biharmonic superseded
    assert _superseded(md) == [
        f"Superseded: {r1} (telea, biharmonic; newer rows from {r2}, {r3}). sairbench report --all shows every run's rows.",
        f"Superseded: {r2} (biharmonic; newer rows from {r3}). sairbench report --all shows every run's rows.",
    ]
    assert f"Runs: {r2}, {r3}." in md.replace("\\", "")
    tex = (root / "rep" / "report.tex").read_text(encoding="utf-8")
    page = (root / "rep" / "report.html").read_text(encoding="utf-8")
    for text in (tex.replace("\\_", "_"), page):
        assert text.count("Superseded: ") == 2 and f"Superseded: {r1} (telea, biharmonic;" in text
    assert "Superseded: liu2018-masks_synthetic-faces (telea" in " ".join(printed.split())
    assert f"<th>{r1} (superseded)</th><th>{r2} (partly superseded)</th><th>{r3}</th>" in page  # the runs' facts
    # the numbers are the newest run's own
    summary = pd.read_csv(results / r3 / "summary.csv")
    psnr = summary[(summary["model"] == "biharmonic") & (summary["bucket"] == "all") & (summary["metric"] == "psnr")]
    row = next(ln for ln in md.split("\n") if ln.startswith("| biharmonic |"))
    assert f"{psnr['mean'].iloc[0]:.2f}" in row

    # the same with the folders given (in any order)
    invoke(["report", str(results / r3), str(results / r1), str(results / r2), "--out", str(root / "rep2")])
    md2 = (root / "rep2" / "report.md").read_text(encoding="utf-8")
    assert sorted(_main_rows(md2)) == ["biharmonic", "telea"] and len(_superseded(md2)) == 2

    # --all: every run's rows, named apart, as before
    invoke(["report", "--results", str(results), "--out", str(root / "rep-all"), "--all"])
    md_all = (root / "rep-all" / "report.md").read_text(encoding="utf-8")
    assert sorted(_main_rows(md_all)) == sorted([f"biharmonic [{r}]" for r in (r1, r2, r3)] + [f"telea [{r}]" for r in (r1, r2)])
    assert not _superseded(md_all)


@pytest.fixture(scope="module")
def sizes(tmp_path_factory):
    """telea at the dataset's size (64, a dataset default), at --size 32, and at --size 64 (equal
    settings to the first: the size's source differs only)."""
    root = tmp_path_factory.mktemp("sizes")
    results = root / "S"
    base = ["run", "-m", "telea", "--limit", "2", "--per-bucket", "1", "--threads", "1", "--results", str(results)]
    for extra in ([], ["--size", "32"], ["--size", "64"]):
        invoke(base + extra)
    return root, results


def test_titles_are_words_not_json(sizes, capsys):
    root, results = sizes
    invoke(["report", "--results", str(results), "--out", str(root / "rep")])
    printed = capsys.readouterr().out
    md = (root / "rep" / "report.md").read_text(encoding="utf-8")
    titles = re.findall(r"^## (.*)$", md, flags=re.M)
    captions = [re.sub(r"^<a id=\"[^\"]*\"></a>", "", ln) for ln in md.splitlines() if "**" in ln and not ln.startswith("|")]
    assert titles and captions
    for line in titles + captions:
        assert "{" not in line and '"' not in line, line
    # --size 64 and the default 64 are one setting: two tables, not three
    assert titles == ["liu2018-masks · synthetic-faces · 64×64 · 2 images × 3 buckets",
                      "liu2018-masks · synthetic-faces · 32×32 · 2 images × 3 buckets"]
    assert "**sairbench: liu2018-masks · synthetic-faces · 32×32 · 2 images × 3 buckets. Best value per column in bold.**" in md
    assert "liu2018-masks · synthetic-faces · 64×64" in printed
    tex = (root / "rep" / "report.tex").read_text(encoding="utf-8")
    assert "\\subsection*{liu2018-masks $\\cdot$ synthetic-faces $\\cdot$ 32$\\times$32 $\\cdot$ 2 images $\\times$ 3 buckets}" in tex


def test_titles_name_what_differs_in_words():
    from sairbench.report.settings import group_runs

    base = {"protocol": "p", "seed": 0, "masks": {"source": "generated", "seed": 0}}
    metas = [{**base, "dataset": {"name": "d", "size": 32, "split": "test", "crop": [8, 8]}, "_run": "a", "_dir": "a"},
             {**base, "dataset": {"name": "d", "size": 32, "split": "test", "crop": [4, 4]}, "_run": "b", "_dir": "b"}]
    titles = [g.title for g in group_runs(metas)]
    assert titles == ["p · d · 32×32 · crop 8, 8", "p · d · 32×32 · crop 4, 4"]


# ---------------------------------------------------------------------------------------------
# the HTML page in a 1280-px window, and the difference figure
# ---------------------------------------------------------------------------------------------

MEASURE = """
window.addEventListener("load", function () {
  var de = document.documentElement;
  var out = {page: de.scrollWidth, tables: [], scrolled: [], intervals: 0, broken: [], images: []};
  document.querySelectorAll("table").forEach(function (t) {
    out.tables.push({id: t.id || t.className, width: t.getBoundingClientRect().width, room: t.parentElement.clientWidth});
  });
  document.querySelectorAll("body *").forEach(function (el) {
    var x = getComputedStyle(el).overflowX;
    if ((x === "auto" || x === "scroll") && el.scrollWidth > el.clientWidth + 1) out.scrolled.push(el.tagName);
  });
  document.querySelectorAll("td").forEach(function (td) {  // a value and its interval: on one line?
    var text = td.textContent, end = text.indexOf("]");
    if (end < 0) { if (text.indexOf("±") < 0) return; end = text.length - 1; }
    out.intervals++;
    var walker = document.createTreeWalker(td, NodeFilter.SHOW_TEXT), node, seen = 0, range = document.createRange();
    range.setStart(td, 0);
    while ((node = walker.nextNode())) {
      if (seen + node.data.length > end) { range.setEnd(node, end - seen + 1); break; }
      seen += node.data.length;
    }
    var rects = Array.prototype.slice.call(range.getClientRects());
    var tops = rects.map(function (r) { return r.top; }), hs = rects.map(function (r) { return r.height; });
    if (rects.length && Math.max.apply(null, tops) - Math.min.apply(null, tops) > 0.5 * Math.min.apply(null, hs))
      out.broken.push(text);
  });
  Array.prototype.forEach.call(document.images, function (im) {
    var f = im.closest("figure");
    out.images.push({figure: f && f.getAttribute("data-figure"), natural: im.naturalWidth, shown: im.getBoundingClientRect().width});
  });
  document.body.setAttribute("data-layout", JSON.stringify(out));
});
"""


def _layout(page, width: int, cwd) -> dict:
    """What Chromium lays out for ``page`` in a ``width``-px window (:data:`MEASURE`)."""
    probe = page.with_name(f"measure-{width}.html")
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", f"<script>{MEASURE}</script></body>"),
                     encoding="utf-8")
    dom = _chromium(f"--window-size={width},900", "--dump-dom", probe.resolve().as_uri(), cwd=cwd)
    m = re.search(r'data-layout="([^"]*)"', dom)
    assert m, "the measuring script did not run"
    return json.loads(html.unescape(m.group(1)))


def _min_font_pt(fig) -> float:
    """The smallest font (pt) of any visible text of a matplotlib figure."""
    from matplotlib.text import Text

    return min(t.get_fontsize() for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip())


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    """A default-like run (every model available here, 4 metrics) with its figures."""
    root = tmp_path_factory.mktemp("default")
    invoke(["run", "--limit", "2", "--per-bucket", "1", "--size", "32", "--threads", "1", "--results", str(root / "res"),
            "--name", "all"])
    run = root / "res" / "all"
    invoke(["figures", str(run), "--images", "2", "--threads", "1"])
    return root, run


def test_difference_figure_equals_mean_of_per_image_differences(default_run):
    import matplotlib.pyplot as plt

    from sairbench.figures import ratio_difference_figure

    _, run = default_run
    per = pd.read_parquet(run / "per_image.parquet")
    assert per["model"].nunique() >= 8 and "biharmonic" in set(per["model"])
    for ext in ("png", "pdf", "csv"):
        assert (run / "figures" / f"ratio_difference.{ext}").is_file()
    fig, table = ratio_difference_figure(per)
    # independently: per image x mask, PSNR (capped at 100 dB) of the model minus biharmonic's, by hole-ratio bin
    ref = per[per["model"] == "biharmonic"][["image", "mask", "ratio", "psnr"]]
    both = per[per["model"] != "biharmonic"].merge(ref, on=["image", "mask"], suffixes=("", "_ref"))
    both["diff"] = np.minimum(both["psnr"], 100.0) - np.minimum(both["psnr_ref"], 100.0)
    both["bin"] = np.floor(both["ratio_ref"] * 10 + 1e-9).astype(int)
    expected = both.groupby(["model", "bin"])["diff"].agg(["mean", "size"]).reset_index()
    got = table.assign(bin=np.round(table["bin_lo"] * 10).astype(int))
    merged = expected.merge(got, on=["model", "bin"], how="outer", indicator=True)
    assert (merged["_merge"] == "both").all() and (table["reference"] == "biharmonic").all()
    np.testing.assert_allclose(merged["mean_diff"], merged["mean"], rtol=0, atol=1e-9)
    assert (merged["n"] == merged["size"]).all()
    # the plotted points are the table's
    ax = fig.axes[0]
    for c in ax.containers:
        rows = table[table["model"] == c.get_label()].sort_values("ratio")
        np.testing.assert_allclose(np.asarray(c.lines[0].get_ydata(), float), rows["mean_diff"], rtol=0, atol=1e-12)
    assert sorted(c.get_label() for c in ax.containers) == sorted(set(per["model"]) - {"biharmonic"})
    written = pd.read_csv(run / "figures" / "ratio_difference.csv")
    np.testing.assert_allclose(written["mean_diff"], table["mean_diff"], rtol=0, atol=1e-9)
    plt.close(fig)


def _figure_fonts(run) -> dict[str, float]:
    """The smallest text (px) of each figure of the page, as drawn: pt x dpi / 72 (the page draws
    its curves at 110 dpi; `sairbench figures` writes the grid at 150 dpi)."""
    import matplotlib.pyplot as plt

    from sairbench.figures import grid_figure, ratio_curves_figure, ratio_difference_figure

    per = pd.read_parquet(run / "per_image.parquet")
    models = list(json.loads((run / "meta.json").read_text())["models"])
    fake = np.zeros((2, 32, 32, 3), np.uint8)

    class Pair:
        image, ratio = "synthetic-faces-test-00000", 0.45

    figs = {"ratio_curves": (ratio_curves_figure(per, "t")[0], 110), "ratio_difference": (ratio_difference_figure(per, "t")[0], 110),
            "qualitative": (grid_figure([Pair, Pair], fake, {m: fake for m in models}, fake, "t"), 150)}
    out = {name: _min_font_pt(fig) * dpi / 72 for name, (fig, dpi) in figs.items()}
    for fig, _ in figs.values():
        plt.close(fig)
    return out


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium); "
                                             "the rendered HTML layout is not checked")
def test_report_page_fits_a_1280_px_window(default_run):
    root, run = default_run
    invoke(["report", str(run), "--out", str(root / "rep"), "--html"])
    page = root / "rep" / "report.html"
    text = page.read_text(encoding="utf-8")
    assert text.count('data-figure="ratio_difference"') == 1 and "PSNR difference to biharmonic" in text
    layout = _layout(page, 1280, root)
    assert layout["page"] <= 1280, layout["page"]  # nothing scrolled sideways: not the page ...
    assert not layout["scrolled"], layout["scrolled"]  # ... nor a box inside it
    for t in layout["tables"]:
        assert t["width"] <= t["room"] + 0.5, t
    assert layout["intervals"] >= 3 * 4 * 10 and not layout["broken"], layout["broken"][:3]
    # the figures' smallest text at the size the page shows them
    fonts = _figure_fonts(run)
    shown = {im["figure"]: im["shown"] / im["natural"] for im in layout["images"]}
    assert set(shown) == {"ratio_curves", "ratio_difference", "qualitative"}
    for name, scale in shown.items():
        assert fonts[name] * scale >= 10.0, (name, fonts[name], scale)

    # a narrower window: tables may need room, but a value never parts from its interval
    narrow = _layout(page, 900, root)
    assert narrow["intervals"] == layout["intervals"] and not narrow["broken"], narrow["broken"][:3]


def test_newest_by_finish_time_and_self_ensemble_kept_apart(tmp_path):
    from sairbench.report import build_report
    from tests.test_report import make_run

    def md_of(dirs, **kw):
        from sairbench.report.document import render_md

        return render_md(build_report(dirs, n_boot=50, **kw))

    averaged = {"model_info": {"sair": {"self_ensemble": 8}}, "created": "2024-03-01T00:00:00+00:00"}
    a = make_run(tmp_path / "a", models=("telea", "sair"), meta_extra=averaged)
    b = make_run(tmp_path / "b", models=("telea", "sair"), seed=0,
                 meta_extra={"created": "2024-02-01T00:00:00+00:00", "model_info": ["not a mapping"]})
    md = md_of([a, b])
    # a finished later: its telea wins although b's folder was written last; sair x8 and sair x1 are
    # two measurements, kept apart
    assert sorted(_main_rows(md)) == ["sair [a]", "sair [b]", "telea"]
    assert _superseded(md) == ["Superseded: b (telea; newer rows from a). sairbench report --all shows every run's rows."]
    # an unreadable finish time: the summary's modification time decides (b written last)
    (a / "meta.json").write_text(json.dumps({**json.loads((a / "meta.json").read_text()), "created": "yesterday"}))
    (b / "summary.csv").touch()
    md = md_of([b, a])
    assert _superseded(md) == ["Superseded: a (telea; newer rows from b). sairbench report --all shows every run's rows."]
