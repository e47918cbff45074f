"""Seeded transformations of an image set used by the experiments: a validation hold-out, binarisation,
salt-and-pepper corruption and rescaling.

Each is a pure function of its inputs and its seed, so a run record's spec (``vaelib.records``) names
them by ``transform`` and ``transform_args`` and they are rebuilt exactly on every machine.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch

from vaelib.data.types import ImageSet

__all__ = ["holdout", "binarize", "salt_and_pepper", "scale", "TRANSFORMS", "apply"]


def holdout(data: ImageSet, size: int, seed: int = 0) -> tuple[ImageSet, ImageSet]:
    """Split ``data`` into (rest, held-out) with ``size`` images drawn by a seeded permutation.

    The held-out part is the validation split of early stopping; the order inside each part
    follows the original order, so the split depends only on ``size`` and ``seed``.
    """
    n = len(data)
    if not (isinstance(size, int) and 1 <= size < n):
        raise ValueError(f"holdout: size must be an int in [1, {n - 1}] for {data.name!r}, got {size!r}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    held = order[:size].sort().values
    keep = order[size:].sort().values
    return (ImageSet(data.images[keep], data.labels[keep], f"{data.name} (without validation)"),
            ImageSet(data.images[held], data.labels[held], f"{data.name} (validation)"))


def binarize(images: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """1 where a pixel exceeds ``threshold``, else 0 (static binarisation)."""
    if not 0 <= threshold < 1:
        raise ValueError(f"binarize: threshold must be in [0, 1), got {threshold}")
    return (images > threshold).float()


def salt_and_pepper(images: torch.Tensor, rate: float, seed: int) -> torch.Tensor:
    """Each pixel, with probability ``rate``, becomes 0 or 1 with equal probability (seeded)."""
    if not 0 <= rate <= 1:
        raise ValueError(f"salt_and_pepper: rate must be in [0, 1], got {rate}")
    g = torch.Generator().manual_seed(seed)
    hit = torch.rand(images.shape, generator=g) < rate
    value = (torch.rand(images.shape, generator=g) < 0.5).float()
    return torch.where(hit, value, images)


def scale(images: torch.Tensor, factor: float) -> torch.Tensor:
    """``images * factor`` (for example 255 to train on raw 8-bit values)."""
    if not (0 < factor < math.inf):
        raise ValueError(f"scale: factor must be in (0, inf), got {factor}")
    return images * factor


# name -> function(images, split_index, **args); split_index (0 train, 1 validation, 2 test) seeds noise
TRANSFORMS: dict[str, Callable[..., torch.Tensor]] = {
    "binarize": lambda images, split, threshold=0.5: binarize(images, threshold),
    "salt_and_pepper": lambda images, split, rate, seed=10: salt_and_pepper(images, rate, seed + split),
    "scale": lambda images, split, factor: scale(images, factor),
}


def apply(data: ImageSet, name: str | None, args: dict[str, Any], split: int) -> ImageSet:
    """``data`` with the transform ``name`` (a key of ``TRANSFORMS``, or ``None``) applied."""
    if name is None:
        return data
    if name not in TRANSFORMS:
        raise ValueError(f"unknown transform {name!r}; choose one of {', '.join(TRANSFORMS)} or None")
    try:
        images = TRANSFORMS[name](data.images, split, **args)
    except TypeError as exc:
        raise ValueError(f"transform {name!r}: bad arguments {args!r} ({exc})") from None
    return ImageSet(images, data.labels, f"{data.name}, {name} {args}")
