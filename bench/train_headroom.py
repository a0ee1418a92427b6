#!/usr/bin/env python
"""Train (and ship) the variants of the semantic-headroom study with their recorded recipes.

Each name is trained by its recipe (``baselines/presets.py``: ``headroom()``; the label SIR stage
``sir@labels`` in ``sairbench/train/stages.py``) into ``--runs``; a stage it builds on is taken
shipped, else trained here first. Two processes with ``--threads 1`` recipes share 2 cores; give
the names that build on ``sir@labels`` to one of them. ``--ship`` exports the finished runs as the
package's shipped checkpoints (with their recipe as provenance) and refreshes docs/checkpoints.md.

Usage (how the shipped headroom checkpoints were made, docs/results-headroom.md):
    python bench/train_headroom.py --runs runs/headroom sir@labels oracle@headroom-s1 ... &
    python bench/train_headroom.py --runs runs/headroom liif@headroom-s1 sair@headroom-s1 ... &
    python bench/train_headroom.py --runs runs/headroom --ship sir@labels oracle@headroom-s1 ...
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def main(argv=None) -> int:
    from sairbench.shipped import ship, train_missing_models

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("names", nargs="+", help="variants (e.g. oracle@headroom-s1) or stages (sir@labels)")
    ap.add_argument("--runs", default="runs/headroom", help="folder of the training runs")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--ship", action="store_true", help="export the finished runs as shipped checkpoints")
    args = ap.parse_args(argv)
    runs = Path(args.runs)
    for name in args.names:
        if args.ship:
            print(f"{name}: shipped as {ship(runs / name.replace('@', '-'), name)}", flush=True)
            continue
        t0 = time.perf_counter()
        done = train_missing_models([name], device=args.device, runs_root=str(runs))
        print(f"{name}: {done.get(name, 'shipped already')} ({time.perf_counter() - t0:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
