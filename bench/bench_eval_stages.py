#!/usr/bin/env python
"""Per-image cost of each stage of a `paper`-size evaluation at 256x256, LIIF against SAIR with
dense CLIP (random ViT-B/16 weights: the cost does not depend on the values), and a paper-size
training line with the data pipeline included.

Stages of SAIR: appearance encoder, CLIP encoder (cold, or read from the feature cache), SIR
context convolutions, SIR at the cells AIR reads, AIR queries. Each is timed on its own (median of
``--repeats`` after a warm-up); ``inpaint`` end to end is timed with every pixel queried
(``region="all"``) and with only the hole queried (``region="hole"``, what ``sairbench run`` does:
the known pixels are composited from the input anyway).

    python bench/bench_eval_stages.py --threads 1 [--repeats 3] [--out docs/bench_eval_stages.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
_WEIGHTS = tempfile.TemporaryDirectory()


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def make_inputs(size: int, hole: float, seed: int = 0):
    """A random (1, 3, size, size) image with its hole zeroed, and a seeded irregular mask (1, 1, size, size)."""
    import numpy as np

    from sairbench.masks import generate_irregular_mask

    image = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(seed))
    m = generate_irregular_mask(np.random.default_rng(seed), (size, size), hole)
    mask = torch.from_numpy(np.asarray(m, dtype=np.float32))[None, None]
    return image * (1 - mask), mask


def build_models():
    """`paper`-size LIIF, and SAIR over dense CLIP ViT-B/16 with random weights (read from a file)."""
    from sairbench.semantic.clip_dense import DenseCLIPEncoder
    from sairbench_baselines.presets import build_preset

    torch.manual_seed(0)
    path = Path(_WEIGHTS.name) / "clip-random.pt"  # kept for the whole run (the training line reads it too)
    torch.save(DenseCLIPEncoder(pretrained=None).model.state_dict(), path)
    os.environ["SAIRBENCH_CLIP_WEIGHTS"] = str(path)
    liif = build_preset("liif", "paper").eval()
    sair = build_preset("sair", "paper", encoder={"name": "clip-dense", "args": {}}).eval()
    return liif, sair


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--hole", type=float, default=0.4)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--train-steps", type=int, default=3, help="timed paper-size training steps (0 skips)")
    ap.add_argument("--train-models", nargs="+", default=["liif"], help="liif, sir (CLIP) and/or sair (CLIP)")
    ap.add_argument("--device", default="cpu", help="device of the training line (cpu, cuda)")
    ap.add_argument("--out", default="docs/bench_eval_stages.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    sys.path.insert(0, str(ROOT))

    masked, mask = make_inputs(args.size, args.hole)
    liif, sair = build_models()
    res: dict = {"size": args.size, "hole": float(mask.mean()), "threads": args.threads, "repeats": args.repeats,
                 "torch": torch.__version__}
    with torch.inference_mode():
        for region in ("all", "hole"):
            res[f"liif_inpaint_{region}_s"] = timed(lambda: liif.inpaint(masked, mask, region=region), args.repeats)
            res[f"sair_inpaint_{region}_s"] = timed(lambda: sair.inpaint(masked, mask, region=region), args.repeats)
        x = torch.cat([(masked * 2 - 1), mask], 1)
        res["sair_appearance_encoder_s"] = timed(lambda: sair.encoder(x), args.repeats)
        res["sair_clip_encoder_s"] = timed(lambda: sair.semantic.encoder(masked, mask), args.repeats)
        emb = sair.semantic.encoder(masked, mask)
        miss = torch.nn.functional.adaptive_avg_pool2d(mask, emb.shape[-2:])
        res["sair_sir_context_s"] = timed(lambda: sair.semantic.sir.gen_feat(emb, miss), args.repeats)
        state = sair.semantic.gen_feat(masked, mask)
        grid = (args.size, args.size)
        res["sair_sir_all_cells_s"] = timed(lambda: sair.semantic.precompute_cells(dict(state), grid), args.repeats)
        hole_cells = mask[:, 0] > 0.5
        res["sair_sir_hole_cells_s"] = timed(lambda: sair.semantic.precompute_cells(dict(state), grid, where=hole_cells),
                                             args.repeats)
        project = sair.decoder.extra_weight()  # what `inpaint` stores: AIR's first-layer term of each embedding
        res["sair_sir_hole_cells_projected_s"] = timed(
            lambda: sair.semantic.precompute_cells(dict(state), grid, where=hole_cells, project=project), args.repeats)
        with tempfile.TemporaryDirectory() as cache:
            os.environ["SAIRBENCH_CACHE_DIR"] = cache
            os.environ["SAIRBENCH_FEATURE_CACHE"] = "1"
            sair.semantic.embed(masked, mask)  # fills the cache
            res["sair_inpaint_hole_feature_cache_s"] = timed(lambda: sair.inpaint(masked, mask, region="hole"),
                                                             args.repeats)
            os.environ.pop("SAIRBENCH_FEATURE_CACHE")
    res["ratio_sair_over_liif_all"] = res["sair_inpaint_all_s"] / res["liif_inpaint_all_s"]
    res["ratio_sair_cached_over_liif_hole"] = res["sair_inpaint_hole_feature_cache_s"] / res["liif_inpaint_hole_s"]
    if args.train_steps:
        res["train"] = train_line(args)
    print(json.dumps(res, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(res, indent=2) + "\n")


def train_line(args) -> dict:
    """Paper-size training at 256x256 on the built-in data, data pipeline included: steps/s and
    the fraction of step time spent waiting for batches (from the training history)."""
    from sairbench.train import make_config, train

    out = {}
    for model in args.train_models:
        with tempfile.TemporaryDirectory() as tmp:
            extra = {"semantic_encoder": "clip"} if model == "sir" else {}
            if model == "sair":  # over a SIR stage trained for one step on the same CLIP file
                sir = make_config("sir", size="paper", image_size=256, steps=1, batch=4, semantic_encoder="clip",
                                  threads=args.threads, device=args.device, out=str(Path(tmp) / "sir"))
                extra = {"sir_checkpoint": str(train(sir, progress=False))}
            cfg = make_config(model, size="paper", image_size=256, steps=args.train_steps + 1, batch=4,
                              save_every=10**6, threads=args.threads, device=args.device,
                              out=str(Path(tmp) / model), **extra)
            t0 = time.perf_counter()
            path = train(cfg, progress=False)
            wall = time.perf_counter() - t0
            from sairbench.checkpoint import load_checkpoint

            hist = load_checkpoint(path)["history"]
            out[model] = {"steps": cfg.schedule.steps, "batch": 4, "wall_s": wall,
                          "steps_per_s": cfg.schedule.steps / wall, "data_wait": hist[-1].get("data_wait")}
    return out


if __name__ == "__main__":
    main()
