"""Device paths: CUDA inference equals the CPU's, fp16 autocast stays close, training runs on CUDA.

The CUDA tests skip on machines without a GPU (CI); the channels-last test runs on every device.
"""

import numpy as np
import pytest
import torch

from sairbench.checkpoint import load_checkpoint, load_model, shipped_path
from sairbench.train import Schedule, TrainConfig, train

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
DEVICES = ["cpu"] + (["cuda"] if CUDA else [])


@pytest.fixture(autouse=True)
def _exact_float32():
    """TF32 matrix units would make float32 comparisons on CUDA ~1e-3 apart."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def face_and_mask(size=64, seed=0):
    from sairbench.data import get_dataset
    from sairbench.masks import generate_irregular_mask

    img = get_dataset("synthetic-faces", split="test", size=size)[seed].image
    mask = generate_irregular_mask(np.random.default_rng(seed), (size, size), 0.4)
    image = torch.from_numpy(img).permute(2, 0, 1).float().div(255)[None].contiguous()
    return image, torch.from_numpy(mask).float()[None, None]


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float().cpu() - b.float().cpu()).abs().max() / b.float().abs().max().clamp_min(1e-12))


def shipped(name):
    path = shipped_path(name)
    if not path.is_file():
        pytest.skip(f"{path.name} is not shipped")
    return load_model(path)


@needs_cuda
@pytest.mark.parametrize("name", ["liif", "sair", "lte"])
@pytest.mark.parametrize("size", [None, (96, 80)])
def test_cuda_fast_and_plain_equal_the_cpu(name, size):
    image, mask = face_and_mask()
    model = shipped(name)
    ref = model.inpaint(image, mask, size=size, fast=False)
    model.to("cuda")
    fast = model.inpaint(image.cuda(), mask.cuda(), size=size, fast=True)
    plain = model.inpaint(image.cuda(), mask.cuda(), size=size, fast=False)
    assert rel(plain, ref) < 1e-4
    assert rel(fast, ref) < 1e-4


@needs_cuda
@pytest.mark.parametrize("name", ["liif", "sair"])
def test_cuda_half_precision_stays_close(name):
    image, mask = face_and_mask()
    model = shipped(name).to("cuda")
    full = model.inpaint(image.cuda(), mask.cuda(), precision="fp32")
    for precision in ("fp16", "bf16"):
        half = model.inpaint(image.cuda(), mask.cuda(), precision=precision)
        assert half.dtype == torch.float32 and half.shape == full.shape
        mse = float(((half - full) ** 2).mean())
        assert 10 * np.log10(1 / max(mse, 1e-12)) > 40, precision  # PSNR of the half run against fp32


@pytest.mark.parametrize("device", DEVICES)
def test_channels_last_input_and_weights_give_the_same_image(device):
    image, mask = face_and_mask()
    model = shipped("sair").to(device)
    ref = model.inpaint(image.to(device), mask.to(device))
    model.to(memory_format=torch.channels_last)
    out = model.inpaint(image.to(device).contiguous(memory_format=torch.channels_last),
                        mask.to(device).contiguous(memory_format=torch.channels_last))
    assert rel(out, ref) < 1e-5


@needs_cuda
def test_training_on_cuda_with_prefetching_workers(tmp_path):
    cfg = TrainConfig(model="liif", image_size=32, schedule=Schedule.preset("tiny", 4, 4), queries=64,
                      out=str(tmp_path / "run"), device="cuda", workers=2)
    path = train(cfg, progress=False)
    ckpt = load_checkpoint(path)
    assert ckpt["step"] == 4 and ckpt["provenance"]["device"].startswith("cuda")
    assert all(np.isfinite(h["loss"]) for h in ckpt["history"]) or not ckpt["history"]
    model = load_model(path)  # loads on the CPU
    image, mask = face_and_mask(32)
    assert model.inpaint(image, mask).shape == (1, 3, 32, 32)
