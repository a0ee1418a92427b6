"""``sairbench cache build``: fill the feature cache of the frozen semantic encoders for a protocol's
pairs before a run, in the batches the run will use, so that the run reads every feature instead
of computing it (the official release precomputes CLIP features of the fixed mask set likewise)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from sairbench.cache import FEATURE_CACHE_ENV, cache_root
from sairbench.errors import SairbenchError
from sairbench.evaluate import BATCH, CHUNK, load_model_for_run, select_models


def build_feature_cache(proto, models: list[str] | None = None, checkpoints: dict[str, str] | None = None,
                        device: str = "cpu", console=None, **data_options: Any) -> dict[str, int]:
    """Encode every (image, mask) pair of ``proto`` with the semantic encoder of each requested model
    that has one; returns {encoder name: pairs encoded}. ``data_options`` as for ``open_protocol_data``."""
    from sairbench.pairs import open_protocol_data
    from sairbench.progress import progress

    if cache_root() is None:
        raise SairbenchError("caching is off ($SAIRBENCH_CACHE_DIR=off); set a cache folder to build one.")
    data = open_protocol_data(proto, labels=False, **data_options)
    names, _ = select_models(models or proto.models.names, checkpoints)
    old = os.environ.get(FEATURE_CACHE_ENV)
    os.environ[FEATURE_CACHE_ENV] = "1"
    done: dict[str, int] = {}
    try:
        for name in names:
            model = load_model_for_run(name, checkpoints)
            branch = getattr(model, "semantic", None)
            if branch is None or branch.encoder_key() in done:
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
