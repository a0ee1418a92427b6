"""Write docs/results-photos.md: the photo protocol's table and paired tests of the photo LIIF
against Telea, Navier-Stokes and biharmonic (PSNR inside the hole = whole-image PSNR + 10 log10
of the hole ratio, so paired PSNR differences are the same either way).

    SAIRBENCH_PHOTOS_DIR=runs/photos/corpus sairbench run --protocol photos --name photos
    python bench/photo_results.py results/photos
"""

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from sairbench.io import atomic_write_text
from sairbench.report import paired_table, render_paired_markdown

PHOTO_MODELS = ("liif@photos", "edsr-wo@photos", "lte@photos")
MARKER = "<!-- written by hand below this line; bench/photo_results.py keeps it -->"


def main(run: str) -> None:
    run = Path(run)
    per_image = pd.read_parquet(run / "per_image.parquet")
    per_image["psnr_hole"] = per_image["psnr"] + 10 * np.log10(per_image["ratio"])
    meta = json.loads((run / "meta.json").read_text())
    rows = ["| model | " + " | ".join(f"PSNR in hole {b}" for b in ("0-20%", "20-40%", "40-60%")) + " | SSIM 20-40% |",
            "|---|---|---|---|---|"]
    for model, g in per_image.groupby("model", sort=False):
        cells = []
        for b in ("0-20%", "20-40%", "40-60%"):
            v = g[g.bucket == b]["psnr_hole"]
            cells.append(f"{v.mean():.2f} ± {1.96 * v.std(ddof=1) / np.sqrt(len(v)):.2f}")
        cells.append(f"{g[g.bucket == '20-40%']['ssim'].mean():.4f}")
        rows.append(f"| {model} | " + " | ".join(cells) + " |")
    # paired differences of PSNR inside the hole equal those of whole-image PSNR (same mask per pair)
    models = set(per_image.model)
    pairs = [(a, b) for a in PHOTO_MODELS if a in models
             for b in ("telea", "navier-stokes", "biharmonic", "liif@photos7k", "liif@photos16k") if b in models and b != a]
    paired = [render_paired_markdown(paired_table(per_image, "psnr", pairs=[pair]),
                                     f"PSNR (inside the hole and whole image alike), {pair[0]} - {pair[1]}")
              for pair in pairs]
    info = meta["model_info"].get("liif@photos") or {}
    generated = f"""# Results on real photographs (issue 14)

Protocol `photos` ({meta['dataset'].get('images')} test images at {meta['dataset']['size']}x{meta['dataset']['size']}:
{len(set(per_image.image)) // 4 if len(set(per_image.image)) >= 4 else '?'} test photographs, each whole and as 3 fixed half-scale crops;
one seeded mask per bucket per image), CPU. `liif@photos` is the shipped photo LIIF
(step {info.get('checkpoint_step')}, trained on {info.get('train', {}).get('dataset')} crops; docs/checkpoints.md),
`liif@photos7k` the stage it was fine-tuned from (biharmonic prefill as input, resize-conv upsampling),
`liif@photos16k` the first photo LIIF (the paper's model: zeros in the hole, transposed convolutions),
`edsr-wo@photos` the photo EDSR-wo (biharmonic prefill as input), `liif` the built-in faces model. Mean ± 95 % t-interval half width; paired differences with a
bootstrap 95 % interval and a Wilcoxon p-value over the same images and masks.

    SAIRBENCH_PHOTOS_DIR=runs/photos/corpus sairbench run --protocol photos --name photos
    python bench/photo_results.py results/photos

{chr(10).join(rows)}

""" + "\n\n".join(paired) + "\n"
    doc = Path("docs/results-photos.md")
    kept = doc.read_text().split(MARKER, 1)[1] if doc.is_file() and MARKER in doc.read_text() else "\n"
    atomic_write_text(doc, generated + "\n" + MARKER + kept)
    print(generated)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "results/photos")
