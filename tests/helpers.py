"""Shared test helpers: a tiny protocol, an in-process CLI call, and tiny trees in the real on-disk
layouts (CelebAMask-HQ, ADEChallengeData2016, NVIDIA's Liu et al. 2018 test masks)."""

from pathlib import Path

import numpy as np
from PIL import Image

from sairbench.cli import app

PROTO = """
name = "mini"
seed = 3
[dataset]
name = "synthetic-faces"
split = "test"
size = 32
limit = 3
[masks]
source = "generated"
per_bucket = 2
[metrics]
names = ["psnr", "ssim", "l1", "lpips"]
[models]
names = ["telea", "navier-stokes"]
"""


def invoke(args):
    """Run the CLI in-process; SairbenchError propagates (main() turns it into one line)."""
    app(args, standalone_mode=False)


def flat_image_and_mask(folder: Path, side: int, grey: int, hole: tuple[slice, slice],
                        names: tuple[str, str] = ("img.png", "mask.png")) -> tuple[Path, Path]:
    """A ``side`` x ``side`` flat grey RGB image and its mask (255 inside ``hole``) in ``folder``."""
    image, mask = folder / names[0], folder / names[1]
    Image.fromarray(np.full((side, side, 3), grey, np.uint8)).save(image)
    m = np.zeros((side, side), np.uint8)
    m[hole] = 255
    Image.fromarray(m).save(mask)
    return image, mask


def _rgb(path: Path, h: int, w: int, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)


def _gray(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array.astype(np.uint8)).save(path)


def celeba_tree(root: Path) -> Path:
    """CelebAMask-HQ at ``root``: two train and two test images (the paper's 25k/5k rule), 64x64,
    each with a 32x32 skin label in ``CelebAMask-HQ-mask-anno/{i // 2000}/``."""
    for i in (0, 1, 25000, 25001):
        _rgb(root / "CelebA-HQ-img" / f"{i}.jpg", 64, 64, seed=i)
        skin = np.zeros((32, 32), np.uint8)
        skin[4:28, 4:28] = 255
        _gray(root / "CelebAMask-HQ-mask-anno" / str(i // 2000) / f"{i:05d}_skin.png", skin)
    return root


def ade20k_tree(root: Path) -> Path:
    """ADEChallengeData2016 at ``root``: one training and two validation photos, 4:3 (48x64) as
    ADE20K's, each with a one-class annotation."""
    for split, names in (("training", ["ADE_train_00000001"]), ("validation", ["ADE_val_00000001", "ADE_val_00000002"])):
        for k, n in enumerate(names):
            _rgb(root / "images" / split / f"{n}.jpg", 48, 64, seed=k)
            _gray(root / "annotations" / split / f"{n}.png", np.full((48, 64), 3 + k))
    return root


def liu2018_masks(folder: Path) -> Path:
    """NVIDIA's irregular mask test set at ``folder``: NNNNN.png, white = hole, 512x512, two masks
    in each of the 0-20 %, 20-40 % and 40-60 % hole-ratio buckets."""
    rng = np.random.default_rng(0)
    for k, frac in enumerate([0.1, 0.15, 0.3, 0.35, 0.5, 0.55]):
        m = np.zeros((512, 512), np.uint8)
        rows = int(512 * frac)
        m[:rows, :] = 255
        m = np.roll(m, int(rng.integers(0, 512)), axis=1)
        _gray(folder / f"{k:05d}.png", m)
    return folder
