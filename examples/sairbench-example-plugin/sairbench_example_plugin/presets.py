"""``plain-liif``: LIIF's decoder on the plain convolutional encoder, a learned variant (one row).

Train it with `sairbench train plain-liif`, evaluate it with
`sairbench run -m plain-liif --checkpoint plain-liif=runs/plain-liif/last.pt`.
"""

from sairbench.preset import Preset, register_preset

register_preset(Preset(
    "plain-liif",                 # the model's name
    "plain-conv-encoder",         # appearance: a part that declares describe(size)
    "liif",                       # decoder: a row of the suite (liif, lte, liif-residual) or a part
    None,                         # no semantic branch
    "LIIF decoder on plain 3x3 convolutions (example plugin)",
))
