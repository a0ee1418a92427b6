#!/usr/bin/env python
"""Speed and memory of the implicit inpainters: plain path vs fast path, against this machine's floor.

One run measures, for each model (``paper`` size by default) on one image with a ~40 % hole:

1. inference time of ``model.inpaint(..., fast=False)`` (LIIF's plain formulation, the reference)
   and ``fast=True`` at scale 1 and at ``--scale`` x output, their ratio, peak memory, and whether
   both paths give the same output (relative error <= ``--tol``);
2. training steps/s at batch ``--train-batch`` (plain vs fast forward, L1 loss, Adam);
3. the floor: FLOPs counted (``torch.utils.flop_counter.FlopCounterMode``) for the scale-1 inference
   of each path, divided by this machine's float32 matrix-multiply rate measured in the same run;
4. peak memory for a ``--big`` x ``--big`` output from the input (fast path, chunked).

Every inference measurement runs in a fresh Python subprocess, so that its peak memory is that
process's own: on CPU the peak resident set size (``getrusage`` ``ru_maxrss``; reported both as the
process total and as the rise over the resident size just before inference), on CUDA
``torch.cuda.max_memory_allocated``.

Long measurements (the 4x and ``--big`` outputs) can be capped with ``--max-seconds``: the run goes
through ``inpaint`` unchanged, but is stopped at a query-chunk boundary once the cap is passed,
and its time is extrapolated linearly over the remaining chunks (every chunk does the same work).
Such figures are marked ``~`` in the table and ``"extrapolated": true`` in the JSON; the peak
memory of a stopped run covers the chunks it ran (the output buffer and coordinates are allocated
in full before the first chunk). ``--max-seconds 0`` measures everything in full.

Usage:
    python bench/bench_models.py [--models liif lte sair] [--size paper] [--image 256]
        [--repeats 3] [--train-steps 5] [--device cpu|cuda] [--out docs/bench_models.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULT_TAG = "BENCH_RESULT "
ROOT = Path(__file__).resolve().parents[1]

INDOMAIN_ENCODER = {"name": "indomain-encoder",
                    "args": {"classes": [str(i) for i in range(19)], "embed_dim": 64, "width": 64}}
CLIP_ENCODER = {"name": "clip-dense", "args": {"pretrained": None}}


# --------------------------------------------------------------------------------------------
# shared helpers (parent and worker)
# --------------------------------------------------------------------------------------------


def build_model(name: str, size: str, clip: bool = False):
    """The preset ``name`` at ``size`` with random weights; semantic presets get a random encoder."""
    from sairbench_baselines.presets import SEMANTIC_PRESETS, build_preset

    if name in SEMANTIC_PRESETS:
        return build_preset(name, size, encoder=CLIP_ENCODER if clip else INDOMAIN_ENCODER)
    return build_preset(name, size)


def bench_input(size: int, hole: float, seed: int = 0):
    """One synthetic-faces test image (1, 3, S, S) in [0, 1] and an irregular mask (1, 1, S, S), ratio ~``hole``."""
    import numpy as np
    import torch

    from sairbench.data import get_dataset
    from sairbench.masks import generate_irregular_mask

    img = get_dataset("synthetic-faces", split="test", size=size)[0].image
    mask = generate_irregular_mask(np.random.default_rng(seed), (size, size), hole)
    image = torch.from_numpy(img).permute(2, 0, 1).float().div(255).unsqueeze(0).contiguous()
    return image, torch.from_numpy(mask).float()[None, None]


def current_rss() -> int:
    """Resident set size of this process now, bytes (Linux /proc; 0 where unavailable)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def max_rss() -> int:
    """Peak resident set size of this process so far, bytes (``ru_maxrss`` is KiB on Linux, bytes on macOS)."""
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r if sys.platform == "darwin" else r * 1024


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


# --------------------------------------------------------------------------------------------
# worker: one inference measurement in its own process
# --------------------------------------------------------------------------------------------


