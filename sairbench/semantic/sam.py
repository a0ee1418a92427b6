"""segment-anything's ViT image encoder as a (not text-aligned) dense semantic encoder.

Used by the ``sam-encoder`` preset (paper Sec. 5.3, "Why do we use CLIP-based embedding"): the
SAIR pipeline with CLIP replaced by SAM's image encoder. The output is SAM's neck feature map
(B, 256, img_size/16, img_size/16), 64x64 at SAM's native 1024 input.

The encoder is built directly (``segment_anything.modeling.ImageEncoderViT`` with the settings
of ``segment_anything.build_sam``) so that ``img_size`` other than 1024 is possible; a checkpoint
made at 1024 is adapted by resizing the absolute position embedding (bicubic) and the relative
position tables of the global-attention blocks (linear, as ``get_rel_pos`` itself does).
"""

from __future__ import annotations

import math
import os
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sairbench.errors import SairbenchError
from sairbench.semantic.base import SemanticEncoder, check_image

ENV_SAM_CHECKPOINT = "SAIRBENCH_SAM_CHECKPOINT"

# Settings of segment_anything.build_sam (encoder part); SAM's own input size is 1024.
SAM_NATIVE_SIZE = 1024
SAM_VIT_SETTINGS: dict[str, dict] = {
    "vit_b": dict(embed_dim=768, depth=12, num_heads=12, global_attn_indexes=(2, 5, 8, 11)),
    "vit_l": dict(embed_dim=1024, depth=24, num_heads=16, global_attn_indexes=(5, 11, 17, 23)),
    "vit_h": dict(embed_dim=1280, depth=32, num_heads=16, global_attn_indexes=(7, 15, 23, 31)),
}
SAM_CHECKPOINT_URLS: dict[str, str] = {
    "vit_b": "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_b_01ec64.pth",
    "vit_l": "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_l_0b3195.pth",
    "vit_h": "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_h_4b8939.pth",
}
# Sam.pixel_mean / pixel_std, on the 0..255 scale.
SAM_PIXEL_MEAN = (123.675, 116.28, 103.53)
SAM_PIXEL_STD = (58.395, 57.12, 57.375)
_PATCH = 16
_WINDOW = 14
_OUT_CHANS = 256


def _how_to_get(model_type: str) -> str:
    url = SAM_CHECKPOINT_URLS.get(model_type, SAM_CHECKPOINT_URLS["vit_b"])
    return (f"download {url} (segment-anything's official {model_type} checkpoint) and pass "
            f"checkpoint=/path/to/it or set {ENV_SAM_CHECKPOINT}=/path/to/it")


def build_sam_image_encoder(model_type: str = "vit_b", img_size: int = SAM_NATIVE_SIZE) -> nn.Module:
    """segment_anything ImageEncoderViT with ``build_sam``'s settings for ``model_type``."""
    from segment_anything.modeling import ImageEncoderViT

    cfg = SAM_VIT_SETTINGS[model_type]
    return ImageEncoderViT(
        depth=cfg["depth"],
        embed_dim=cfg["embed_dim"],
        img_size=img_size,
        mlp_ratio=4,
        norm_layer=partial(nn.LayerNorm, eps=1e-6),
        num_heads=cfg["num_heads"],
        patch_size=_PATCH,
        qkv_bias=True,
        use_rel_pos=True,
        global_attn_indexes=cfg["global_attn_indexes"],
        window_size=_WINDOW,
        out_chans=_OUT_CHANS,
    )


def adapt_sam_state_dict(state_dict: dict[str, Tensor], encoder: nn.Module) -> dict[str, Tensor]:
    """Image-encoder weights of a SAM checkpoint, resized to ``encoder``'s input size.

    Accepts a full SAM state dict (keys ``image_encoder.*``) or an encoder-only one. The absolute
    position embedding (1, g, g, D) is resized bicubically; relative position tables whose
    length differs (global-attention blocks: 2g-1) are linearly interpolated.
    """
    prefix = "image_encoder."
    if any(k.startswith(prefix) for k in state_dict):
        sd = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
    else:
        sd = dict(state_dict)
    target = encoder.state_dict()
    for key, value in list(sd.items()):
        if key not in target or target[key].shape == value.shape:
            continue
        want = target[key].shape
        if key == "pos_embed" and value.ndim == 4:
            grid = value.permute(0, 3, 1, 2).float()
            grid = F.interpolate(grid, size=(want[1], want[2]), mode="bicubic", align_corners=False)
            sd[key] = grid.permute(0, 2, 3, 1).to(value.dtype)
        elif key.endswith(("rel_pos_h", "rel_pos_w")) and value.ndim == 2 and value.shape[1] == want[1]:
            table = value.t().unsqueeze(0).float()  # (1, C, L)
            table = F.interpolate(table, size=want[0], mode="linear", align_corners=False)
            sd[key] = table[0].t().to(value.dtype)
    return sd


