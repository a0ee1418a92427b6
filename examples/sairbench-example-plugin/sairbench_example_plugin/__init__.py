"""An example sairbench plugin (docs/plugins.md): each module is one thing the suite gains.

models   ``mean-fill``: a non-learned model (fills the hole with the mean known colour)
parts    ``plain-conv-encoder``: an appearance encoder part that declares its preset row
presets  ``plain-liif``: a learned variant, LIIF's decoder on that encoder (`sairbench train plain-liif`)
metrics  ``mae_hole``: mean absolute error inside the hole, on the 0-255 scale
datasets ``noise``: seeded smooth colour noise, no files needed
"""
