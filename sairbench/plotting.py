"""Plotting helpers shared by the figures: pyplot without a display, atomic PNG + PDF writes,
font sizes that stay readable where a report page shows a figure, one style per model."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from sairbench.io import atomic_path

#: the widest a report page shows a figure (px: ``sairbench report --html`` in a 1280-px window)
DISPLAY_PX = 1200
#: the smallest text of a figure at display size (px)
MIN_TEXT_PX = 11.0


def readable_pt(width_in: float, dpi: float) -> float:
    """The font size (pt, at least 8) whose text is :data:`MIN_TEXT_PX` high when a figure
    ``width_in`` inches wide, saved at ``dpi``, is shown at most :data:`DISPLAY_PX` wide."""
    scale = min(1.0, DISPLAY_PX / (width_in * dpi))
    return max(8.0, MIN_TEXT_PX * 72.0 / (dpi * scale))


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path_stem: Path) -> list[Path]:
    """``fig`` as ``path_stem.png`` (150 dpi) and ``.pdf``, each written atomically; returns both paths."""
    out = []
    for ext in ("png", "pdf"):
        path = path_stem.with_suffix(f".{ext}")
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=ext, dpi=150, bbox_inches="tight")
        out.append(path)
    return out


#: Markers of the model lines: 11 of them, coprime with the 10 colours of ``tab10``, so that the
#: first 110 models get 110 distinct (colour, marker) pairs and neighbours differ in both.
MARKERS = ("o", "s", "D", "^", "v", "P", "*", "X", "h", "<", ">")


def model_styles(models: Sequence[str]) -> dict[str, tuple[tuple[float, float, float], str]]:
    """A distinct (colour, marker) pair per model, deterministic in the order of ``models``.

    Args:
        models: model names (n of them, any n); duplicates share one style.

    Returns:
        ``{model: ((r, g, b) floats in [0, 1], matplotlib marker)}``: up to 110 models, model k
        gets ``tab10[k % 10]`` and ``MARKERS[k % 11]`` (10 and 11 are coprime: every pair differs);
        beyond that, n colours interpolated along ``turbo`` (all different, neighbours too) with
        the markers in turn.
    """
    from matplotlib import colormaps

    names = list(dict.fromkeys(str(m) for m in models))
    n = len(names)
    if n <= 10 * len(MARKERS):
        tab = colormaps["tab10"].colors
        return {m: (tuple(map(float, tab[k % 10]))[:3], MARKERS[k % len(MARKERS)]) for k, m in enumerate(names)}
    from matplotlib.colors import LinearSegmentedColormap

    cmap = LinearSegmentedColormap.from_list("turbo-n", colormaps["turbo"].colors, N=n)  # n interpolated colours
    return {m: (tuple(float(v) for v in cmap(k)[:3]), MARKERS[k % len(MARKERS)]) for k, m in enumerate(names)}
