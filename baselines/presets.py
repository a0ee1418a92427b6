"""The implicit models of the paper: one :class:`~sairbench.preset.Preset` row each.

Registered on import (entry point ``sairbench.models``). ``create_model('liif')`` loads the shipped
``tiny`` checkpoint trained on ``synthetic-faces``; ``create_model('liif@ft6000')`` a shipped
stage; ``create_model('liif', checkpoint=path)`` any checkpoint; ``pretrained=False`` gives a
randomly initialised model of the requested ``size``. Adding a variant is adding a row.
"""

from __future__ import annotations

from sairbench.errors import SairbenchError
from sairbench.preset import Preset, preset_availability, preset_factory, register_preset  # noqa: F401  (public here too)

T1 = {"threads": 1}
HOLE = {"hole_fraction": 1.0, "lr": 3e-4, "lr_final": 1e-5}  # fine-tuning in the hole
HOLE2 = {"hole_fraction": 1.0, "lr": 2e-4, "lr_final": 1e-5}
SIR_ = {"sir_checkpoint": "{sir}"}
PHOTO = {"dataset": "photos", "image_size": 64, "hole_fraction": 0.75, "lr_final": 1e-5}
PHOTO_MODEL = {"prefill": "smooth"}  # training options; Preset.photo_options turns them into parts
LABEL_SIR = {"sir_checkpoint": "{sir@labels}"}
LABEL_CHAIN = ("`sairbench train sir --semantic-encoder labels` (a labelled dataset), then "
               "`sairbench train {name} --sir-checkpoint runs/sir/last.pt`")
# The semantic-headroom study (docs/results-headroom.md): every variant fine-tuned from the shipped
# LIIF (a semantic one starts as that LIIF: its semantic input's weights start at zero) for the same
# steps, in the hole, with the same seeds; `headroom-sK` is seed K. `headroom3k-s1`: the same schedule
# stretched to 3000 steps (liif, sair, oracle), to see how the estimate moves with training.
HEADROOM_STEPS = 1000
HEADROOM_SEEDS = (1, 2)


def headroom(tag: str = "headroom", steps: int = HEADROOM_STEPS, seeds=HEADROOM_SEEDS, **extra) -> dict[str, dict]:
    """The recipes ``{tag}-s1``, ``{tag}-s2``, ... of one variant (``extra``: its semantic stage)."""
    return {f"{tag}-s{k}": {"steps": steps, **T1, "hole_fraction": 1.0, "lr": 2e-4, "lr_final": 1e-5,
                            "seed": k, "init": "{liif}", **extra} for k in seeds}


def headroom_long(**extra) -> dict[str, dict]:
    return headroom("headroom3k", 3000, (1,), **extra)


SAM_CHAIN = ("`sairbench train sir --semantic-encoder sam` (with $SAIRBENCH_SAM_CHECKPOINT set), then "
             "`sairbench train sam-encoder --sir-checkpoint runs/sir/last.pt`")

