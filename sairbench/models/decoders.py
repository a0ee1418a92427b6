"""Local implicit decoders: LIIF (Chen et al. 2021) and LTE (Lee & Jin 2022).

Both predict the value at a continuous coordinate from the four feature cells around it (local
ensemble, area weights). Each decoder has two paths that compute the same function:

* ``query_plain``: LIIF's published formulation, kept as the reference (``grid_sample`` lookups,
  one MLP pass per neighbour for every query).
* ``query``: the fast path. Two exact rewrites:

  1. At scale 1 with queries at pixel centres, three of the four area weights are ~2.5e-10 of
     the total (away from the last row/column). Neighbour terms whose normalised weight is below
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
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from sairbench.parts import register
from sairbench.models.local_ensemble import (LocalEnsembleDecoder, ensemble_shifts, mlp, plain_ensemble,
                                             plain_neighbour_lookup, sample_input)


@register("liif-decoder")
class LIIFDecoder(LocalEnsembleDecoder):
    """LIIF: MLP([unfold3x3(feat)_q, extra_q, rel_coord, rel_cell]) with a 4-neighbour area-weighted ensemble.

    Args:
        in_dim: C, channels of the appearance feature (0 for a model with no appearance feature).
        extra_dim: D, channels of the per-neighbour extra vector (SIR embedding), 0 for none.
        hidden: MLP hidden widths (the paper: 4 layers of 256).
    """

    def __init__(self, in_dim: int, extra_dim: int = 0, hidden: Sequence[int] = (256, 256, 256, 256),
                 out_dim: int = 3, feat_unfold: bool = True, cell_decode: bool = True,
                 local_ensemble: bool = True, skip_tol: float = 1e-6):
        super().__init__(local_ensemble, skip_tol)
        self.in_dim, self.extra_dim, self.out_dim = in_dim, extra_dim, out_dim
        self.feat_unfold, self.cell_decode = feat_unfold, cell_decode
        self.feat_dim = in_dim * 9 if feat_unfold else in_dim
        mlp_in = self.feat_dim + extra_dim + 2 + (2 if cell_decode else 0)
        self.imnet = mlp(mlp_in, hidden, out_dim)

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

    def widened_from(self, spec: dict, sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """This decoder's weights made from those of the decoder ``spec`` (its state dict ``sd``) of the
        same part and widths with a narrower extra input (LIIF when this is SAIR's AIR): every tensor
        as it is, the first layer's new extra columns zero, so the model starts as the one it came
        from. {} when the other decoder is not of that kind."""
        args = spec.get("args") or {}
        other_extra = int(args.get("extra_dim", 0))
        key = "imnet.0.weight"
        if (spec.get("name") != self.spec.get("name") or key not in sd or other_extra >= self.extra_dim
                or {k: tuple(v.shape) for k, v in sd.items() if k != key}
                != {k: tuple(v.shape) for k, v in self.state_dict().items() if k != key}):
            return {}
        old, f, e = sd[key], self.feat_dim, self.extra_dim
        if old.shape[1] != f + other_extra + (self.imnet[0].in_features - f - e):
            return {}
        new = old.new_zeros(self.imnet[0].weight.shape)
        new[:, :f + other_extra] = old[:, :f + other_extra]
        new[:, f + e:] = old[:, f + other_extra:]
        return {**sd, key: new}

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
        for vx, vy in ensemble_shifts(self.local_ensemble):
            q_feat, q_coord, rel = plain_neighbour_lookup(feat, coord, vx, vy, self.local_ensemble)
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
        return plain_ensemble(preds, rels, self.local_ensemble) + self.residual(inp, coord)


@register("liif-residual")
class LIIFResidualDecoder(LIIFDecoder):
    """LIIF that adds the bilinear sample of the decoder's input image (as LTE does), so its MLP
    predicts a correction to it; behind a ``hole-fill`` input stage, a correction to the fill.

    Same arguments and weights as ``liif-decoder``; the last layer starts at zero, so an untrained
    model returns its input.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        nn.init.zeros_(self.imnet[-1].weight)
        nn.init.zeros_(self.imnet[-1].bias)

    def residual(self, inp, coord):
        return sample_input(inp, coord)

    def fresh_when_warm_started(self, spec: dict) -> list[str]:
        """Weights (names within this decoder) that a warm start from the decoder ``spec`` describes
        must not copy: from a decoder that predicts colours, the zero last layer stays zero."""
        if spec.get("name") == "liif-residual":
            return []
        n = len(self.imnet) - 1
        return [f"imnet.{n}.weight", f"imnet.{n}.bias"]


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

    def spec_problem(self) -> str | None:
        """The Fourier space holds (row, column) frequency pairs: ``hidden_dim`` must be even."""
        return f"lte-decoder hidden_dim {self.hidden_dim} must be even" if self.hidden_dim % 2 else None

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
        for vx, vy in ensemble_shifts(self.local_ensemble):
            q_coef, q_coord, rel = plain_neighbour_lookup(coef, coord, vx, vy, self.local_ensemble)
            q_freq, _, _ = plain_neighbour_lookup(freq, coord, vx, vy, self.local_ensemble)
            x = self.fourier(q_coef.reshape(B * Q, -1), q_freq.reshape(B * Q, -1),
                             rel.reshape(B * Q, 2), rel_cell.reshape(B * Q, 2))
            if extra_fn is not None:
                bidx = torch.arange(B, device=coord.device).repeat_interleave(Q)
                x = torch.cat([x, extra_fn(q_coord.reshape(-1, 2), bidx)], dim=-1)
            preds.append(self.imnet(x).view(B, Q, -1))
            rels.append(rel)
        return plain_ensemble(preds, rels, self.local_ensemble) + self.residual(inp, coord)
