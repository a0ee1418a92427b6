"""The training loop: open the data, build the stage's model, resume or warm-start, step, save.

Every random choice of step ``t`` (images, masks, query pixels) is drawn from a generator seeded
with ``(seed, t)`` (``sairbench.train.batches``), so a run resumed from a checkpoint at step ``t``
sees exactly the batches an uninterrupted run would, and reaches the same weights.
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings
from pathlib import Path

import torch

from sairbench.checkpoint import git_commit, load_checkpoint, load_weights, save_checkpoint, set_inference
from sairbench.checkpoint_checks import check_optimizer_fits, check_resumable
from sairbench.errors import SairbenchError
from sairbench.semantic.clip_weights import clip_weights_given
from sairbench.train.batches import step_batches
from sairbench.train.config import TrainConfig
from sairbench.train.stages import build_for_training, needs_labels


def _named_step(path: Path) -> int | None:
    """The step a snapshot's name gives (``step_000200.pt``: 200); None for last.pt."""
    digits = path.stem.removeprefix("step_")
    return int(digits) if path.stem.startswith("step_") and digits.isdigit() else None


def newest_snapshot(out: Path) -> tuple[dict, Path]:
    """The readable snapshot of the highest step among ``out``/last.pt and ``out``/step_*.pt.

    A snapshot is readable when ``load_checkpoint`` and ``check_resumable`` accept it; the step
    snapshots are read newest first (by the step in their name), and only until one is. Damaged files
    are skipped; when one of them may be newer than the snapshot taken (last.pt, or a higher step in
    its name), one warning line says so. No readable snapshot is a one-line error naming the files.
    """
    found, damaged = [], []

    def read(path: Path) -> None:
        try:
            ckpt = load_checkpoint(path)
            check_resumable(ckpt, path)
            found.append((ckpt["step"], path, ckpt))
        except SairbenchError as err:  # "<path>: <what is wrong>; <fix>." -> what is wrong
            damaged.append((path, str(err).removeprefix(f"{path}: ").split("; ")[0].rstrip(".")))

    if (out / "last.pt").is_file():
        read(out / "last.pt")
    # the step snapshots newest first, read until one at least as new as any readable one is found
    named = lambda p: -1 if _named_step(p) is None else _named_step(p)  # noqa: E731
    for path in sorted(out.glob("step_*.pt"), key=named, reverse=True):
        if found and named(path) <= max(t[0] for t in found):
            break
        if path.is_file():
            read(path)
    if not found:
        extra = (f" (unreadable: {', '.join(p.name for p, _ in damaged)}; {damaged[0][0].name}: {damaged[0][1]})"
                 if damaged else "")
        raise SairbenchError(f"{out}: no checkpoint to resume (last.pt or step_*.pt){extra}; drop --resume to start "
                             "from step 0.")
    step, path, ckpt = max(found, key=lambda t: t[0])
    newer = [(p, why) for p, why in damaged if _named_step(p) is None or _named_step(p) > step]
    if newer:
        warnings.warn(f"{', '.join(p.name for p, _ in newer)} unreadable ({newer[0][1]}); resuming from "
                      f"{path} (step {step}).", stacklevel=2)
    return ckpt, path


