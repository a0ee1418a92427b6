"""ImplicitInpainter: appearance encoder + (optional) semantic branch + local implicit decoder.

One composition covers every implicit model of the paper (see ``sairbench_baselines.presets``):

    gen_feat(image, mask)  -> per-image state (appearance features, semantic grid, ...)
    query_rgb(state, coord, cell) -> RGB at any continuous coordinate

Images are in [0, 1] outside the model; inside, the masked image is mapped to [-1, 1] with holes
set to 0, and concatenated with the mask (4 channels), as the paper's AppEncoder expects. An
optional input stage (``input_fill``, a part such as ``hole-fill``) replaces the zeros of the hole
before the encoder sees them; the paper's models have none.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from sairbench.errors import SairbenchError
from sairbench.inpainter import Inpainter
from sairbench.parts import make, register

PRECISIONS = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}
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
        input_fill: spec of a part ``(values (B, 3, H, W), missing (B, 1, H, W)) -> values`` applied
            to the encoder's input values (holes zeroed), or None (the paper: the encoder sees
            zeros). A part with ``reaches_across`` True looks at the whole image, so tiled inference
            computes it once (``encoder_values``) and hands each tile its share.

    Inference settings such as the self-ensemble are no part of the model: they wrap it
    (``sairbench.models.self_ensemble``).
    """

    any_size = True
    spec_parts = ("appearance", "decoder", "semantic", "input_fill")  # arguments that are part specs

    def __init__(self, appearance: dict | None, decoder: dict, semantic: dict | None = None, name: str = "implicit",
                 input_fill: dict | None = None):
        super().__init__()
        self.name = name
        args = {"appearance": appearance, "decoder": decoder, "semantic": semantic, "name": name}
        if input_fill is not None:  # the paper's models have no input_fill key in their spec
            args["input_fill"] = input_fill
        self.spec = {"name": "implicit-inpainter", "args": args}
        self.encoder = make(appearance)
        self.decoder = make(decoder)
        self.semantic = make(semantic)
        self.input_fill = make(input_fill)

    def spec_problem(self) -> str | None:
        """Why the parts this model was built from cannot work together (None: they can): the
        encoder reads 4 channels, the decoder reads the encoder's channels and the semantic
        embedding and answers 3 colours. Checked on the model a checkpoint describes before it is built."""
        enc = self.encoder
        in_channels = ((self.spec["args"].get("appearance") or {}).get("args") or {}).get("in_channels", 4)
        enc_dim = int(getattr(enc, "out_dim", 0)) if enc is not None else 0
        sem_dim = int(self.semantic.embed_dim) if self.semantic is not None else 0
        d = self.decoder
        for what, found, want in (("appearance in_channels", in_channels, 4),
                                  ("decoder in_dim", getattr(d, "in_dim", enc_dim), enc_dim),
                                  ("decoder extra_dim", getattr(d, "extra_dim", sem_dim), sem_dim),
                                  ("decoder out_dim", getattr(d, "out_dim", 3), 3)):
            if found != want:
                return f"{what} is {found}, but the model needs {want}"
        return None

    def fresh_when_warm_started(self, spec: dict) -> list[str]:
        """Weights a warm start from the model ``spec`` describes must not copy: those the decoder
        names (its ``fresh_when_warm_started`` of the other model's decoder spec)."""
        fresh = getattr(self.decoder, "fresh_when_warm_started", None)
        other = (spec.get("args") or {}).get("decoder") or {}
        return [f"decoder.{k}" for k in fresh(other)] if fresh is not None else []

    def decoder_from(self, spec: dict, sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Warm start from another preset's model (``spec``, state dict ``sd``): its decoder's weights
        widened to this decoder's semantic input (``LIIFDecoder.widened_from``: the new input starts
        at zero weight), keyed ``decoder.*``; {} when the decoders are not of one kind."""
        widen = getattr(self.decoder, "widened_from", None)
        other = (spec.get("args") or {}).get("decoder") or {}
        if widen is None:
            return {}
        own = {k[len("decoder."):]: v for k, v in sd.items() if k.startswith("decoder.")}
        return {f"decoder.{k}": v for k, v in widen(other, own).items()}

    # -- LIIF's split -------------------------------------------------------------------
    def encoder_values(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """image (B, 3, H, W) in [0, 1], mask (B, 1, H, W) -> (B, 3, H, W) in [-1, 1]: holes zeroed, then
        filled by the ``input_fill`` stage when there is one."""
        mask = mask.to(image.dtype)
        values = (image * 2 - 1) * (1 - mask)
        return values if self.input_fill is None else self.input_fill(values, mask)

    @property
    def reads_labels(self) -> bool:
        """True when the model's semantic source is the ground-truth label map (an oracle of the
        semantic-headroom protocol): ``gen_feat``/``inpaint`` then need ``labels``."""
        return self.semantic is not None and self.semantic.reads_labels

    def gen_feat(self, image: torch.Tensor, mask: torch.Tensor, values: torch.Tensor | None = None,
                 labels: torch.Tensor | None = None) -> dict[str, Any]:
        """image (B, 3, H, W) in [0, 1], mask (B, 1, H, W) 1 = missing -> per-image state.

        ``values`` (B, 3, H, W): ``encoder_values`` computed beforehand over a larger image (a tile's
        share of a whole-image fill); None computes them here. ``labels`` (B, H, W) int: the label
        maps, read only by a model that ``reads_labels``."""
        mask = mask.to(image.dtype)
        inp = self.encoder_values(image, mask) if values is None else values
        state: dict[str, Any] = {"inp": inp, "mask": mask}
        if self.encoder is not None:
            state["feat"] = self.encoder(torch.cat([inp, mask], dim=1))
        else:  # no appearance feature: the decoder's grid is the pixel grid, with no channels
            state["feat"] = inp.new_zeros(inp.shape[0], 0, *inp.shape[-2:])
        if self.semantic is not None:
            state["semantic"] = self.semantic.gen_feat(image * (1 - mask), mask, labels)
        return state

    def prepare_queries(self, state: dict[str, Any], cells: torch.Tensor | None = None) -> dict[str, Any]:
        """Per-image work that every query chunk would otherwise repeat (inference).

        The decoder's per-cell tables (LIIF's first-layer convolution, LTE's coefficients) and the
        semantic embedding at the appearance cells (SIR evaluated once per cell, not once per
        neighbour term), so chunked queries at any output size cost only their MLP passes.
        ``cells`` (B, h, w) bool: the only cells the queries will read (SIR is evaluated there alone).
        """
        feat = state["feat"]
        state["decoder_state"] = self.decoder.prepare(feat, n_terms=1 << 62)
        if self.semantic is not None:
            self.semantic.precompute_cells(state["semantic"], tuple(feat.shape[-2:]), where=cells,
                                           project=self.decoder.extra_weight())
        return state

    def query_rgb(self, state: dict[str, Any], coord: torch.Tensor, cell: torch.Tensor, fast: bool = True) -> torch.Tensor:
        """coord, cell (B, Q, 2) -> RGB in [-1, 1] space (B, Q, 3)."""
        extra_fn = None
        if self.semantic is not None:
            extra_fn = self.semantic.extra_fn(state["semantic"], cells=fast)
        if fast:
            return self.decoder.query(state["feat"], coord, cell, extra_fn=extra_fn, inp=state["inp"],
                                      state=state.get("decoder_state"))
        return self.decoder.query_plain(state["feat"], coord, cell, extra_fn=extra_fn, inp=state["inp"])

    def forward(self, image, mask, coord, cell, fast: bool = True, labels=None) -> torch.Tensor:
        """Training entry: image/mask/labels as in ``gen_feat``, coord/cell (B, Q, 2) -> (B, Q, 3) in [-1, 1]."""
        return self.query_rgb(self.gen_feat(image, mask, labels=labels), coord, cell, fast=fast)

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

    # -- guards -----------------------------------------------------------------------------
    @property
    def min_side(self) -> int:
        """Smallest input side the encoders accept: their downsampling factor (4 for the AppEncoder
        and the in-domain semantic encoder; semantic encoders that resize their input need none)."""
        from sairbench.tiling import stride_of

        side = stride_of(self.encoder)
        if self.semantic is not None:
            enc = self.semantic.encoder
            if getattr(enc, "input_size", None) is None and getattr(enc, "img_size", None) is None:
                side = max(side, int(getattr(enc, "stride", 1)))
        return max(1, side)

    @property
    def tileable(self) -> bool:
        """True when the model is local (no semantic branch seeing the whole image): it runs in tiles."""
        return self.semantic is None

    def check_inputs(self, in_size: tuple[int, int], out_size: tuple[int, int], precision: str = "fp32") -> None:
        """One-line errors for inputs this model cannot answer within the pixel budget (``sairbench.tiling``)."""
        from sairbench.tiling import UNTILED_FACTOR, check_pixels, max_pixels

        if precision not in PRECISIONS:
            raise SairbenchError(f"precision {precision!r} is not supported; use one of {', '.join(PRECISIONS)}.")
        (h, w), (oh, ow), m = in_size, out_size, self.min_side
        if h < m or w < m:
            raise SairbenchError(f"model {self.name}: the image is {w}x{h} but the model needs at least {m}x{m} "
                                 f"pixels (its encoder downsamples by {m}); use a larger image.")
        if oh < 1 or ow < 1:
            raise SairbenchError(f"model {self.name}: output size {ow}x{oh} must be positive.")
        budget = max_pixels()
        if self.tileable:
            check_pixels(h, w, f"model {self.name}: the input", budget)
        else:
            check_pixels(h, w, f"model {self.name}: the input", budget // UNTILED_FACTOR,
                         f" (1/{UNTILED_FACTOR} of the budget: its semantic branch sees the whole image, so it is not tiled)")
        check_pixels(oh, ow, f"model {self.name}: the output", budget)

    @torch.inference_mode()
    def inpaint(self, image, mask, size=None, chunk: int | None = None, fast: bool = True,
                precision: str = "fp32", tile: int | None = -1, region: str = "all", labels=None):
        """image (B, 3, H, W) in [0, 1], mask (B, 1, H, W) -> (B, 3, H', W') in [0, 1].

        ``labels`` (B, H, W) int: the label maps, for a model that ``reads_labels`` (never tiled).
        ``chunk``: queries per pass (default: from the memory budget, see ``auto_chunk``).
        ``precision``: "fp32", or "fp16"/"bf16" autocast (fp16 is meant for GPUs).
        ``region``: "all" queries every output pixel; "hole" (output at the input size only) queries
        the missing pixels alone and returns the input elsewhere, i.e. the composite an evaluation
        makes anyway, for a fraction of the work (SIR too is evaluated only where it is read).
        ``tile``: core side of the tiles above ``sairbench.tiling.TILE_ABOVE`` input pixels (-1: the
        default ``TILE``; None: never tile). Models with a semantic branch are never tiled.
        Inputs and outputs above the pixel budget (``sairbench.tiling``) are refused in one line.
        """
        from sairbench.tiling import TILE, run_tiles

        self.eval()
        B, _, H, W = image.shape
        out_h, out_w = (int(size[0]), int(size[1])) if size is not None else (H, W)
        self.check_inputs((H, W), (out_h, out_w), precision)
        chunk = chunk or self.auto_chunk(image.device)
        dtype = PRECISIONS[precision]
        tile = (TILE if tile == -1 else tile) if self.tileable else None
        with torch.autocast(image.device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            if region == "hole" and (out_h, out_w) == (H, W) and fast:
                from sairbench.tiling import run_hole

                return run_hole(self, image, mask, chunk, labels)
            if region not in ("all", "hole"):
                raise SairbenchError(f"region {region!r}: use 'all' or 'hole'.")
            return run_tiles(self, image, mask, (out_h, out_w), chunk, fast, tile, labels=labels)

    def to(self, *args, **kwargs):  # nn.Module.to, not Inpainter.to
        return nn.Module.to(self, *args, **kwargs)
