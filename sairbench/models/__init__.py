"""Model parts built from specs, LIIF-style: importing this package registers every part.

``make({'name': 'liif-decoder', 'args': {...}})`` builds a registered part (see ``sairbench.parts``);
a checkpoint stores the spec next to the weights, so a model rebuilds with no config file.
"""

from __future__ import annotations

import sairbench.semantic  # noqa: F401  (registers the semantic encoders)
from sairbench.models import decoders, encoders, implicit, prefill, sir  # noqa: F401  (register on import)
from sairbench.parts import known_parts, make, part_class, register

__all__ = ["known_parts", "make", "part_class", "register"]
