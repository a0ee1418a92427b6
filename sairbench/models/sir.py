"""Semantic branch of SAIR: a frozen semantic encoder and SIR, the semantic implicit representation.

SIR (paper Eq. 4) is a LIIF-style local implicit function over the embedding grid of the MASKED
image: given any continuous coordinate it returns a text-aligned embedding, holes included. Its
input per neighbour cell is the cell's embedding neighbourhood, the fraction of the cell that is
missing, the relative coordinate and the cell size. A few convolutions over [embedding, missing
fraction] (``context_layers``, 0 = exactly Eq. 4) widen what a cell sees, so that large holes can be
filled from their surroundings.

The branch answers AIR through ``extra_fn(state)``: a function of (coord (N, 2), batch_index (N,))
evaluated only at the neighbour cells AIR actually computes. Embeddings passed to AIR are
L2-normalised (text-aligned embeddings carry their meaning in their direction).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

import sairbench.semantic  # noqa: F401  (registers the encoders SemanticBranch builds)
from sairbench.parts import make, register
from sairbench.models.decoders import LIIFDecoder


DENSE_CHUNK = 65536  # SIR points per pass when it is evaluated at every (or many) cells or pixels


@register("sir")
class SIR(nn.Module):
    """Semantic implicit representation.

    Args:
        embed_dim: C of the semantic encoder. hidden: MLP widths (the paper: 4 x 256).
        context_layers: 3x3 convolutions (dilations 1, 2, 4, ...) over [embedding, missing
            fraction] before the implicit MLP; width ``context_width``.
    """

    def __init__(self, embed_dim: int, hidden: Sequence[int] = (256, 256, 256, 256), context_layers: int = 3,
                 context_width: int = 128):
        super().__init__()
        self.embed_dim = embed_dim
        layers: list[nn.Module] = []
        ch = embed_dim + 1
        for i in range(context_layers):
            d = 2 ** i
            layers += [nn.Conv2d(ch, context_width, 3, padding=d, dilation=d), nn.ReLU(inplace=True)]
            ch = context_width
        self.context = nn.Sequential(*layers)
        self.feat_dim = ch
        self.decoder = LIIFDecoder(ch, hidden=hidden, out_dim=embed_dim)

    def gen_feat(self, emb: torch.Tensor, missing: torch.Tensor) -> torch.Tensor:
        """emb (B, C, h, w) of the masked image, missing (B, 1, h, w) in [0, 1] -> feature (B, F, h, w)."""
        x = torch.cat([emb * (1 - missing), missing], dim=1)
        return self.context(x) if len(self.context) else x

    def query_points(self, feat, coord, cell, batch_index) -> torch.Tensor:
        """feat (B, F, h, w); coord/cell (N, 2); batch_index (N,) -> embeddings (N, C)."""
        return self.decoder.query_points(feat, coord, cell, batch_index)


def bilinear_points(grid: torch.Tensor, coord: torch.Tensor, batch_index: torch.Tensor) -> torch.Tensor:
    """Bilinear sample (align_corners=False, border clamp) of grid (B, C, h, w) at coord (N, 2) of images batch_index (N,) -> (N, C)."""
    B, C, h, w = grid.shape
    flat = grid.flatten(2).transpose(1, 2)  # (B, h*w, C)
    y = ((coord[:, 0] + 1) * h - 1) / 2
    x = ((coord[:, 1] + 1) * w - 1) / 2
    y0, x0 = y.floor(), x.floor()
    out = 0
    for dy in (0, 1):
        for dx in (0, 1):
            yy, xx = y0 + dy, x0 + dx
            wgt = (1 - (y - yy).abs()) * (1 - (x - xx).abs())
            idx = yy.clamp(0, h - 1).long() * w + xx.clamp(0, w - 1).long()
            out = out + flat[batch_index, idx] * wgt.unsqueeze(-1)
    return out


@register("semantic-branch")
class SemanticBranch(nn.Module):
    """Frozen semantic encoder + filler ("sir" or "none" = NFS: the masked embedding upsampled).

    Args:
        encoder: spec of a SemanticEncoder part ("indomain-encoder", "clip-dense", "sam-encoder").
        filler: "sir" or "none". sir: spec args of SIR (embed_dim filled in).
        train_sir: whether SIR receives gradients from the colour loss (joint training); the
            default two-stage schedule trains SIR first and then freezes it.
    """

    spec_parts = ("encoder",)  # arguments that are part specs
    spec_kwargs = {"sir": ("sir", ("embed_dim",))}  # arguments that are another part's arguments (less those given here)
    spec_choices = {"filler": ("sir", "none")}

    def __init__(self, encoder: dict, filler: str = "sir", sir: dict | None = None, train_sir: bool = False):
        super().__init__()
        self.encoder = make(encoder)
        self.encoder.freeze()
        self.encoder_name = getattr(self.encoder, "name", encoder["name"])
        self.embed_dim = self.encoder.embed_dim
        self.filler = filler
        self.sir = SIR(self.embed_dim, **(sir or {})) if filler == "sir" else None
        self.set_sir_trainable(train_sir)

    @property
    def external_weights(self) -> bool:
        """True when the encoder's weights come from elsewhere (CLIP, SAM) and are not stored."""
        return bool(getattr(self.encoder, "external_weights", False))

    def set_sir_trainable(self, flag: bool) -> None:
        self.train_sir = flag
        if self.sir is not None:
            for p in self.sir.parameters():
                p.requires_grad_(flag)

    @property
    def reads_labels(self) -> bool:
        """True when the semantic source is the ground-truth label map (``label-embedding``)."""
        return bool(getattr(self.encoder, "reads_labels", False))

    def embed(self, masked_image: torch.Tensor, mask: torch.Tensor | None,
              labels: torch.Tensor | None = None) -> torch.Tensor:
        """Frozen encoder: (B, 3, H, W) in [0, 1] -> (B, C, h, w); ``labels`` (B, H, W): the label
        maps, read only by a source that ``reads_labels``.

        With ``$SAIRBENCH_FEATURE_CACHE=1`` the result is cached per image (and mask), keyed by the
        encoder's spec and weights digest (``sairbench.cache.cached_batch``)."""
        from sairbench import cache
        from sairbench.digest import tensor_digest

        with torch.no_grad():
            if self.reads_labels:  # a table lookup: nothing worth caching
                return self.encoder(masked_image, mask, labels=labels)
            if not cache.feature_cache_enabled():
                return self.encoder(masked_image, mask)
            encoder_key = self.encoder_key()
            keys = [{"encoder": encoder_key, "image": tensor_digest(masked_image[i]),
                     "mask": None if mask is None else tensor_digest(mask[i])} for i in range(len(masked_image))]
            out = cache.cached_batch("features", keys, lambda: self.encoder(masked_image, mask))
            return out.to(masked_image.device)

    def encoder_key(self) -> str:
        """What identifies the frozen encoder's outputs: its spec and a digest of its weights."""
        if getattr(self, "_encoder_key", None) is None:
            from sairbench.cache import key_digest
            from sairbench.digest import weights_digest

            digest = getattr(self.encoder, "weights_sha256", None) or weights_digest(self.encoder.state_dict())
            spec = getattr(self.encoder, "spec", None) or {"class": type(self.encoder).__name__}
            self._encoder_key = key_digest({"spec": spec, "weights": digest})
        return self._encoder_key

    def gen_feat(self, masked_image: torch.Tensor, mask: torch.Tensor,
                 labels: torch.Tensor | None = None) -> dict[str, Any]:
        """masked_image (B, 3, H, W), mask (B, 1, H, W), labels (B, H, W) or None -> per-image state."""
        emb = self.embed(masked_image, mask, labels)
        missing = F.adaptive_avg_pool2d(mask.to(emb.dtype), emb.shape[-2:])
        state: dict[str, Any] = {"emb": emb, "missing": missing, "size": tuple(masked_image.shape[-2:])}
        if self.sir is not None:
            with torch.set_grad_enabled(torch.is_grad_enabled() and self.train_sir):
                state["feat"] = self.sir.gen_feat(emb, missing)
        return state

    def query(self, state: dict[str, Any], coord: torch.Tensor, batch_index: torch.Tensor) -> torch.Tensor:
        """Raw (unnormalised) embedding at coord (N, 2) of images batch_index (N,) -> (N, C)."""
        if self.sir is None:
            return bilinear_points(state["emb"], coord, batch_index)
        H, W = state["size"]
        cell = coord.new_tensor([2.0 / H, 2.0 / W]).expand_as(coord)
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.train_sir):
            return self.sir.query_points(state["feat"], coord, cell, batch_index)

    def precompute_cells(self, state: dict[str, Any], grid: tuple[int, int], where: torch.Tensor | None = None,
                         project: torch.Tensor | None = None) -> None:
        """Store the normalised embedding at the cell centres of the (h, w) grid AIR queries on.

        ``where`` (B, h, w) bool: only those cells (the ones AIR will read, e.g. the hole's); the
        table holds one row per such cell and a (B, h*w) map from cell to row. None: every cell.
        ``project`` (hidden, C): AIR's first-layer weight on the embedding; the table then holds
        ``project @ e / |e|`` (see ``_projector``) and ``extra_fn`` says so (``projected``)."""
        from sairbench.models.coords import make_coord

        B = state["emb"].shape[0]
        flat = torch.ones(B, grid[0] * grid[1], dtype=torch.bool, device=state["emb"].device) if where is None \
            else where.reshape(B, -1)
        b, idx = flat.nonzero(as_tuple=True)
        rows = torch.zeros(B, flat.shape[1], dtype=torch.long, device=flat.device)
        rows[b, idx] = torch.arange(len(idx), device=flat.device)
        coord = make_coord(grid, device=flat.device)[idx]
        if not len(idx):
            table = state["emb"].new_zeros(1, self.embed_dim if project is None else project.shape[0])
        elif project is None:
            table = self._query_chunked(state, coord, b, lambda c, bb: F.normalize(self.query(state, c, bb), dim=-1))
        else:
            table = self._query_chunked(state, coord, b, self._projector(state, project))
        state["cells"] = (table, rows, grid, project is not None)

    def _projector(self, state: dict[str, Any], project: torch.Tensor):
        """(coord (N, 2), batch_index (N,)) -> ``project @ normalize(e)`` (N, hidden), without forming e
        (N, C) when SIR blends its ensemble before the last layer: with e = W h + s b (h the blended
        hidden state, s the weight sum), project @ e = (project W) h + s project b, and |e|^2 =
        h'W'Wh + 2s b'Wh + s^2 b'b (in fp32). Two hidden-wide products per cell instead of two
        embedding-wide ones; the fused matrices are formed once."""
        dec = self.sir.decoder if self.sir is not None else None
        if dec is None or not dec.blend_hidden:
            return lambda coord, bidx: F.normalize(self.query(state, coord, bidx), dim=-1) @ project.t()
        H, W = state["size"]
        last: nn.Linear = dec.imnet[-1]
        Wl, bl = last.weight.float(), last.bias.float()
        fused_w, fused_b = project @ last.weight, project @ last.bias
        gram, cross, bias2 = Wl.t() @ Wl, Wl.t() @ bl, bl @ bl

        def projected(coord, bidx):
            cell = coord.new_tensor([2.0 / H, 2.0 / W]).expand_as(coord)
            h, s = dec.query_points(state["feat"], coord, cell, bidx, finish=False)
            num = h @ fused_w.to(h.dtype).t() + s * fused_b.to(h.dtype)
            with torch.autocast(h.device.type, enabled=False):
                hf, sf = h.float(), s.float()
                norm2 = ((hf @ gram) * hf).sum(-1, keepdim=True) + 2 * sf * (hf @ cross).unsqueeze(-1) + sf.square() * bias2
            return num / norm2.clamp_min(0).sqrt().clamp_min(1e-12).to(num.dtype)

        return projected

    def extra_fn(self, state: dict[str, Any], cells: bool = True):
        """(coord (N, 2) of AIR's neighbour cell centres, batch_index (N,)) -> normalised embeddings (N, C),
        or AIR's first-layer term of them (N, hidden) when the cell table holds that (``fn.projected``).
        ``cells=False``: always embeddings, computed by SIR (AIR's reference path)."""
        if cells and "cells" in state:
            from sairbench.models.coords import coord_to_index

            table, rows, grid, projected = state["cells"]

            def from_table(coord, batch_index):
                return table[rows[batch_index, coord_to_index(coord, grid)]]

            from_table.projected = projected
            return from_table
        return lambda coord, batch_index: F.normalize(self.query(state, coord, batch_index), dim=-1)

    def dense(self, state: dict[str, Any], size: tuple[int, int]) -> torch.Tensor:
        """Embeddings at every pixel centre of an (H, W) grid: (B, C, H, W)."""
        from sairbench.models.coords import make_coord

        B = state["emb"].shape[0]
        coord = make_coord(size, device=state["emb"].device).repeat(B, 1)
        bidx = torch.arange(B, device=coord.device).repeat_interleave(size[0] * size[1])
        out = self._query_chunked(state, coord, bidx)
        return out.view(B, size[0], size[1], -1).permute(0, 3, 1, 2)

    def _query_chunked(self, state: dict[str, Any], coord: torch.Tensor, bidx: torch.Tensor, fn=None) -> torch.Tensor:
        """``fn`` (default: ``query``) over (N, 2) points in passes of DENSE_CHUNK points (bounded memory at any size)."""
        fn = fn or (lambda c, b: self.query(state, c, b))
        if coord.shape[0] <= DENSE_CHUNK:
            return fn(coord, bidx)
        return torch.cat([fn(coord[s:s + DENSE_CHUNK], bidx[s:s + DENSE_CHUNK]) for s in range(0, coord.shape[0], DENSE_CHUNK)])

    def state_dict(self, *args, **kwargs):
        sd = super().state_dict(*args, **kwargs)
        if self.external_weights:  # CLIP/SAM weights are loaded from their own files, not stored
            prefix = kwargs.get("prefix", args[1] if len(args) > 1 else "")
            for k in [k for k in sd if k.startswith(prefix + "encoder.")]:
                del sd[k]
        return sd