class SAMEncoder(SemanticEncoder):
    """SAM's ViT image encoder: image -> (B, 256, h, w) neck features (64x64 at img_size 1024).

    Args:
      model_type: "vit_b" | "vit_l" | "vit_h".
      checkpoint: a segment-anything checkpoint file (full SAM or encoder-only state dict).
        Default: $SAIRBENCH_SAM_CHECKPOINT. A missing file raises SairbenchError.
      device: where the encoder lives; inputs are moved there.
      img_size: the encoder's input side (SAM: 1024). Smaller sizes (multiples of 16) run faster;
        the checkpoint's position embeddings are resized to match (an approximation of SAM,
        which was trained at 1024; recorded in ``.name``).
      random_init: random weights, no checkpoint (tests only; ``.name`` ends in "random").

    Preprocessing follows SAM: [0,1] -> 0..255, longest side resized to ``img_size`` (bilinear,
    antialiased), normalised with SAM's pixel mean/std, zero-padded bottom/right to a square.
    The output grid is cropped to the cells that cover the image (all of it for square inputs).
    """

    text_aligned = False

    def __init__(
        self,
        model_type: str = "vit_b",
        checkpoint: str | None = None,
        device: str | torch.device = "cpu",
        img_size: int = SAM_NATIVE_SIZE,
        random_init: bool = False,
    ):
        super().__init__()
        if model_type not in SAM_VIT_SETTINGS:
            raise SairbenchError(
                f"unknown SAM model_type {model_type!r}; use one of {sorted(SAM_VIT_SETTINGS)}"
            )
        if not isinstance(img_size, int) or img_size < _PATCH or img_size % _PATCH:
            raise SairbenchError(f"SAM img_size must be a positive multiple of {_PATCH}, got {img_size!r}")
        self.model_type = model_type
        self.img_size = img_size
        self.embed_dim = _OUT_CHANS
        self.stride = _PATCH

        if random_init and checkpoint is not None:
            raise SairbenchError("SAMEncoder: give either checkpoint=... or random_init=True, not both")
        source = repr(checkpoint)
        if checkpoint is None and not random_init:
            env = os.environ.get(ENV_SAM_CHECKPOINT, "").strip()
            if not env:
                raise SairbenchError(
                    "SAM encoder needs a checkpoint and none was given; " + _how_to_get(model_type)
                )
            checkpoint, source = env, f"${ENV_SAM_CHECKPOINT}={env!r}"

        path = None
        if not random_init:
            path = os.path.expanduser(str(checkpoint))
            if not os.path.isfile(path):
                raise SairbenchError(f"SAM checkpoint not found: {source}; " + _how_to_get(model_type))

        self.encoder = build_sam_image_encoder(model_type, img_size)
        suffix = "" if img_size == SAM_NATIVE_SIZE else f"-{img_size}px"
        if path is None:
            self.name = f"sam-{model_type}{suffix}-random"
            self.checkpoint = None
        else:
            self._load(path, source)
            self.name = f"sam-{model_type}{suffix}"
            self.checkpoint = path

        self.register_buffer("pixel_mean", torch.tensor(SAM_PIXEL_MEAN).view(1, 3, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(SAM_PIXEL_STD).view(1, 3, 1, 1), False)
        self.to(device)
        self.freeze()

    def _load(self, path: str, source: str) -> None:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
                state = state["state_dict"]
            sd = adapt_sam_state_dict(state, self.encoder)
            self.encoder.load_state_dict(sd, strict=True)
        except Exception as e:
            reason = " ".join(str(e).split())[:300]
            raise SairbenchError(
                f"SAM checkpoint {source} does not load into the {self.model_type} image encoder "
                f"({reason}); pass an official segment-anything checkpoint ({Path(path).name})"
            ) from e

    # -- geometry ---------------------------------------------------------------------------
    def resized_shape(self, height: int, width: int) -> tuple[int, int]:
        """SAM's ResizeLongestSide: the image size after scaling its long side to img_size."""
        scale = self.img_size / max(height, width)
        return int(height * scale + 0.5), int(width * scale + 0.5)

    def grid_size(self, height: int, width: int) -> tuple[int, int]:
        """(h, w) of the output grid for an input image of (height, width)."""
        rh, rw = self.resized_shape(height, width)
        return math.ceil(rh / _PATCH), math.ceil(rw / _PATCH)

    # -- forward ------------------------------------------------------------------------------
    def preprocess(self, image: Tensor) -> Tensor:
        """[0,1] image -> SAM input (B, 3, img_size, img_size): resize, normalise, pad."""
        x = image.to(device=self.pixel_mean.device, dtype=torch.float32) * 255.0
        h, w = x.shape[-2:]
        rh, rw = self.resized_shape(h, w)
        if (rh, rw) != (h, w):
            x = F.interpolate(x, size=(rh, rw), mode="bilinear", align_corners=False, antialias=True)
            x = x.clamp(0.0, 255.0)
        x = (x - self.pixel_mean) / self.pixel_std
        return F.pad(x, (0, self.img_size - rw, 0, self.img_size - rh))

    def forward(self, image: Tensor, mask: Tensor | None = None) -> Tensor:
        """image (B,3,H,W) in [0,1], holes already zeroed; ``mask`` accepted, not used ->
        (B, 256, h, w) with (h, w) = ``grid_size(H, W)``."""
        check_image(image, mask)
        gh, gw = self.grid_size(*image.shape[-2:])
        feats = self.encoder(self.preprocess(image))
        return feats[:, :, :gh, :gw]

    def class_embeddings(self, class_names: list[str]) -> Tensor:
        raise SairbenchError(
            f"{self.name} is not text-aligned: SAM's image encoder has no class-name embeddings "
            "(the SIR mIoU probe needs a text-aligned encoder such as dense CLIP)"
        )
