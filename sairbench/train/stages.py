"""Training stages: each builds its model and its loss ``loss(model, batch) -> scalar``.

* ``semantic``: the in-domain semantic encoder; cross-entropy over cosine logits on clean images.
* ``sir``: the semantic branch (frozen encoder + SIR), stage 1; SIR's embedding of the masked image
  at the query pixels is pulled toward the encoder's embedding of the clean image (1 - cosine).
* the colour stage of every registered preset: L1 on the query pixels' colours (stage 2 for the
  semantic presets, with SIR frozen unless ``joint``).

A batch is ``(image, mask, coord, cell, target, label)`` (see ``sairbench.train.batches``).
Stages that build on another read its checkpoint through the one loader
(``sairbench.checkpoint``), so sizes and encoders come from the checkpoint, never from defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn.functional as F

from sairbench.checkpoint import check_kind, load_checkpoint, load_weights, shipped_path
from sairbench.errors import SairbenchError
from sairbench.models import make
from sairbench.preset import SIR, check_size
from sairbench.train.config import TrainConfig

Loss = Callable[[torch.nn.Module, list], torch.Tensor]


@dataclass(frozen=True)
class Stage:
    """A named training stage: ``build(cfg, dataset) -> (model, loss)``, its recipe and what it needs."""

    name: str
    build: Callable[[TrainConfig, Any], tuple[torch.nn.Module, Loss]]
    description: str
    recipe: dict[str, Any]
    needs_labels: bool = False
    tagged: dict[str, dict[str, Any]] | None = None  # tag -> recipe of a shipped variant (``sir@labels``)


# Options that only some stages use; any other stage refuses them when the user sets them.
SEMANTIC_PRESETS = "the semantic presets (sair, semlte, edsr-w, nfs, ous, sam-encoder)"
STAGE_OPTIONS: dict[str, str] = {
    "semantic_encoder": "`train sir`",
    "semantic_checkpoint": "`train sir` with the in-domain encoder or its labels",
    "clip_weights": "`train sir --semantic-encoder clip` (or labels-clip) and presets built on a CLIP SIR",
    "sir_checkpoint": SEMANTIC_PRESETS, "joint": SEMANTIC_PRESETS,
    "prefill": "the colour presets", "upsample": "the colour presets", "input_residual": "the colour presets",
    "loss": "the colour presets", "self_ensemble": "the colour presets",
}
COLOUR_ONLY = tuple(k for k, who in STAGE_OPTIONS.items() if who == "the colour presets")


def refuse_unused(cfg: TrainConfig, uses: set[str]) -> None:
    """One line for the first stage-specific option the user set that ``cfg.model`` does not use."""
    for key, who in STAGE_OPTIONS.items():
        if key not in uses and cfg.given(key):
            flag = "--" + key.replace("_", "-")
            raise SairbenchError(f"{flag} does not apply to `train {cfg.model}` (only to {who}); drop {flag}.")


def _checkpoint_or_shipped(cfg: TrainConfig, key: str, stage: str) -> tuple[str, dict]:
    """(path, checkpoint) of the ``stage`` this stage builds on, read once: the one the user named,
    else the shipped one when it was trained on the dataset being trained on (a shipped checkpoint
    of other data is refused)."""
    path = getattr(cfg, key)
    if path is not None:
        return path, load_checkpoint(path)
    shipped = shipped_path(stage)
    flag = "--" + key.replace("_", "-")
    if not shipped.is_file():
        raise SairbenchError(f"no '{stage}' checkpoint: pass {flag} (from `sairbench train {stage}`) "
                             f"or ship {shipped.name}.")
    ckpt = load_checkpoint(shipped)
    trained_on = (ckpt.get("data") or {}).get("dataset")
    if trained_on != cfg.dataset:
        raise SairbenchError(f"`train {cfg.model} --dataset {cfg.dataset}` would build on the shipped {stage} stage, "
                             f"trained on '{trained_on}'; train `sairbench train {stage} --dataset {cfg.dataset}` and "
                             f"pass {flag}, or name {shipped} with {flag} to use it anyway.")
    return str(shipped), ckpt


def build_semantic(cfg: TrainConfig, dataset) -> tuple[torch.nn.Module, Loss]:
    refuse_unused(cfg, set())
    if not dataset.classes:
        raise SairbenchError(f"dataset '{cfg.dataset}' has no class labels; the semantic encoder needs a labelled dataset.")
    width = 64 if cfg.size == "tiny" else 128
    model = make({"name": "indomain-encoder", "args": {"classes": list(dataset.classes), "embed_dim": 64,
                                                       "width": width, "name": f"indomain-{cfg.dataset}"}})
    for p in model.parameters():
        p.requires_grad_(True)
    model.trainable = True

    def loss(m, batch):
        image, label = batch[0], batch[5]
        if label is None:
            raise SairbenchError(f"dataset '{cfg.dataset}' returned an image without labels.")
        return F.cross_entropy(m.logits(m(image), image.shape[-2:]), label, ignore_index=255)

    return model, loss


EXTERNAL_ENCODERS = {"clip": {"name": "clip-dense", "args": {}}, "sam": {"name": "sam-encoder", "args": {}}}
LABEL_SOURCES = ("labels", "labels-clip")  # `--semantic-encoder` values that embed the label maps
SEMANTIC_ENCODERS = ("indomain", "clip", "sam", *LABEL_SOURCES)


def _indomain_checkpoint(cfg: TrainConfig) -> tuple[str, dict]:
    """(path, checkpoint) of the in-domain encoder `train sir` builds on (``--semantic-checkpoint``)."""
    path, ckpt = _checkpoint_or_shipped(cfg, "semantic_checkpoint", "semantic")
    return path, check_kind(ckpt, path, ("indomain-encoder",))


def label_source(cfg: TrainConfig, dataset) -> tuple[dict, tuple[dict, str]]:
    """(spec, (weights, where from)) of the ``label-embedding`` source of `train sir --semantic-encoder
    labels` / ``labels-clip``: the dataset's label maps embedded with the class embeddings of the
    in-domain encoder (``--semantic-checkpoint``) or of CLIP's text tower (the class names' prompts;
    ``--clip-weights``), at that encoder's stride, so that the labels speak its space
    (``sairbench.semantic.labels``)."""
    from sairbench.semantic.labels import LabelEmbedding

    classes = list(getattr(dataset, "classes", None) or [])
    if not classes:
        raise SairbenchError(f"dataset '{cfg.dataset}' has no class labels; --semantic-encoder {cfg.semantic_encoder} "
                             "needs a labelled dataset.")
    if cfg.semantic_encoder == "labels-clip":
        encoder, path = make(EXTERNAL_ENCODERS["clip"]), "CLIP's text tower"
        table = encoder.class_embeddings(classes)
    else:
        path, ckpt = _indomain_checkpoint(cfg)
        encoder = make(ckpt["model"]["args"])
        load_weights(encoder, ckpt["model"]["sd"], path)
        if classes != list(encoder.classes):
            raise SairbenchError(f"{path}: its encoder knows {len(encoder.classes)} classes of another dataset, not the "
                                 f"{len(classes)} of '{cfg.dataset}'; pass --semantic-checkpoint an encoder of "
                                 f"`sairbench train semantic --dataset {cfg.dataset}`.")
        table = encoder.class_embeddings()
    args = {"classes": classes, "embed_dim": int(table.shape[1]), "stride": int(encoder.stride), "reveal_hole": False,
            "source": encoder.name, "name": f"labels-{cfg.dataset}"}
    labels = LabelEmbedding(**args).set_class_table(table)
    return {"name": "label-embedding", "args": args}, (labels.state_dict(), path)


def build_sir(cfg: TrainConfig, dataset) -> tuple[torch.nn.Module, Loss]:
    from sairbench.models.sir import bilinear_points

    trained = None  # (weights, file) of the in-domain encoder
    refuse_unused(cfg, {"semantic_encoder", {"indomain": "semantic_checkpoint", "labels": "semantic_checkpoint",
                                             "clip": "clip_weights", "labels-clip": "clip_weights"}.get(cfg.semantic_encoder, "")})
    if cfg.semantic_encoder in EXTERNAL_ENCODERS:  # --clip-weights or $SAIRBENCH_CLIP_WEIGHTS, $SAIRBENCH_SAM_CHECKPOINT
        enc_spec = EXTERNAL_ENCODERS[cfg.semantic_encoder]
    elif cfg.semantic_encoder == "indomain":
        path, ckpt = _indomain_checkpoint(cfg)
        enc_spec, trained = ckpt["model"]["args"], (ckpt["model"]["sd"], path)
    elif cfg.semantic_encoder in LABEL_SOURCES:
        enc_spec, trained = label_source(cfg, dataset)
    else:
        raise SairbenchError(f"unknown semantic encoder '{cfg.semantic_encoder}'; use one of {', '.join(SEMANTIC_ENCODERS)}.")
    model = make({"name": "semantic-branch",
                  "args": {"encoder": enc_spec, "filler": "sir", "sir": dict(SIR[cfg.size]), "train_sir": True}})
    if hasattr(model.encoder, "spec_args"):  # CLIP, SAM: record the encoder as built (size, weights digest)
        model.spec["args"]["encoder"] = {"name": enc_spec["name"], "args": model.encoder.spec_args()}
    if trained is not None:
        load_weights(model.encoder, *trained)

    def loss(m, batch):
        image, mask, coord, label = batch[0], batch[1], batch[2], batch[5]
        state = m.gen_feat(image * (1 - mask), mask, label)
        B, Q = coord.shape[:2]
        bidx = torch.arange(B, device=coord.device).repeat_interleave(Q)
        pred = m.query(state, coord.reshape(-1, 2), bidx)
        with torch.no_grad():
            target = bilinear_points(m.embed(image, None, label), coord.reshape(-1, 2), bidx)
        return (1 - F.cosine_similarity(pred, target, dim=-1)).mean()

    return model, loss


def build_colour(cfg: TrainConfig, dataset) -> tuple[torch.nn.Module, Loss]:
    """The colour stage of the registered preset ``cfg.model``."""
    from sairbench.registry import get_spec

    preset = get_spec(cfg.model).preset
    if preset is None:
        raise SairbenchError(f"'{cfg.model}' is not a trainable preset; train semantic, sir or an implicit preset "
                             "(see `sairbench models`).")
    photo = preset.photo_options(cfg.prefill, cfg.upsample, cfg.input_residual)  # parts of the photo models
    if not preset.semantic:
        refuse_unused(cfg, set(COLOUR_ONLY))
        model = preset.build(cfg.size, **photo)
    else:
        sir_path, sir_ckpt = _checkpoint_or_shipped(cfg, "sir_checkpoint", preset.semantic_stage)
        sir_ckpt = check_kind(sir_ckpt, sir_path, ("semantic-branch",),
                              "pass --sir-checkpoint a checkpoint of `sairbench train sir`.")
        encoder = sir_ckpt["model"]["args"]["args"]["encoder"]
        refuse_unused(cfg, {*COLOUR_ONLY, "sir_checkpoint", "joint", *(("clip_weights",) if encoder["name"] == "clip-dense" else ())})
        if preset.filler == "sir":
            cfg.inherit("size", sir_ckpt["model"].get("size"), sir_path)
        model = preset.build(cfg.size, encoder=encoder, **photo)
        sd = sir_ckpt["model"]["sd"]
        if preset.filler == "sir":
            load_weights(model.semantic, sd, sir_path)
        else:  # NFS: only the encoder (CLIP's and SAM's weights come from their own files)
            load_weights(model.semantic.encoder, {k[len("encoder."):]: v for k, v in sd.items() if k.startswith("encoder.")},
                         sir_path)
        model.semantic.set_sir_trainable(cfg.joint)

    colour_loss = F.mse_loss if cfg.loss == "l2" else F.l1_loss

    reads_labels = getattr(model, "reads_labels", False)  # the oracles: the batch's label maps too

    def loss(m, batch):
        image, mask, coord, cell, target, label = batch[:6]
        extra = {"labels": label} if reads_labels else {}
        return colour_loss(m(image, mask, coord, cell, fast=cfg.fast, **extra), target)

    return model, loss


STAGES: dict[str, Stage] = {
    "semantic": Stage("semantic", build_semantic, "in-domain semantic encoder (labelled dataset)",
                      {"steps": 1000, "threads": 1}, needs_labels=True),
    "sir": Stage("sir", build_sir, "SIR over a frozen semantic encoder (stage 1)",
                 {"steps": 1500, "threads": 1, "semantic_checkpoint": "{semantic}"},
                 # the labels outside the hole completed by SIR (the semantic-headroom study)
                 tagged={"labels": {"steps": 1500, "threads": 1, "semantic_encoder": "labels",
                                    "semantic_checkpoint": "{semantic}"}}),
}


def build_for_training(cfg: TrainConfig, dataset) -> tuple[torch.nn.Module, Loss]:
    """The model ``cfg.model`` names (a stage or a preset) and its loss."""
    check_size(cfg.size, f"training '{cfg.model}'")
    stage = STAGES.get(cfg.model)
    return stage.build(cfg, dataset) if stage is not None else build_colour(cfg, dataset)


def needs_labels(cfg: TrainConfig) -> bool:
    """Whether training ``cfg.model`` reads label maps: the semantic stage, SIR over the label maps,
    and the presets whose semantic source is the label map (the oracle)."""
    from sairbench.registry import get_spec

    if cfg.model in STAGES:
        return STAGES[cfg.model].needs_labels or (cfg.model == "sir" and cfg.semantic_encoder in LABEL_SOURCES)
    preset = get_spec(cfg.model).preset
    return preset is not None and preset.reads_labels


def recipe_of(name: str) -> dict[str, Any] | None:
    """The recorded `sairbench train` options of stage or preset ``name`` (``liif@ft6000`` for a tagged one)."""
    from sairbench.registry import get_spec, parse_name

    if name in STAGES:
        return dict(STAGES[name].recipe)
    base, tag = parse_name(name)
    if base in STAGES:
        recipe = (STAGES[base].tagged or {}).get(tag or "")
        return dict(recipe) if recipe is not None else None
    preset = get_spec(base).preset
    if preset is None:
        return None
    recipe = preset.recipes.get(tag or "")
    return dict(recipe) if recipe is not None else None
