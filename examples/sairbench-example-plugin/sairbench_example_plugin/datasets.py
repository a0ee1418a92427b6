"""``noise``: seeded smooth colour noise (a 4x4 grid of random colours, upsampled), no files needed."""

import numpy as np

from sairbench.data import DatasetDefaults, DatasetRow, ImageDataset, Sample

LENGTH = {"train": 64, "test": 16}  # images per split (any other split: the test length)


class NoiseImages(ImageDataset):
    name = "noise"

    def __init__(self, size: int, split: str, seed: int, limit: int | None):
        super().__init__(size, split)
        self.seed, n = seed, LENGTH.get(split, LENGTH["test"])
        self.n = n if limit is None else min(n, limit)

    def __len__(self) -> int:
        return self.n

    def _name(self, i: int) -> str:
        return f"noise-{self.split}-{i:03d}"

    def _load(self, i: int) -> Sample:
        rng = np.random.default_rng([self.seed, i, int(self.split == "train")])
        coarse = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
        return self.make_sample(self._name(i), coarse, None)  # resized to size x size, bicubic


def open_noise(row, root, split, size, limit, seed, options):
    return NoiseImages(size, split, seed, limit)


NOISE = DatasetRow("noise", DatasetDefaults(size=32, limit=16), open_noise,
                   description="seeded smooth colour noise (example plugin)")
