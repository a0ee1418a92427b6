"""A preset: one row that composes an implicit inpainter from a few parts, at a size.

Every implicit model of the paper is ``ImplicitInpainter(appearance, decoder, semantic branch)``;
a :class:`Preset` row names the appearance encoder, the decoder and the semantic filler, says what
it needs and how its shipped checkpoints were trained (its recipes). The rows themselves live in
``sairbench_baselines.presets`` (a plugin); this module holds what every row shares: the part
sizes and the spec builder. Nothing outside a row special-cases a preset by its name.

The photo models' options (`sairbench train --prefill/--upsample/--input-residual`) are part rows
of their own, swapped into a preset's spec by :meth:`Preset.photo_options`: the appearance row
``app-resize-conv``, the decoder row ``liif-residual`` and an ``INPUT_FILL`` stage; the paper's
parts carry none of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sairbench.errors import SairbenchError

SIZES = ("tiny", "paper")

APPEARANCE = {
    "app": {"paper": {"name": "app-encoder", "args": {"widths": [64, 128, 256], "n_resblocks": 8}},
            "tiny": {"name": "app-encoder", "args": {"widths": [32, 48, 64], "n_resblocks": 2}}},
    "app-resize-conv": {"paper": {"name": "app-resize-conv", "args": {"widths": [64, 128, 256], "n_resblocks": 8}},
                        "tiny": {"name": "app-resize-conv", "args": {"widths": [32, 48, 64], "n_resblocks": 2}}},
    "edsr": {"paper": {"name": "edsr-baseline", "args": {"n_resblocks": 16, "n_feats": 64}},
             "tiny": {"name": "edsr-baseline", "args": {"n_resblocks": 3, "n_feats": 32}}},
}
APPEARANCE_DIM = {"app": {"paper": 64, "tiny": 32}, "app-resize-conv": {"paper": 64, "tiny": 32},
                  "edsr": {"paper": 64, "tiny": 32}}

DECODER = {
    "liif": {"paper": {"name": "liif-decoder", "args": {"hidden": [256, 256, 256, 256]}},
             "tiny": {"name": "liif-decoder", "args": {"hidden": [128, 128, 128]}}},
    "liif-residual": {"paper": {"name": "liif-residual", "args": {"hidden": [256, 256, 256, 256]}},
                      "tiny": {"name": "liif-residual", "args": {"hidden": [128, 128, 128]}}},
    "lte": {"paper": {"name": "lte-decoder", "args": {"hidden_dim": 256, "hidden": [256, 256, 256]}},
            "tiny": {"name": "lte-decoder", "args": {"hidden_dim": 128, "hidden": [128, 128]}}},
}

# what the encoder sees in the hole (`--prefill`; "zero", the paper's, is no stage at all)
INPUT_FILL = {"pull-push": {"name": "hole-fill", "args": {"method": "pull-push"}},
              "smooth": {"name": "hole-fill", "args": {"method": "smooth"}}}
PREFILL_OPTIONS = ("zero", *INPUT_FILL)
UPSAMPLE_OPTIONS = {"transposed": "app", "resize-conv": "app-resize-conv"}  # `--upsample` -> appearance row
RESIDUAL_DECODER = {"liif": "liif-residual"}  # `--input-residual`: decoder row -> its residual row

SIR = {"paper": {"hidden": [256, 256, 256, 256], "context_layers": 3, "context_width": 128},
       "tiny": {"hidden": [128, 128], "context_layers": 3, "context_width": 64}}


def check_size(size: str, what: str) -> None:
    if size not in SIZES:
        raise SairbenchError(f"unknown size '{size}' for {what}; use one of {', '.join(SIZES)}.")


def semantic_spec(encoder: dict, filler: str, size: str = "tiny") -> dict[str, Any]:
    """Spec of the semantic branch over semantic-encoder spec ``encoder`` with ``filler`` ("sir" or "none")."""
    return {"name": "semantic-branch", "args": {"encoder": encoder, "filler": filler,
                                                "sir": dict(SIR[size]) if filler == "sir" else None}}


def encoder_embed_dim(encoder: dict) -> int:
    """Embedding size C of a semantic-encoder spec: from its class's ``embed_dim_for`` (no weights
    loaded), else from an encoder built from the spec."""
    from sairbench.models import make, part_class

    cls = part_class(encoder["name"])
    if hasattr(cls, "embed_dim_for"):
        return int(cls.embed_dim_for(**encoder.get("args", {})))
    return int(make(encoder).embed_dim)


@dataclass(frozen=True)
class Preset:
    """One implicit model: appearance encoder + decoder (+ semantic filler) and its recipes.

    Args:
        name: registry name. appearance: key of ``APPEARANCE`` or None (no appearance feature).
        decoder: key of ``DECODER``. filler: None (no semantics), "sir" or "none" (NFS: the
            masked embedding upsampled). description: one line for `sairbench models`.
        encoder: the semantic-encoder part the model must be trained on (None: any).
        how_to_train: the commands that make a checkpoint when none is shipped.
        recipes: tag -> `sairbench train` options of the shipped checkpoints ('' = the default
            one, e.g. 'ft6000' for ``liif@ft6000``); ``{stage}`` values name the stage's checkpoint.
    """

    name: str
    appearance: str | None
    decoder: str
    filler: str | None
    description: str
    encoder: str | None = None
    how_to_train: str = ""
    recipes: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def semantic(self) -> bool:
        return self.filler is not None

    @property
    def needs(self) -> str:
        if self.encoder is not None:
            return f"a '{self.encoder}' semantic encoder's weights and a model trained on it"
        if self.semantic:
            return "checkpoint incl. semantic encoder + SIR (shipped tiny, in-domain encoder)"
        return "checkpoint (shipped tiny for synthetic-faces)"

    def training_hint(self) -> str:
        if self.how_to_train:
            return self.how_to_train
        chain = "`sairbench train semantic`, `sairbench train sir`, then " if self.semantic else ""
        return f"{chain}`sairbench train {self.name}`"

    def photo_options(self, prefill: str = "zero", upsample: str = "transposed",
                      input_residual: bool = False) -> dict[str, str]:
        """The :meth:`spec` / :meth:`build` keywords of the training options that depart from the
        paper's model ({} for the defaults), e.g. ``{'appearance': 'app-resize-conv', 'decoder':
        'liif-residual', 'input_fill': 'smooth'}``; an option this preset cannot take is a one-line
        error naming the `sairbench train` flag.

        ``prefill``: "zero" (the paper), "pull-push" or "smooth" (``INPUT_FILL``); ``upsample``:
        "transposed" (the paper) or "resize-conv", AppEncoder presets only; ``input_residual``:
        the LIIF decoder predicts a correction to its (filled) input, LIIF presets only.
        """
        options: dict[str, str] = {}
        if prefill not in PREFILL_OPTIONS:
            raise SairbenchError(f"--prefill {prefill}: use one of {', '.join(PREFILL_OPTIONS)}.")
        if prefill != "zero":
            options["input_fill"] = prefill
        if upsample not in UPSAMPLE_OPTIONS:
            raise SairbenchError(f"--upsample {upsample}: use one of {', '.join(UPSAMPLE_OPTIONS)}.")
        if upsample != "transposed":
            if self.appearance != UPSAMPLE_OPTIONS["transposed"]:
                raise SairbenchError(f"--upsample {upsample}: '{self.name}' has no AppEncoder (only it upsamples); "
                                     "drop --upsample.")
            options["appearance"] = UPSAMPLE_OPTIONS[upsample]
        if input_residual:
            if self.decoder not in RESIDUAL_DECODER:
                raise SairbenchError(f"--input-residual: '{self.name}' has an {self.decoder.upper()} decoder, which "
                                     "adds its input already; drop --input-residual.")
            options["decoder"] = RESIDUAL_DECODER[self.decoder]
        return options

    def spec(self, size: str = "tiny", encoder: dict | None = None, *, appearance: str | None = None,
             decoder: str | None = None, input_fill: str | None = None) -> dict[str, Any]:
        """The part spec ``{'name': 'implicit-inpainter', 'args': ...}`` of this preset at ``size``.

        Semantic presets need ``encoder``, the spec of their frozen semantic encoder (taken from the
        SIR checkpoint they are trained on). ``appearance`` / ``decoder``: a row of ``APPEARANCE`` /
        ``DECODER`` in place of the preset's; ``input_fill``: a row of ``INPUT_FILL`` (None: the
        encoder sees zeros in the hole). :meth:`photo_options` gives these from training options.
        """
        check_size(size, f"preset '{self.name}'")
        app_key = self.appearance if appearance is None else appearance
        if app_key is not None and (app_key not in APPEARANCE or self.appearance is None):
            raise SairbenchError(f"preset '{self.name}': appearance '{app_key}' is not one of its rows "
                                 f"({', '.join(APPEARANCE) if self.appearance else 'it has no appearance encoder'}).")
        dec_key = self.decoder if decoder is None else decoder
        if dec_key not in DECODER:
            raise SairbenchError(f"preset '{self.name}': decoder '{dec_key}' is not one of {', '.join(DECODER)}.")
        if input_fill is not None and input_fill not in INPUT_FILL:
            raise SairbenchError(f"preset '{self.name}': input fill '{input_fill}' is not one of {', '.join(INPUT_FILL)}.")
        appearance_spec = APPEARANCE[app_key][size] if app_key else None
        dec = DECODER[dec_key][size]
        decoder_spec = {"name": dec["name"], "args": dict(dec["args"])}
        decoder_spec["args"]["in_dim"] = APPEARANCE_DIM[app_key][size] if app_key else 0
        semantic = None
        if self.semantic:
            if encoder is None:
                raise SairbenchError(f"preset '{self.name}' needs a semantic encoder; train it with "
                                     f"{self.training_hint()} and pass --sir-checkpoint.")
            if self.encoder is not None and encoder["name"] != self.encoder:
                raise SairbenchError(f"preset '{self.name}' needs a SIR trained on '{self.encoder}', not on "
                                     f"'{encoder['name']}'; train it with {self.training_hint()}.")
            semantic = semantic_spec(encoder, self.filler, size)
            decoder_spec["args"]["extra_dim"] = encoder_embed_dim(encoder)
        args = {"appearance": appearance_spec, "decoder": decoder_spec, "semantic": semantic, "name": self.name}
        if input_fill is not None:
            args["input_fill"] = dict(INPUT_FILL[input_fill])
        return {"name": "implicit-inpainter", "args": args}

    def build(self, size: str = "tiny", encoder: dict | None = None, **options: Any):
        """A randomly initialised model of this preset (``options``: as :meth:`spec` takes them)."""
        from sairbench.models import make

        return make(self.spec(size, encoder, **options))