class _Stop(Exception):
    """Raised from the query wrapper to stop a capped run at a chunk boundary."""


def inference_worker(spec: dict) -> dict:
    import numpy as np
    import torch

    from sairbench.models.implicit import DEFAULT_CHUNK

    if spec.get("threads"):
        torch.set_num_threads(int(spec["threads"]))
    device = spec["device"]
    torch.manual_seed(spec["seed"])  # the same weights in every worker
    model = build_model(spec["model"], spec["size"], spec["clip"]).to(device).eval()
    image, mask = bench_input(spec["image"], spec["hole"])
    image, mask = image.to(device), mask.to(device)
    if spec.get("channels_last"):
        model.to(memory_format=torch.channels_last)
        image, mask = (x.contiguous(memory_format=torch.channels_last) for x in (image, mask))
    out_h = out_w = spec["out"]
    chunk = spec["chunk"] or DEFAULT_CHUNK
    per_pass = max(1, chunk // image.shape[0])
    n_queries = out_h * out_w
    n_chunks = math.ceil(n_queries / per_pass)
    keep = min(n_queries, spec["compare_queries"]) if spec.get("save") else 0

    # Wrap query_rgb (inpaint's per-chunk call) to time chunks, keep the first raw outputs for the
    # plain/fast comparison, and stop a capped run at a chunk boundary. inpaint itself is unchanged.
    orig = model.query_rgb
    rec: dict = {"chunk_t": [], "outs": [], "kept": 0, "deadline": None}

    def wrapped(state, coord, cell, fast=True):
        t0 = time.perf_counter()
        out = orig(state, coord, cell, fast=fast)
        sync(device)
        rec["chunk_t"].append(time.perf_counter() - t0)
        if rec["kept"] < keep:
            take = min(out.shape[1], keep - rec["kept"])
            rec["outs"].append(out[:, :take].detach().float().cpu().clone())
            rec["kept"] += take
        if rec["deadline"] is not None and time.perf_counter() > rec["deadline"] and len(rec["chunk_t"]) < n_chunks:
            raise _Stop
        return out

    model.query_rgb = wrapped
    fast = spec["fast"]

    def run_once(deadline=None):
        rec["chunk_t"], rec["deadline"] = [], deadline
        sync(device)
        t0 = time.perf_counter()
        try:
            model.inpaint(image, mask, size=(out_h, out_w), chunk=chunk, fast=fast,
                          precision=spec.get("precision", "fp32"))
            stopped = False
        except _Stop:
            stopped = True
        sync(device)
        return time.perf_counter() - t0, stopped, list(rec["chunk_t"])

    import gc

    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    rss_before, maxrss_before = current_rss(), max_rss()
    res: dict = {"n_queries": n_queries, "n_chunks": n_chunks, "chunk": chunk, "threads": torch.get_num_threads(),
                 "hole_ratio": float(mask.mean())}

    if spec["count_flops"]:  # doubles as the warm-up run; not timed
        from torch.utils.flop_counter import FlopCounterMode

        fc = FlopCounterMode(display=False)
        with fc:
            t, stopped, _ = run_once()
        res["flops"] = int(fc.get_total_flops())
        counts = fc.get_flop_counts()
        enc = type(model.encoder).__name__ if model.encoder is not None else None
        res["flops_encoder"] = int(sum(counts.get(enc, {}).values())) if enc else 0
        res["flops_by_op"] = {str(k): int(v) for k, v in counts.get("Global", {}).items()}
        res["flop_counted_run_s"] = t
    elif spec["warmup"]:
        run_once()

    times, extrapolated, chunks_done = [], False, n_chunks
    cap = spec["max_seconds"] or None
    for _ in range(spec["repeats"]):
        rec["outs"], rec["kept"] = [], 0
        t0 = time.perf_counter()
        t, stopped, chunk_t = run_once(deadline=(t0 + cap) if cap else None)
        if stopped:  # linear extrapolation over the chunks not run (warm chunks: the first may be cold)
            chunks_done = len(chunk_t)
            per_chunk = statistics.fmean(chunk_t[1:]) if chunks_done > 1 else chunk_t[0]
            t = t + per_chunk * (n_chunks - chunks_done)
            extrapolated = True
            times.append(t)
            break
        times.append(t)
    res.update(times=times, extrapolated=extrapolated, chunks_done=chunks_done,
               rss_before=rss_before, maxrss_before=maxrss_before, maxrss=max_rss())
    res["peak_delta"] = res["maxrss"] - rss_before
    if device.startswith("cuda"):
        res["cuda_peak"] = int(torch.cuda.max_memory_allocated())
    if spec.get("save") and rec["outs"]:
        np.save(spec["save"], torch.cat(rec["outs"], dim=1).numpy())
        res["saved_queries"] = rec["kept"]
    return res


# --------------------------------------------------------------------------------------------
# parent: orchestration
# --------------------------------------------------------------------------------------------


def run_worker(spec: dict, timeout: float) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_TAG):
            return json.loads(line[len(RESULT_TAG):])
    return {"error": f"worker exited {proc.returncode}: {proc.stderr.strip()[-2000:]}"}


