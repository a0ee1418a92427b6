"""SAIR against LIIF on the default protocol: paired differences with 95 % intervals.

At equal training steps (the paper's protocol: both shipped checkpoints) and at equal wall time
(SAIR snapshots from the same run, chosen by training throughput measured in the same process).

    python bench/compare_sair_liif.py --sair-run runs/shipped/sair [--results results] [--out docs/results-sair-vs-liif.md]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch


def train_steps_per_s(model_name: str, steps: int = 8) -> float:
    """Training throughput of a shipped tiny model (fast path, batch 16, 1,024 queries), this process."""
    from sairbench.checkpoint import load_model, shipped_path
    from sairbench.data import get_dataset
    from sairbench.train import Schedule, TrainConfig, batch_for_step

    model = load_model(shipped_path(model_name))
    model.train()
    if model.semantic is not None:
        model.semantic.set_sir_trainable(False)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    ds = get_dataset("synthetic-faces", split="train", size=64)
    cfg = TrainConfig(model=model_name, schedule=Schedule.preset("tiny", 100, 16))
    times = []
    for step in range(steps + 2):
        t0 = time.perf_counter()
        image, mask, coord, cell, target, _ = batch_for_step(ds, step, cfg)
        loss = torch.nn.functional.l1_loss(model(image, mask, coord, cell), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    return 1.0 / (sum(times[2:]) / steps)  # first two steps warm up


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sair-run", default="runs/shipped/sair", help="SAIR training run folder with step_*.pt snapshots")
    ap.add_argument("--results", default="results")
    ap.add_argument("--out", default="docs/results-sair-vs-liif.md")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    import pandas as pd

    from sairbench.checkpoint import load_checkpoint, shipped_path
    from sairbench.evaluate import run_protocol
    from sairbench.protocol import load_protocol
    from sairbench.report import paired_table

    liif_ck, sair_ck = load_checkpoint(shipped_path("liif")), load_checkpoint(shipped_path("sair"))
    sps = {m: train_steps_per_s(m) for m in ("liif", "sair")}
    equal_wall_steps = liif_ck["step"] * sps["sair"] / sps["liif"]
    snapshots = {int(p.stem.split("_")[1]): p for p in Path(args.sair_run).glob("step_*.pt")}
    if not snapshots:
        raise SystemExit(f"no step_*.pt snapshots in {args.sair_run}")
    wall_step = min(snapshots, key=lambda s: abs(s - equal_wall_steps))
    variant = f"sair@step{wall_step}"
    proto = load_protocol("liu2018-masks")
    run = run_protocol(proto, models=["liif", "sair", variant], results_root=args.results, name="sair-vs-liif",
                       checkpoints={variant: str(snapshots[wall_step])})
    per_image = pd.read_parquet(run / "per_image.parquet")
    lines = [
        "# SAIR against LIIF (built-in synthetic-faces, default protocol)", "",
        f"Command: `python bench/compare_sair_liif.py --sair-run {args.sair_run}`; results in `{run}`.", "",
        f"Training throughput measured here (tiny, batch 16, 1,024 queries, fast path, {args.threads} thread): "
        f"LIIF {sps['liif']:.2f} steps/s, SAIR {sps['sair']:.2f} steps/s. Equal AIR-stage wall time to LIIF's "
        f"{liif_ck['step']} steps = {equal_wall_steps:.0f} SAIR steps -> snapshot step {wall_step}. "
        "(SAIR's earlier stages, the semantic encoder and SIR, are not counted here.)", "",
        "Paired over the same images and masks (100 images per bucket); mean difference a - b with a "
        "bootstrap 95 % interval and the Wilcoxon p-value.", "",
    ]
    for comparison, b in (("equal steps", "sair"), ("equal wall time", variant)):
        for metric in ("psnr", "ssim"):
            tab = paired_table(per_image, metric, pairs=[(b, "liif")])
            tab = tab[tab["bucket"].isin(["20-40%", "40-60%", "all"])]
            lines.append(f"## {comparison}: {b} - liif, {metric.upper()}")
            lines.append("")
            lines.append("| bucket | n | mean diff | 95 % CI | p (Wilcoxon) |")
            lines.append("|---|---|---|---|---|")
            for r in tab.itertuples():
                lines.append(f"| {r.bucket} | {r.n} | {r.mean_diff:+.4f} | [{r.ci_low:+.4f}, {r.ci_high:+.4f}] | {r.p_wilcoxon:.2g} |")
            lines.append("")
    from sairbench.io import atomic_write_text

    atomic_write_text(args.out, "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
