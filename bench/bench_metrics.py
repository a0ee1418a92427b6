#!/usr/bin/env python
"""Throughput of the metric pass: PSNR, SSIM, L1 and LPIPS on N image pairs through ``score_batch``.

The pairs are ``--size`` x ``--size`` uint8 RGB: ground truths cycle over a pool of synthetic-faces
test images, predictions are the ground truth with Gaussian noise (sigma 20) inside a ~40 % irregular
hole. The metrics' cost does not depend on the content. Pairs are built batch by batch (untimed)
and each metric is timed (after one untimed warm-up call) on its own ``sairbench.metrics.score_batch(..., metrics=[m])`` call per
batch, as an evaluation would call it. ``score_batch`` computes PSNR, SSIM and L1 over the whole batch
(``psnr_batch``, ``ssim_batch``, ``l1_batch``) and LPIPS in forward passes of ``--lpips-batch`` images,
channels-last, on ``--device`` (``cuda`` runs the network on the GPU, in full float32 unless
``--lpips-tf32``).

LPIPS needs torchvision's VGG16 ImageNet weights, which sairbench never downloads. Without them the
scorer is built with ``allow_random_backbone=True``: a randomly initialised VGG16 trunk of the same
shape, so the *time* is LPIPS's time but the *values* are not LPIPS (flagged in the output). LPIPS
is slow on a CPU, so it is timed on the first ``--lpips-n`` pairs (default 32) and its time for N
pairs is projected from that rate, marked as projected; ``--lpips-n 0`` times it on all N.

Usage:
    python bench/bench_metrics.py [--n 1000] [--size 256] [--lpips-n 32] [--device cpu] [--out docs/bench_metrics.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
METRIC_ORDER = ("psnr", "ssim", "l1", "lpips")


def make_pairs(pool: np.ndarray, start: int, stop: int, hole: float, seed: int):
    """Pairs start..stop-1: gts (n, S, S, 3) uint8 from ``pool``; preds noisy inside a mask."""
    from sairbench.masks import generate_irregular_mask

    S = pool.shape[1]
    gts = pool[np.arange(start, stop) % len(pool)]
    preds = gts.copy()
    for j, i in enumerate(range(start, stop)):
        rng = np.random.default_rng([seed, i])
        m = generate_irregular_mask(rng, (S, S), hole)
        noisy = gts[j][m].astype(np.int16) + rng.normal(0, 20, size=(int(m.sum()), 3)).astype(np.int16)
        preds[j][m] = np.clip(noisy, 0, 255).astype(np.uint8)
    return preds, gts


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1000, help="image pairs (default: 1000)")
    ap.add_argument("--size", type=int, default=256, help="image side (default: 256)")
    ap.add_argument("--batch", type=int, default=100, help="pairs per score_batch call (default: 100)")
    ap.add_argument("--metrics", nargs="+", default=list(METRIC_ORDER), choices=METRIC_ORDER)
    ap.add_argument("--lpips-n", type=int, default=32,
                    help="pairs LPIPS is timed on; its time for --n is projected (default: 32; 0 = all --n)")
    ap.add_argument("--lpips-batch", type=int, default=8, help="LPIPS images per forward pass (default: 8)")
    ap.add_argument("--ssim-convention", default="skimage", choices=["skimage", "lama"])
    ap.add_argument("--pool", type=int, default=50, help="distinct ground-truth images (default: 50)")
    ap.add_argument("--device", default="cpu", help="device of the LPIPS network (default: cpu)")
    ap.add_argument("--lpips-contiguous", action="store_true", help="run LPIPS in NCHW instead of channels-last")
    ap.add_argument("--lpips-tf32", action="store_true", help="on CUDA, let LPIPS's convolutions use TF32")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's default)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="docs/bench_metrics.json", help="JSON output (default: docs/bench_metrics.json; '' = none)")
    return ap.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch
    from rich.console import Console
    from rich.table import Table

    from sairbench.data import get_dataset
    from sairbench.metrics import LPIPSScorer, score_batch

    if args.threads:
        torch.set_num_threads(args.threads)
    console = Console(width=max(120, Console().width))
    t_start = time.perf_counter()
    env = {"torch": torch.__version__, "python": platform.python_version(), "platform": platform.platform(),
           "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "device": args.device,
           "loadavg_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
           "command": "python " + " ".join([os.path.relpath(__file__, ROOT)] + sys.argv[1:]),
           "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    if args.device.startswith("cuda"):
        env["cuda_device"] = torch.cuda.get_device_name(torch.device(args.device))

    load = env["loadavg_start"][0] if env["loadavg_start"] else 0.0
    if env["torch_threads"] > 1 and load + env["torch_threads"] > (env["cpu_count"] or 1) + 0.5:
        console.print(f"[yellow]warning: load average {load:.1f} and {env['torch_threads']} torch threads on {env['cpu_count']} "
                      "CPUs: LPIPS's OpenMP threads oversubscribe the cores; consider --threads.[/yellow]")
    ds = get_dataset("synthetic-faces", split="test", size=args.size)
    pool = np.stack([ds[i % len(ds)].image for i in range(args.pool)])
    scorer = None
    if "lpips" in args.metrics:
        scorer = LPIPSScorer(device=args.device, allow_random_backbone=True, batch_size=args.lpips_batch,
                             channels_last=not args.lpips_contiguous, allow_tf32=args.lpips_tf32)
    lpips_n = args.n if args.lpips_n <= 0 else min(args.lpips_n, args.n)

    # warm-up: one untimed call per metric on one pair (imports, first-call allocation)
    wp, wg = make_pairs(pool, 0, 1, 0.4, args.seed)
    for m in args.metrics:
        score_batch(wp, wg, metrics=[m], lpips_scorer=scorer, ssim_convention=args.ssim_convention)

    secs = {m: 0.0 for m in args.metrics}
    count = {m: 0 for m in args.metrics}
    values: dict[str, list] = {m: [] for m in args.metrics}
    gen_s = 0.0
    for start in range(0, args.n, args.batch):
        stop = min(args.n, start + args.batch)
        t0 = time.perf_counter()
        preds, gts = make_pairs(pool, start, stop, 0.4, args.seed)
        gen_s += time.perf_counter() - t0
        for m in args.metrics:
            p, g = preds, gts
            if m == "lpips":
                if start >= lpips_n:
                    continue
                p, g = preds[:lpips_n - start], gts[:lpips_n - start]
            t0 = time.perf_counter()
            out = score_batch(p, g, metrics=[m], lpips_scorer=scorer, ssim_convention=args.ssim_convention)
            secs[m] += time.perf_counter() - t0
            count[m] += len(p)
            values[m].append(out[m])
        console.print(f"  pairs {stop}/{args.n}: " + ", ".join(f"{m} {secs[m]:.1f} s" for m in args.metrics))

    rows = {}
    for m in args.metrics:
        rate = count[m] / secs[m] if secs[m] > 0 else float("inf")
        v = np.concatenate(values[m]) if values[m] else np.array([])
        rows[m] = {"images": count[m], "seconds": secs[m], "images_per_s": rate, "ms_per_image": 1e3 / rate,
                   "seconds_for_n": args.n / rate, "projected": count[m] < args.n,
                   "mean_value": float(np.nanmean(v)) if v.size and not np.all(np.isnan(v)) else None}
    if scorer is not None:
        rows["lpips"]["random_backbone"] = bool(scorer.random_backbone)
        rows["lpips"]["weights"] = str(scorer.weights_path) if scorer.weights_path else None
    total_n = sum(r["seconds_for_n"] for r in rows.values())
    env["loadavg_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    env["total_s"] = time.perf_counter() - t_start

    t = Table(title=f"Metric pass, {args.n} pairs of {args.size}x{args.size} RGB uint8 (score_batch, batches of {args.batch})")
    for col in ("metric", "pairs timed", "seconds", "images/s", "ms/image", f"seconds for {args.n}", "note"):
        t.add_column(col, justify="right")
    for m, r in rows.items():
        note = []
        if m == "lpips" and r.get("random_backbone"):
            note.append("RANDOM VGG16 trunk: time only, values are not LPIPS")
        if m == "ssim":
            note.append(f"{args.ssim_convention} convention")
        t.add_row(m, str(r["images"]), f"{r['seconds']:.2f}", f"{r['images_per_s']:.1f}", f"{r['ms_per_image']:.2f}",
                  ("~" if r["projected"] else "") + f"{r['seconds_for_n']:.1f}", "; ".join(note))
    t.add_row("all", "", "", f"{args.n / total_n:.2f}", f"{1e3 * total_n / args.n:.2f}",
              ("~" if any(r["projected"] for r in rows.values()) else "") + f"{total_n:.1f}", "sum of the metrics")
    console.print(t)
    if any(r["projected"] for r in rows.values()):
        console.print(f"[dim]~ = projected for {args.n} pairs from the rate measured on the pairs timed.[/dim]")
    console.print(f"pair generation (untimed) {gen_s:.1f} s; total {env['total_s']:.0f} s; load average at end {env['loadavg_end']}")

    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"env": env, "args": vars(args), "metrics": rows,
                                   "all_seconds_for_n": total_n}, indent=1, default=str))
        console.print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
