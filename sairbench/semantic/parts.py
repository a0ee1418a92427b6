"""Registration of the semantic encoders as model parts (``make({'name': 'clip-dense', ...})``).

CLIP and SAM weights come from their own files (open_clip tag or local file, SAM checkpoint), so
models built on them do not store the encoder in their checkpoints (``external_weights``).
"""

from __future__ import annotations

from sairbench.models import register
from sairbench.semantic.indomain import InDomainEncoder  # noqa: F401  (registers "indomain-encoder")


@register("clip-dense")
def make_clip_dense(**kwargs):
    from sairbench.semantic.clip_dense import DenseCLIPEncoder

    enc = DenseCLIPEncoder(**kwargs)
    enc.external_weights = True
    return enc


@register("sam-encoder")
def make_sam_encoder(**kwargs):
    from sairbench.semantic.sam import SAMEncoder

    enc = SAMEncoder(**kwargs)
    enc.external_weights = True
    return enc
