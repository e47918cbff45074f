"""Datasets as float32 tensors in [0, 1], shape (N, C, H, W), with labels and a fixed train/test split.

``load(name)`` gives any of them by name: ``mnist-5k`` (embedded, no network), ``mnist``,
``fashion-mnist`` and ``cifar10`` (from a local directory or downloaded with SHA-256 checks), and
``photo-patches`` (16 x 16 patches of two colour photographs that scikit-learn ships).
"""

from __future__ import annotations

from typing import Any, Callable

from vaelib.data.cifar import load_cifar10
from vaelib.data.download import ChecksumError, DownloadError, default_cache_dir, fetch, verify_sha256
from vaelib.data.embedded import load_mnist_5k, mnist_5k_path
from vaelib.data.mnist import load_fashion_mnist, load_mnist, read_idx
from vaelib.data.photo import load_photo_patches
from vaelib.data.transforms import holdout
from vaelib.data.types import ImageSet, Splits

__all__ = [
    "ImageSet",
    "Splits",
    "load",
    "names",
    "holdout",
    "load_mnist_5k",
    "mnist_5k_path",
    "load_mnist",
    "load_fashion_mnist",
    "load_cifar10",
    "load_photo_patches",
    "read_idx",
    "fetch",
    "verify_sha256",
    "default_cache_dir",
    "ChecksumError",
    "DownloadError",
]

_LOADERS: dict[str, Callable[..., Splits]] = {
    "mnist-5k": load_mnist_5k,
    "mnist": load_mnist,
    "fashion-mnist": load_fashion_mnist,
    "cifar10": load_cifar10,
    "photo-patches": load_photo_patches,
}


def names() -> list[str]:
    """Dataset names accepted by :func:`load`."""
    return list(_LOADERS)


def load(name: str, **kwargs: Any) -> Splits:
    """Load the dataset registered as ``name``; ``kwargs`` go to its loader (e.g. ``root``, ``download``)."""
    try:
        loader = _LOADERS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(names())}") from None
    return loader(**kwargs)