def matmul_rate(n: int, repeats: int, device: str) -> dict:
    """float32 n x n @ n x n on ``device``: GFLOP/s (2 n^3 per product), best and median of ``repeats``."""
    import torch

    g = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=g).to(device)
    b = torch.randn(n, n, generator=g).to(device)
    torch.mm(a, b)
    sync(device)
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b)
        sync(device)
        rates.append(2 * n ** 3 / (time.perf_counter() - t0) / 1e9)
    return {"n": n, "repeats": repeats, "gflops_best": max(rates), "gflops_median": statistics.median(rates),
            "gflops_all": rates}


def train_rate(name: str, size: str, steps: int, batch: int, fast: bool, clip: bool, device: str,
               batches: list) -> dict:
    """Training steps/s of ``name`` at ``size``: forward (plain or fast) + L1 + backward + Adam step.

    One untimed warm-up step on batch 0, then ``steps`` timed steps on batches 1..steps (pre-built, so
    data generation is not timed).
    """
    import torch
    import torch.nn.functional as F

    torch.manual_seed(0)
    model = build_model(name, size, clip).to(device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=1e-4, betas=(0.9, 0.999))
    losses, times = [], []
    for i, (image, mask, coord, cell, target) in enumerate(batches[:steps + 1]):
        image, mask, coord, cell, target = (x.to(device) for x in (image, mask, coord, cell, target))
        sync(device)
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = F.l1_loss(model(image, mask, coord, cell, fast=fast), target)
        loss.backward()
        opt.step()
        sync(device)
        if i > 0:
            times.append(time.perf_counter() - t0)
        losses.append(float(loss.detach()))
    return {"steps": len(times), "batch": batch, "total_s": sum(times), "steps_per_s": len(times) / sum(times),
            "step_times": times, "first_loss": losses[0], "trainable_params": sum(p.numel() for p in params)}


def compare(plain_path: str, fast_path: str) -> dict:
    import numpy as np

    p, f = np.load(plain_path).astype(np.float64), np.load(fast_path).astype(np.float64)
    n = min(p.shape[1], f.shape[1])
    p, f = p[:, :n], f[:, :n]
    diff = np.abs(p - f)
    return {"queries_compared": int(n), "max_abs": float(diff.max()),
            "rel_max": float(diff.max() / max(np.abs(p).max(), 1e-12)),
            "rel_l2": float(np.linalg.norm(p - f) / max(np.linalg.norm(p), 1e-12))}


def fmt_s(r: dict | None) -> str:
    if not r or "error" in r:
        return "ERR"
    t = statistics.median(r["times"])
    return ("~" if r["extrapolated"] else "") + f"{t:.2f}"


