"""How much of a photo model's gain over its biharmonic prefill survives on photographs it never saw:
PSNR inside the hole of the model minus that of ``prefill.smooth_fill`` on
  * ``train-crops``: 56 training crops (the train split's random multi-scale crops, resized to 128),
    taken from the training photographs in turn,
  * ``test-crops``: 56 crops drawn the same way from the *test* photographs in turn,
  * ``test``: the photo test protocol's 56 first images (whole photographs and half-scale crops),
with the protocol's seeded masks (one per bucket per image), 1 thread.

    SAIRBENCH_PHOTOS_DIR=runs/photos/corpus python bench/photo_generalisation.py liif@photos-residual
"""

import sys

import numpy as np
import torch

from sairbench.data import get_dataset
from sairbench.data.photos import TRAIN_CROPS
from sairbench.masks import generate_mask_set
from sairbench.models.prefill import smooth_fill
from sairbench.registry import create_model

SIZE, N = 128, 56


def round_robin(ds) -> list[int]:
    """N crop indices of a train-split dataset, one photograph after the other (crop i is of photo i // TRAIN_CROPS)."""
    n = len(ds._files)
    return [(t % n) * TRAIN_CROPS + t // n for t in range(N)]


def sets() -> dict[str, tuple]:
    train = get_dataset("photos", split="train", size=SIZE)
    crops = get_dataset("photos", split="train", size=SIZE)
    crops._files = get_dataset("photos", split="test", size=SIZE)._files  # the test photographs, cropped as in training
    crops._n = len(crops._files) * TRAIN_CROPS
    test = get_dataset("photos", split="test", size=SIZE, limit=N)
    return {"train-crops": (train, round_robin(train)), "test-crops": (crops, round_robin(crops)),
            "test": (test, list(range(N)))}


def hole_psnr(pred: np.ndarray, gt: np.ndarray, hole: np.ndarray) -> float:
    q = np.round(np.clip(pred, 0, 1) * 255) / 255
    return float(10 * np.log10(1 / ((q - gt) ** 2)[hole].mean()))


def main(name: str) -> None:
    torch.set_num_threads(1)
    model = create_model(name)
    masks = generate_mask_set(N, (SIZE, SIZE), seed=0)
    for label, (ds, indices) in sets().items():
        gains: dict[str, list[float]] = {}
        for i, k in enumerate(indices):
            gt = ds[k].image.astype(np.float64) / 255
            img = torch.from_numpy(gt).permute(2, 0, 1)[None].float()
            for item in (masks[i], masks[N + i], masks[2 * N + i]):  # one mask per bucket
                hole = item.mask.astype(bool)
                mk = torch.from_numpy(hole)[None, None].float()
                prefill = (smooth_fill(img * 2 - 1, mk)[0].permute(1, 2, 0).double().numpy() + 1) / 2
                with torch.inference_mode():
                    pred = model.inpaint(img * (1 - mk), mk, region="hole")[0].permute(1, 2, 0).double().numpy()
                gains.setdefault(item.bucket, []).append(hole_psnr(pred, gt, hole) - hole_psnr(prefill, gt, hole))
        print(f"{name} - biharmonic prefill, {label}:", "  ".join(f"{b} {np.mean(v):+.3f}" for b, v in gains.items()))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "liif@photos")
