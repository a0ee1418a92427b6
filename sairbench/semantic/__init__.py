"""Semantic encoders (dense CLIP, SAM, in-domain); importing this package registers them as parts."""

from sairbench.semantic import parts  # noqa: F401  (registers indomain-encoder, clip-dense, sam-encoder, label-embedding)