# The recipes are how the shipped checkpoints were made (docs/checkpoints.md): the `gpu*` stages
# side by side on one GPU (bench/train_shipped.py), the `ft*` and final stages on a CPU in the hole.
PRESETS: dict[str, Preset] = {p.name: p for p in [
    Preset("liif", "app", "liif", None, "LIIF decoder on the AppEncoder, no semantics", recipes={
        "gpu1500": {"steps": 1500, **T1}, "gpu4000": {"steps": 4000, **T1},
        "ft2000": {"steps": 2000, **T1, **HOLE, "init": "{liif@gpu4000}"},
        "ft6000": {"steps": 6000, **T1, **HOLE2, "init": "{liif@ft2000}"},
        "": {"steps": 8000, **T1, **HOLE2, "init": "{liif@ft6000}"},
        # real photographs: random multi-scale crops of the photo train split (bundled + the
        # Debian corpus of `sairbench photos fetch`, via $SAIRBENCH_PHOTOS_DIR). `photos16k`: the paper's
        # model warm-started from the faces model (the first photo LIIF); `photos`: from it, with the
        # biharmonic fill of the hole as the encoder's input and resize-conv upsampling (no grid),
        # answering with the 8-fold self-ensemble (both chosen on the validation split; `photos7k`
        # is the same run stopped at 7000 steps, `photos-residual` a fine-tune of it predicting a
        # correction to the biharmonic fill, MSE loss; docs/results-photos.md).
        "photos": {"steps": 12000, **T1, **PHOTO, "lr": 3e-4, **PHOTO_MODEL, "upsample": "resize-conv",
                   "self_ensemble": 8, "init": "{liif@photos16k}"},
        "photos7k": {"steps": 12000, "stop_at": 7000, **T1, **PHOTO, "lr": 3e-4, **PHOTO_MODEL,
                     "upsample": "resize-conv", "init": "{liif@photos16k}"},
        "photos-residual": {"steps": 3000, **T1, **PHOTO, "lr": 1e-4, **PHOTO_MODEL, "upsample": "resize-conv",
                            "input_residual": True, "loss": "l2", "init": "{liif@photos7k}"},
        "photos16k": {"steps": 16000, **T1, **PHOTO, "lr": 3e-4, "init": "{liif}"}, **headroom(), **headroom_long()}),
    Preset("lte", "app", "lte", None, "LTE decoder on the AppEncoder, no semantics", recipes={
        "gpu1500": {"steps": 1500, **T1}, "": {"steps": 1200, **T1, **HOLE, "init": "{lte@gpu1500}"},
        # photographs: the photo LIIF's appearance encoder, a fresh LTE decoder (its input residual is
        # the bilinear sample of the biharmonic fill), MSE; steps and self-ensemble chosen on validation
        "photos": {"steps": 8000, **T1, **PHOTO, "lr": 3e-4, **PHOTO_MODEL, "upsample": "resize-conv", "loss": "l2",
                   "self_ensemble": 8, "init": "{liif@photos-residual}"}}),
    Preset("edsr-wo", "edsr", "liif", None, "LIIF decoder on the EDSR-baseline encoder, no semantics (Tab. 4)",
           recipes={"gpu1500": {"steps": 1500, **T1}, "": {"steps": 2500, **T1, **HOLE, "init": "{edsr-wo@gpu1500}"},
                    "photos": {"steps": 8000, **T1, **PHOTO, "lr": 3e-4, **PHOTO_MODEL, "self_ensemble": 8,
                               "init": "{edsr-wo}"}}),
    Preset("sair", "app", "liif", "sir", "SAIR: AIR (LIIF on AppEncoder + SIR embedding) over SIR", recipes={
        "gpu1500": {"steps": 1500, **T1, **SIR_}, "gpu4000": {"steps": 4000, **T1, **SIR_},
        # the gpu4000 run's snapshot at step 1600 (its schedule, stopped there): SAIR at LIIF's wall time
        "gpu4000-step1600": {"steps": 4000, "stop_at": 1600, **T1, **SIR_},
        "ft2000": {"steps": 2000, **T1, **HOLE, "init": "{sair@gpu4000}", **SIR_},
        "": {"steps": 6000, **T1, **HOLE2, "init": "{sair@ft2000}", **SIR_}, **headroom(**SIR_), **headroom_long(**SIR_)}),
    Preset("semlte", "app", "lte", "sir", "SemLTE: LTE decoder with the SIR embedding (Tab. 4)",
           recipes={"": {"steps": 1500, **T1, **SIR_}}),
    Preset("edsr-w", "edsr", "liif", "sir", "EDSR-baseline encoder with the SIR embedding (Tab. 4)",
           recipes={"": {"steps": 1500, **T1, **SIR_}}),
    Preset("sam-encoder", "app", "liif", "sir", "SAIR with SAM's image encoder as the semantic source (Tab. 6)",
           encoder="sam-encoder", how_to_train=SAM_CHAIN),
    Preset("nfs", "app", "liif", "none", "NFS ablation: masked embedding upsampled, no SIR (Tab. 6)",
           recipes={"": {"steps": 1500, **T1, **SIR_}, **headroom(**SIR_)}),
    Preset("oracle", "app", "liif", "none", "semantic headroom: AIR over the ground-truth label map everywhere "
           "(an oracle; semantic-headroom protocol only)", encoder="label-embedding",
           encoder_args={"reveal_hole": True}, semantic_stage="sir@labels",
           how_to_train=LABEL_CHAIN.format(name="oracle"), recipes={**headroom(**LABEL_SIR), **headroom_long(**LABEL_SIR)}),
    Preset("labels-sir", "app", "liif", "sir", "semantic headroom: the label map outside the hole, completed by "
           "SIR (semantic-headroom protocol only)", encoder="label-embedding", semantic_stage="sir@labels",
           how_to_train=LABEL_CHAIN.format(name="labels-sir"), recipes=headroom(**LABEL_SIR)),
    Preset("ous", None, "liif", "sir", "OUS ablation: only the SIR embedding, no appearance feature (Tab. 6)",
           recipes={"": {"steps": 1500, **T1, **SIR_}}),
]}


for _preset in PRESETS.values():
    register_preset(_preset)


SEMANTIC_PRESETS = tuple(name for name, p in PRESETS.items() if p.semantic)


def build_preset(name: str, size: str = "tiny", encoder: dict | None = None, **overrides):
    """A randomly initialised model of preset ``name`` (see :meth:`Preset.build`)."""
    if name not in PRESETS:
        raise SairbenchError(f"unknown preset '{name}'; known presets: {', '.join(PRESETS)}.")
    return PRESETS[name].build(size, encoder, **overrides)
