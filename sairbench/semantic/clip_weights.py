"""Where dense CLIP's weights come from: an open_clip tag (a download, only when the user names
the tag), a local file (state dict, or OpenAI's TorchScript archive behind an explicit opt-in),
or random initialisation (tests). Nothing here downloads unless the tag is given."""

from __future__ import annotations

import contextlib
import contextvars
import os
import re
import zipfile
from pathlib import Path

from torch import nn

from sairbench.errors import SairbenchError

ENV_CLIP_WEIGHTS = "SAIRBENCH_CLIP_WEIGHTS"
ENV_ALLOW_TORCHSCRIPT = "SAIRBENCH_ALLOW_TORCHSCRIPT"  # "1": trust a TorchScript CLIP archive (it can run code)
DEFAULT_TAG = "openai"


class _FromEnv:
    """Default of ``pretrained``: $SAIRBENCH_CLIP_WEIGHTS when set, else the ``openai`` tag."""

    def __repr__(self) -> str:
        return f"${ENV_CLIP_WEIGHTS} or {DEFAULT_TAG!r}"


FROM_ENV = _FromEnv()
_GIVEN: contextvars.ContextVar[str | None] = contextvars.ContextVar("clip_weights_given", default=None)


@contextlib.contextmanager
def clip_weights_given(value: str | None):
    """Within this block, CLIP encoders built with the default weights take ``value`` (a command's
    ``--clip-weights``) before ${ENV_CLIP_WEIGHTS}; None leaves the environment in charge."""
    token = _GIVEN.set(value)
    try:
        yield
    finally:
        _GIVEN.reset(token)


def configured_weights() -> tuple[str, str]:
    """(weights, where they were named): the command's --clip-weights, else ${ENV_CLIP_WEIGHTS}
    ("" when neither is set)."""
    given = _GIVEN.get()
    if given:
        return given, "--clip-weights"
    return os.environ.get(ENV_CLIP_WEIGHTS, "").strip(), f"${ENV_CLIP_WEIGHTS}"

_HOW_TO = (
    "download the weights on a machine with internet (e.g. python -c \"import open_clip; "
    "open_clip.create_model('{model}', pretrained='openai')\" fills the Hugging Face cache, or get "
    "OpenAI's ViT-B-16.pt / open_clip_pytorch_model.bin from timm/vit_base_patch16_clip_224.openai) "
    f"and pass pretrained=/path/to/file or set {ENV_CLIP_WEIGHTS}=/path/to/file"
)


def _slug(model_name: str) -> str:
    s = model_name.lower().replace("/", "-")
    return re.sub(r"^vit-([a-z]+)-(\d+)", r"vit-\1\2", s)


def _is_torchscript_archive(path: str) -> bool:
    """OpenAI's original ``ViT-B-16.pt`` is a TorchScript archive (zip with ``code/`` and
    ``constants.pkl``), which ``torch.load(weights_only=True)`` refuses."""
    try:
        if not zipfile.is_zipfile(path):
            return False
        with zipfile.ZipFile(path) as zf:
            return any(n.endswith("constants.pkl") or "/code/" in n for n in zf.namelist())
    except OSError:
        return False


def build_clip(model_name: str, pretrained: str | None, quick_gelu: bool | None,
               from_env: bool) -> tuple[nn.Module, str]:
    """(open_clip model, name) from a tag, a local file or None (random init; tests only)."""
    import open_clip as oc

    slug = _slug(model_name)
    if model_name.replace("/", "-") not in oc.list_models():
        raise SairbenchError(
            f"unknown open_clip model {model_name!r}; use a built-in ViT name such as 'ViT-B-16'"
        )
    default_qg = bool((oc.get_pretrained_cfg(model_name, DEFAULT_TAG) or {}).get("quick_gelu", False))
    source = f"{configured_weights()[1]}={pretrained!r}" if from_env else repr(pretrained)

    if pretrained is None:
        qg = default_qg if quick_gelu is None else quick_gelu
        model = oc.create_model(model_name, pretrained=None, force_quick_gelu=qg, device="cpu")
        return model, f"clip-{slug}-random"

    tag_cfg = oc.get_pretrained_cfg(model_name, pretrained)
    if tag_cfg:
        qg = bool(tag_cfg.get("quick_gelu", False)) if quick_gelu is None else quick_gelu
        try:
            model = oc.create_model(model_name, pretrained=pretrained, force_quick_gelu=qg, device="cpu")
        except Exception as e:  # no network / not cached / corrupt download
            reason = " ".join(str(e).split())[:300]
            raise SairbenchError(
                f"CLIP weights {source} for {model_name} could not be loaded ({reason}); "
                + _HOW_TO.format(model=model_name)
            ) from e
        return model, f"clip-{slug}-{pretrained}"

    path = os.path.expanduser(pretrained)
    if not os.path.isfile(path):
        known = ", ".join(oc.list_pretrained_tags_by_model(model_name)[:6])
        raise SairbenchError(
            f"CLIP weights file not found: {source} is neither a file nor an open_clip tag of "
            f"{model_name} (tags: {known}, ...); " + _HOW_TO.format(model=model_name)
        )
    qg = default_qg if quick_gelu is None else quick_gelu
    try:
        # strict load of a state dict (open_clip converts OpenAI / timm key layouts)
        torchscript = _is_torchscript_archive(path)  # OpenAI's original .pt: torch.jit.load runs its code
        if torchscript and os.environ.get(ENV_ALLOW_TORCHSCRIPT) != "1":
            raise SairbenchError(
                f"CLIP weights file {source} is a TorchScript archive, which runs code when loaded; convert it "
                "once to a state dict (python -c \"import torch; torch.save(torch.jit.load('ViT-B-16.pt', "
                "map_location='cpu').state_dict(), 'ViT-B-16-sd.pt')\") and pass that file, or set "
                f"{ENV_ALLOW_TORCHSCRIPT}=1 if you trust this file")
        model = oc.create_model(model_name, pretrained=path, force_quick_gelu=qg, device="cpu",
                                weights_only=not torchscript)
    except SairbenchError:
        raise
    except Exception as e:
        reason = " ".join(str(e).split())[:300]
        raise SairbenchError(
            f"CLIP weights file {source} does not load into open_clip {model_name} ({reason}); "
            "pass a checkpoint of that model (state dict or OpenAI .pt)"
        ) from e
    return model, f"clip-{slug}-file-{Path(path).stem}"
