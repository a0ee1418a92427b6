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

A row a preset names that is not in ``APPEARANCE`` / ``DECODER`` is a part's own declaration: the
part registered under that name (a plugin's, through the ``sairbench.parts`` entry points) with a
classmethod ``describe(size)`` -> ``{"args": {...}, "out_dim": C}`` (``out_dim``: appearance
encoders only; a decoder is given ``in_dim`` and ``extra_dim`` by the preset). Or a row is
registered by :func:`register_part_row` (another size of a known part, say). :func:`register_preset`
makes a row a model (its factory loads checkpoints of it); docs/plugins.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sairbench.errors import SairbenchError

SIZES = ("tiny", "paper")

APPEARANCE = {
    "app": {"paper": {"name": "app-encoder", "args": {"widths": [64, 128, 256], "n_resblocks": 8}},
            "tiny": {"name": "app-encoder", "args": {"widths": [32, 48, 64], "n_resblocks": 2}}},
    "edsr": {"paper": {"name": "edsr-baseline", "args": {"n_resblocks": 16, "n_feats": 64}},
             "tiny": {"name": "edsr-baseline", "args": {"n_resblocks": 3, "n_feats": 32}}},
}
APPEARANCE_DIM = {"app": {"paper": 64, "tiny": 32}, "edsr": {"paper": 64, "tiny": 32}}

DECODER = {
    "liif": {"paper": {"name": "liif-decoder", "args": {"hidden": [256, 256, 256, 256]}},
             "tiny": {"name": "liif-decoder", "args": {"hidden": [128, 128, 128]}}},
    "lte": {"paper": {"name": "lte-decoder", "args": {"hidden_dim": 256, "hidden": [256, 256, 256]}},
            "tiny": {"name": "lte-decoder", "args": {"hidden_dim": 128, "hidden": [128, 128]}}},
}



def _renamed(rows: dict, part: str) -> dict:
    """``rows`` (size -> part spec) with the part ``part`` in place of theirs, same arguments."""
    return {size: {"name": part, "args": dict(spec["args"])} for size, spec in rows.items()}


# the photo variants: the same sizes as the paper's parts they replace
APPEARANCE["app-resize-conv"] = _renamed(APPEARANCE["app"], "app-resize-conv")
APPEARANCE_DIM["app-resize-conv"] = APPEARANCE_DIM["app"]
DECODER["liif-residual"] = _renamed(DECODER["liif"], "liif-residual")

# what the encoder sees in the hole (`--prefill`; "zero", the paper's, is no stage at all)
INPUT_FILL = {"pull-push": {"name": "hole-fill", "args": {"method": "pull-push"}},
              "smooth": {"name": "hole-fill", "args": {"method": "smooth"}}}
PREFILL_OPTIONS = ("zero", *INPUT_FILL)
UPSAMPLE_OPTIONS = {"transposed": "app", "resize-conv": "app-resize-conv"}  # `--upsample` -> appearance row
RESIDUAL_DECODER = {"liif": "liif-residual"}  # `--input-residual`: decoder row -> its residual row

SIR = {"paper": {"hidden": [256, 256, 256, 256], "context_layers": 3, "context_width": 128},
       "tiny": {"hidden": [128, 128], "context_layers": 3, "context_width": 64}}


ROLES = ("appearance", "decoder")


def register_part_row(role: str, key: str, part: str, args: dict[str, dict[str, Any]],
                      out_dim: dict[str, int] | None = None) -> None:
    """Add the row ``key`` to ``APPEARANCE`` (``role`` "appearance"; ``out_dim``: the encoder's
    output channels per size) or ``DECODER`` (``role`` "decoder"): the part ``part`` with the
    constructor arguments ``args[size]`` for each size of ``SIZES``. A preset then names ``key``."""
    if role not in ROLES:
        raise SairbenchError(f"register_part_row: role {role!r} is not one of {', '.join(ROLES)}.")
    missing = [z for z in SIZES if z not in args or (role == "appearance" and z not in (out_dim or {}))]
    if missing:
        raise SairbenchError(f"register_part_row('{key}'): no {'args/out_dim' if role == 'appearance' else 'args'} "
                             f"for size '{missing[0]}'; give one for each of {', '.join(SIZES)}.")
    table = APPEARANCE if role == "appearance" else DECODER
    table[key] = {z: {"name": part, "args": dict(args[z])} for z in SIZES}
    if role == "appearance":
        APPEARANCE_DIM[key] = {z: int(out_dim[z]) for z in SIZES}


def declared_row(role: str, key: str, size: str) -> tuple[dict[str, Any], int]:
    """(part spec, output channels) of the ``role`` row ``key`` at ``size``: from ``APPEARANCE`` /
    ``DECODER``, else from the part ``key``'s own ``describe(size)`` (a plugin part); else one line."""
    table = APPEARANCE if role == "appearance" else DECODER
    if key in table:
        return dict(table[key][size]), (APPEARANCE_DIM[key][size] if role == "appearance" else 0)
    from sairbench.models import part_class  # the built-in parts registered, then the plugins' on demand

    fix = ("give the part a classmethod describe(size) returning {'args': {...}" +
           (", 'out_dim': channels}" if role == "appearance" else "}") + ", or call register_part_row (docs/plugins.md)")
    try:
        cls = part_class(key)
    except SairbenchError:
        raise SairbenchError(f"{role} '{key}' is not one of its rows ({', '.join(table)}) nor a registered part; "
                             f"register the part (entry point 'sairbench.parts') and {fix}.") from None
    describe = getattr(cls, "describe", None)
    row = describe(size) if callable(describe) else None
    dim = row.get("out_dim") if isinstance(row, dict) else None
    if not isinstance(row, dict) or not isinstance(row.get("args", {}), dict) or (
            role == "appearance" and (isinstance(dim, bool) or not isinstance(dim, int) or dim < 1)):
        raise SairbenchError(f"part '{key}' does not declare its {role} row at size '{size}' "
                             f"(describe({size!r}) gave {row!r}); {fix}.")
    return {"name": key, "args": dict(row.get("args") or {})}, (int(dim) if role == "appearance" else 0)


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
        name: registry name. appearance: key of ``APPEARANCE``, or the name of a part that declares
            ``describe(size)`` (:func:`declared_row`), or None (no appearance feature).
        decoder: key of ``DECODER`` or the name of a part that declares ``describe(size)``. filler: None (no semantics), "sir" or "none" (NFS: the
            masked embedding upsampled). description: one line for `sairbench models`.
        encoder: the semantic-encoder part the model must be trained on (None: any).
        how_to_train: the commands that make a checkpoint when none is shipped.
        recipes: tag -> `sairbench train` options of the shipped checkpoints ('' = the default
            one, e.g. 'ft6000' for ``liif@ft6000``); ``{stage}`` values name the stage's checkpoint.
        encoder_args: arguments that replace those of the semantic encoder taken from the SIR
            checkpoint (the oracle: ``{'reveal_hole': True}``, the label map everywhere).
        semantic_stage: the shipped stage whose checkpoint is the default ``--sir-checkpoint``.
    """

    name: str
    appearance: str | None
    decoder: str
    filler: str | None
    description: str
    encoder: str | None = None
    how_to_train: str = ""
    recipes: dict[str, dict[str, Any]] = field(default_factory=dict)
    encoder_args: dict[str, Any] = field(default_factory=dict)
    semantic_stage: str = "sir"

    @property
    def semantic(self) -> bool:
        return self.filler is not None

    @property
    def reads_labels(self) -> bool:
        """Its semantic source is the ground-truth label map (a semantic-headroom oracle)."""
        return self.encoder == "label-embedding"

    @property
    def needs(self) -> str:
        if self.reads_labels:
            return "the label maps of a labelled dataset (the semantic-headroom protocol gives them) and a checkpoint"
        if self.encoder is not None:
            return f"a '{self.encoder}' semantic encoder's weights and a model trained on it"
        from sairbench.checkpoint import shipped_path

        if not shipped_path(self.name).is_file():  # a row from a plugin, or one whose file is not shipped
            return f"a checkpoint trained with {self.training_hint()} (none shipped)"
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
        if app_key is not None and self.appearance is None:
            raise SairbenchError(f"preset '{self.name}': appearance '{app_key}' is not one of its rows "
                                 "(it has no appearance encoder).")
        dec_key = self.decoder if decoder is None else decoder
        if input_fill is not None and input_fill not in INPUT_FILL:
            raise SairbenchError(f"preset '{self.name}': input fill '{input_fill}' is not one of {', '.join(INPUT_FILL)}.")
        try:
            appearance_spec, in_dim = declared_row("appearance", app_key, size) if app_key else (None, 0)
            decoder_spec = declared_row("decoder", dec_key, size)[0]
        except SairbenchError as err:
            raise SairbenchError(f"preset '{self.name}': {err}") from None
        decoder_spec["args"] = dict(decoder_spec["args"])
        decoder_spec["args"]["in_dim"] = in_dim
        semantic = None
        if self.semantic:
            if encoder is None:
                raise SairbenchError(f"preset '{self.name}' needs a semantic encoder; train it with "
                                     f"{self.training_hint()} and pass --sir-checkpoint.")
            if self.encoder is not None and encoder["name"] != self.encoder:
                raise SairbenchError(f"preset '{self.name}' needs a SIR trained on '{self.encoder}', not on "
                                     f"'{encoder['name']}'; train it with {self.training_hint()}.")
            if self.encoder_args:
                encoder = {"name": encoder["name"], "args": {**(encoder.get("args") or {}), **self.encoder_args}}
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


def preset_factory(preset: Preset):
    """The registry factory of ``preset``: shipped checkpoint (or stage ``tag``), a given one, or random."""

    def factory(checkpoint: str | None = None, size: str = "tiny", pretrained: bool = True, tag: str | None = None, **kw):
        from sairbench.checkpoint import load_model, shipped_path

        if checkpoint is not None:
            model = load_model(checkpoint, expect=("implicit-inpainter",))
        elif not pretrained:
            return preset.build(size, **kw)
        else:
            name = preset.name if tag is None else f"{preset.name}@{tag}"
            path = shipped_path(name, size)
            if not path.is_file():
                raise SairbenchError(f"no shipped '{size}' checkpoint for '{name}' ({path.name}); train one with "
                                     f"{preset.training_hint()} and pass --checkpoint {name}=PATH, or use --train-missing.")
            model = load_model(path, expect=("implicit-inpainter",))
        return model

    return factory


def preset_availability(preset: Preset):
    """``check(tag=None) -> (ok, why)``: a row whose parts cannot be found or sized is not available
    (the reason says which); else the shipped checkpoint of the preset (or its stage) decides."""

    def check(tag: str | None = None) -> tuple[bool, str]:
        from sairbench.checkpoint import shipped_path

        try:
            for role, key in (("appearance", preset.appearance), ("decoder", preset.decoder)):
                if key is not None:
                    declared_row(role, key, "tiny")
        except SairbenchError as err:
            return False, str(err).rstrip(".")
        name = preset.name if tag is None else f"{preset.name}@{tag}"
        path = shipped_path(name)
        if path.is_file():
            return True, ""
        if tag is not None:
            return False, f"no shipped checkpoint {path.name}; give its file with --checkpoint {name}=PATH"
        if preset.reads_labels:
            tags = ", ".join(f"{name}@{t}" for t in preset.recipes if shipped_path(f"{name}@{t}").is_file())
            return False, (f"an oracle (reads label maps): `sairbench run --protocol semantic-headroom` runs "
                           f"{tags or 'its trained checkpoints'}")
        return False, (f"no shipped checkpoint {path.name}; train it: {preset.training_hint()}, then pass "
                       f"--checkpoint {preset.name}=runs/{preset.name}/last.pt")

    return check


def register_preset(preset: Preset) -> None:
    """Register ``preset`` as a model named ``preset.name`` (kind "implicit"): its factory loads the
    shipped checkpoint, a given one (``--checkpoint NAME=PATH``) or builds it untrained; `sairbench
    train NAME` trains it. Plugins call this from a module named by a ``sairbench.models`` entry point."""
    from sairbench.registry import register_model

    register_model(preset.name, preset_factory(preset), description=preset.description, kind="implicit",
                   needs=preset.needs, availability=preset_availability(preset), preset=preset)
