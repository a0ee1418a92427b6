"""Local implicit decoders: LIIF (Chen et al. 2021) and LTE (Lee & Jin 2022).

Both predict the value at a continuous coordinate from the four feature cells around it (local
ensemble, area weights). Each decoder has two paths that compute the same function:

* ``query_plain``: LIIF's published formulation, kept as the reference (``grid_sample`` lookups,
  one MLP pass per neighbour for every query).
* ``query``: the fast path. Two exact rewrites:

  1. At scale 1 with queries at pixel centres, three of the four area weights are ~1e-9 of the
     total (away from the last row/column). Neighbour terms whose normalised weight is below
     ``skip_tol`` are not computed at all.
  2. LIIF only: the first MLP layer's feature term ``W_f @ unfold3x3(feat)`` does not depend on
     the query offset, so it is a 3x3 convolution computed once per feature cell (or, when few
     cells are queried, on the gathered 3x3 neighbourhoods); coordinate/cell/extra terms are added
     per query.

``extra_fn(coord (N, 2), batch_index (N,)) -> (N, D)`` optionally supplies a per-neighbour vector
(the SIR embedding at the neighbour cell centre for SAIR); it is called only for the neighbour
terms that are computed. An ``extra_fn`` with ``projected = True`` returns the vector already
multiplied by the first layer's extra weight (``extra_weight()``, (hidden, D)), as SIR's cell table
does (see ``SemanticBranch.precompute_cells``).
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from sairbench.parts import register
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


def _shifts(local_ensemble: bool) -> list[tuple[int, int]]:
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
        for vx, vy in _shifts(self.local_ensemble):
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
        keep = weights > self.skip_tol if skip else torch.ones_like(weights, dtype=torch.bool)
        read = torch.zeros(batch, h * w, dtype=torch.bool, device=coord.device)
        read[batch_index.expand_as(idx)[keep], idx[keep]] = True
        return read.view(batch, h, w)

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
        keep = weights > self.skip_tol if skip else torch.ones_like(weights, dtype=torch.bool)
        projected = bool(getattr(extra_fn, "projected", False))
        if state is None:
            state = self.prepare(feat, int(keep.sum()))
        out = coord.new_zeros(coord.shape[0], self.term_dim)
        wsum = coord.new_zeros(coord.shape[0], 1)
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
            wsum = wsum.index_add(0, n, weights[k, n].unsqueeze(-1))
        return self.finish(out, wsum) if finish else (out, wsum)

    # what ``predict`` returns per term (out_dim) and how the weighted sum of terms becomes the output
    @property
    def term_dim(self) -> int:
        return self.out_dim

    def finish(self, blended: torch.Tensor, wsum: torch.Tensor) -> torch.Tensor:
        """blended (N, term_dim): sum over the computed terms of weight x term; wsum (N, 1) the weights' sum."""
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


def _plain_neighbour_lookup(feat: torch.Tensor, coord: torch.Tensor, vx: int, vy: int, local_ensemble: bool):
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


def _plain_ensemble(preds: list[torch.Tensor], rels: list[torch.Tensor], local_ensemble: bool) -> torch.Tensor:
    areas = [(r[..., 0] * r[..., 1]).abs() + 1e-9 for r in rels]
    if local_ensemble:
        areas = areas[::-1]
    tot = sum(areas)
    return sum(p * (a / tot).unsqueeze(-1) for p, a in zip(preds, areas))


