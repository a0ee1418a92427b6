"""segment-anything's ViT image encoder as a (not text-aligned) dense semantic encoder.

Used by the ``sam-encoder`` preset (paper Sec. 5.3, "Why do we use CLIP-based embedding"): the
SAIR pipeline with CLIP replaced by SAM's image encoder. The output is SAM's neck feature map
(B, 256, img_size/16, img_size/16), 64x64 at SAM's native 1024 input.

The encoder is built directly (``segment_anything.modeling.ImageEncoderViT`` with the settings
of ``segment_anything.build_sam``) so that ``img_size`` other than 1024 is possible; a checkpoint
made at 1024 is adapted by resizing the absolute position embedding (bicubic) and the relative
position tables of the global-attention blocks (linear, as ``get_rel_pos`` itself does).

The encoder's weights are external (``external_weights``): models built on it never store them.
What they store instead is the encoder's spec (:meth:`SAMEncoder.spec_args`): the architecture,
the input size and a digest of the SAM weights, so a trained model rebuilds only on the same SAM
checkpoint, found again through ``$SAIRBENCH_SAM_CHECKPOINT``.

Choices made once, when a SIR is trained (``sairbench train sir --semantic-encoder sam``):

* architecture: read from the checkpoint (vit_b, vit_l or vit_h; ``model_type`` checks it);
* input size: ``$SAIRBENCH_SAM_IMG_SIZE`` (a multiple of 16; default 1024, SAM's own).

``vit_test`` is a test-only size (2 blocks of width 32) with no official checkpoint:
:func:`save_random_sam_checkpoint` writes a random one, so the whole SAM chain (SIR, AIR,
evaluation) runs on a CPU without downloading SAM.
"""

from __future__ import annotations

import math
import os
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sairbench.digest import weights_digest
from sairbench.errors import SairbenchError
from sairbench.semantic.base import SemanticEncoder, check_image

ENV_SAM_CHECKPOINT = "SAIRBENCH_SAM_CHECKPOINT"
ENV_SAM_IMG_SIZE = "SAIRBENCH_SAM_IMG_SIZE"

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
# Test-only size (not a segment-anything model): the same ImageEncoderViT, 2 blocks of width 32.
SAM_TEST_SETTINGS: dict[str, dict] = {
    "vit_test": dict(embed_dim=32, depth=2, num_heads=2, global_attn_indexes=(1,)),
}
_SETTINGS = {**SAM_VIT_SETTINGS, **SAM_TEST_SETTINGS}
# Sam.pixel_mean / pixel_std, on the 0..255 scale.
SAM_PIXEL_MEAN = (123.675, 116.28, 103.53)
SAM_PIXEL_STD = (58.395, 57.12, 57.375)
_PATCH = 16
_WINDOW = 14
_OUT_CHANS = SAM_NECK_CHANNELS = 256  # the encoder's output channels, for every ViT size


def _how_to_get(model_type: str | None, weights_file: str | None = None, weights_sha256: str | None = None) -> str:
    if weights_file or weights_sha256:  # rebuilding a trained model: it needs the very same SAM weights
        digest = f", weights sha256 {weights_sha256[:12]}..." if weights_sha256 else ""
        where = (f"; the official one is {SAM_CHECKPOINT_URLS[model_type]}" if model_type in SAM_CHECKPOINT_URLS
                 else "")
        return (f"set {ENV_SAM_CHECKPOINT} to the SAM checkpoint this model was trained with "
                f"({weights_file or 'unknown file'}, {model_type}{digest}){where}")
    if model_type in SAM_TEST_SETTINGS:
        return (f"{model_type} is a test-only size with no official checkpoint: write one with "
                f"sairbench.semantic.sam.save_random_sam_checkpoint and set {ENV_SAM_CHECKPOINT}=/path/to/it")
    model_type = model_type or "vit_b"
    url = SAM_CHECKPOINT_URLS.get(model_type, SAM_CHECKPOINT_URLS["vit_b"])
    return (f"download {url} (segment-anything's official {model_type} checkpoint) and pass "
            f"checkpoint=/path/to/it or set {ENV_SAM_CHECKPOINT}=/path/to/it")


def _img_size_from_env() -> int:
    text = os.environ.get(ENV_SAM_IMG_SIZE, "").strip()
    if not text:
        return SAM_NATIVE_SIZE
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < _PATCH or value % _PATCH:
        raise SairbenchError(f"${ENV_SAM_IMG_SIZE}={text!r} is not a positive multiple of {_PATCH}; "
                             f"set it to e.g. 256, or unset it for SAM's own {SAM_NATIVE_SIZE}")
    return value


