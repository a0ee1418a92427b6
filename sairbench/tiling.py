"""Bounded memory: the pixel budget every ``inpaint`` checks, and tiled inference for implicit models.

**Pixel budget.** An input image and an output image may each have at most ``max_pixels()``
pixels: ``--max-pixels`` of ``sairbench inpaint`` (through ``pixel_budget``), else
``$SAIRBENCH_MAX_PIXELS``, else 16 megapixels (``DEFAULT_MAX_PIXELS``). Above it the model
refuses in one line saying how to raise it. Implicit models whose semantic branch sees the whole
image (SAIR and the other semantic presets) are not tiled; their input may have at most
``max_pixels() // UNTILED_FACTOR`` pixels (1 megapixel by default: SAIR tiny peaks at 3.4 GiB there).

**Tiles.** An implicit model without a semantic branch (LIIF, LTE, EDSR-wo) on an input of more
than ``TILE_ABOVE`` pixels runs the encoder and decoder tile by tile: cores of ``TILE`` x ``TILE``
input pixels, each encoded with a margin of at least the encoder's receptive radius plus the
decoder's reach (``model_margin``), so every output pixel sees the same features as without
tiles (up to float rounding; tested). Tile offsets are multiples of the encoder's stride, and an
input whose sides are not multiples of it is padded (replicated) on the bottom/right for the
tiled path only. Memory then grows with the tile, not the image: the input, mask and output
tensors (16 bytes per input pixel, 12 per output pixel) are the only whole-image buffers.
"""

from __future__ import annotations

import math
import os
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F

from sairbench.errors import SairbenchError

DEFAULT_MAX_PIXELS = 16_000_000
ENV_MAX_PIXELS = "SAIRBENCH_MAX_PIXELS"
UNTILED_FACTOR = 16  # models that cannot tile get 1/16 of the budget (SAIR: ~2.9 kB per input pixel)
TILE = 512  # core side of a tile, input pixels
TILE_ABOVE = 1 << 20  # inputs with more pixels than this are tiled (models that can)

_budget: ContextVar[int | None] = ContextVar("sairbench_max_pixels", default=None)
_on_queries: ContextVar = ContextVar("sairbench_on_queries", default=None)  # progress: called with queries done


@contextmanager
def query_progress(callback) -> Iterator[None]:
    """Inside the block, ``callback(n)`` is called after every pass of n output pixels (progress bars)."""
    token = _on_queries.set(callback)
    try:
        yield
    finally:
        _on_queries.reset(token)


def _report(n: int) -> None:
    hook = _on_queries.get()
    if hook is not None:
        hook(n)


# ---------------------------------------------------------------- the budget


def parse_pixels(text: str | int, what: str = "--max-pixels") -> int:
    """A positive pixel count: ``16000000``, ``16e6`` or ``16M``."""
    s = str(text).strip()
    try:
        value = float(s[:-1]) * 1e6 if s[-1:] in ("M", "m") else float(s)
    except (ValueError, IndexError):
        value = float("nan")
    if not (value >= 1 and value == value and value < 1e15):
        raise SairbenchError(f"{what} {text!r} is not a positive number of pixels; use e.g. 16000000, 16e6 or 16M.")
    return int(round(value))


def max_pixels() -> int:
    """The pixel budget in force: ``pixel_budget`` (the CLI's --max-pixels), else $SAIRBENCH_MAX_PIXELS, else 16 MP."""
    value = _budget.get()
    if value is not None:
        return value
    env = os.environ.get(ENV_MAX_PIXELS)
    if env:
        return parse_pixels(env, f"${ENV_MAX_PIXELS}")
    return DEFAULT_MAX_PIXELS


@contextmanager
def pixel_budget(limit: int | None) -> Iterator[None]:
    """Use ``limit`` as the pixel budget inside the block (None: keep the one in force)."""
    token = _budget.set(limit if limit is not None else _budget.get())
    try:
        yield
    finally:
        _budget.reset(token)


def pixels_text(n: int) -> str:
    """``16.0 megapixels`` (or ``200 pixels`` below 0.1 MP)."""
    return f"{n / 1e6:.1f} megapixels" if n >= 100_000 else f"{n} pixels"


def check_pixels(h: int, w: int, what: str, limit: int | None = None, why: str = "") -> None:
    """Refuse an (h, w) ``what`` with more pixels than ``limit`` (default: ``max_pixels()``)."""
    limit = max_pixels() if limit is None else limit
    if h * w > limit:
        raise SairbenchError(
            f"{what} is {w}x{h} = {pixels_text(h * w)}, above the pixel budget of {pixels_text(limit)}{why}; "
            f"downscale it, or raise the budget with --max-pixels or ${ENV_MAX_PIXELS} (peak memory grows with it).")


# ---------------------------------------------------------------- geometry


def stride_of(module: nn.Module | None) -> int:
    """Product of the strides of ``module``'s convolutions (its downsampling factor); 1 for None."""
    s = 1
    for m in module.modules() if module is not None else ():
        if isinstance(m, nn.Conv2d):
            s *= max(m.stride)
    return s