def med(r: dict | None) -> float | None:
    return statistics.median(r["times"]) if r and "times" in r else None


def mem_of(r: dict | None, device: str) -> int | None:
    if not r or "error" in r:
        return None
    return r.get("cuda_peak") if device.startswith("cuda") else r["maxrss"]


def gib(x: int | None) -> str:
    return "-" if x is None else f"{x / 2 ** 30:.2f}"


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--models", nargs="+", default=["liif", "lte", "sair"], help="presets to time (default: liif lte sair)")
    ap.add_argument("--size", default="paper", choices=["tiny", "paper"], help="preset size for inference (default: paper)")
    ap.add_argument("--image", type=int, default=256, help="input side in pixels (default: 256)")
    ap.add_argument("--hole", type=float, default=0.4, help="target hole ratio of the mask (default: 0.4)")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs at scale 1, after one warm-up (default: 3)")
    ap.add_argument("--scale", type=int, default=4, help="upscale factor of the second measurement (default: 4)")
    ap.add_argument("--repeats-scaled", type=int, default=1, help="timed runs at --scale, no warm-up (default: 1)")
    ap.add_argument("--models-scaled", nargs="+", default=None,
                    help="presets to time at --scale (default: the --models)")
    ap.add_argument("--big", type=int, default=2048, help="output side of the memory measurement (default: 2048; 0 skips)")
    ap.add_argument("--big-models", nargs="+", default=["liif", "sair"], help="presets of the --big measurement")
    ap.add_argument("--max-seconds", type=float, default=20.0,
                    help="cap per scaled/big run: stop at a chunk boundary and extrapolate the rest "
                         "(marked ~; default: 20; 0 = always run in full)")
    ap.add_argument("--chunk", type=int, default=0, help="queries per chunk for inpaint (default: the library's)")
    ap.add_argument("--tol", type=float, default=1e-4, help="relative tolerance of fast vs plain (default: 1e-4)")
    ap.add_argument("--train-steps", type=int, default=5, help="timed training steps per path (default: 5; 0 skips)")
    ap.add_argument("--train-sizes", nargs="+", default=["tiny"], choices=["tiny", "paper"],
                    help="preset sizes for the training measurement (default: tiny)")
    ap.add_argument("--train-models", nargs="+", default=None, help="presets to train (default: the --models)")
    ap.add_argument("--train-batch", type=int, default=16, help="training batch (default: 16)")
    ap.add_argument("--train-image", type=int, default=64, help="training image side (default: 64)")
    ap.add_argument("--mm-size", type=int, default=2048, help="side of the matmul timing the floor uses (default: 2048)")
    ap.add_argument("--mm-repeats", type=int, default=5, help="timed matmuls (default: 5)")
    ap.add_argument("--clip", action="store_true",
                    help="time SAIR on a random CLIP ViT-B/16 (open_clip, no weights) instead of the in-domain encoder; slow on CPU")
    ap.add_argument("--device", default="cpu", help="cpu or cuda[:i] (default: cpu)")
    ap.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "bf16"],
                    help="inpaint autocast precision of both paths (default: fp32; fp16 is for GPUs; raise --tol)")
    ap.add_argument("--channels-last", action="store_true", help="model weights and input in channels-last memory format")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's default)")
    ap.add_argument("--worker-timeout", type=float, default=3600, help="seconds before a measurement is abandoned")
    ap.add_argument("--out", default="docs/bench_models.json", help="JSON output (default: docs/bench_models.json; '' = none)")
    return ap.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        res = inference_worker(json.loads(args.worker))
        print(RESULT_TAG + json.dumps(res), flush=True)
        return 0

    import torch
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(150, Console().width))
    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device
    if device.startswith("cuda") and not torch.cuda.is_available():
        console.print("[red]--device cuda asked for but CUDA is not available[/red]")
        return 2
    t_start = time.perf_counter()
    env = {
        "torch": torch.__version__, "python": platform.python_version(), "platform": platform.platform(),
        "processor": cpu_model(), "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(), "device": device,
        "device_name": torch.cuda.get_device_name(device) if device.startswith("cuda") else "cpu",
        "loadavg_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "command": "python " + " ".join([os.path.relpath(__file__, ROOT)] + sys.argv[1:]),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    load = env["loadavg_start"][0] if env["loadavg_start"] else 0.0
    if device == "cpu" and env["torch_threads"] > 1 and load + env["torch_threads"] > (env["cpu_count"] or 1) + 0.5:
        console.print(f"[yellow]warning: load average {load:.1f} before start and {env['torch_threads']} torch threads on "
                      f"{env['cpu_count']} CPUs: with other busy processes, OpenMP threads oversubscribe the cores and "
                      "times can swing several-fold; consider --threads (fewer threads).[/yellow]")
    sem_encoder = "clip-dense ViT-B/16 (random weights)" if args.clip else "indomain-encoder (random weights, 64-d, width 64)"
    console.print(f"[bold]sairbench model benchmark[/bold]  torch {env['torch']}, {env['cpu_count']} CPUs, "
                  f"{env['torch_threads']} threads, device {env['device_name']}, load {env['loadavg_start']}")

    results: dict = {"env": env, "args": vars(args), "semantic_encoder": sem_encoder}
    console.print(f"matmul rate: {args.mm_size}x{args.mm_size} float32 ...")
    mm = matmul_rate(args.mm_size, args.mm_repeats, device)
    results["matmul"] = mm
    console.print(f"  best {mm['gflops_best']:.1f} GFLOP/s, median {mm['gflops_median']:.1f} GFLOP/s")

    tmp = tempfile.mkdtemp(prefix="sairbench-bench-")
    base = {"size": args.size, "image": args.image, "hole": args.hole, "clip": args.clip, "device": device,
            "threads": args.threads or torch.get_num_threads(), "seed": 0, "chunk": args.chunk,
            "precision": args.precision, "channels_last": args.channels_last,
            "compare_queries": 2 * 65536}
    scaled_models = args.models_scaled if args.models_scaled is not None else args.models

    infer: dict = {}
    for name in args.models:
        infer[name] = {}
        plan = [(1, args.repeats)] + ([(args.scale, args.repeats_scaled)] if name in scaled_models and args.scale > 1 else [])
        for scale, repeats in plan:
            row: dict = {}
            for path in ("plain", "fast"):
                spec = {**base, "model": name, "fast": path == "fast", "out": args.image * scale,
                        "repeats": repeats, "count_flops": scale == 1, "warmup": scale == 1 and repeats > 1,
                        "max_seconds": 0 if scale == 1 else args.max_seconds,
                        "save": os.path.join(tmp, f"{name}-{scale}-{path}.npy")}
                t0 = time.perf_counter()
                r = run_worker(spec, args.worker_timeout)
                r["wall_s"] = time.perf_counter() - t0
                row[path] = r
                console.print(f"  {name:6s} x{scale} {path:5s}: {fmt_s(r)} s"
                              + (f"  ({r['error'][:300]})" if "error" in r else
                                 f"  peak {gib(mem_of(r, device))} GiB  [{r['chunks_done']}/{r['n_chunks']} chunks, wall {r['wall_s']:.0f} s]"))
            if "error" not in row["plain"] and "error" not in row["fast"]:
                row["equal"] = compare(os.path.join(tmp, f"{name}-{scale}-plain.npy"), os.path.join(tmp, f"{name}-{scale}-fast.npy"))
                row["equal"]["ok"] = row["equal"]["rel_max"] <= args.tol
                row["speedup"] = med(row["plain"]) / med(row["fast"])
                console.print(f"  {name:6s} x{scale} fast/plain speed-up {row['speedup']:.2f}x; "
                              f"max |fast - plain| / max |plain| = {row['equal']['rel_max']:.2e} over "
                              f"{row['equal']['queries_compared']} queries -> {'OK' if row['equal']['ok'] else 'MISMATCH'}")
            infer[name][f"x{scale}"] = row
    results["inference"] = infer

    # the floor at scale 1: counted FLOPs / measured matmul rate
    floor: dict = {}
    for name, rows in infer.items():
        row = rows.get("x1", {})
        p, f = row.get("plain", {}), row.get("fast", {})
        if "flops" not in p or "flops" not in f:
            continue
        rate = mm["gflops_best"] * 1e9
        floor[name] = {"gflop_plain": p["flops"] / 1e9, "gflop_fast": f["flops"] / 1e9,
                       "gflop_encoder": f["flops_encoder"] / 1e9,
                       "floor_s": f["flops"] / rate, "floor_plain_s": p["flops"] / rate,
                       "fast_s": med(f), "plain_s": med(p),
                       "fast_over_floor": med(f) / (f["flops"] / rate),
                       "plain_over_plain_floor": med(p) / (p["flops"] / rate)}
    results["floor"] = floor

    big: dict = {}
    if args.big:
        for name in args.big_models:
            spec = {**base, "model": name, "fast": True, "out": args.big, "repeats": 1, "count_flops": False,
                    "warmup": False, "max_seconds": args.max_seconds, "save": None}
            t0 = time.perf_counter()
            r = run_worker(spec, args.worker_timeout)
            r["wall_s"] = time.perf_counter() - t0
            big[name] = r
            console.print(f"  {name:6s} {args.big}x{args.big} fast: {fmt_s(r)} s"
                          + (f"  ({r['error'][:300]})" if "error" in r else
                             f"  peak {gib(mem_of(r, device))} GiB  [{r['chunks_done']}/{r['n_chunks']} chunks]"))
    results["big"] = big

    train: dict = {}
    if args.train_steps > 0:
        from sairbench.data import get_dataset
        from sairbench.train import Schedule, TrainConfig, batch_for_step

        dataset = get_dataset("synthetic-faces", split="train", size=args.train_image)
        for size in args.train_sizes:
            for name in (args.train_models or args.models):
                cfg = TrainConfig(model=name, size=size, image_size=args.train_image,
                                  schedule=Schedule.preset("tiny", batch=args.train_batch))
                batches = [batch_for_step(dataset, s, cfg)[:5] for s in range(args.train_steps + 1)]
                row = {}
                for path in ("plain", "fast"):
                    row[path] = train_rate(name, size, args.train_steps, args.train_batch, path == "fast",
                                           args.clip, device, batches)
                row["speedup"] = row["fast"]["steps_per_s"] / row["plain"]["steps_per_s"]
                row["first_loss_diff"] = abs(row["fast"]["first_loss"] - row["plain"]["first_loss"])
                train[f"{name}/{size}"] = row
                console.print(f"  train {name}/{size}: plain {row['plain']['steps_per_s']:.2f} steps/s, "
                              f"fast {row['fast']['steps_per_s']:.2f} steps/s ({row['speedup']:.2f}x)")
    results["train"] = train
    env["loadavg_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    env["total_s"] = time.perf_counter() - t_start

    # ---- tables ---------------------------------------------------------------------------
    mem_label = "peak GPU alloc GiB" if device.startswith("cuda") else "peak RSS GiB"
    t = Table(title=f"Inference, {args.size} size, {args.precision}{', channels-last' if args.channels_last else ''}, "
                    f"{args.image}x{args.image} input, hole "
                    f"{next(iter(next(iter(infer.values())).values()))['fast'].get('hole_ratio', float('nan')):.0%}"
              if infer else "Inference")
    for col in ("model", "output", "plain s", "fast s", "plain/fast", "fast==plain (rel)", f"plain {mem_label}",
                f"fast {mem_label}", "fast RSS rise GiB"):
        t.add_column(col, justify="right")
    for name, rows in infer.items():
        for key, row in rows.items():
            out = row["fast"].get("n_queries")
            side = int(math.isqrt(out)) if out else 0
            eq = row.get("equal")
            t.add_row(name, f"{side}x{side}", fmt_s(row["plain"]), fmt_s(row["fast"]),
                      f"{row['speedup']:.2f}x" if "speedup" in row else "-",
                      (f"{eq['rel_max']:.1e} {'ok' if eq['ok'] else 'FAIL'}") if eq else "-",
                      gib(mem_of(row["plain"], device)), gib(mem_of(row["fast"], device)),
                      gib(row["fast"].get("peak_delta")))
    console.print(t)

    if floor:
        t = Table(title=f"Floor at scale 1: counted FLOPs / {mm['gflops_best']:.1f} GFLOP/s "
                        f"(best of {args.mm_repeats} {args.mm_size}^2 float32 matmuls)")
        for col in ("model", "GFLOP plain", "GFLOP fast", "of which AppEncoder", "floor s (fast FLOPs)",
                    "fast s", "fast/floor", "plain s", "plain/plain-floor"):
            t.add_column(col, justify="right")
        for name, f in floor.items():
            t.add_row(name, f"{f['gflop_plain']:.1f}", f"{f['gflop_fast']:.1f}", f"{f['gflop_encoder']:.1f}",
                      f"{f['floor_s']:.2f}", f"{f['fast_s']:.2f}", f"{f['fast_over_floor']:.2f}x",
                      f"{f['plain_s']:.2f}", f"{f['plain_over_plain_floor']:.2f}x")
        console.print(t)

    if big:
        t = Table(title=f"{args.big}x{args.big} output from {args.image}x{args.image}, fast path, chunked")
        for col in ("model", "time s", "chunks run", mem_label, "rise over pre-inference GiB"):
            t.add_column(col, justify="right")
        for name, r in big.items():
            if "error" in r:
                t.add_row(name, "ERR", "-", "-", "-")
                continue
            t.add_row(name, fmt_s(r), f"{r['chunks_done']}/{r['n_chunks']}", gib(mem_of(r, device)), gib(r["peak_delta"]))
        console.print(t)

    if train:
        t = Table(title=f"Training, batch {args.train_batch}, {args.train_image}x{args.train_image}, "
                        f"1024 queries/image, L1 + Adam ({args.train_steps} timed steps after 1 warm-up)")
        for col in ("model/size", "plain steps/s", "fast steps/s", "fast/plain", "|loss fast - plain| step 0"):
            t.add_column(col, justify="right")
        for key, row in train.items():
            t.add_row(key, f"{row['plain']['steps_per_s']:.3f}", f"{row['fast']['steps_per_s']:.3f}",
                      f"{row['speedup']:.2f}x", f"{row['first_loss_diff']:.1e}")
        console.print(t)

    notes = []
    if any(r.get("extrapolated") for rows in infer.values() for row in rows.values()
           for r in (row.get("plain", {}), row.get("fast", {}))) or any(r.get("extrapolated") for r in big.values()):
        notes.append(f"~ = stopped after --max-seconds {args.max_seconds:g} at a chunk boundary and extrapolated "
                     "linearly over the remaining chunks; peak memory then covers the chunks run.")
    if any(n in ("sair", "semlte", "edsr-w", "nfs", "ous", "sam-encoder") for n in args.models):
        notes.append(f"semantic presets use {sem_encoder}.")
    for n in notes:
        console.print(f"[dim]{n}[/dim]")
    results["notes"] = notes
    console.print(f"total {env['total_s']:.0f} s; load average at end {env['loadavg_end']}")

    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=1, default=str))
        console.print(f"wrote {out}")
    for p in Path(tmp).glob("*.npy"):
        p.unlink()
    os.rmdir(tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
