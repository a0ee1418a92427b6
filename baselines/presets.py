"""Presets of the implicit models in the paper: one table over a few parts.

Each preset has a ``paper`` size (the paper's widths and depths) and a ``tiny`` size for CPU.
``create_model('liif')`` loads the shipped ``tiny`` checkpoint trained on ``synthetic-faces``;
``create_model('liif', checkpoint=path)`` loads any checkpoint; ``pretrained=False`` gives a
randomly initialised model of the requested ``size``.
"""

from __future__ import annotations

from typing import Any

from sairbench.errors import SairbenchError
from sairbench.registry import register_model

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

SIR = {"paper": {"hidden": [256, 256, 256, 256], "context_layers": 3, "context_width": 128},
       "tiny": {"hidden": [128, 128], "context_layers": 3, "context_width": 64}}

# preset -> (appearance, decoder, semantic filler or None, description)
PRESETS: dict[str, tuple[str | None, str, str | None, str]] = {
    "liif": ("app", "liif", None, "LIIF decoder on the AppEncoder, no semantics"),
    "lte": ("app", "lte", None, "LTE decoder on the AppEncoder, no semantics"),
    "edsr-wo": ("edsr", "liif", None, "LIIF decoder on the EDSR-baseline encoder, no semantics (Tab. 4)"),
    "sair": ("app", "liif", "sir", "SAIR: AIR (LIIF on AppEncoder + SIR embedding) over SIR"),
    "semlte": ("app", "lte", "sir", "SemLTE: LTE decoder with the SIR embedding (Tab. 4)"),
    "edsr-w": ("edsr", "liif", "sir", "EDSR-baseline encoder with the SIR embedding (Tab. 4)"),
    "sam-encoder": ("app", "liif", "sir", "SAIR with SAM's image encoder as the semantic source (Tab. 6)"),
    "nfs": ("app", "liif", "none", "NFS ablation: masked embedding upsampled, no SIR (Tab. 6)"),
    "ous": (None, "liif", "sir", "OUS ablation: only the SIR embedding, no appearance feature (Tab. 6)"),
}
SEMANTIC_PRESETS = tuple(k for k, v in PRESETS.items() if v[2] is not None)
SIZES = ("tiny", "paper")


def semantic_spec(encoder: dict, filler: str, size: str = "tiny") -> dict[str, Any]:
    """Spec of the semantic branch over semantic-encoder spec ``encoder`` with ``filler`` ("sir" or "none")."""
    return {"name": "semantic-branch", "args": {"encoder": encoder, "filler": filler,
                                                "sir": dict(SIR[size]) if filler == "sir" else None}}


def encoder_embed_dim(encoder: dict) -> int:
    from sairbench.models import make

    if encoder["name"] == "indomain-encoder":
        return int(encoder["args"].get("embed_dim", 64))
    if encoder["name"] == "sam-encoder":  # SAM's neck, whatever the ViT: no need to load the weights twice
        from sairbench.semantic.sam import SAM_NECK_CHANNELS

        return SAM_NECK_CHANNELS
    return make(encoder).embed_dim


SAM_CHAIN = ("`sairbench train sir --semantic-encoder sam` (with $SAIRBENCH_SAM_CHECKPOINT set), then "
             "`sairbench train sam-encoder --sir-checkpoint runs/sir/last.pt`")


def preset_spec(name: str, size: str = "tiny", encoder: dict | None = None, **overrides: Any) -> dict[str, Any]:
    """The ImplicitInpainter spec of preset ``name`` at ``size``.

    Semantic presets need ``encoder``, the spec of their frozen semantic encoder (taken from the
    semantic/SIR checkpoint they are trained on).
    """
    if name not in PRESETS:
        raise SairbenchError(f"unknown preset '{name}'; known presets: {', '.join(PRESETS)}.")
    if size not in SIZES:
        raise SairbenchError(f"unknown size '{size}' for preset '{name}'; use one of {', '.join(SIZES)}.")
    app, dec, sem, _ = PRESETS[name]
    appearance = APPEARANCE[app][size] if app else None
    decoder = {"name": DECODER[dec][size]["name"], "args": dict(DECODER[dec][size]["args"])}
    decoder["args"]["in_dim"] = APPEARANCE_DIM[app][size] if app else 0
    decoder["args"].update(overrides.pop("decoder_args", {}))
    semantic = None
    if sem is not None:
        if encoder is None:
            raise SairbenchError(f"preset '{name}' needs a semantic encoder; train one with `sairbench train semantic` "
                                 "and SIR with `sairbench train sir`, then pass --sir-checkpoint.")
        if name == "sam-encoder" and encoder["name"] != "sam-encoder":
            raise SairbenchError(f"preset 'sam-encoder' needs a SIR trained on SAM's image encoder, not on "
                                 f"'{encoder['name']}'; train it with {SAM_CHAIN}.")
        semantic = semantic_spec(encoder, sem, size)
        decoder["args"]["extra_dim"] = encoder_embed_dim(encoder)
    return {"appearance": appearance, "decoder": decoder, "semantic": semantic, "name": name, **overrides}


def build_preset(name: str, size: str = "tiny", encoder: dict | None = None, **overrides: Any):
    from sairbench.models.implicit import ImplicitInpainter

    return ImplicitInpainter(**preset_spec(name, size, encoder=encoder, **overrides))


def _factory(name: str):
    def factory(checkpoint: str | None = None, size: str = "tiny", pretrained: bool = True, **kw):
        from sairbench.checkpoint import load_model, shipped_path

        if checkpoint is not None:
            return load_model(checkpoint)
        if not pretrained:
            return build_preset(name, size, **kw)
        path = shipped_path(name, size)
        if not path.is_file() and name == "sam-encoder":
            raise SairbenchError(f"no shipped checkpoint for 'sam-encoder' (it needs SAM's weights); train one with "
                                 f"{SAM_CHAIN}, and pass --checkpoint sam-encoder=runs/sam-encoder/last.pt.")
        if not path.is_file():
            raise SairbenchError(f"no shipped '{size}' checkpoint for '{name}' ({path.name}); train one with "
                                 f"`sairbench train {name}` and pass --checkpoint, or use --train-missing.")
        return load_model(path)

    return factory


def _availability(name: str):
    def check() -> tuple[bool, str]:
        from sairbench.checkpoint import shipped_path

        path = shipped_path(name)
        if path.is_file():
            return True, ""
        return False, f"no shipped checkpoint {path.name}" + (f"; train it: {SAM_CHAIN}" if name == "sam-encoder" else "")

    return check


def _needs(name: str, filler: str | None) -> str:
    if name == "sam-encoder":
        return "SAM checkpoint ($SAIRBENCH_SAM_CHECKPOINT) and a model trained on it"
    if filler is not None:
        return "checkpoint incl. semantic encoder + SIR (shipped tiny, in-domain encoder)"
    return "checkpoint (shipped tiny for synthetic-faces)"


for _name, (_app, _dec, _sem, _desc) in PRESETS.items():
    register_model(_name, _factory(_name), description=_desc, kind="implicit", needs=_needs(_name, _sem),
                   availability=_availability(_name))
