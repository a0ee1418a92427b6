#!/usr/bin/env python
"""Pack a train_shipped run's exported weights into tars of at most ~15 MB (a transfer's per-file limit).

Usage: python bench/pack_weights.py RUN_DIR OUT_DIR   (RUN_DIR holds ckpt/ and snapshots/)
"""

import sys
import tarfile
from pathlib import Path

run, out = Path(sys.argv[1]), Path(sys.argv[2])
files = sorted((run / "ckpt").glob("*.safetensors"))
snaps = sorted((run / "snapshots").glob("*.safetensors"))
files += snaps[max(0, len(snaps) // 2 - 2):-1]  # SAIR snapshots from 30 % to 90 % of the run
packs, cur, size = [], [], 0
for f in files:
    if cur and size + f.stat().st_size > 15e6:
        packs.append(cur)
        cur, size = [], 0
    cur.append(f)
    size += f.stat().st_size
packs.append(cur)
for i, pack in enumerate(packs[:7]):
    with tarfile.open(out / f"weights{i}.tar", "w") as t:
        for f in pack:
            t.add(f, arcname=f"{f.parent.name}/{f.name}")
    print(f"weights{i}.tar:", [f.name for f in pack])