def receptive_radius(module: nn.Module | None) -> int:
    """Input pixels on each side that can change one output cell of a convolutional ``module``.

    Its convolutions taken in order as one chain (skip connections only shorten paths): a conv
    of kernel k and dilation d adds ceil((k-1)d/2) cells of its input grid, a transposed conv of
    stride s adds ceil((k-1)/2s) cells of its input grid, a nearest upsampling one cell of its input grid.
    """
    jump, radius = 1.0, 0.0
    for m in module.modules() if module is not None else ():
        if isinstance(m, nn.Upsample):
            radius += jump
            jump /= float(m.scale_factor if not isinstance(m.scale_factor, tuple) else max(m.scale_factor))
        elif isinstance(m, nn.ConvTranspose2d):
            k, s = max(m.kernel_size), max(m.stride)
            radius += math.ceil((k - 1) / (2 * s)) * jump
            jump /= s
        elif isinstance(m, nn.Conv2d):
            k, d, s = max(m.kernel_size), max(m.dilation), max(m.stride)
            radius += math.ceil((k - 1) * d / 2) * jump
            jump *= s
    return int(math.ceil(radius))


def model_margin(model: nn.Module) -> int:
    """Tile margin of an implicit model: encoder radius + decoder convolutions + 3x3 unfold and the
    neighbour cell of the local ensemble (+ the residual's bilinear tap), a multiple of its stride."""
    align = stride_of(model.encoder)
    margin = receptive_radius(model.encoder) + receptive_radius(model.decoder) + 3
    return -(-margin // align) * align


def axis_tiles(n: int, core: int, margin: int, align: int) -> list[tuple[int, int, int, int]]:
    """Tiles of an axis of ``n`` (a multiple of ``align``) pixels: (core start, core end, extent start, extent end)."""
    core = max(align, core // align * align)
    out = []
    for c0 in range(0, n, core):
        c1 = min(n, c0 + core)
        out.append((c0, c1, max(0, c0 - margin), min(n, c1 + margin)))
    return out


def first_output(c: int, n_in: int, n_out: int) -> int:
    """First output index whose pixel centre lies at or after input position ``c`` (exact integers)."""
    return max(0, -((n_in - 2 * c * n_out) // (2 * n_in)))


def axis_coords(idx: torch.Tensor, n_in: int, n_out: int, e0: int, e1: int) -> torch.Tensor:
    """Coordinates, in the frame of the input extent [e0, e1) (in [-1, 1]), of output pixels ``idx``
    of an axis with ``n_in`` input and ``n_out`` output pixels."""
    from sairbench.models.coords import cell_centre

    if e0 == 0 and e1 == n_in:
        return cell_centre(idx, n_out)  # the whole image: exactly LIIF's grid
    if n_in == n_out:
        return cell_centre(idx - e0, e1 - e0)  # scale 1: pixel centres, exact
    u = (idx.double() + 0.5) * (n_in / n_out) - e0
    return (u * (2.0 / (e1 - e0)) - 1).float()


# ---------------------------------------------------------------- inference


def query_block(model, state, out: torch.Tensor, rows: tuple[int, int], cols: tuple[int, int],
                extent: tuple[int, int, int, int], n_in: tuple[int, int], per_pass: int, fast: bool) -> None:
    """Fill out[:, :, r0:r1, c0:c1] (B, 3, H', W') from ``state`` (the features of the input extent
    (y0, y1, x0, x1)), ``per_pass`` queries per pass."""
    B, _, out_h, out_w = out.shape
    (r0, r1), (c0, c1), (y0, y1, x0, x1) = rows, cols, extent
    dev = out.device
    ys = axis_coords(torch.arange(r0, r1, device=dev), n_in[0], out_h, y0, y1)
    xs = axis_coords(torch.arange(c0, c1, device=dev), n_in[1], out_w, x0, x1)
    cy = 2.0 / out_h if (y0, y1) == (0, n_in[0]) else 2.0 * n_in[0] / out_h / (y1 - y0)
    cx = 2.0 / out_w if (x0, x1) == (0, n_in[1]) else 2.0 * n_in[1] / out_w / (x1 - x0)
    cell = torch.tensor([cy, cx], device=dev)
    nc = c1 - c0
    rows_per, cols_per = max(1, per_pass // nc), min(nc, per_pass)
    for r in range(0, r1 - r0, rows_per):
        for c in range(0, nc, cols_per):
            y, x = ys[r:r + rows_per], xs[c:c + cols_per]
            coord = torch.stack(torch.meshgrid(y, x, indexing="ij"), dim=-1).reshape(1, -1, 2).expand(B, -1, -1)
            pred = model.query_rgb(state, coord, cell.expand_as(coord), fast=fast).float()
            pred = (pred * 0.5 + 0.5).clamp_(0, 1).view(B, len(y), len(x), 3).permute(0, 3, 1, 2)
            out[:, :, r0 + r:r0 + r + len(y), c0 + c:c0 + c + len(x)] = pred
            _report(len(y) * len(x))


def run_tiles(model, image: torch.Tensor, mask: torch.Tensor, out_size: tuple[int, int], chunk: int,
              fast: bool, tile: int | None, margin: int | None = None, labels=None) -> torch.Tensor:
    """(B, 3, H', W') in [0, 1] of an implicit model, tile by tile (``tile`` = core side; None or an
    input of at most ``TILE_ABOVE`` pixels: one pass over the whole image). ``labels`` (B, H, W):
    for a model that reads label maps (semantic, so never tiled)."""
    B, _, H, W = image.shape
    out_h, out_w = out_size
    out = image.new_empty(B, 3, out_h, out_w, dtype=torch.float32)
    per_pass = max(1, chunk // B)
    if not tile or H * W <= TILE_ABOVE:
        state = model.gen_feat(image, mask, labels=labels)
        if fast:
            model.prepare_queries(state)
        query_block(model, state, out, (0, out_h), (0, out_w), (0, H, 0, W), (H, W), per_pass, fast)
        return out
    align = stride_of(model.encoder)
    margin = model_margin(model) if margin is None else -(-margin // align) * align
    ph, pw = -H % align, -W % align
    if ph or pw:  # stride-aligned tiles: pad bottom/right (replicate) for the tiled path
        image = F.pad(image, (0, pw, 0, ph), mode="replicate")
        mask = F.pad(mask.to(image.dtype), (0, pw, 0, ph), mode="replicate")
    # a prefill that reaches across the image is computed once over it: tiles must not see a different one
    reaches_across = getattr(getattr(model, "input_fill", None), "reaches_across", False)
    values = model.encoder_values(image, mask) if reaches_across else None
    for cy0, cy1, y0, y1 in axis_tiles(H + ph, tile, margin, align):
        r0, r1 = first_output(min(cy0, H), H, out_h), first_output(min(cy1, H), H, out_h)
        for cx0, cx1, x0, x1 in axis_tiles(W + pw, tile, margin, align):
            c0, c1 = first_output(min(cx0, W), W, out_w), first_output(min(cx1, W), W, out_w)
            if r1 <= r0 or c1 <= c0:
                continue
            share = None if values is None else values[..., y0:y1, x0:x1]
            state = model.gen_feat(image[..., y0:y1, x0:x1], mask[..., y0:y1, x0:x1], share)
            if fast:
                model.prepare_queries(state)
            query_block(model, state, out, (r0, r1), (c0, c1), (y0, y1, x0, x1), (H, W), per_pass, fast)
            del state
    return out


def run_hole(model, image: torch.Tensor, mask: torch.Tensor, chunk: int, labels=None) -> torch.Tensor:
    """(B, 3, H, W) in [0, 1]: the model's colours at the missing pixels only, the input elsewhere.

    Every image's hole pixels are queried as one list (lists of unequal length are padded with
    the image's first hole pixel, whose answer is discarded); per query the work is the same as
    in :func:`run_tiles`. SIR is evaluated only at the cells these queries read
    (``decoder.read_cells``: at scale 1, the hole's own cells)."""
    from sairbench.models.coords import cell_centre

    B, _, H, W = image.shape
    hole = mask[:, 0] > 0.5
    out = image.float().clone()
    counts = hole.flatten(1).sum(1)
    if int(counts.max()) == 0:
        return out
    state = model.gen_feat(image, mask, labels=labels)
    Q = int(counts.max())
    index = torch.zeros(B, Q, dtype=torch.long, device=image.device)
    for b in range(B):
        (flat,) = hole[b].flatten().nonzero(as_tuple=True)
        if len(flat):
            index[b, :len(flat)] = flat
            index[b, len(flat):] = flat[0]
    rows, cols = index // W, index % W
    coord = torch.stack([cell_centre(rows, H), cell_centre(cols, W)], dim=-1)
    cell = torch.tensor([2.0 / H, 2.0 / W], device=image.device).expand_as(coord)
    bidx = torch.arange(B, device=image.device).repeat_interleave(Q)
    read = model.decoder.read_cells(coord.reshape(-1, 2), bidx, tuple(state["feat"].shape[-2:]), B)
    model.prepare_queries(state, cells=read)
    per_pass = max(1, chunk // B)
    flat_out = out.permute(0, 2, 3, 1).reshape(B, H * W, 3)
    for s in range(0, Q, per_pass):
        pred = model.query_rgb(state, coord[:, s:s + per_pass], cell[:, s:s + per_pass], fast=True).float()
        pred = (pred * 0.5 + 0.5).clamp_(0, 1)
        for b in range(B):
            n = int(counts[b]) - s
            if n > 0:
                flat_out[b, index[b, s:s + min(n, per_pass)]] = pred[b, :min(n, per_pass)]
        _report(min(per_pass, Q - s))
    return flat_out.view(B, H, W, 3).permute(0, 3, 1, 2).contiguous()
