"""Write the generated part of docs/results-photos.md: the selection on the photo validation split,
the photo test split's table and paired tests of the photo models against Telea, Navier-Stokes and
biharmonic (PSNR inside the hole: the metric ``psnr_hole``, or for runs that did not score it the
same value from whole-image PSNR + 10 log10 of the hole ratio, so paired PSNR differences are the
same either way). The hand-written part below MARKER is kept.

    export SAIRBENCH_PHOTOS_DIR=runs/photos/corpus   # from `sairbench photos fetch`
    sairbench run --protocol photos-val --name val-x1 && sairbench run --protocol photos-val --self-ensemble 8 --name val-x8
    sairbench run --protocol photos --name photos
    sairbench run --protocol photos --dataset folder --data-root OPENCV_DOC_PHOTOS --name ocv   # once, at the end
    python bench/photo_results.py results/photos --val results/val-x1 results/val-x8 --check results/ocv
"""

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from sairbench.io import atomic_write_text
from sairbench.masks import BUCKETS as MASK_BUCKETS
from sairbench.metrics import psnr_hole_from_psnr
from sairbench.report import paired_table, render_paired_markdown

PHOTO_MODELS = ("liif@photos", "edsr-wo@photos", "lte@photos")
BASELINES = ("telea", "navier-stokes", "biharmonic")
BUCKETS = tuple(b for b, _, _ in MASK_BUCKETS)
MARKER = "<!-- written by hand below this line; bench/photo_results.py keeps it -->"


def read_run(run: Path) -> tuple[pd.DataFrame, dict]:
    per_image = pd.read_parquet(run / "per_image.parquet")
    if "psnr_hole" not in per_image.columns:  # a run that did not score the metric: the same value from psnr
        per_image["psnr_hole"] = psnr_hole_from_psnr(per_image["psnr"], per_image["ratio"])
    return per_image, json.loads((run / "meta.json").read_text())


def label(model: str, meta: dict) -> str:
    n = (meta["model_info"].get(model) or {}).get("self_ensemble", 1)
    return model if n == 1 else f"{model} (x{n})"


def bucket_table(per_image: pd.DataFrame, meta: dict, with_all: bool = False) -> list[str]:
    head = [f"PSNR in hole {b}" for b in BUCKETS] + (["all pairs"] if with_all else ["SSIM 20-40%"])
    rows = ["| model | " + " | ".join(head) + " |", "|---" * (len(head) + 1) + "|"]
    for model, g in per_image.groupby("model", sort=False):
        cells = []
        for b in BUCKETS:
            v = g[g.bucket == b]["psnr_hole"]
            cells.append(f"{v.mean():.2f} ± {1.96 * v.std(ddof=1) / np.sqrt(len(v)):.2f}")
        cells.append(f"**{g['psnr_hole'].mean():.3f}**" if with_all else f"{g[g.bucket == '20-40%']['ssim'].mean():.4f}")
        rows.append(f"| {label(model, meta)} | " + " | ".join(cells) + " |")
    return rows


def selection(val_runs: list[Path]) -> str:
    """One table over every validation run, best criterion first (the run folder names the candidate set)."""
    if not val_runs:
        return ""
    rows, seen = [], set()
    for run in val_runs:
        per_image, meta = read_run(run)
        for model, g in per_image.groupby("model", sort=False):
            if label(model, meta) in seen:  # the same model and setting in an earlier run (baselines, x1 stages)
                continue
            seen.add(label(model, meta))
            cells = [f"{g[g.bucket == b]['psnr_hole'].mean():.2f}" for b in BUCKETS]
            rows.append((g["psnr_hole"].mean(), f"| {label(model, meta)} | `{run.name}` | " + " | ".join(cells)
                         + f" | **{g['psnr_hole'].mean():.3f}** |"))
    images = meta["dataset"].get("images")
    head = ["| model | run | " + " | ".join(f"PSNR in hole {b}" for b in BUCKETS) + " | all pairs (criterion) |",
            "|---|---|---|---|---|---|"]
    return (f"## Selection on the validation split\n\nProtocol `photos-val` ({images} images: the non-test photographs of "
            "the validation packages, never trained on), mean PSNR inside the hole; the criterion, declared before the "
            "candidates were evaluated, is the mean over all pairs. `liif@sN` / `lte@sN`: step N of the run that "
            "became `liif@photos` / `lte@photos` (docs/checkpoints.md); (xN): self-ensemble.\n\n" + "\n".join(head + [r for _, r in sorted(rows, key=lambda t: -t[0])])
            + "\n\n")


