"""Training of implicit inpainters: L1 on sampled query pixels, Adam, seeded, resumable, DDP-ready.

Every random choice of step ``t`` (images, masks, query pixels) is drawn from a generator seeded
with ``(seed, t)``, so a run resumed from a checkpoint at step ``t`` sees exactly the batches an
uninterrupted run would, and reaches the same weights.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from sairbench.checkpoint import git_commit, load_checkpoint, load_stored_weights, save_checkpoint
from sairbench.errors import SairbenchError
from sairbench.models.coords import cell_centre, make_cell


@dataclass
class Schedule:
    """Learning-rate schedule. ``paper``: 1e-4 halved every 100 epochs, batch 16, 200 epochs."""

    name: str = "tiny"
    lr: float = 1e-3
    lr_final: float = 1e-4  # tiny: exponential decay from lr to lr_final over the run
    halve_every_epochs: int = 100  # paper
    steps: int = 6000
    batch: int = 16

    @classmethod
    def preset(cls, name: str, steps: int | None = None, batch: int | None = None,
               lr: float | None = None, lr_final: float | None = None) -> "Schedule":
        """``lr``/``lr_final`` override the preset's rates (``paper`` has no final rate: it halves)."""
        if name == "paper":
            lr = 1e-4 if lr is None else lr
            s = cls("paper", lr=lr, lr_final=lr, steps=steps or 0, batch=batch or 16)
        elif name == "tiny":
            s = cls("tiny", lr=1e-3 if lr is None else lr, lr_final=1e-4 if lr_final is None else lr_final,
                    steps=steps or 6000, batch=batch or 16)
        else:
            raise SairbenchError(f"unknown schedule '{name}'; use 'tiny' or 'paper'.")
        return s

    def lr_at(self, step: int, steps_per_epoch: int) -> float:
        if self.name == "paper":
            return self.lr * 0.5 ** ((step // max(1, steps_per_epoch)) // self.halve_every_epochs)
        frac = min(1.0, step / max(1, self.steps))
        return self.lr * (self.lr_final / self.lr) ** frac


@dataclass
class TrainConfig:
    model: str = "liif"
    size: str = "tiny"
    dataset: str = "synthetic-faces"
    data_root: str | None = None
    image_size: int = 64
    schedule: Schedule = field(default_factory=Schedule)
    epochs: int | None = None  # paper schedule: 200 epochs unless steps are given
    queries: int = 1024  # query pixels per image per step
    hole_fraction: float = 0.5  # share of query pixels drawn inside the hole (rest uniform)
    seed: int = 0
    save_every: int = 500
    keep_every: int | None = None  # also keep step_<N>.pt snapshots (e.g. for equal-wall-time comparisons)
    out: str = "runs/liif"
    device: str = "cpu"
    threads: int | None = None
    workers: int = 0  # data-loading processes that prepare the next batches while the model trains
    fast: bool = True
    semantic_checkpoint: str | None = None  # `sir`: the trained semantic encoder
    sir_checkpoint: str | None = None  # semantic presets: the trained semantic branch (stage 1)
    joint: bool = False  # semantic presets: also train SIR through the colour loss
    semantic_encoder: str = "indomain"  # `sir`: indomain (from semantic_checkpoint), clip or sam
    init: str | None = None  # start from this checkpoint's weights (same model), fresh optimizer and schedule

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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
    if cfg.workers <= 0:
        return (items[i] for i in range(len(items)))
    return iter(torch.utils.data.DataLoader(items, batch_size=None, shuffle=False, num_workers=cfg.workers,
                                            prefetch_factor=4, pin_memory=cfg.device.startswith("cuda")))


def build_for_training(cfg: TrainConfig, dataset):
    """The model ``cfg.model`` names, and its loss ``fn(model, batch) -> scalar``.

    * ``semantic``: the in-domain semantic encoder; cross-entropy over cosine logits on clean images.
    * ``sir``: the semantic branch (frozen encoder + SIR), stage 1; SIR's embedding of the masked
      image at the query pixels is pulled toward the encoder's embedding of the clean image
      (1 - cosine similarity).
    * a preset: ImplicitInpainter, L1 on the query pixels' colours (stage 2 for semantic presets,
      with SIR frozen unless ``joint``).
    """
    from sairbench_baselines.presets import PRESETS, SIR, build_preset

    if cfg.model == "semantic":
        from sairbench.semantic.indomain import InDomainEncoder

        if not dataset.classes:
            raise SairbenchError(f"dataset '{cfg.dataset}' has no class labels; the semantic encoder needs a labelled dataset.")
        width = 64 if cfg.size == "tiny" else 128
        model = InDomainEncoder(classes=list(dataset.classes), embed_dim=64, width=width, name=f"indomain-{cfg.dataset}")
        model.spec = {"name": "indomain-encoder", "args": {"classes": list(dataset.classes), "embed_dim": 64,
                                                           "width": width, "name": f"indomain-{cfg.dataset}"}}
        for p in model.parameters():
            p.requires_grad_(True)
        model.trainable = True

        def loss_fn(m, batch):
            image, label = batch[0], batch[5]
            if label is None:
                raise SairbenchError(f"dataset '{cfg.dataset}' returned an image without labels.")
            return F.cross_entropy(m.logits(m(image), image.shape[-2:]), label, ignore_index=255)

        return model, loss_fn

    if cfg.model == "sir":
        from sairbench.models.sir import SemanticBranch, bilinear_points

        external = {"clip": {"name": "clip-dense", "args": {}}, "sam": {"name": "sam-encoder", "args": {}}}
        if cfg.semantic_encoder in external:  # weights from open_clip / $SAIRBENCH_CLIP_WEIGHTS, $SAIRBENCH_SAM_CHECKPOINT
            enc_spec = external[cfg.semantic_encoder]
        elif cfg.semantic_encoder == "indomain":
            enc_spec = _encoder_spec_from(cfg.semantic_checkpoint, "semantic")
        else:
            raise SairbenchError(f"unknown semantic encoder '{cfg.semantic_encoder}'; use indomain, clip or sam.")
        args = {"encoder": enc_spec, "filler": "sir", "sir": dict(SIR[cfg.size]), "train_sir": True}
        model = SemanticBranch(**args)
        if hasattr(model.encoder, "spec_args"):  # SAM: record the encoder as built (size, weights digest)
            args["encoder"] = {"name": enc_spec["name"], "args": model.encoder.spec_args()}
        model.spec = {"name": "semantic-branch", "args": args}
        if cfg.semantic_encoder == "indomain":
            _load_encoder_weights(model.encoder, cfg.semantic_checkpoint)

        def loss_fn(m, batch):
            image, mask, coord = batch[0], batch[1], batch[2]
            state = m.gen_feat(image * (1 - mask), mask)
            B, Q = coord.shape[:2]
            bidx = torch.arange(B, device=coord.device).repeat_interleave(Q)
            pred = m.query(state, coord.reshape(-1, 2), bidx)
            with torch.no_grad():
                clean = m.embed(image, None)
                target = bilinear_points(clean, coord.reshape(-1, 2), bidx)
            return (1 - F.cosine_similarity(pred, target, dim=-1)).mean()

        return model, loss_fn

    if cfg.model not in PRESETS:
        raise SairbenchError(f"unknown model '{cfg.model}' to train; use semantic, sir or one of {', '.join(PRESETS)}.")
    filler = PRESETS[cfg.model][2]
    if filler is None:
        model = build_preset(cfg.model, cfg.size)
    else:
        sir_ckpt = cfg.sir_checkpoint or _default_sir_checkpoint()
        enc_spec = _encoder_spec_from(sir_ckpt, "sir")
        model = build_preset(cfg.model, cfg.size, encoder=enc_spec)
        sd = load_checkpoint(sir_ckpt)["model"]["sd"]
        if filler == "sir":
            model.semantic.load_state_dict(sd, strict=not model.semantic.external_weights)
        else:  # NFS: only the encoder
            model.semantic.encoder.load_state_dict({k[len("encoder."):]: v for k, v in sd.items() if k.startswith("encoder.")})
        model.semantic.set_sir_trainable(cfg.joint)

    def loss_fn(m, batch):
        image, mask, coord, cell, target = batch[:5]
        return F.l1_loss(m(image, mask, coord, cell, fast=cfg.fast), target)

    return model, loss_fn


def _default_sir_checkpoint() -> str:
    from sairbench.checkpoint import shipped_path

    path = shipped_path("sir")
    if not path.is_file():
        raise SairbenchError(f"no SIR checkpoint: pass --sir-checkpoint (from `sairbench train sir`) or ship {path.name}.")
    return str(path)


def _encoder_spec_from(path: str | None, stage: str) -> dict:
    if path is None:
        from sairbench.checkpoint import shipped_path

        path = str(shipped_path(stage))
    ckpt = load_checkpoint(path)
    spec = ckpt["model"]["args"]
    return spec if spec["name"] != "semantic-branch" else spec["args"]["encoder"]


def _load_encoder_weights(encoder, path: str | None) -> None:
    if path is None:
        from sairbench.checkpoint import shipped_path

        path = str(shipped_path("semantic"))
    encoder.load_state_dict(load_checkpoint(path)["model"]["sd"])


def load_init_weights(model, cfg: TrainConfig) -> None:
    """Warm start: ``cfg.init``'s weights into ``model``; the checkpoint must hold the same model."""
    init = load_checkpoint(cfg.init)
    if init["model"]["name"] != cfg.model or init["model"].get("size") != cfg.size:
        raise SairbenchError(f"{cfg.init}: holds '{init['model']['name']}' ({init['model'].get('size')}), not "
                             f"'{cfg.model}' ({cfg.size}); pass --init a checkpoint of the model being trained.")
    missing, unexpected = load_stored_weights(model, init["model"]["sd"])
    if missing or unexpected:
        raise SairbenchError(f"{cfg.init}: its weights do not fit '{cfg.model}' ({cfg.size}) (missing {missing[:3]}, "
                             f"unexpected {unexpected[:3]}); pass a checkpoint of the same preset and size.")


def _dist_info() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    return rank, world


def train(cfg: TrainConfig, resume: bool = False, progress: bool = True, model=None,
          stop_after: int | None = None) -> Path:
    """Train ``cfg.model``; checkpoints go to ``cfg.out``/last.pt. Returns the checkpoint path.

    ``model`` replaces the preset's model (same objective); ``stop_after`` ends this invocation
    after that many steps with a checkpoint, as an interruption would (``--resume`` continues).
    """
    from sairbench.data import get_dataset
    rank, world = _dist_info()
    if world > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if cfg.device.startswith("cuda") else "gloo"
        torch.distributed.init_process_group(backend)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = torch.device(cfg.device)
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    out = Path(cfg.out)
    ckpt_path = out / "last.pt"

    dataset = get_dataset(cfg.dataset, split="train", size=cfg.image_size, root=cfg.data_root, seed=cfg.seed)
    steps_per_epoch = max(1, len(dataset) // cfg.schedule.batch)
    if cfg.schedule.name == "paper" and not cfg.schedule.steps:
        cfg.schedule.steps = (cfg.epochs or 200) * steps_per_epoch

    torch.manual_seed(cfg.seed)
    built, loss_fn = build_for_training(cfg, dataset)
    model = model or built
    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=cfg.schedule.lr, betas=(0.9, 0.999))
    start, wall = 0, 0.0
    history: list[dict[str, float]] = []
    if resume and ckpt_path.is_file():
        ckpt = load_checkpoint(ckpt_path)
        if ckpt["model"]["name"] != cfg.model or ckpt["model"]["size"] != cfg.size:
            raise SairbenchError(f"{ckpt_path}: holds '{ckpt['model']['name']}' ({ckpt['model']['size']}), not "
                                 f"'{cfg.model}' ({cfg.size}); pick another --out or drop --resume.")
        model.load_state_dict(ckpt["model"]["sd"], strict=False)
        opt.load_state_dict(ckpt["optimizer"])
        start, wall, history = ckpt["step"], ckpt.get("wall_time_s", 0.0), ckpt.get("history", [])
        torch.set_rng_state(ckpt["rng"]["torch"])
    elif not resume and ckpt_path.is_file():
        raise SairbenchError(f"{ckpt_path} exists; pass --resume to continue it or choose another --out "
                             "(nothing was overwritten).")
    elif cfg.init:
        load_init_weights(model, cfg)

    ddp_model = model
    if world > 1 and cfg.model in ("semantic", "sir"):
        raise SairbenchError(f"multi-process training covers the inpainting presets; train '{cfg.model}' in one process.")
    if world > 1:
        ddp_model = torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=False)
    model.train()

    def save(step: int, path: Path = ckpt_path) -> None:
        if rank != 0:
            return
        payload = {
            "model": {"name": cfg.model, "size": cfg.size, "args": model.spec, "sd": model.state_dict()},
            "optimizer": opt.state_dict(),
            "step": step,
            "wall_time_s": wall,
            "rng": {"torch": torch.get_rng_state()},
            "train": cfg.to_dict(),
            "data": {"dataset": cfg.dataset, "image_size": cfg.image_size, "seed": cfg.seed,
                     "masks": "sairbench.masks.sample_training_mask, seeded by (seed, step)"},
            "history": history,
            "provenance": {"command": " ".join(["sairbench"] + sys.argv[1:]) if sys.argv else "",
                           "commit": git_commit(), "torch": torch.__version__, "world_size": world,
                           "device": str(device)},
        }
        save_checkpoint(path, payload)

    bar = _progress(progress and rank == 0)
    log_lines = not bar.console.is_terminal  # a log file gets one JSON line per 50 steps
    total = cfg.schedule.steps
    with bar:
        task = bar.add_task(f"train {cfg.model}", total=total, completed=start, loss=float("nan"), sps=0.0)
        t_last, loss_acc, n_acc = time.perf_counter(), 0.0, 0
        end = total if stop_after is None else min(total, start + stop_after)
        batches = step_batches(dataset, cfg, start, end, rank, world)
        for step in range(start, end):
            t0 = time.perf_counter()
            lr = cfg.schedule.lr_at(step, steps_per_epoch)
            for g in opt.param_groups:
                g["lr"] = lr
            batch = [t.to(device, non_blocking=True) if t is not None else None for t in next(batches)]
            loss = loss_fn(ddp_model if world > 1 else model, batch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            wall += time.perf_counter() - t0
            loss_acc += loss.item()
            n_acc += 1
            done = step + 1
            if done % 50 == 0 or done == total:
                now = time.perf_counter()
                history.append({"step": done, "loss": loss_acc / n_acc, "lr": lr, "wall_time_s": wall})
                bar.update(task, completed=done, loss=loss_acc / n_acc, sps=n_acc / max(now - t_last, 1e-9))
                if rank == 0 and log_lines:
                    print(json.dumps(history[-1]), flush=True)
                t_last, loss_acc, n_acc = now, 0.0, 0
            if done % cfg.save_every == 0 or done in (total, end):
                save(done)
            if cfg.keep_every and done % cfg.keep_every == 0 and rank == 0:
                save(done, out / f"step_{done:06d}.pt")
    if world > 1:
        torch.distributed.barrier()
    if start >= total and rank == 0 and not ckpt_path.is_file():
        save(total)
    return ckpt_path


def _progress(enabled: bool):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("loss {task.fields[loss]:.4f}"), TextColumn("{task.fields[sps]:.2f} it/s"),
                    TimeRemainingColumn(), disable=not enabled, transient=False)
