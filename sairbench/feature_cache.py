"""``sairbench cache build``: fill the feature cache of the frozen semantic encoders for a protocol's
pairs before a run, in the batches the run will use, so that the run reads every feature instead
of computing it (the official release precomputes CLIP features of the fixed mask set likewise)."""

from __future__ import annotations

import os
import numpy as np
import torch

from sairbench.cache import FEATURE_CACHE_ENV, cache_root
from sairbench.errors import SairbenchError
from sairbench.evaluate import BATCH, CHUNK, load_model_for_run, select_models


CACHE_HONOURS = frozenset({"dataset", "data_root", "model", "checkpoint", "limit", "size", "per_bucket", "fit",
                           "mask_dir"})


def semantic_branches(opts):
    """(name, semantic branch) of every requested model that has one; the SIR stage for a sir-miou protocol."""
    if opts.proto.kind == "sir-miou":
        from sairbench.probe import load_semantic_branch

        yield "sir", load_semantic_branch(opts.checkpoints)[0]
        return
    names, _ = select_models(opts.models, opts.checkpoints)
    for name in names:
        branch = getattr(load_model_for_run(name, opts.checkpoints), "semantic", None)
        if branch is not None:
            yield name, branch


def build_feature_cache(opts, console=None) -> dict[str, int]:
    """Encode every (image, mask) pair of the job ``opts`` (resolved ``RunOptions``: the same
    options as the run that will read them) with the semantic encoder of each requested model that
    has one; returns {encoder key: pairs encoded}."""
    from sairbench.pairs import open_protocol_data
    from sairbench.progress import progress

    opts.refuse_unhonoured(CACHE_HONOURS, "`sairbench cache build`", "it fills the feature cache only")
    if cache_root() is None:
        raise SairbenchError("caching is off ($SAIRBENCH_CACHE_DIR=off); set a cache folder to build one.")
    data = open_protocol_data(opts.proto, mask_dir=opts.mask_dir, labels=False, ds_cfg=opts.ds_cfg)
    device = opts.device
    old = os.environ.get(FEATURE_CACHE_ENV)
    os.environ[FEATURE_CACHE_ENV] = "1"
    done: dict[str, int] = {}
    try:
        for name, branch in semantic_branches(opts):
            if branch.encoder_key() in done:
                continue
            branch.to(torch.device(device))
            with progress(len(data.pairs), f"cache {name}: {branch.encoder_name}", "pairs", console) as bar:
                for c in range(0, len(data.pairs), CHUNK):  # the run's chunks and batches
                    chunk = data.pairs[c:c + CHUNK]
                    for s in range(0, len(chunk), BATCH):
                        batch = chunk[s:s + BATCH]
                        gt = np.stack([data.dataset[p.image_index].image for p in batch])
                        m = np.stack([data.masks[p.mask_index].mask for p in batch])
                        image = torch.from_numpy(gt).permute(0, 3, 1, 2).float().div(255).to(device)
                        mask = torch.from_numpy(m).unsqueeze(1).float().to(device)
                        with torch.inference_mode():
                            branch.embed(image * (1 - mask), mask)
                        bar.advance(len(batch))
            done[branch.encoder_key()] = len(data.pairs)
    finally:
        if old is None:
            os.environ.pop(FEATURE_CACHE_ENV, None)
        else:
            os.environ[FEATURE_CACHE_ENV] = old
    return done