@register("liif-decoder")
class LIIFDecoder(LocalEnsembleDecoder):
    """LIIF: MLP([unfold3x3(feat)_q, extra_q, rel_coord, rel_cell]) with a 4-neighbour area-weighted ensemble.

    Args:
        in_dim: C, channels of the appearance feature (0 for a model with no appearance feature).
        extra_dim: D, channels of the per-neighbour extra vector (SIR embedding), 0 for none.
        hidden: MLP hidden widths (the paper: 4 layers of 256).
        input_residual: add the bilinear sample of the input image (as LTE does), so the MLP predicts
            a correction to it; with a prefilled hole (``ImplicitInpainter(prefill=...)``), a
            correction to the prefill. The last layer then starts at zero: an untrained model
            returns its input.
    """

    def __init__(self, in_dim: int, extra_dim: int = 0, hidden: Sequence[int] = (256, 256, 256, 256),
                 out_dim: int = 3, feat_unfold: bool = True, cell_decode: bool = True,
                 local_ensemble: bool = True, skip_tol: float = 1e-6, input_residual: bool = False):
        super().__init__(local_ensemble, skip_tol)
        self.input_residual = input_residual
        self.in_dim, self.extra_dim, self.out_dim = in_dim, extra_dim, out_dim
        self.feat_unfold, self.cell_decode = feat_unfold, cell_decode
        self.feat_dim = in_dim * 9 if feat_unfold else in_dim
        mlp_in = self.feat_dim + extra_dim + 2 + (2 if cell_decode else 0)
        self.imnet = mlp(mlp_in, hidden, out_dim)
        if input_residual:
            nn.init.zeros_(self.imnet[-1].weight)
            nn.init.zeros_(self.imnet[-1].bias)

    # first-layer weight split: [feature | extra | rel_coord | rel_cell]
    def _w1(self):
        lin: nn.Linear = self.imnet[0]
        f, e = self.feat_dim, self.extra_dim
        W = lin.weight
        return W[:, :f], W[:, f:f + e], W[:, f + e:f + e + 2], W[:, f + e + 2:], lin.bias

    def prepare(self, feat: torch.Tensor, n_terms: int):
        """Per-image first-layer feature term, as a table (B, h*w, hidden) or a gather plan."""
        B, C, h, w = feat.shape
        if C == 0:
            return None
        Wf = self._w1()[0]
        ksize = 3 if self.feat_unfold else 1
        if n_terms >= B * h * w // 2:  # most cells are used: one convolution over the grid
            table = F.conv2d(feat, Wf.reshape(-1, C, ksize, ksize), padding=ksize // 2)
            return ("table", table.flatten(2).transpose(1, 2))
        return ("gather", feat)

    def _feature_term(self, state, b, idx):
        kind, data = state
        if kind == "table":
            return data[b, idx]
        feat = data
        B, C, h, w = feat.shape
        Wf = self._w1()[0]
        if not self.feat_unfold:
            return feat.flatten(2).transpose(1, 2)[b, idx] @ Wf.t()
        padded = F.pad(feat, (1, 1, 1, 1)).flatten(2).transpose(1, 2)  # (B, (h+2)(w+2), C)
        row = torch.div(idx, w, rounding_mode="floor")
        col = idx - row * w
        offs = torch.tensor([dy * (w + 2) + dx for dy in range(3) for dx in range(3)], device=idx.device)
        pos = (row * (w + 2) + col).unsqueeze(1) + offs  # (N, 9) top-left of the padded 3x3 window
        patches = padded[b.unsqueeze(1), pos]  # (N, 9, C)
        return patches.transpose(1, 2).reshape(len(idx), C * 9) @ Wf.t()

    @property
    def blend_hidden(self) -> bool:
        """Wide outputs (SIR's 512-d embedding from 256-wide layers): the ensemble is blended before
        the linear last layer, W (sum_k w_k h_k) + b sum_k w_k = sum_k w_k (W h_k + b), so the last
        layer runs once per query instead of once per term."""
        return self.out_dim > self.imnet[-1].in_features

    @property
    def term_dim(self) -> int:
        return self.imnet[-1].in_features if self.blend_hidden else self.out_dim

    def finish(self, blended, wsum):
        if not self.blend_hidden:
            return blended
        last: nn.Linear = self.imnet[-1]
        return torch.addmm(wsum * last.bias, blended, last.weight.t())

    def extra_weight(self):
        return self._w1()[1] if self.extra_dim else None

    def residual(self, inp, coord):
        return sample_input(inp, coord) if self.input_residual else 0.0

    def predict(self, state, b, idx, rel, rel_cell, extra, projected=False):
        _, We, Wr, Wc, bias = self._w1()
        h1 = rel @ Wr.t() + bias
        if state is not None:
            h1 = h1 + self._feature_term(state, b, idx)
        if self.cell_decode:
            h1 = h1 + rel_cell @ Wc.t()
        if extra is not None:
            h1 = h1 + (extra if projected else extra @ We.t())
        return self.imnet[1:-1](h1) if self.blend_hidden else self.imnet[1:](h1)

    def query_plain(self, feat, coord, cell, extra_fn=None, inp=None):
        """LIIF's reference formulation. feat (B, C, h, w), coord/cell (B, Q, 2) -> (B, Q, out_dim)."""
        B, C, h, w = feat.shape
        Q = coord.shape[1]
        if self.feat_unfold and C > 0:
            feat = F.unfold(feat, 3, padding=1).view(B, C * 9, h, w)
        preds, rels = [], []
        for vx, vy in _shifts(self.local_ensemble):
            q_feat, q_coord, rel = _plain_neighbour_lookup(feat, coord, vx, vy, self.local_ensemble)
            parts = [q_feat, ] if C > 0 else []
            if extra_fn is not None:
                bidx = torch.arange(B, device=coord.device).repeat_interleave(Q)
                parts.append(extra_fn(q_coord.reshape(-1, 2), bidx).view(B, Q, -1))
            parts.append(rel)
            if self.cell_decode:
                rel_cell = cell * torch.tensor([h, w], dtype=cell.dtype, device=cell.device)
                parts.append(rel_cell)
            inp_ = torch.cat(parts, dim=-1)
            preds.append(self.imnet(inp_.view(B * Q, -1)).view(B, Q, -1))
            rels.append(rel)
        return _plain_ensemble(preds, rels, self.local_ensemble) + self.residual(inp, coord)


@register("lte-decoder")
class LTEDecoder(LocalEnsembleDecoder):
    """LTE: amplitude (coef), frequency and phase estimators; MLP on ``coef * [cos, sin](pi (freq.rel + phase(cell)))``.

    Adds the bilinear upsampling of the decoder's input image as a residual, as LTE does.

    Args:
        in_dim: C, appearance feature channels. extra_dim: D, per-neighbour extra vector (SemLTE).
        hidden_dim: width of the Fourier space (LTE: 256); hidden: MLP hidden widths.
    """

    def __init__(self, in_dim: int, extra_dim: int = 0, hidden_dim: int = 256,
                 hidden: Sequence[int] = (256, 256, 256), out_dim: int = 3,
                 local_ensemble: bool = True, skip_tol: float = 1e-6):
        super().__init__(local_ensemble, skip_tol)
        self.in_dim, self.extra_dim, self.hidden_dim, self.out_dim = in_dim, extra_dim, hidden_dim, out_dim
        self.coef = nn.Conv2d(in_dim, hidden_dim, 3, padding=1)
        self.freq = nn.Conv2d(in_dim, hidden_dim, 3, padding=1)
        self.phase = nn.Linear(2, hidden_dim // 2, bias=False)
        self.imnet = mlp(hidden_dim + extra_dim, hidden, out_dim)

    def fourier(self, q_coef, q_freq, rel, rel_cell):
        """coef/freq (N, hidden_dim), rel/rel_cell (N, 2) -> amplitude-weighted Fourier features (N, hidden_dim)."""
        n = q_freq.shape[0]
        f = q_freq.view(n, self.hidden_dim // 2, 2)  # channel pairs (2k, 2k+1) = (row, col) frequency
        arg = (f * rel.unsqueeze(1)).sum(-1) + self.phase(rel_cell)
        return q_coef * torch.cat([torch.cos(math.pi * arg), torch.sin(math.pi * arg)], dim=-1)

    def prepare(self, feat, n_terms):
        return (self.coef(feat).flatten(2).transpose(1, 2), self.freq(feat).flatten(2).transpose(1, 2))

    def predict(self, state, b, idx, rel, rel_cell, extra, projected=False):
        # extra_weight() is None: SIR's cells hold plain embeddings for LTE (no projected terms)
        coef, freq = state
        x = self.fourier(coef[b, idx], freq[b, idx], rel, rel_cell)
        if extra is not None:
            x = torch.cat([x, extra], dim=-1)
        return self.imnet(x)

    def residual(self, inp, coord):
        return sample_input(inp, coord)

    def query_plain(self, feat, coord, cell, extra_fn=None, inp=None):
        """LTE's reference formulation. feat (B, C, h, w), coord/cell (B, Q, 2) -> (B, Q, out_dim)."""
        B, C, h, w = feat.shape
        Q = coord.shape[1]
        coef, freq = self.coef(feat), self.freq(feat)
        rel_cell = cell * torch.tensor([h, w], dtype=cell.dtype, device=cell.device)
        preds, rels = [], []
        for vx, vy in _shifts(self.local_ensemble):
            q_coef, q_coord, rel = _plain_neighbour_lookup(coef, coord, vx, vy, self.local_ensemble)
            q_freq, _, _ = _plain_neighbour_lookup(freq, coord, vx, vy, self.local_ensemble)
            x = self.fourier(q_coef.reshape(B * Q, -1), q_freq.reshape(B * Q, -1),
                             rel.reshape(B * Q, 2), rel_cell.reshape(B * Q, 2))
            if extra_fn is not None:
                bidx = torch.arange(B, device=coord.device).repeat_interleave(Q)
                x = torch.cat([x, extra_fn(q_coord.reshape(-1, 2), bidx)], dim=-1)
            preds.append(self.imnet(x).view(B, Q, -1))
            rels.append(rel)
        return _plain_ensemble(preds, rels, self.local_ensemble) + self.residual(inp, coord)