def independent_check(check_run: str | None) -> str:
    """The reserved opencv-doc photographs: evaluated once at the end, never used for a choice."""
    if not check_run:
        return ""
    per_image, meta = read_run(Path(check_run))
    models = list(dict.fromkeys(per_image.model))
    paired = [render_paired_markdown(paired_table(per_image, "psnr", pairs=[(a, b)]),
                                     f"opencv-doc check, PSNR, {label(a, meta)} - {b}")
              for a in PHOTO_MODELS if a in models for b in ("telea", "biharmonic") if b in models]
    return f"""## Independent check: Debian's opencv-doc photographs

{meta['dataset'].get('images')} colour photographs from `opencv-doc` 4.6.0 `examples/data` (HappyFish, aero1, apple, baboon,
building, butterfly, ela_original, fruits, home, leuvenA, licenseplate_motion, messi5, orange,
pca_test1, rubberwhale1, smarties, squirrel_cls, stuff; renders, paintings and duplicates left out),
never trained, tuned or selected on: evaluated once, after every choice was made. Same protocol
(128x128, seeded masks, whole images only):

    apt-get download opencv-doc && dpkg -x opencv-doc_*.deb x   # copy the 18 files to check/
    sairbench run --protocol photos --dataset folder --data-root check --name ocv

{chr(10).join(bucket_table(per_image, meta))}

""" + "\n\n".join(paired) + "\n\n"


def main(test_run: str, val_runs: list[str], check_run: str | None = None) -> None:
    run = Path(test_run)
    per_image, meta = read_run(run)
    models = list(dict.fromkeys(per_image.model))
    pairs = [(a, b) for a in PHOTO_MODELS if a in models for b in BASELINES if b in models]
    paired = [render_paired_markdown(paired_table(per_image, "psnr", pairs=[pair]),
                                     f"PSNR (inside the hole and whole image alike), {label(pair[0], meta)} - {pair[1]}")
              for pair in pairs]
    info = meta["model_info"].get("liif@photos") or {}
    n_photos = len({i.split("@")[0] for i in per_image.image})
    generated = f"""# Results on real photographs

Photographs are split by photograph (`sairbench.data.photos.split_of`): a quarter by name hash are
**test**; of the rest, those of the validation packages are **val** (selection only), the others
**train**. Checkpoints and inference settings are chosen on val; the test split is only reported.

{selection([Path(v) for v in val_runs])}## Test split

Protocol `photos` ({meta['dataset'].get('images')} test images at {meta['dataset']['size']}x{meta['dataset']['size']}:
{n_photos} test photographs, each whole and as 3 fixed half-scale crops; one seeded mask per bucket per
image), CPU. `liif@photos` is the shipped photo LIIF (step {info.get('checkpoint_step')}, self-ensemble
x{info.get('self_ensemble', 1)}; docs/checkpoints.md). Mean ± 95 % t-interval half width; paired
differences with a bootstrap 95 % interval and a Wilcoxon p-value over the same images and masks.

    {' '.join(['python bench/photo_results.py', str(run), *(['--val', *val_runs] if val_runs else []), *(['--check', check_run] if check_run else [])])}

{chr(10).join(bucket_table(per_image, meta))}

""" + "\n\n".join(paired) + "\n\n" + independent_check(check_run)
    doc = Path("docs/results-photos.md")
    kept = doc.read_text().split(MARKER, 1)[1] if doc.is_file() and MARKER in doc.read_text() else "\n"
    atomic_write_text(doc, generated + "\n" + MARKER + kept)
    print(generated)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("test_run", nargs="?", default="results/photos")
    ap.add_argument("--val", nargs="*", default=[], help="photos-val runs (the selection)")
    ap.add_argument("--check", help="the run on the reserved opencv-doc photographs")
    a = ap.parse_args()
    main(a.test_run, a.val, a.check)
