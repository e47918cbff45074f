"""Containers shared by every data loader of vaelib."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.data import Dataset


@dataclass(frozen=True)
class ImageSet(Dataset):
    """Images as float32 in [0, 1] with shape (N, C, H, W), and their integer labels (N,).

    A :class:`torch.utils.data.Dataset` of ``(image, label)`` pairs, so ``DataLoader(splits.train)`` works.
    """

    images: torch.Tensor
    labels: torch.Tensor
    name: str

    def __post_init__(self) -> None:
        if self.images.ndim != 4:
            raise ValueError(f"ImageSet {self.name!r}: images must have shape (N, C, H, W), got {tuple(self.images.shape)}")
        if self.images.dtype != torch.float32:
            raise ValueError(f"ImageSet {self.name!r}: images must be float32, got {self.images.dtype}")
        if self.labels.shape != self.images.shape[:1]:
            raise ValueError(
                f"ImageSet {self.name!r}: {self.labels.shape[0] if self.labels.ndim else 0} labels for {self.images.shape[0]} images"
            )

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[index], self.labels[index]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        c, h, w = self.images.shape[1:]
        return int(c), int(h), int(w)


@dataclass(frozen=True)
class Splits:
    """A fixed train/test split of one dataset."""

    train: ImageSet
    test: ImageSet