def load_init_weights(model, cfg: TrainConfig) -> None:
    """Warm start: ``cfg.init``'s weights into ``model``. The checkpoint holds the same model (its
    options may differ: the tensors that still fit are taken), or another preset of the same size
    with the same appearance encoder: its encoder is taken (e.g. LTE from a LIIF), and its decoder
    too when the decoders differ only by the semantic input, whose weights start at zero (SAIR from
    a LIIF starts as that LIIF: ``ImplicitInpainter.decoder_from``)."""
    init = load_checkpoint(cfg.init)
    name, size = init["model"]["name"], init["model"].get("size")
    encoder = model.spec["args"].get("appearance")
    same_encoder = encoder is not None and init["model"]["args"].get("args", {}).get("appearance") == encoder
    if size != cfg.size or (name != cfg.model and not same_encoder):
        raise SairbenchError(f"{cfg.init}: holds '{name}' ({size}), not '{cfg.model}' ({cfg.size}) nor a model with "
                             f"its appearance encoder; pass --init a checkpoint of the model being trained.")
    if name == cfg.model and init["model"]["args"] == model.spec:
        load_weights(model, init["model"]["sd"], cfg.init)
        return
    own = model.state_dict()
    if name == cfg.model:  # same preset, other options (e.g. --upsample): the tensors that still fit
        keep_own = set(getattr(model, "fresh_when_warm_started", lambda spec: ())(init["model"]["args"]))
        widened, what = {}, f"describes other options of '{cfg.model}'"
    else:  # another preset on the same encoder: the encoder, and the decoder widened when it can be
        widened = getattr(model, "decoder_from", lambda spec, sd: {})(init["model"]["args"], init["model"]["sd"])
        keep_own = {k for k in own if not k.startswith("encoder.") and k not in widened}
        what = f"holds '{name}'; its appearance encoder{' and decoder (semantic input at zero)' if widened else ''} is taken"
    fits = {k: v for k, v in {**init["model"]["sd"], **widened}.items()
            if k in own and tuple(own[k].shape) == tuple(v.shape) and k not in keep_own}
    model.load_state_dict(fits, strict=False)
    semantic = [k for k in own if k.startswith("semantic.")]  # from --sir-checkpoint, already loaded
    fresh = sorted(k for k in own if k not in fits and k not in semantic)
    print(f"init: {cfg.init} {what}; {len(fits)} of {len(own)} tensors taken from it"
          f"{f', {len(semantic)} (the semantic branch) from the SIR checkpoint' if semantic else ''}, {len(fresh)} start "
          f"fresh{' (' + ', '.join(fresh[:4]) + (', ...' if len(fresh) > 4 else '') + ')' if fresh else ''}",
          file=sys.stderr, flush=True)


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
    from sairbench.evaluate import external_weights

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

    dataset = get_dataset(cfg.dataset, split="train", size=cfg.image_size, root=cfg.data_root, seed=cfg.seed,
                          labels=needs_labels(cfg))
    steps_per_epoch = max(1, len(dataset) // cfg.schedule.batch)
    if cfg.schedule.name == "paper" and not cfg.schedule.steps:
        cfg.schedule.steps = (cfg.epochs or 200) * steps_per_epoch

    torch.manual_seed(cfg.seed)
    with clip_weights_given(cfg.clip_weights):  # --clip-weights before $SAIRBENCH_CLIP_WEIGHTS
        built, loss_fn = build_for_training(cfg, dataset)
    model = model or built
    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=cfg.schedule.lr, betas=(0.9, 0.999))
    start, wall = 0, 0.0
    history: list[dict[str, float]] = []
    if resume:
        ckpt, found = newest_snapshot(out)
        if ckpt["model"]["name"] != cfg.model or ckpt["model"].get("size") != cfg.size:
            raise SairbenchError(f"{found}: holds '{ckpt['model']['name']}' ({ckpt['model'].get('size')}), not "
                                 f"'{cfg.model}' ({cfg.size}); pick another --out or drop --resume.")
        load_weights(model, ckpt["model"]["sd"], str(found))
        check_optimizer_fits(ckpt["optimizer"], opt, found)
        try:
            opt.load_state_dict(ckpt["optimizer"])
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise SairbenchError(f"{found}: its optimizer state does not load ({type(exc).__name__}); resume from an "
                                 "earlier snapshot (step_*.pt) or start again with another --out.") from None
        start, wall, history = ckpt["step"], ckpt.get("wall_time_s", 0.0), ckpt.get("history", [])
        torch.set_rng_state(ckpt["rng"]["torch"])  # checked by check_resumable: this torch's uint8 state
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
                     "sampling": getattr(dataset, "sampling", None) or f"whole images, {dataset.fit} to the training size",
                     "masks": "sairbench.masks.sample_training_mask, seeded by (seed, step)"},
            "history": history,
            "external_weights": external_weights(model),  # CLIP/SAM files used: name, digest, override
            "provenance": {"command": " ".join(["sairbench"] + sys.argv[1:]) if sys.argv else "",
                           "commit": git_commit(), "torch": str(torch.__version__), "world_size": world,
                           "device": str(device)},
        }
        save_checkpoint(path, set_inference(payload, self_ensemble=cfg.self_ensemble))

    bar = _progress(progress and rank == 0)
    log_lines = not bar.console.is_terminal  # a log file gets one JSON line per 50 steps
    total = cfg.schedule.steps
    with bar:
        task = bar.add_task(f"train {cfg.model}", total=total, completed=start, loss=float("nan"), sps=0.0)
        t_last, loss_acc, n_acc, wait_acc, step_acc = time.perf_counter(), 0.0, 0, 0.0, 0.0
        end = total if stop_after is None else min(total, start + stop_after)
        if cfg.stop_at is not None:  # the schedule is that of `steps`; the run ends early, as if interrupted
            end = min(end, cfg.stop_at)
        batches = step_batches(dataset, cfg, start, end, rank, world)
        for step in range(start, end):
            t0 = time.perf_counter()
            lr = cfg.schedule.lr_at(step, steps_per_epoch)
            for g in opt.param_groups:
                g["lr"] = lr
            batch = [t.to(device, non_blocking=True) if t is not None else None for t in next(batches)]
            wait_acc += time.perf_counter() - t0  # waiting for data (and moving it to the device)
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
                step_acc = now - t_last
                eta = step_acc / n_acc * (end - done)
                history.append({"step": done, "loss": loss_acc / n_acc, "lr": lr, "wall_time_s": wall,
                                "data_wait": round(wait_acc / max(step_acc, 1e-9), 4), "eta_s": round(eta, 1)})
                bar.update(task, completed=done, loss=loss_acc / n_acc, sps=n_acc / max(now - t_last, 1e-9))
                if rank == 0 and log_lines:
                    print(json.dumps(history[-1]), flush=True)
                t_last, loss_acc, n_acc, wait_acc = now, 0.0, 0, 0.0
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
