#!/usr/bin/env python
"""Retrain the shipped appearance models concurrently on one device, within a wall-time budget.

All models get the same number of steps (the paper compares at equal steps). That number comes
from a calibration: every model trains ``--calib-steps`` steps at once, as in the real run, and
the slowest model's rate times the budget (with a safety margin), rounded down to a multiple of
500, is the step count. The trainings are then ordinary ``sairbench train`` commands, run side by
side, so each checkpoint records its own command, seed and device. The frozen stages (semantic
encoder, SIR) are the shipped ones. SAIR also keeps snapshots for the equal-wall-time comparison.

Each run is exported as ``OUT/ckpt/<name>-tiny-synthetic-faces.safetensors`` with its provenance;
``python -m sairbench.shipped`` (or copying the files into ``sairbench/checkpoints/``) ships them.

Usage (the GPU session of docs/checkpoints.md):
    python bench/train_shipped.py --device cuda --budget-s 330 --workers 2 --out runs/gpu
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = ["liif", "lte", "edsr-wo", "sair", "semlte", "edsr-w", "nfs", "ous"]


def train_command(name: str, steps: int, out: Path, args, keep_every: int | None = None) -> list[str]:
    from sairbench.shipped import depends

    cmd = [sys.executable, "-m", "sairbench", "train", name, "--steps", str(steps), "--threads", "1", "--workers", str(args.workers),
           "--device", args.device, "--out", str(out), "--save-every", str(args.save_every)]
    if args.no_fast:
        cmd.append("--no-fast")
    if "sir" in depends(name):
        from sairbench.checkpoint import shipped_path

        cmd += ["--sir-checkpoint", str(shipped_path("sir").relative_to(ROOT))]
    if keep_every:
        cmd += ["--keep-every", str(keep_every)]
    return cmd


def launch(cmds: dict[str, list[str]], log_dir: Path) -> dict[str, subprocess.Popen]:
    log_dir.mkdir(parents=True, exist_ok=True)
    procs = {}
    for name, cmd in cmds.items():
        log = open(log_dir / f"{name}.log", "w")
        procs[name] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    return procs


def wait(procs: dict[str, subprocess.Popen], deadline: float) -> dict[str, int | None]:
    """Exit codes; processes still running at ``deadline`` are terminated (code None)."""
    codes: dict[str, int | None] = {}
    while len(codes) < len(procs) and time.time() < deadline:
        for name, p in procs.items():
            if name not in codes and p.poll() is not None:
                codes[name] = p.returncode
        time.sleep(1)
    for name, p in procs.items():
        if name not in codes:
            p.terminate()
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
            codes[name] = None
    return codes


def step_rate(run_dir: Path) -> float:
    """Steps per second of the run in ``run_dir``, after its first logged step (warm-up excluded)."""
    from sairbench.checkpoint import load_checkpoint

    ckpt = load_checkpoint(run_dir / "last.pt")
    hist = ckpt.get("history") or []
    if len(hist) >= 2:
        return (hist[-1]["step"] - hist[0]["step"]) / max(hist[-1]["wall_time_s"] - hist[0]["wall_time_s"], 1e-9)
    return ckpt["step"] / max(ckpt["wall_time_s"], 1e-9)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=MODELS)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--workers", type=int, default=2, help="data-loading processes per training")
    ap.add_argument("--budget-s", type=float, default=330, help="wall seconds for the real trainings")
    ap.add_argument("--calib-steps", type=int, default=150, help="calibration steps (rate measured after step 50)")
    ap.add_argument("--no-fast", action="store_true", help="train on the plain decoder path (faster on GPUs)")
    ap.add_argument("--deadline-factor", type=float, default=1.35, help="runs still going at factor x budget are stopped")
    ap.add_argument("--margin", type=float, default=0.8, help="share of the calibrated steps to ask for")
    ap.add_argument("--steps", type=int, default=0, help="skip calibration and train this many steps")
    ap.add_argument("--snapshots", type=int, default=10, help="SAIR snapshots over the run (equal-wall comparison)")
    ap.add_argument("--save-every", type=int, default=500)
    ap.add_argument("--out", default="runs/train-shipped")
    return ap.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    out = Path(args.out).resolve()
    report: dict = {"args": vars(args), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    steps = args.steps
    if not steps:
        t0 = time.time()
        cmds = {n: train_command(n, args.calib_steps, out / "calib" / n, args) for n in args.models}
        codes = wait(launch(cmds, out / "calib" / "logs"), time.time() + 240)
        failed = [n for n, c in codes.items() if c != 0]
        if failed and args.workers:
            print(f"calibration failed for {failed} with --workers {args.workers}; retrying with 0", flush=True)
            return main([*(argv or sys.argv[1:]), "--workers", "0", "--out", str(out / "retry")])
        rates = {n: step_rate(out / "calib" / n) for n in args.models if codes[n] == 0}
        slowest = min(rates.values())
        steps = max(500, int(slowest * args.budget_s * args.margin) // 500 * 500)
        report["calibration"] = {"rates_steps_per_s": rates, "wall_s": time.time() - t0, "codes": codes}
        print(f"calibration (steps/s, all {len(rates)} concurrent): "
              + ", ".join(f"{n} {r:.1f}" for n, r in rates.items()) + f" -> {steps} steps each", flush=True)
    keep = max(1, steps // args.snapshots)
    cmds = {n: train_command(n, steps, out / n, args, keep_every=keep if n in ("sair", "liif") else None)
            for n in args.models}
    report["commands"] = {n: " ".join(c) for n, c in cmds.items()}
    t0 = time.time()
    codes = wait(launch(cmds, out / "logs"), t0 + args.budget_s * args.deadline_factor)
    report["train"] = {"steps": steps, "wall_s": time.time() - t0, "codes": codes,
                       "rates_steps_per_s": {n: step_rate(out / n) for n in args.models if (out / n / "last.pt").is_file()}}
    print(f"trained {steps} steps in {report['train']['wall_s']:.0f} s; exit codes {codes}", flush=True)

    from sairbench.checkpoint import load_checkpoint
    from sairbench.shipped import ship

    exported = {}
    for n in args.models:
        if not (out / n / "last.pt").is_file():
            continue
        step = load_checkpoint(out / n / "last.pt")["step"]
        target = out / "ckpt" / f"{n}-tiny-synthetic-faces.safetensors"
        ship(out / n, n, out=target)
        exported[n] = {"file": str(target), "step": step, "complete": step == steps}
    for snap in sorted((out / "sair").glob("step_*.pt")):
        ship(out / "sair", "sair", out=out / "snapshots" / f"sair-{snap.stem}.safetensors", checkpoint=snap.name)
    report["exported"] = exported
    (out / "report.json").write_text(json.dumps(report, indent=1, default=str))
    print(json.dumps({n: (e["step"], e["complete"]) for n, e in exported.items()}), flush=True)
    return 0 if all(e["complete"] for e in exported.values()) and len(exported) == len(args.models) else 1


if __name__ == "__main__":
    sys.exit(main())
