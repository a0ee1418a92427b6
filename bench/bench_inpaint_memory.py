"""Peak memory (RSS) of `sairbench inpaint` on a huge photo: refused above the pixel budget, tiled below it.

Writes a synthetic WIDTHxWIDTH "photo" (smooth colour fields + grain, JPEG q90) and a mask (a block
and a stroke, ~9 % holes), then runs each case as its own process and reads the child's peak
resident set size (``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`` of a fresh wrapper process,
the figure ``/usr/bin/time -v`` prints as "Maximum resident set size")::

    OMP_NUM_THREADS=1 python bench/bench_inpaint_memory.py                   # 8000x8000, every case
    OMP_NUM_THREADS=1 python bench/bench_inpaint_memory.py --cases liif-default telea-default

Cases: ``liif-default`` / ``telea-default`` (the default budget of 16 MP: refused in one line),
``liif-64M`` / ``telea-64M`` (budget raised with --max-pixels 64M: LIIF runs in tiles),
``liif-16M`` / ``telea-16M`` (a 4000x4000 photo, the largest input the default budget accepts),
``sair-1M`` (1000x1000: SAIR is not tiled, its limit is 1/16 of the budget). Prints a Markdown
table and writes JSON (``--json``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASES = {
    "liif-default": ("liif", "big", []),
    "telea-default": ("telea", "big", []),
    "liif-16M": ("liif", "16M", []),
    "telea-16M": ("telea", "16M", []),
    "sair-1M": ("sair", "1M", []),
    "telea-64M": ("telea", "big", ["--max-pixels", "64M"]),
    "liif-64M": ("liif", "big", ["--max-pixels", "64M"]),
}


def make_inputs(folder: Path, side: int) -> dict[str, tuple[Path, Path]]:
    """The photo and mask at ``side``, 4000 and 1000, written by a child process (its memory is not counted)."""
    code = f"""
import numpy as np
from PIL import Image
def write(n, img_path, mask_path):
    rng = np.random.default_rng(0)
    img = np.empty((n, n, 3), np.uint8)
    x = np.arange(n, dtype=np.float32) / n
    for r in range(0, n, 500):
        y = x[r:r + 500, None]
        rows = np.stack([128 + 100 * np.sin(6 * x + 2 * y), 128 + 90 * np.cos(5 * y) + 0 * x,
                         128 + 80 * np.sin(21 * x * y)], -1)
        rows += rng.normal(0, 8, rows.shape).astype(np.float32)
        img[r:r + 500] = np.clip(rows, 0, 255)
    Image.fromarray(img).save(img_path, quality=90)
    m = np.zeros((n, n), np.uint8)
    m[n // 4:n // 2, n // 3:n // 2] = 255
    m[3 * n // 4:3 * n // 4 + n // 100, :] = 255
    Image.fromarray(m).save(mask_path)
write({side}, r"{folder / 'big.jpg'}", r"{folder / 'big_mask.png'}")
write(4000, r"{folder / '16M.jpg'}", r"{folder / '16M_mask.png'}")
write(1000, r"{folder / '1M.jpg'}", r"{folder / '1M_mask.png'}")
"""
    names = {"big": "big", "16M": "16M", "1M": "1M"}
    if not all((folder / f"{n}.jpg").is_file() for n in names):
        subprocess.run([sys.executable, "-c", code], check=True)
    return {k: (folder / f"{n}.jpg", folder / f"{n}_mask.png") for k, n in names.items()}


def measure(cmd: list[str], timeout: float) -> dict:
    """Run ``cmd`` from a fresh wrapper process: exit code, seconds, peak RSS (GiB) and the last stderr line."""
    wrapper = (
        "import json, resource, subprocess, sys, time\n"
        "t = time.time()\n"
        f"p = subprocess.run({cmd!r}, capture_output=True, text=True, timeout={timeout})\n"
        "rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
        "err = [l for l in p.stderr.splitlines() if l.strip()]\n"
        "print(json.dumps({'rc': p.returncode, 'seconds': round(time.time() - t, 1), 'peak_rss_gib': round(rss / 2**20, 3),"
        " 'stderr_lines': len(err), 'last_line': (err or p.stdout.splitlines() or [''])[-1]}))\n"
    )
    out = subprocess.run([sys.executable, "-c", wrapper], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--side", type=int, default=8000, help="side of the huge photo (default 8000)")
    ap.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    ap.add_argument("--work", type=Path, default=None, help="folder for the photo and outputs (default: a temp folder)")
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="sairbench-mem-"))
    work.mkdir(parents=True, exist_ok=True)
    inputs = make_inputs(work, args.side)
    env_note = f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}"
    rows = []
    for case in args.cases:
        model, which, extra = CASES[case]
        img, mask = inputs[which]
        out = work / f"{case}.png"
        out.unlink(missing_ok=True)
        cmd = [sys.executable, "-m", "sairbench", "inpaint", model, str(img), str(mask), "-o", str(out), *extra]
        r = measure(cmd, args.timeout)
        r.update(case=case, command=" ".join(["sairbench", "inpaint", model, img.name, mask.name, "-o", out.name, *extra]),
                 wrote=out.is_file())
        rows.append(r)
        print(json.dumps(r), flush=True)
    print(f"\n{env_note}, photo {args.side}x{args.side}\n")
    print("| case | command | exit | wall s | peak RSS GiB | result |\n|---|---|---:|---:|---:|---|")
    for r in rows:
        result = "wrote the PNG" if r["wrote"] else f"{r['stderr_lines']} line: {r['last_line']}"
        print(f"| {r['case']} | `{r['command']}` | {r['rc']} | {r['seconds']} | {r['peak_rss_gib']} | {result} |")
    if args.json:
        args.json.write_text(json.dumps({"side": args.side, "env": env_note, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
