"""What a training run is: its learning-rate schedule and its options, with every default written once."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from sairbench.errors import SairbenchError


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
            s = cls("paper", lr=lr, lr_final=lr, steps=0 if steps is None else steps, batch=16 if batch is None else batch)
        elif name == "tiny":
            s = cls("tiny", lr=1e-3 if lr is None else lr, lr_final=1e-4 if lr_final is None else lr_final,
                    steps=6000 if steps is None else steps, batch=16 if batch is None else batch)
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
    workers: int | None = None  # data-loading processes preparing the next batches; None: default_workers(device)
    fast: bool = True
    semantic_checkpoint: str | None = None  # `sir`: the trained semantic encoder
    sir_checkpoint: str | None = None  # semantic presets: the trained semantic branch (stage 1)
    joint: bool = False  # semantic presets: also train SIR through the colour loss
    semantic_encoder: str = "indomain"  # `sir`: indomain (from semantic_checkpoint), clip or sam
    clip_weights: str | None = None  # `sir --semantic-encoder clip`: a local file or an open_clip tag (default $SAIRBENCH_CLIP_WEIGHTS)
    init: str | None = None  # start from this checkpoint's weights (same model), fresh optimizer and schedule
    prefill: str = "zero"  # hole content the appearance encoder sees: zero (paper), pull-push or smooth
    upsample: str = "transposed"  # AppEncoder upsampling: transposed (paper) or resize-conv (no grid)
    input_residual: bool = False  # LIIF decoder: predict a correction to the (prefilled) input image
    stop_at: int | None = None  # end at this step with the learning-rate schedule of `steps` (as an interrupted run)
    loss: str = "l1"  # colour loss: l1 (the paper) or l2 (mean squared error, what PSNR measures)
    self_ensemble: int = 1  # the checkpoint's inference setting (its 'inference' entry); training unchanged
    sources: dict[str, str] = field(default_factory=dict)  # option -> flag | recipe | checkpoint | default

    def given(self, key: str) -> bool:
        """Whether the user (or the recipe) set option ``key``, rather than a default."""
        return self.sources.get(key, "default") in ("flag", "recipe")

    def inherit(self, key: str, value: Any, checkpoint: str) -> None:
        """Take ``key`` from the checkpoint this stage builds on, unless the user set it; a value the
        user set that the checkpoint contradicts is one line."""
        if not self.given(key):
            setattr(self, key, value)
            self.sources[key] = "checkpoint"
        elif getattr(self, key) != value:
            flag = "--" + key.replace("_", "-")
            raise SairbenchError(f"{checkpoint}: was trained with {key} '{value}' but {flag} {getattr(self, key)} was "
                                 f"given; drop {flag} (it is taken from the checkpoint) or build on another checkpoint.")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


SCHEDULE_OPTIONS = ("schedule", "steps", "batch", "lr", "lr_final")
COLOUR_LOSSES = ("l1", "l2")


def make_config(model: str, given: set[str] | None = None, source: str = "flag", **options: Any) -> TrainConfig:
    """A TrainConfig from `sairbench train` options (CLI flags and shipped recipes alike).

    ``schedule``, ``steps``, ``batch``, ``lr`` and ``lr_final`` make the Schedule; every other
    option is a TrainConfig field. ``out`` defaults to ``runs/<model>``. ``given``: the options
    the user set (default: every one passed), recorded with ``source`` in ``sources``; the others
    may be taken from the checkpoint a stage builds on (``TrainConfig.inherit``).
    """
    from sairbench import validate

    given = set(options) if given is None else set(given)
    sources = {k: (source if k in given else "default") for k in (*options, *SCHEDULE_OPTIONS)}

    sched_kw = {k: options.pop(k) for k in SCHEDULE_OPTIONS if k in options}
    validate.positive("--steps", sched_kw.get("steps"))
    validate.positive("--batch", sched_kw.get("batch"))
    for key in ("queries", "save_every", "image_size"):
        validate.positive("--" + key.replace("_", "-"), options.get(key))
    for key in ("keep_every", "epochs", "threads", "stop_at"):
        validate.positive("--" + key.replace("_", "-"), options.get(key))
    if options.get("workers") is not None:
        validate.non_negative("--workers", options["workers"])
    validate.threads_bound("--threads", options.get("threads"))  # upper bounds, before anything is allocated
    validate.threads_bound("--workers", options.get("workers"))
    side, batch = options.get("image_size") or TrainConfig.image_size, sched_kw.get("batch") or 16
    queries = options.get("queries") or TrainConfig.queries
    validate.pixels_bound(f"--image-size {side}", side)
    validate.pixels_bound(f"--batch {batch} x --image-size {side}", side, batch, per="step")
    validate.pixels_bound(f"--batch {batch} x --queries {queries}", 1, batch * queries, per="step (query pixels)")
    for key in ("lr", "lr_final"):
        value = sched_kw.get(key)
        if value is not None and not value > 0:
            raise SairbenchError(f"--{key.replace('_', '-')} {value}: give a positive learning rate.")
    if "device" in options:
        validate.device(options["device"])
    unknown = set(options) - set(TrainConfig.__dataclass_fields__)
    if unknown:
        raise SairbenchError(f"unknown training options {sorted(unknown)}; see `sairbench train --help`.")
    hole = options.get("hole_fraction", 0.5)
    if not 0.0 <= hole <= 1.0:
        raise SairbenchError(f"--hole-fraction {hole}: give a share between 0 and 1.")
    from sairbench.preset import PREFILL_OPTIONS, UPSAMPLE_OPTIONS
    from sairbench.models.self_ensemble import check_self_ensemble

    if options.get("prefill", "zero") not in PREFILL_OPTIONS:
        raise SairbenchError(f"--prefill {options['prefill']}: use one of {', '.join(PREFILL_OPTIONS)}.")
    if options.get("loss", "l1") not in COLOUR_LOSSES:
        raise SairbenchError(f"--loss {options['loss']}: use one of {', '.join(COLOUR_LOSSES)}.")
    check_self_ensemble(options.get("self_ensemble"), "--self-ensemble")
    if options.get("upsample", "transposed") not in UPSAMPLE_OPTIONS:
        raise SairbenchError(f"--upsample {options['upsample']}: use one of {', '.join(UPSAMPLE_OPTIONS)}.")
    schedule = Schedule.preset(sched_kw.get("schedule", "tiny"), sched_kw.get("steps"), sched_kw.get("batch"),
                               lr=sched_kw.get("lr"), lr_final=sched_kw.get("lr_final"))
    options["out"] = str(options.get("out") or f"runs/{model}")
    return TrainConfig(model=model, schedule=schedule, sources=sources, **options)


def default_workers(device: str) -> int:
    """Data-loading processes by default: on a GPU, all but one of the cores this process may use
    (at most 8), so the card does not wait for batches; on a CPU none (the cores train)."""
    from sairbench.machine import usable_cores

    if not str(device).startswith("cuda"):
        return 0
    return max(0, min(8, usable_cores() - 1))
