"""Registration of the semantic encoders as model parts (``make({'name': 'clip-dense', ...})``).

CLIP and SAM weights come from their own files (open_clip tag or local file, SAM checkpoint), so
models built on them do not store the encoder in their checkpoints (their class attribute
``external_weights``). The in-domain encoder is trained here and stored like any part; the label embedding
(the oracle of the semantic-headroom study) stores its class table.
"""

from __future__ import annotations

from sairbench.parts import register
from sairbench.semantic.clip_dense import DenseCLIPEncoder
from sairbench.semantic.indomain import InDomainEncoder
from sairbench.semantic.labels import LabelEmbedding
from sairbench.semantic.sam import SAMEncoder

register("indomain-encoder")(InDomainEncoder)
register("clip-dense")(DenseCLIPEncoder)
register("sam-encoder")(SAMEncoder)
register("label-embedding")(LabelEmbedding)
