"""Colour photo patches: a dataset whose pixels are spread over [0, 1], unlike the digits' mostly-0 background.

The two sample photographs that scikit-learn ships (``china.jpg`` and ``flower.jpg``, 427 x 640 RGB)
are cut into non-overlapping ``size`` x ``size`` patches; a seeded permutation puts one in eight in the
test split. scikit-learn (and Pillow, which reads the JPEG files) are needed only by this loader.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from vaelib.data.types import ImageSet, Splits

__all__ = ["load_photo_patches"]

_SPLIT_SEED = 0
_TEST_FRACTION = 8  # one patch in eight is a test patch


@lru_cache(maxsize=4)
def load_photo_patches(size: int = 16) -> Splits:
    """Non-overlapping ``size`` x ``size`` RGB patches of scikit-learn's two sample photographs, in [0, 1]."""
    if not (isinstance(size, int) and 2 <= size <= 427):
        raise ValueError(f"photo-patches: size must be an int in [2, 427], got {size!r}")
    try:
        from sklearn.datasets import load_sample_images
    except ImportError:
        raise ImportError("photo-patches: needs scikit-learn (`pip install scikit-learn pillow`)") from None
    patches = []
    for img in load_sample_images().images:
        arr = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1)
        _, h, w = arr.shape
        tiles = arr[:, : h // size * size, : w // size * size].unfold(1, size, size).unfold(2, size, size)
        patches.append(tiles.permute(1, 2, 0, 3, 4).reshape(-1, 3, size, size))
    images = torch.cat(patches).contiguous()
    order = torch.randperm(images.shape[0], generator=torch.Generator().manual_seed(_SPLIT_SEED))
    n_test = images.shape[0] // _TEST_FRACTION
    test, train = order[:n_test].sort().values, order[n_test:].sort().values
    labels = torch.zeros(images.shape[0], dtype=torch.long)
    return Splits(
        train=ImageSet(images[train].contiguous(), labels[train], f"photo patches {size}x{size} train"),
        test=ImageSet(images[test].contiguous(), labels[test], f"photo patches {size}x{size} test"),
    )
