"""The training batches: every random choice of step ``t`` is drawn from a generator seeded with
``(seed, t)``, so a resumed run sees exactly the batches of an uninterrupted one."""

from __future__ import annotations

import numpy as np
import torch

from sairbench.models.coords import cell_centre, make_cell
from sairbench.train.config import TrainConfig


def batch_for_step(dataset, step: int, cfg: TrainConfig, rank: int = 0, world: int = 1):
    """The (deterministic) training batch of ``step``; with ``world`` > 1 this rank's share.

    Returns image (b, 3, H, W) in [0, 1], mask (b, 1, H, W) 1 = hole, coord/cell (b, Q, 2),
    target (b, Q, 3) in [-1, 1].
    """
    from sairbench.masks import sample_training_mask

    B, Q = cfg.schedule.batch, cfg.queries
    rng = np.random.default_rng([cfg.seed, 1, step])
    ids = rng.integers(0, len(dataset), size=B)
    images, masks, qidx, labels = [], [], [], []
    for i in range(B):
        sample = dataset[int(ids[i])]
        img = sample.image
        H, W = img.shape[:2]
        m = sample_training_mask(rng, (H, W))
        n_hole = int(round(Q * cfg.hole_fraction)) if m.any() else 0
        hole_pix = np.flatnonzero(m.ravel())
        pick = np.concatenate([
            hole_pix[rng.integers(0, len(hole_pix), size=n_hole)] if n_hole else np.empty(0, np.int64),
            rng.integers(0, H * W, size=Q - n_hole),
        ])
        if i % world == rank:
            labels.append(sample.label)
            images.append(img)
            masks.append(m)
            qidx.append(pick)
    image = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().div_(255)
    mask = torch.from_numpy(np.stack(masks)).unsqueeze(1).float()
    b, _, H, W = image.shape
    qidx_t = torch.from_numpy(np.stack(qidx)).long()
    rows, cols = qidx_t // W, qidx_t % W
    coord = torch.stack([cell_centre(rows, H), cell_centre(cols, W)], dim=-1)
    cell = make_cell(coord, (H, W))
    flat = image.flatten(2).transpose(1, 2)  # (b, H*W, 3)
    target = torch.gather(flat, 1, qidx_t.unsqueeze(-1).expand(-1, -1, 3)) * 2 - 1
    label = torch.from_numpy(np.stack(labels)).long() if all(lb is not None for lb in labels) else None
    return image, mask, coord, cell, target, label


class StepBatches(torch.utils.data.Dataset):
    """Item ``i`` is the batch of step ``start + i`` (``batch_for_step``), for prefetching workers.

    Each step's batch depends only on ``(seed, step)``, so the number of workers changes neither
    the batches nor the trained weights.
    """

    def __init__(self, dataset, cfg: TrainConfig, start: int, end: int, rank: int = 0, world: int = 1):
        self.dataset, self.cfg, self.start, self.end, self.rank, self.world = dataset, cfg, start, end, rank, world

    def __len__(self) -> int:
        return max(0, self.end - self.start)

    def __getitem__(self, i: int):
        return batch_for_step(self.dataset, self.start + i, self.cfg, self.rank, self.world)


def step_batches(dataset, cfg: TrainConfig, start: int, end: int, rank: int = 0, world: int = 1):
    """Iterator over the batches of steps ``start..end-1``; ``cfg.workers`` > 0 prefetches them."""
    items = StepBatches(dataset, cfg, start, end, rank, world)
    from sairbench.train.config import default_workers

    workers = default_workers(cfg.device) if cfg.workers is None else cfg.workers
    if workers <= 0:
        return (items[i] for i in range(len(items)))
    return iter(torch.utils.data.DataLoader(items, batch_size=None, shuffle=False, num_workers=workers,
                                            prefetch_factor=4, pin_memory=cfg.device.startswith("cuda")))
