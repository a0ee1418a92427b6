"""Ratio-curve figures: a distinct colour and marker per model, the legend outside the axes, no empty panel."""

import numpy as np
import pandas as pd
import pytest

from sairbench.errors import SairbenchError
from sairbench.figures import model_styles, plot_ratio_curves, ratio_curves_figure


def _per_image(n_models: int, lpips: bool, n: int = 30, seed: int = 0) -> pd.DataFrame:
    """Rows image x model with ratio in [0, 0.6), PSNR falling with the ratio, LPIPS NaN unless ``lpips``."""
    rng = np.random.default_rng(seed)
    ratio = rng.uniform(0.0, 0.6, n)
    rows = []
    for k in range(n_models):
        for i in range(n):
            rows.append({"image": f"i{i}", "mask": f"m{i}", "bucket": "x", "ratio": ratio[i], "model": f"model-{k:02d}",
                         "psnr": 35 - 20 * ratio[i] + 0.1 * k + rng.normal(0, 0.3),
                         "lpips": 0.05 + 0.3 * ratio[i] if lpips else np.nan})
    return pd.DataFrame(rows)


def _drawn_styles(ax) -> list[tuple[str, str]]:
    """(colour hex, marker) of every model line (the data line of each errorbar) of ``ax``."""
    from matplotlib.colors import to_hex

    return [(to_hex(c.lines[0].get_color()), c.lines[0].get_marker()) for c in ax.containers]


@pytest.mark.parametrize("n", [1, 12, 25, 110, 300])
def test_model_styles_distinct(n):
    models = [f"m{k}" for k in range(n)]
    styles = model_styles(models)
    assert list(styles) == models and len(set(styles.values())) == n
    assert model_styles(models) == styles  # deterministic
    if n >= 2:  # neighbours differ in colour and in marker
        pairs = list(styles.values())
        assert all(a[0] != b[0] and a[1] != b[1] for a, b in zip(pairs, pairs[1:]))


def test_twelve_models_lpips_nan_one_panel_legend_outside():
    import matplotlib.pyplot as plt

    fig, curves = ratio_curves_figure(_per_image(12, lpips=False), "mini on faces", "torchvision's VGG16 weights ...")
    try:
        assert len(fig.axes) == 1 and set(curves["metric"]) == {"psnr"}  # no empty LPIPS panel
        ax = fig.axes[0]
        drawn = _drawn_styles(ax)
        assert len(drawn) == 12 and len(set(drawn)) == 12
        assert "LPIPS unavailable (VGG16 weights not found): PSNR only" in fig._suptitle.get_text()
        assert len(fig.legends) == 1 and not ax.get_legend()
        fig.canvas.draw()
        legend_box = fig.legends[0].get_window_extent()
        assert legend_box.x0 >= ax.get_window_extent().x1  # right of the axes, not over the curves
        assert len(fig.legends[0].get_texts()) == 12
    finally:
        plt.close(fig)


def test_two_panels_with_lpips_each_drawn(tmp_path):
    import matplotlib.pyplot as plt

    fig, _ = ratio_curves_figure(_per_image(3, lpips=True))
    try:
        assert len(fig.axes) == 2
        assert all(len(_drawn_styles(ax)) == 3 for ax in fig.axes)  # no empty panel
        assert _drawn_styles(fig.axes[0]) == _drawn_styles(fig.axes[1])  # a model looks the same in both
        assert fig._suptitle is None
    finally:
        plt.close(fig)
    paths = plot_ratio_curves(_per_image(12, lpips=False), tmp_path, "t")
    assert [p.suffix for p in paths] == [".png", ".pdf", ".csv"] and all(p.stat().st_size > 1000 for p in paths)


def test_nothing_to_plot_is_one_line_error():
    per = _per_image(2, lpips=False)
    per["psnr"] = np.nan
    with pytest.raises(SairbenchError, match="nothing to plot"):
        ratio_curves_figure(per)
