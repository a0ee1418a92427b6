"""SAIR against LIIF on the default protocol: paired differences with 95 % intervals.

Every checkpoint compared is shipped (docs/checkpoints.md), so this runs on a fresh clone:

* equal steps (the paper's protocol): the shipped SAIR (4000 GPU steps, then 2000 and 6000 CPU
  fine-tuning steps in the hole) against LIIF's checkpoint after the same stages (the shipped LIIF
  has a fourth stage), each earlier stage, and the 1500-step run in which all eight appearance
  models trained side by side;
* equal wall time: LIIF's 4000-step GPU stage against SAIR's snapshot from the same side-by-side
  run. SAIR's step at LIIF's wall time is read from SAIR's logged history; the nearest shipped
  snapshot is used and the document says how much more time that gave SAIR.

    python bench/compare_sair_liif.py [--results results] [--out docs/results-sair-vs-liif.md]
"""

from __future__ import annotations

import argparse

import numpy as np

PAIRS = [  # (comparison, SAIR variant, LIIF variant)
    ("equal steps, shipped SAIR (4000 GPU + 2000 + 6000 fine-tuning)", "sair", "liif@ft6000"),
    ("equal steps, first fine-tuning stage (4000 + 2000)", "sair@ft2000", "liif@ft2000"),
    ("equal steps, GPU stage (4000)", "sair@gpu4000", "liif@gpu4000"),
    ("equal steps, 8 models side by side (1500)", "sair@gpu1500", "liif@gpu1500"),
    ("equal wall time, GPU stage", "sair@gpu4000-step1600", "liif@gpu4000"),
]


def step_at_wall(history: list[dict], wall_s: float) -> float:
    """The step a run had reached after ``wall_s`` seconds of summed step time (linear between logs)."""
    steps = [0] + [h["step"] for h in history]
    walls = [0.0] + [h["wall_time_s"] for h in history]
    return float(np.interp(wall_s, walls, steps))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", default="results")
    ap.add_argument("--out", default="docs/results-sair-vs-liif.md")
    args = ap.parse_args()

    import pandas as pd

    from sairbench.checkpoint import load_checkpoint, shipped_path
    from sairbench.run import run_protocol
    from sairbench.io import atomic_write_text
    from sairbench.protocol import load_protocol
    from sairbench.report import paired_table

    variants = sorted({m for _, a, b in PAIRS for m in (a, b) if "@" in m})
    checkpoints = {v: str(shipped_path(v.replace("@", "-"))) for v in variants}
    liif_gpu = load_checkpoint(checkpoints["liif@gpu4000"])
    sair_gpu = load_checkpoint(checkpoints["sair@gpu4000"])
    snap = load_checkpoint(checkpoints["sair@gpu4000-step1600"])
    wall = liif_gpu["wall_time_s"]
    sair_step = step_at_wall(sair_gpu["history"], wall)

    run = run_protocol(load_protocol("liu2018-masks"), models=["sair", *variants], results_root=args.results,
                       name="sair-vs-liif", checkpoints=checkpoints)
    per_image = pd.read_parquet(run / "per_image.parquet")
    lines = [
        "# SAIR against LIIF (built-in synthetic-faces, default protocol)", "",
        f"Command: `python bench/compare_sair_liif.py`; results in `{run}`. All checkpoints are shipped "
        "(docs/checkpoints.md).", "",
        f"Equal wall time: LIIF's 4000 GPU steps took {wall:.1f} s of summed step time, trained side by side "
        f"with SAIR on one H200; SAIR had then reached step {sair_step:.0f} (its logged history). The nearest "
        f"shipped snapshot is step {snap['step']} ({snap['wall_time_s']:.1f} s, "
        f"{snap['wall_time_s'] / wall:.2f}x LIIF's time), which favours SAIR. Over the whole GPU stage SAIR "
        f"ran {sair_gpu['step'] / sair_gpu['wall_time_s']:.1f} steps/s and LIIF "
        f"{liif_gpu['step'] / liif_gpu['wall_time_s']:.1f} steps/s. SAIR's earlier stages (semantic encoder, "
        "SIR) are not counted.", "",
        "Paired over the same images and masks (100 images per bucket); mean difference SAIR - LIIF with a "
        "bootstrap 95 % interval and the Wilcoxon p-value.", "",
    ]
    for comparison, a, b in PAIRS:
        for metric in ("psnr", "ssim"):
            tab = paired_table(per_image, metric, pairs=[(a, b)])
            tab = tab[tab["bucket"].isin(["20-40%", "40-60%", "all"])]
            lines += [f"## {comparison}: {a} - {b}, {metric.upper()}", "",
                      "| bucket | n | mean diff | 95 % CI | p (Wilcoxon) |", "|---|---|---|---|---|"]
            for r in tab.itertuples():
                lines.append(f"| {r.bucket} | {r.n} | {r.mean_diff:+.4f} | [{r.ci_low:+.4f}, {r.ci_high:+.4f}] | "
                             f"{r.p_wilcoxon:.2g} |")
            lines.append("")
    atomic_write_text(args.out, "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
