"""ImplicitInpainter: appearance encoder + (optional) semantic branch + local implicit decoder.

One composition covers every implicit model of the paper (see ``sairbench_baselines.presets``):

    gen_feat(image, mask)  -> per-image state (appearance features, semantic grid, ...)
    query_rgb(state, coord, cell) -> RGB at any continuous coordinate

Images are in [0, 1] outside the model; inside, the masked image is mapped to [-1, 1] with holes
set to 0, and concatenated with the mask (4 channels), as the paper's AppEncoder expects.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from sairbench.inpainter import Inpainter
from sairbench.parts import make, register
from sairbench.models.coords import make_cell, make_coord

DEFAULT_CHUNK = 65536  # queries per forward pass at inference: bounds memory at any output size


@register("implicit-inpainter")
class ImplicitInpainter(nn.Module, Inpainter):
    """Implicit inpainting model built from part specs.

    Args:
        appearance: spec of the appearance encoder ({'name', 'args'}) or None (OUS).
        decoder: spec of the decoder; its ``in_dim`` must equal the appearance channels and its
            ``extra_dim`` the semantic embedding size (0 without semantics).
        semantic: spec of the semantic branch (see ``sairbench.models.sir``) or None.
        name: preset name, recorded in checkpoints.
    """

    any_size = True

    def __init__(self, appearance: dict | None, decoder: dict, semantic: dict | None = None, name: str = "implicit"):
        super().__init__()
        self.name = name
        self.spec = {"name": "implicit-inpainter",
                     "args": {"appearance": appearance, "decoder": decoder, "semantic": semantic, "name": name}}
        self.encoder = make(appearance)
        self.decoder = make(decoder)
        self.semantic = make(semantic)

    # -- LIIF's split -------------------------------------------------------------------
    def gen_feat(self, image: torch.Tensor, mask: torch.Tensor) -> dict[str, Any]:
        """image (B, 3, H, W) in [0, 1], mask (B, 1, H, W) 1 = missing -> per-image state."""
        mask = mask.to(image.dtype)
        inp = (image * 2 - 1) * (1 - mask)
        state: dict[str, Any] = {"inp": inp, "mask": mask}
        if self.encoder is not None:
            state["feat"] = self.encoder(torch.cat([inp, mask], dim=1))
        else:  # no appearance feature: the decoder's grid is the pixel grid, with no channels
            state["feat"] = inp.new_zeros(inp.shape[0], 0, *inp.shape[-2:])
        if self.semantic is not None:
            state["semantic"] = self.semantic.gen_feat(image * (1 - mask), mask)
        return state

    def prepare_queries(self, state: dict[str, Any]) -> dict[str, Any]:
        """Per-image work that every query chunk would otherwise repeat (inference).

        The decoder's per-cell tables (LIIF's first-layer convolution, LTE's coefficients) and the
        semantic embedding at every appearance cell (SIR evaluated once per cell, not once per
        neighbour term), so chunked queries at any output size cost only their MLP passes.
        """
        feat = state["feat"]
        state["decoder_state"] = self.decoder.prepare(feat, n_terms=1 << 62)
        if self.semantic is not None:
            self.semantic.precompute_cells(state["semantic"], tuple(feat.shape[-2:]))
        return state

    def query_rgb(self, state: dict[str, Any], coord: torch.Tensor, cell: torch.Tensor, fast: bool = True) -> torch.Tensor:
        """coord, cell (B, Q, 2) -> RGB in [-1, 1] space (B, Q, 3)."""
        extra_fn = None
        if self.semantic is not None:
            extra_fn = self.semantic.extra_fn(state["semantic"])
        if fast:
            return self.decoder.query(state["feat"], coord, cell, extra_fn=extra_fn, inp=state["inp"],
                                      state=state.get("decoder_state"))
        return self.decoder.query_plain(state["feat"], coord, cell, extra_fn=extra_fn, inp=state["inp"])

    def forward(self, image, mask, coord, cell, fast: bool = True) -> torch.Tensor:
        """Training entry: image/mask as in ``gen_feat``, coord/cell (B, Q, 2) -> (B, Q, 3) in [-1, 1]."""
        return self.query_rgb(self.gen_feat(image, mask), coord, cell, fast=fast)

    # -- the Inpainter interface ------------------------------------------------------------
    def auto_chunk(self, device: torch.device, budget_bytes: int | None = None) -> int:
        """Queries per pass that fit a memory budget.

        The budget is half the free GPU memory on CUDA, else ``$SAIRBENCH_QUERY_MEMORY_MB`` (default
        1024 MB). A query costs about 4 neighbour terms x the widest MLP layer x 4 live
        activations x 4 bytes (plus the same again for SIR when there is one).
        """
        import os

        if budget_bytes is None:
            if device.type == "cuda":
                budget_bytes = torch.cuda.mem_get_info(device)[0] // 2
            else:
                budget_bytes = int(os.environ.get("SAIRBENCH_QUERY_MEMORY_MB", "1024")) * 2**20
        widths = [m.out_features for m in self.modules() if isinstance(m, nn.Linear)] or [256]
        per_query = 4 * max(widths) * 4 * 4 * (2 if self.semantic is not None else 1)
        return int(min(max(budget_bytes // per_query, 4096), 1 << 21))

    @torch.inference_mode()
    def inpaint(self, image, mask, size=None, chunk: int | None = None, fast: bool = True,
                precision: str = "fp32"):
        """image (B, 3, H, W) in [0, 1], mask (B, 1, H, W) -> (B, 3, H', W') in [0, 1].

        ``chunk``: queries per pass (default: from the memory budget, see ``auto_chunk``).
        ``precision``: "fp32", or "fp16"/"bf16" autocast (fp16 is meant for GPUs).
        """
        self.eval()
        B, _, H, W = image.shape
        out_h, out_w = size if size is not None else (H, W)
        chunk = chunk or self.auto_chunk(image.device)
        dtypes = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}
        if precision not in dtypes:
            raise ValueError(f"precision must be one of {list(dtypes)}, not {precision!r}")
        with torch.autocast(image.device.type, dtype=dtypes[precision] or torch.float32,
                            enabled=dtypes[precision] is not None):
            state = self.gen_feat(image, mask)
            if fast:
                self.prepare_queries(state)
            coord_all = make_coord((out_h, out_w), device=image.device)
            cell_all = make_cell(coord_all, (out_h, out_w))
            out = image.new_empty(B, out_h * out_w, 3)
            per_pass = max(1, chunk // B)
            for s in range(0, coord_all.shape[0], per_pass):
                coord = coord_all[s:s + per_pass].unsqueeze(0).expand(B, -1, -1)
                cell = cell_all[s:s + per_pass].unsqueeze(0).expand(B, -1, -1)
                out[:, s:s + per_pass] = self.query_rgb(state, coord, cell, fast=fast).float()
        out = (out * 0.5 + 0.5).clamp_(0, 1)
        return out.view(B, out_h, out_w, 3).permute(0, 3, 1, 2).contiguous()

    def to(self, *args, **kwargs):  # nn.Module.to, not Inpainter.to
        return nn.Module.to(self, *args, **kwargs)