def encoder_weights(state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
    """The image-encoder entries of a full SAM (``image_encoder.*``) or encoder-only state dict."""
    prefix = "image_encoder."
    if any(k.startswith(prefix) for k in state_dict):
        return {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
    return dict(state_dict)


def detect_model_type(sd: dict[str, Tensor]) -> str | None:
    """vit_b / vit_l / vit_h (or vit_test) from an encoder state dict's width and depth; None if unknown."""
    width, depth = _width_depth(sd)
    for name, cfg in _SETTINGS.items():
        if (cfg["embed_dim"], cfg["depth"]) == (width, depth):
            return name
    return None


def _width_depth(sd: dict[str, Tensor]) -> tuple[int | None, int]:
    w = sd.get("patch_embed.proj.weight")
    width = int(w.shape[0]) if isinstance(w, Tensor) and w.ndim == 4 else None
    depth = len({k.split(".")[1] for k in sd if k.startswith("blocks.") and k.count(".") >= 2})
    return width, depth


def save_random_sam_checkpoint(path: str | os.PathLike, model_type: str = "vit_test", seed: int = 0,
                               img_size: int = SAM_NATIVE_SIZE) -> Path:
    """Write a random-initialised SAM-style checkpoint (``image_encoder.*`` keys, built at ``img_size``,
    SAM's 1024 by default, like the official files) for tests and dry runs; returns its path.

    The position tables (zeros in segment-anything's initialisation) get small random values, so
    that resizing them is exercised."""
    if model_type not in _SETTINGS:
        raise SairbenchError(f"unknown SAM model_type {model_type!r}; use one of {sorted(_SETTINGS)}")
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        enc = build_sam_image_encoder(model_type, img_size)
    sd = {}
    for k, v in enc.state_dict().items():
        if k == "pos_embed" or "rel_pos" in k:
            v = torch.randn(v.shape, generator=gen) * 0.02
        sd["image_encoder." + k] = v
    sd["prompt_encoder.not_an_encoder_weight"] = torch.zeros(1)  # a full SAM file has other parts too
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(sd, path)
    return path


def build_sam_image_encoder(model_type: str = "vit_b", img_size: int = SAM_NATIVE_SIZE) -> nn.Module:
    """segment_anything ImageEncoderViT with ``build_sam``'s settings for ``model_type``."""
    from segment_anything.modeling import ImageEncoderViT

    cfg = _SETTINGS[model_type]
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
    sd = encoder_weights(state_dict)
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
      model_type: "vit_b" | "vit_l" | "vit_h" (or the test-only "vit_test"). Default: the
        checkpoint's own (vit_b with ``random_init``); when given, the checkpoint must match it.
      checkpoint: a segment-anything checkpoint file (full SAM or encoder-only state dict).
        Default: $SAIRBENCH_SAM_CHECKPOINT. A missing file raises SairbenchError.
      device: where the encoder lives; inputs are moved there.
      img_size: the encoder's input side (SAM: 1024). Smaller sizes (multiples of 16) run faster;
        the checkpoint's position embeddings are resized to match (an approximation of SAM,
        which was trained at 1024; recorded in ``.name``). Default: $SAIRBENCH_SAM_IMG_SIZE, else 1024.
      random_init: random weights, no checkpoint (tests only; ``.name`` ends in "random").
      weights_sha256: the digest (:func:`weights_digest`) the checkpoint's encoder weights must
        have: set by trained models, which do not store SAM's weights and need the same ones back.
      weights_file: name of the file those weights came from (for messages only).

    Preprocessing follows SAM: [0,1] -> 0..255, longest side resized to ``img_size`` (bilinear,
    antialiased), normalised with SAM's pixel mean/std, zero-padded bottom/right to a square.
    The output grid is cropped to the cells that cover the image (all of it for square inputs).
    """

    text_aligned = False
    external_weights = True  # never stored in sairbench checkpoints: rebuilt from the SAM checkpoint
    spec_forbidden = {  # arguments a stored spec may not hold: only the user names files and devices
        "checkpoint": "only $SAIRBENCH_SAM_CHECKPOINT may name the SAM file",
        "device": "the command chooses the device"}

    @staticmethod
    def embed_dim_for(**_) -> int:
        """C of SAM's neck, whatever the ViT (no weights needed)."""
        return SAM_NECK_CHANNELS

    def __init__(
        self,
        model_type: str | None = None,
        checkpoint: str | None = None,
        device: str | torch.device = "cpu",
        img_size: int | None = None,
        random_init: bool = False,
        weights_sha256: str | None = None,
        weights_file: str | None = None,
    ):
        super().__init__()
        if model_type is not None and model_type not in _SETTINGS:
            raise SairbenchError(
                f"unknown SAM model_type {model_type!r}; use one of {sorted(_SETTINGS)} (vit_test: tests only)"
            )
        if img_size is None:
            img_size = _img_size_from_env()
        if not isinstance(img_size, int) or img_size < _PATCH or img_size % _PATCH:
            raise SairbenchError(f"SAM img_size must be a positive multiple of {_PATCH}, got {img_size!r}")
        self.img_size = img_size
        self.embed_dim = _OUT_CHANS
        self.stride = _PATCH

        if random_init and (checkpoint is not None or weights_sha256 is not None):
            raise SairbenchError("SAMEncoder: give either checkpoint=... (or weights_sha256=...) or "
                                 "random_init=True, not both")
        how = _how_to_get(model_type, weights_file, weights_sha256)
        source = repr(checkpoint)
        if checkpoint is None and not random_init:
            env = os.environ.get(ENV_SAM_CHECKPOINT, "").strip()
            if not env:
                raise SairbenchError(
                    f"SAM image encoder needs segment-anything's checkpoint (sairbench checkpoints do not "
                    f"store SAM's weights) and none was given: ${ENV_SAM_CHECKPOINT} is not set; " + how
                )
            checkpoint, source = env, f"${ENV_SAM_CHECKPOINT}={env!r}"

        sd = None
        self.checkpoint = self.weights_sha256 = self.weights_file = None
        if not random_init:
            path = os.path.expanduser(str(checkpoint))
            if not os.path.isfile(path):
                raise SairbenchError(f"SAM checkpoint not found: {source}; " + how)
            sd = self._read(path, source, how)
            model_type = self._check_architecture(sd, model_type, source, how)
            digest = weights_digest(sd)
            if weights_sha256 is not None and digest != weights_sha256:
                raise SairbenchError(
                    f"SAM checkpoint {source} is not the one this model was trained with (its {model_type} "
                    f"weights have sha256 {digest[:12]}..., the model needs {weights_sha256[:12]}... from "
                    f"{weights_file or 'its training SAM file'}); " + how
                )
            self.checkpoint, self.weights_sha256, self.weights_file = path, digest, Path(path).name
        self.model_type = model_type or "vit_b"

        self.encoder = build_sam_image_encoder(self.model_type, img_size)
        suffix = "" if img_size == SAM_NATIVE_SIZE else f"-{img_size}px"
        if sd is None:
            self.name = f"sam-{self.model_type}{suffix}-random"
        else:
            self._load(sd, source)
            self.name = f"sam-{self.model_type}{suffix}"

        self.register_buffer("pixel_mean", torch.tensor(SAM_PIXEL_MEAN).view(1, 3, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(SAM_PIXEL_STD).view(1, 3, 1, 1), False)
        self.to(device)
        self.freeze()

    def spec_args(self) -> dict:
        """Arguments that rebuild this encoder (and check its weights): what a trained model stores
        in place of SAM's weights. The SAM file itself is found again through $SAIRBENCH_SAM_CHECKPOINT."""
        return {"model_type": self.model_type, "img_size": self.img_size,
                "weights_sha256": self.weights_sha256, "weights_file": self.weights_file}

    @staticmethod
    def _read(path: str, source: str, how: str) -> dict[str, Tensor]:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:
            reason = " ".join(str(e).split())[:200]
            raise SairbenchError(f"SAM checkpoint {source} is not a readable torch state dict "
                                 f"({type(e).__name__}: {reason}); {how}") from None
        if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
            state = state["state_dict"]
        if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
            raise SairbenchError(f"SAM checkpoint {source} is not a state dict of tensors; {how}")
        sd = encoder_weights(state)
        if "patch_embed.proj.weight" not in sd:
            raise SairbenchError(f"SAM checkpoint {source} holds no SAM image encoder (no "
                                 f"'image_encoder.patch_embed.proj.weight'); {how}")
        return sd

    @staticmethod
    def _check_architecture(sd: dict[str, Tensor], model_type: str | None, source: str, how: str) -> str:
        found = detect_model_type(sd)
        if found is None:
            width, depth = _width_depth(sd)
            known = ", ".join(f"{k} {v['embed_dim']}x{v['depth']}" for k, v in SAM_VIT_SETTINGS.items())
            raise SairbenchError(f"SAM checkpoint {source} is an image encoder of unknown size (width {width}, "
                                 f"depth {depth}; known: {known}); {how}")
        if model_type is not None and found != model_type:
            raise SairbenchError(f"SAM checkpoint {source} holds a {found} image encoder, not the {model_type} "
                                 f"one asked for; {how}")
        return found

    def _load(self, state: dict[str, Tensor], source: str) -> None:
        try:
            sd = adapt_sam_state_dict(state, self.encoder)
            self.encoder.load_state_dict(sd, strict=True)
        except Exception as e:
            reason = " ".join(str(e).split())[:300]
            raise SairbenchError(
                f"SAM checkpoint {source} does not load into the {self.model_type} image encoder "
                f"({reason}); pass an official segment-anything checkpoint ({_how_to_get(self.model_type)})"
            ) from None

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
