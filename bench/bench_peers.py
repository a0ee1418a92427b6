"""Speed and peak memory of the peer models (LaMa big-lama, CoordFill) with random weights in their
released layouts, on one image with a ~40 % irregular hole, CPU.

Every (model, size) runs in a fresh Python subprocess, so its peak memory is its own: the peak
resident set size (``resource.getrusage(RUSAGE_SELF).ru_maxrss``, the process total including
Python, torch and the weights) and its rise over the resident size just before the first
``inpaint`` call. Timing: one untimed warm-up ``model.inpaint(image, mask)``, then ``--repeats``
timed calls; the median is reported (min and max too).

    python bench/bench_peers.py --threads 1                  # 256x256 and 1024x1024, both models
    python bench/bench_peers.py --sizes 512 --models lama --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def rss_gib() -> float:
    """The current resident set size of this process, GiB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 30


def worker(model_name: str, size: int, threads: int, repeats: int, hole: float) -> dict:
    import resource

    import numpy as np
    import torch

    torch.set_num_threads(threads)
    from sairbench.masks import generate_irregular_mask
    from sairbench.registry import create_model

    torch.manual_seed(0)
    model = create_model(model_name, pretrained=False)  # the released sizes, random weights
    g = torch.Generator().manual_seed(0)
    image = torch.rand(1, 3, size, size, generator=g)
    mask = torch.from_numpy(generate_irregular_mask(np.random.default_rng(0), (size, size), hole)).float()[None, None]
    masked = image * (1 - mask)
    before = rss_gib()
    with torch.inference_mode():
        model.inpaint(masked, mask)  # warm-up
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            out = model.inpaint(masked, mask)
            times.append(time.perf_counter() - t0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20  # KiB -> GiB on Linux
    return {"model": model_name, "size": size, "threads": threads, "hole_ratio": float(mask.mean()),
            "params_m": sum(p.numel() for p in model.net.parameters()) / 1e6,
            "median_s": statistics.median(times), "min_s": min(times), "max_s": max(times), "times_s": times,
            "peak_rss_gib": peak, "rss_before_gib": before, "rise_gib": peak - before,
            "finite": bool(torch.isfinite(out).all()), "torch": torch.__version__}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--worker", nargs=2, metavar=("MODEL", "SIZE"), help=argparse.SUPPRESS)
    ap.add_argument("--models", nargs="+", default=["lama", "coordfill"])
    ap.add_argument("--sizes", nargs="+", type=int, default=[256, 1024])
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs after one warm-up (default 3)")
    ap.add_argument("--hole", type=float, default=0.4, help="target hole ratio (default 0.4)")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    if args.worker:
        print("RESULT " + json.dumps(worker(args.worker[0], int(args.worker[1]), args.threads, args.repeats, args.hole)))
        return 0
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    results = []
    for name in args.models:
        for size in args.sizes:
            cmd = [sys.executable, __file__, "--worker", name, str(size), "--threads", str(args.threads),
                   "--repeats", str(args.repeats), "--hole", str(args.hole)]
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
            line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
            if proc.returncode != 0 or not line:
                print(f"{name} {size}: failed\n{proc.stderr[-2000:]}")
                continue
            r = json.loads(line[-1][len("RESULT "):])
            r["wall_s"] = time.perf_counter() - t0
            results.append(r)
            print(f"{name} {size}x{size}: median {r['median_s']:.3f} s (min {r['min_s']:.3f}, max {r['max_s']:.3f}), "
                  f"peak RSS {r['peak_rss_gib']:.2f} GiB (rise {r['rise_gib']:.2f}), hole {r['hole_ratio']:.0%}",
                  flush=True)
    print("\n| model | params M | input | hole | median s | min-max s | peak RSS GiB | rise GiB |\n|---|---:|---|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['model']} | {r['params_m']:.1f} | {r['size']}x{r['size']} | {r['hole_ratio']:.0%} | "
              f"{r['median_s']:.2f} | {r['min_s']:.2f}-{r['max_s']:.2f} | {r['peak_rss_gib']:.2f} | {r['rise_gib']:.2f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
