"""Coordinate helpers shared by every implicit model (LIIF's convention).

Coordinates live in [-1, 1]^2 with pixel centres at ``-1 + (2i + 1) / n``; the last dimension is
(row, col), i.e. (y, x).
"""

from __future__ import annotations

import torch


def make_coord(shape: tuple[int, int], device=None, flatten: bool = True) -> torch.Tensor:
    """Pixel-centre coordinates of an (H, W) grid: (H*W, 2) if ``flatten`` else (H, W, 2)."""
    axes = [cell_centre(torch.arange(n, device=device), n) for n in shape]
    grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)
    return grid.reshape(-1, 2) if flatten else grid


def cell_centre(index: torch.Tensor, n: int) -> torch.Tensor:
    """Centre coordinate of cell ``index`` (any shape, long) on an axis of ``n`` cells, float32.

    Every path computes centres with this one expression, so that a query at a pixel centre has a
    relative offset of exactly 0 (LIIF's area weights are sensitive to 1-ulp differences there).
    """
    r = 1.0 / n
    return (-1 + r) + (2 * r) * index.to(torch.float32)


def make_cell(coord: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Cell size (in [-1, 1] units) of an (H, W) output grid for each coordinate: same shape as ``coord``."""
    cell = torch.empty_like(coord)
    cell[..., 0] = 2.0 / shape[0]
    cell[..., 1] = 2.0 / shape[1]
    return cell


def coord_to_index(coord: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Index of the grid cell (nearest-sample semantics of ``grid_sample``) containing each coordinate.

    coord (..., 2) in [-1, 1] (row, col) -> (...,) long flat index row * W + col, clamped to the grid.
    """
    h, w = shape
    row = ((coord[..., 0] + 1) * h / 2).floor().clamp_(0, h - 1).long()
    col = ((coord[..., 1] + 1) * w / 2).floor().clamp_(0, w - 1).long()
    return row * w + col
