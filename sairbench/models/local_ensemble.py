"""The neighbour bookkeeping LIIF-style decoders share: the four cells around a query and their
area weights (LIIF's local ensemble), the fast path's loop over computed terms, LIIF's literal
``grid_sample`` lookups for the reference paths, and the bilinear input residual.

See ``sairbench.models.decoders`` for the two decoders and the exact rewrites of the fast path.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from sairbench.models.coords import cell_centre, make_coord

ExtraFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

_EPS_SHIFT = 1e-6  # LIIF's shift so that a coordinate on a cell border picks a defined side


def mlp(in_dim: int, hidden: Sequence[int], out_dim: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    last = in_dim
    for h in hidden:
        layers += [nn.Linear(last, h), nn.ReLU(inplace=True)]
        last = h
    layers.append(nn.Linear(last, out_dim))
    return nn.Sequential(*layers)


def ensemble_shifts(local_ensemble: bool) -> list[tuple[int, int]]:
    return [(-1, -1), (-1, 1), (1, -1), (1, 1)] if local_ensemble else [(0, 0)]


class LocalEnsembleDecoder(nn.Module):
    """Shared neighbour bookkeeping for LIIF-style decoders.

    Subclasses implement ``prepare`` (per-image work, done once), ``predict`` (MLP on a set of
    selected neighbour terms) and ``query_plain`` (the reference formulation).
    """

    out_dim: int = 3

    def __init__(self, local_ensemble: bool = True, skip_tol: float = 1e-6):
        super().__init__()
        self.local_ensemble = local_ensemble
        self.skip_tol = skip_tol

    # -- neighbour geometry -------------------------------------------------------------
    def neighbours(self, coord: torch.Tensor, shape: tuple[int, int]):
        """The (up to) four neighbour cells of each query and their ensemble weights.

        Args:
            coord: (B, Q, 2) query coordinates in [-1, 1], (row, col).
            shape: (h, w) of the feature grid.

        Returns:
            idx (K, B, Q) long flat cell index, rel (K, B, Q, 2) offset query - cell centre in
            cell units (LIIF's ``rel_coord``), weights (K, B, Q) summing to 1 over K.
        """
        h, w = shape
        rx, ry = 1.0 / h, 1.0 / w
        # works for any leading shape: coord (..., 2) -> idx (K, ...), rel (K, ..., 2), weights (K, ...)
        eps = _EPS_SHIFT if self.local_ensemble else 0.0
        idx_list, rel_list, area_list = [], [], []
        for vx, vy in ensemble_shifts(self.local_ensemble):
            c0 = (coord[..., 0] + vx * rx + eps).clamp(-1 + 1e-6, 1 - 1e-6)
            c1 = (coord[..., 1] + vy * ry + eps).clamp(-1 + 1e-6, 1 - 1e-6)
            row = _nearest_index(c0, h)
            col = _nearest_index(c1, w)
            centre_r = cell_centre(row, h)
            centre_c = cell_centre(col, w)
            rel = torch.stack([(coord[..., 0] - centre_r) * h, (coord[..., 1] - centre_c) * w], dim=-1)
            idx_list.append(row * w + col)
            rel_list.append(rel)
            area_list.append((rel[..., 0] * rel[..., 1]).abs() + 1e-9)
        areas = torch.stack(area_list)
        if self.local_ensemble:  # each term is weighted by the area of the diagonally opposite one
            areas = areas.flip(0)
        weights = areas / areas.sum(0, keepdim=True)
        return torch.stack(idx_list), torch.stack(rel_list), weights

    def read_cells(self, coord: torch.Tensor, batch_index: torch.Tensor, shape: tuple[int, int], batch: int,
                   skip: bool = True) -> torch.Tensor:
        """The feature cells the fast path reads for these queries: coord (N, 2) of images
        batch_index (N,) on an (h, w) grid -> (batch, h, w) bool."""
        h, w = shape
        idx, _, weights = self.neighbours(coord, shape)
        keep = self.computed_terms(weights, skip)
        read = torch.zeros(batch, h * w, dtype=torch.bool, device=coord.device)
        read[batch_index.expand_as(idx)[keep], idx[keep]] = True
        return read.view(batch, h, w)

    def computed_terms(self, weights: torch.Tensor, skip: bool = True) -> torch.Tensor:
        """weights (K, ...) -> bool (K, ...): the neighbour terms the fast path computes."""
        return weights > self.skip_tol if skip else torch.ones_like(weights, dtype=torch.bool)

    # -- fast path ----------------------------------------------------------------------
    def prepare(self, feat: torch.Tensor, n_terms: int):
        raise NotImplementedError

    def predict(self, state, b: torch.Tensor, idx: torch.Tensor, rel: torch.Tensor,
                rel_cell: torch.Tensor, extra: torch.Tensor | None, projected: bool = False) -> torch.Tensor:
        raise NotImplementedError

    def extra_weight(self) -> torch.Tensor | None:
        """(hidden, extra_dim): the first-layer weight applied to the extra vector (None without one)."""
        return None

    def query(
        self,
        feat: torch.Tensor,
        coord: torch.Tensor,
        cell: torch.Tensor,
        extra_fn: ExtraFn | None = None,
        skip: bool = True,
        inp: torch.Tensor | None = None,
        state=None,
    ) -> torch.Tensor:
        """Fast path. feat (B, C, h, w), coord/cell (B, Q, 2) -> (B, Q, out_dim).

        ``inp`` (B, 3, H, W) is the decoder's input image, used by decoders with an image residual.
        ``state``: ``prepare(feat, ...)`` computed once by a caller that queries in chunks.
        """
        B, Q = coord.shape[:2]
        batch_index = torch.arange(B, device=coord.device).repeat_interleave(Q)
        out = self.query_points(feat, coord.reshape(-1, 2), cell.reshape(-1, 2), batch_index,
                                extra_fn=extra_fn, skip=skip, state=state)
        return out.view(B, Q, self.out_dim) + self.residual(inp, coord)

    def query_points(self, feat: torch.Tensor, coord: torch.Tensor, cell: torch.Tensor,
                     batch_index: torch.Tensor, extra_fn: ExtraFn | None = None, skip: bool = True,
                     state=None, finish: bool = True):
        """Fast path on a flat list of points: coord/cell (N, 2) of images ``batch_index`` (N,) -> (N, out_dim).

        ``state`` is the result of ``prepare`` when the caller queries the same features repeatedly.
        ``finish=False`` returns (blended (N, term_dim), weight sum (N, 1)) before ``finish``.
        """
        _, _, h, w = feat.shape
        idx, rel, weights = self.neighbours(coord, (h, w))
        rel_cell = cell * torch.tensor([h, w], dtype=cell.dtype, device=cell.device)
        keep = self.computed_terms(weights, skip)
        projected = bool(getattr(extra_fn, "projected", False))
        if state is None:
            state = self.prepare(feat, int(keep.sum()))
        out = coord.new_zeros(coord.shape[0], self.term_dim)
        # the weights' sum is needed only where the last layer runs after the blend
        wsum = coord.new_zeros(coord.shape[0], 1) if not finish or self.term_dim != self.out_dim else None
        for k in range(idx.shape[0]):
            (n,) = keep[k].nonzero(as_tuple=True)
            if n.numel() == 0:
                continue
            b, cell_idx = batch_index[n], idx[k, n]
            extra = None
            if extra_fn is not None:
                extra = extra_fn(_cell_centre(cell_idx, (h, w), coord.dtype), b)
            pred = self.predict(state, b, cell_idx, rel[k, n], rel_cell[n], extra, projected)
            out = out.index_add(0, n, pred * weights[k, n].unsqueeze(-1))
            if wsum is not None:
                wsum = wsum.index_add(0, n, weights[k, n].unsqueeze(-1))
        return self.finish(out, wsum) if finish else (out, wsum)

    # what ``predict`` returns per term (out_dim) and how the weighted sum of terms becomes the output
    @property
    def term_dim(self) -> int:
        return self.out_dim

    def finish(self, blended: torch.Tensor, wsum: torch.Tensor) -> torch.Tensor:
        """blended (N, term_dim): sum over the computed terms of weight x term; wsum (N, 1) the weights'
        sum (None when term_dim == out_dim)."""
        return blended

    def residual(self, inp: torch.Tensor | None, coord: torch.Tensor) -> torch.Tensor | float:
        return 0.0

    def query_plain(self, feat, coord, cell, extra_fn=None, inp=None):  # pragma: no cover - abstract
        raise NotImplementedError


def sample_input(inp: torch.Tensor | None, coord: torch.Tensor) -> torch.Tensor | float:
    """Bilinear sample (border clamp) of the decoder's input image inp (B, 3, H, W) at coord (B, Q, 2) -> (B, Q, 3)."""
    if inp is None:
        return 0.0
    grid = coord.flip(-1).unsqueeze(1)
    return F.grid_sample(inp, grid, mode="bilinear", padding_mode="border", align_corners=False)[:, :, 0, :].permute(0, 2, 1)


def _nearest_index(c: torch.Tensor, n: int) -> torch.Tensor:
    """Cell index that ``grid_sample(mode='nearest', align_corners=False)`` picks for coordinate ``c``."""
    return ((c + 1) * n / 2).floor().clamp_(0, n - 1).long()


def _cell_centre(cell_idx: torch.Tensor, shape: tuple[int, int], dtype) -> torch.Tensor:
    h, w = shape
    row = torch.div(cell_idx, w, rounding_mode="floor")
    col = cell_idx - row * w
    return torch.stack([cell_centre(row, h), cell_centre(col, w)], dim=-1).to(dtype)


def plain_neighbour_lookup(feat: torch.Tensor, coord: torch.Tensor, vx: int, vy: int, local_ensemble: bool):
    """LIIF's literal lookup: nearest ``grid_sample`` of features and of cell-centre coordinates.

    Returns q_feat (B, Q, C), q_coord (B, Q, 2), rel (B, Q, 2) in cell units.
    """
    B, _, h, w = feat.shape
    rx, ry = 1.0 / h, 1.0 / w
    eps = _EPS_SHIFT if local_ensemble else 0.0
    feat_coord = make_coord((h, w), device=feat.device, flatten=False).to(feat.dtype)
    feat_coord = feat_coord.permute(2, 0, 1).unsqueeze(0).expand(B, 2, h, w)
    coord_ = coord.clone()
    coord_[..., 0] += vx * rx + eps
    coord_[..., 1] += vy * ry + eps
    coord_.clamp_(-1 + 1e-6, 1 - 1e-6)
    grid = coord_.flip(-1).unsqueeze(1)
    q_feat = F.grid_sample(feat, grid, mode="nearest", align_corners=False)[:, :, 0, :].permute(0, 2, 1)
    q_coord = F.grid_sample(feat_coord, grid, mode="nearest", align_corners=False)[:, :, 0, :].permute(0, 2, 1)
    rel = coord - q_coord
    rel = torch.stack([rel[..., 0] * h, rel[..., 1] * w], dim=-1)
    return q_feat, q_coord, rel


def plain_ensemble(preds: list[torch.Tensor], rels: list[torch.Tensor], local_ensemble: bool) -> torch.Tensor:
    areas = [(r[..., 0] * r[..., 1]).abs() + 1e-9 for r in rels]
    if local_ensemble:
        areas = areas[::-1]
    tot = sum(areas)
    return sum(p * (a / tot).unsqueeze(-1) for p, a in zip(preds, areas))
