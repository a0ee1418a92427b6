"""Dense, text-aligned CLIP features with the MaskCLIP change to the last ViT block.

MaskCLIP (Zhou, Loy & Dai, ECCV 2022, github.com/chongzhou96/MaskCLIP) reads per-patch,
text-aligned embeddings out of a frozen CLIP ViT by removing the query/key path of the LAST
transformer block. What its source does (read in forks of that repository:
``mmseg/models/backbones/vit.py``, ``TransformerEncoderLayer.forward(x, return_qkv=True)``;
config ``configs/_base_/models/maskclip_vit16.py`` with ``pre_norm=True`` (= ln_pre),
``final_norm=True`` (= ln_post), ``return_qkv=True``; and
``mmseg/models/decode_heads/maskclip_head.py`` with ``vit=True``, whose ``proj`` 1x1 conv holds
CLIP's visual projection), for the input tokens ``x`` of the last block:

    y = ln_1(x)
    y = y @ in_proj_weight.T + in_proj_bias          # q, k and v of every token
    q, k, v = out_proj(...) of each third             # out_proj applied to each of them
    v = v + x                                         # the block's attention residual
    v = v + mlp(ln_2(v))                              # the block's MLP with its residual
    v = ln_post(v)                                    # backbone ``final_norm`` = CLIP ln_post
    feat = proj(v)                                    # head 1x1 conv = CLIP visual ``proj``

and the class token is dropped before the head. q and k are only used for optional
post-processing (key smoothing), which is off by default and not used here. This module does
exactly that value path on open_clip's own modules (``ln_1``, the value rows of
``attn.in_proj_weight``/``in_proj_bias``, ``attn.out_proj``, ``ls_1``/``ls_2`` which are identity
for CLIP, ``ln_2``, ``mlp``, ``ln_post``, ``proj``): no new parameters, CLIP's output space.
Blocks 0..L-2 run unchanged (full attention).

Two details of MaskCLIP's mmseg port are NOT copied, because they depart from CLIP itself: the
maskclip_vit16 config read builds LayerNorm with eps=1e-6 and nn.GELU, whereas CLIP uses
eps=1e-5 and QuickGELU. Here open_clip's modules are used as they are, with QuickGELU for
OpenAI weights (see ``quick_gelu``).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sairbench.errors import SairbenchError
from sairbench.semantic.base import SemanticEncoder, check_image
from sairbench.semantic.clip_weights import (ENV_ALLOW_TORCHSCRIPT, ENV_CLIP_WEIGHTS, FROM_ENV,  # noqa: F401
                                             _FromEnv, build_clip, configured_weights)

ENV_ALLOW_MISMATCH = "SAIRBENCH_ALLOW_WEIGHT_MISMATCH"  # "1": load a model on other CLIP weights (recorded)
from sairbench.semantic.text import build_prompts

def maskclip_last_block(block: nn.Module, x: Tensor) -> Tensor:
    """MaskCLIP's last block on tokens ``x`` (B, N, D): value path instead of attention.

    ``x + ls_1(out_proj(W_v ln_1(x) + b_v))``, then the block's MLP with its residual. Every
    token is processed independently (no token mixing): that is what makes the output dense.
    """
    attn = block.attn
    d = attn.embed_dim
    if getattr(attn, "_qkv_same_embed_dim", True):
        w_v = attn.in_proj_weight[2 * d:]
    else:
        w_v = attn.v_proj_weight
    b_v = attn.in_proj_bias[2 * d:] if attn.in_proj_bias is not None else None
    v = F.linear(block.ln_1(x), w_v, b_v)
    v = F.linear(v, attn.out_proj.weight, attn.out_proj.bias)
    x = x + block.ls_1(v)
    x = x + block.ls_2(block.mlp(block.ln_2(x)))
    return x


class DenseCLIPEncoder(SemanticEncoder):
    """open_clip ViT with the MaskCLIP last block: image -> (B, 512, h, w) text-aligned grid.

    Args:
      model_name: an open_clip built-in ViT name ("ViT-B-16", the paper's encoder).
      pretrained: an open_clip tag ("openai") or a local checkpoint file. Default:
        $SAIRBENCH_CLIP_WEIGHTS when set, else "openai". ``None`` = random init (tests only;
        ``.name`` then ends in "random"). Weights that cannot be had raise SairbenchError.
      input_size: the image is resized (bicubic, antialiased) to this size before the ViT: an int
        (square), (H, W), or None to keep the image's own size rounded to the patch size. Sides
        must be multiples of the patch size; the position embeddings are bicubically resized when
        the patch grid differs from the pretrained one (14x14 for ViT-B/16 at 224).
      device: where the model lives; inputs are moved there.
      quick_gelu: activation of the MLPs. None = what the weights were trained with: the tag's
        setting, and for a file or random init the setting of the model's "openai" tag (True for
        ViT-B-16), i.e. a file is assumed to hold OpenAI's weights. Pass False for e.g. LAION files.
    """

    text_aligned = True
    external_weights = True  # loaded from open_clip / a local file, never stored in checkpoints
    spec_forbidden = {  # arguments a stored spec may not hold: only the user names weights and devices
        "pretrained": "only --clip-weights or $SAIRBENCH_CLIP_WEIGHTS may name CLIP weights (a tag downloads them)",
        "device": "the command chooses the device"}

    @staticmethod
    def embed_dim_for(model_name: str = "ViT-B-16", **_) -> int:
        """C of an encoder built with these args, from open_clip's model config (no weights needed)."""
        import open_clip

        cfg = open_clip.get_model_config(model_name)
        if not cfg:
            raise SairbenchError(f"unknown open_clip model '{model_name}'; use an open_clip ViT name such as ViT-B-16.")
        return int(cfg["embed_dim"])

    def __init__(
        self,
        model_name: str = "ViT-B-16",
        pretrained: str | None | _FromEnv = FROM_ENV,
        input_size: int | tuple[int, int] | None = 224,
        device: str | torch.device = "cpu",
        quick_gelu: bool | None = None,
        weights_sha256: str | None = None,
        weights_file: str | None = None,
    ):
        super().__init__()
        import open_clip  # heavy import, kept local

        from sairbench.digest import weights_digest

        self.model_name = model_name
        from_env = isinstance(pretrained, _FromEnv)
        if from_env:
            pretrained = configured_weights()[0]  # --clip-weights of a training command, else the environment
            if not pretrained:  # never a silent download: the open_clip tag must be named
                needs = (f" (this model was trained on {weights_file or 'a CLIP file'}, weights sha256 "
                         f"{weights_sha256[:12]}...)" if weights_sha256 else "")
                raise SairbenchError(f"CLIP weights are not set{needs}: set ${ENV_CLIP_WEIGHTS} to a local file, or "
                                     "to the open_clip tag 'openai' to download them (train: --clip-weights).")
        self.pretrained = pretrained
        self.model, self.name = build_clip(model_name, pretrained, quick_gelu, from_env)
        self._check_architecture()
        self.quick_gelu = quick_gelu
        self.weights_sha256 = weights_digest(self.model.state_dict()) if pretrained is not None else None
        self.weights_file = Path(str(pretrained)).name if pretrained is not None else None
        self.weights_override = None
        if weights_sha256 is not None and self.weights_sha256 != weights_sha256:
            found = f"{self.weights_file} has weights sha256 {self.weights_sha256[:12]}..."
            want = f"the model was trained on {weights_file or 'other weights'} (sha256 {weights_sha256[:12]}...)"
            if os.environ.get(ENV_ALLOW_MISMATCH) != "1":
                raise SairbenchError(f"CLIP weights {found}, but {want}; point ${ENV_CLIP_WEIGHTS} at the same "
                                     f"file, or set {ENV_ALLOW_MISMATCH}=1 to use these anyway (recorded).")
            warnings.warn(f"CLIP weights {found}, but {want}; used anyway ({ENV_ALLOW_MISMATCH}=1).", stacklevel=2)
            self.weights_override = {"expected_sha256": weights_sha256, "used_sha256": self.weights_sha256}

        visual = self.model.visual
        self.patch_size: tuple[int, int] = tuple(visual.patch_size)  # type: ignore[assignment]
        self.native_grid: tuple[int, int] = tuple(visual.grid_size)  # type: ignore[assignment]
        self.embed_dim = int(visual.proj.shape[1])
        self.stride = int(self.patch_size[0])
        self.input_size = self._parse_input_size(input_size)

        pcfg = open_clip.get_model_preprocess_cfg(self.model) or {}
        mean = pcfg.get("mean", open_clip.OPENAI_DATASET_MEAN)
        std = pcfg.get("std", open_clip.OPENAI_DATASET_STD)
        self.register_buffer("pixel_mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), False)
        self._tokenizer = None
        self.to(device)
        self.freeze()

    def spec_args(self) -> dict:
        """Arguments that rebuild this encoder and pin its weights: what a trained model stores in
        place of CLIP's weights (found again through ${ENV_CLIP_WEIGHTS})."""
        return {"model_name": self.model_name, "input_size": self.input_size, "quick_gelu": self.quick_gelu,
                "weights_sha256": self.weights_sha256, "weights_file": self.weights_file}

    def _check_architecture(self) -> None:
        from open_clip.transformer import ResidualAttentionBlock, VisionTransformer

        visual = getattr(self.model, "visual", None)
        ok = isinstance(visual, VisionTransformer) and getattr(visual, "attn_pool", None) is None \
            and visual.proj is not None
        if ok:
            last = visual.transformer.resblocks[-1]
            ok = isinstance(last, ResidualAttentionBlock) and isinstance(last.attn, nn.MultiheadAttention) \
                and not hasattr(last, "ln_1_kv")
        if not ok:
            raise SairbenchError(
                f"DenseCLIPEncoder needs an open_clip ViT with standard attention blocks and a "
                f"visual projection; {self.model_name!r} is not one (use e.g. 'ViT-B-16')"
            )

    def _parse_input_size(self, input_size) -> tuple[int, int] | None:
        if input_size is None:
            return None
        if isinstance(input_size, int):
            size = (input_size, input_size)
        else:
            size = tuple(int(s) for s in input_size)
            if len(size) != 2:
                raise SairbenchError(f"input_size must be an int or (H, W), got {input_size!r}")
        ph, pw = self.patch_size
        if size[0] <= 0 or size[1] <= 0 or size[0] % ph or size[1] % pw:
            raise SairbenchError(
                f"input_size {size} must be positive multiples of the patch size {ph} "
                f"(e.g. 224, 256, 320, 448)"
            )
        return size  # type: ignore[return-value]

    # -- geometry ---------------------------------------------------------------------------
    def target_size(self, height: int, width: int) -> tuple[int, int]:
        """Size the ViT sees for an input image of (height, width)."""
        if self.input_size is not None:
            return self.input_size
        ph, pw = self.patch_size
        return max(ph, round(height / ph) * ph), max(pw, round(width / pw) * pw)

    def grid_size(self, height: int, width: int) -> tuple[int, int]:
        """(h, w) of the output grid for an input image of (height, width)."""
        th, tw = self.target_size(height, width)
        return th // self.patch_size[0], tw // self.patch_size[1]

    def positional_embedding(self, gh: int, gw: int) -> Tensor:
        """(1 + gh*gw, D) position embeddings: the pretrained grid, bicubically resized when the
        grid differs (class-token entry kept), as MaskCLIP's ``resize_pos_embed`` does."""
        pe = self.model.visual.positional_embedding
        n0h, n0w = self.native_grid
        if (gh, gw) == (n0h, n0w):
            return pe
        d = pe.shape[-1]
        grid = pe[1:].reshape(1, n0h, n0w, d).permute(0, 3, 1, 2)
        grid = F.interpolate(grid.float(), size=(gh, gw), mode="bicubic", align_corners=False)
        grid = grid.permute(0, 2, 3, 1).reshape(gh * gw, d).to(pe.dtype)
        return torch.cat([pe[:1], grid], dim=0)

    # -- forward ------------------------------------------------------------------------------
    def preprocess(self, image: Tensor) -> Tensor:
        """[0,1] image -> resized, CLIP-normalised pixels on the model's device."""
        x = image.to(device=self.pixel_mean.device, dtype=torch.float32)
        h, w = x.shape[-2:]
        th, tw = self.target_size(h, w)
        if (th, tw) != (h, w):
            x = F.interpolate(x, size=(th, tw), mode="bicubic", align_corners=False, antialias=True)
            x = x.clamp(0.0, 1.0)
        return (x - self.pixel_mean) / self.pixel_std

    def encode_dense(self, pixels: Tensor) -> Tensor:
        """CLIP-normalised pixels (B,3,H,W), H and W multiples of the patch -> (B, C, H/p, W/p)."""
        visual = self.model.visual
        x = visual.conv1(pixels)  # (B, D, gh, gw)
        b, d, gh, gw = x.shape
        x = x.flatten(2).transpose(1, 2)
        cls = visual.class_embedding.to(x.dtype).view(1, 1, d).expand(b, -1, -1)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding(gh, gw).to(x.dtype)
        x = visual.ln_pre(x)  # patch dropout: identity for a frozen (eval) encoder
        blocks = visual.transformer.resblocks
        batch_first = getattr(visual.transformer, "batch_first", True)
        if not batch_first:
            x = x.transpose(0, 1)
        for blk in blocks[:-1]:
            x = blk(x)
        if not batch_first:
            x = x.transpose(0, 1)
        x = maskclip_last_block(blocks[-1], x)
        x = visual.ln_post(x[:, 1:])  # drop the class token; LayerNorm is per token
        x = x @ visual.proj  # (B, gh*gw, C)
        return x.transpose(1, 2).reshape(b, -1, gh, gw)

    def forward(self, image: Tensor, mask: Tensor | None = None) -> Tensor:
        """image (B,3,H,W) in [0,1], holes already zeroed; ``mask`` is accepted and not used
        (CLIP sees the masked image, as in the paper) -> (B, 512, h, w), see ``grid_size``."""
        check_image(image, mask)
        return self.encode_dense(self.preprocess(image))

    # -- text ----------------------------------------------------------------------------------
    @property
    def tokenizer(self):
        if self._tokenizer is None:
            import open_clip

            self._tokenizer = open_clip.get_tokenizer(self.model_name)
        return self._tokenizer

    @torch.no_grad()
    def class_embeddings(self, class_names: list[str], templates: list[str] | None = None) -> Tensor:
        """(L, C) class embeddings from CLIP's text tower: every prompt template filled with the
        class phrase (``sairbench.semantic.text``), each prompt embedding L2-normalised, averaged
        per class and renormalised (CLIP zero-shot / MaskCLIP prompt engineering)."""
        if isinstance(class_names, str) or not class_names:
            raise SairbenchError("class_embeddings needs a non-empty list of class names")
        prompts = [build_prompts(name, templates) for name in class_names]
        if self.weights_sha256 is None:  # random weights (tests): nothing to key a cache on
            return self._text_embeddings(prompts)
        from sairbench.cache import cached_tensor

        key = {"model": self.model_name, "weights_sha256": self.weights_sha256, "quick_gelu": self.quick_gelu,
               "prompts": prompts}
        return cached_tensor("clip-text", key, lambda: self._text_embeddings(prompts).cpu()).to(self.pixel_mean.device)

    def _text_embeddings(self, prompts: list[list[str]]) -> Tensor:
        """(L, C) from L lists of prompts (the same number each)."""
        n_t = len(prompts[0])
        flat = [p for ps in prompts for p in ps]
        device = self.pixel_mean.device
        chunks = []
        for i in range(0, len(flat), 256):
            tokens = self.tokenizer(flat[i:i + 256]).to(device)
            chunks.append(self.model.encode_text(tokens).float())
        emb = F.normalize(torch.cat(chunks), dim=-1).view(len(prompts), n_t, -1)
        return F.normalize(emb.mean(dim=1), dim=-1)
