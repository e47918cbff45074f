"""A small MNIST classifier whose penultimate layer gives the features of the book's FID.

The Inception network of the usual FID is trained on natural photographs and must be downloaded;
for 28 x 28 digits a classifier trained on the digits themselves is the customary substitute. It is
trained once on the embedded training split and cached (atomically) in the data cache directory.
It is trained on one CPU thread, so its weights, and with them the Frechet distance of a given set of
samples, are the same whatever the thread count of the process that trains it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from torch import nn

from vaelib.checkpoint import atomic_save
from vaelib.data.download import default_cache_dir
from vaelib.data.embedded import load_mnist_5k
from vaelib.data.types import ImageSet
from vaelib.device import one_thread, seed_everything

__all__ = ["DigitClassifier", "train_classifier", "load_classifier", "accuracy"]

FEATURES = 64
# training settings of the cached classifier; they are part of its cache key
EPOCHS, BATCH_SIZE, LR, SEED = 4, 64, 2e-3, 0


class DigitClassifier(nn.Module):
    """Two convolutions, two poolings, a 64-unit feature layer and a 10-way output."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 14 x 14
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 7 x 7
            nn.Flatten(), nn.Linear(32 * 7 * 7, FEATURES), nn.ReLU(),
        )
        self.out = nn.Linear(FEATURES, 10)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Penultimate activations, shape (N, 64): what the Frechet distance compares."""
        return self.body(images)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.out(self.features(images))


def train_classifier(
    data: ImageSet, *, epochs: int = EPOCHS, batch_size: int = BATCH_SIZE, lr: float = LR, seed: int = SEED
) -> DigitClassifier:
    """Train a :class:`DigitClassifier` with Adam and cross-entropy on CPU, deterministically for a seed.

    Training runs on one intra-op thread (restored afterwards): the reductions of a convolution's
    backward pass are split over threads, and another split would give other weights.
    """
    with one_thread(), torch.enable_grad():  # also when called under no_grad, as an FID probe is
        return _train(data, epochs, batch_size, lr, seed)


def _train(data: ImageSet, epochs: int, batch_size: int, lr: float, seed: int) -> DigitClassifier:
    generator = seed_everything(seed)
    model = DigitClassifier()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    n = len(data)
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            loss = nn.functional.cross_entropy(model(data.images[idx]), data.labels[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return model.eval()


@torch.no_grad()
def accuracy(model: DigitClassifier, data: ImageSet, batch_size: int = 1000) -> float:
    """Fraction of ``data`` classified correctly."""
    model.eval()
    correct = 0
    for start in range(0, len(data), batch_size):
        logits = model(data.images[start : start + batch_size])
        correct += int((logits.argmax(1) == data.labels[start : start + batch_size]).sum())
    return correct / len(data)


def load_classifier(cache_dir: str | Path | None = None) -> DigitClassifier:
    """The classifier trained on the embedded training split, from the cache or trained and cached now.

    The cache file's name carries a hash of the training data and of this module's settings, so a
    change of either trains a new one instead of reusing a stale file.
    """
    train = load_mnist_5k().train
    tag = hashlib.sha256(train.images.numpy().tobytes() + repr((FEATURES, EPOCHS, BATCH_SIZE, LR, SEED, "1 thread", torch.__version__)).encode()).hexdigest()[:16]
    path = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = path / f"digit-classifier-{tag}.pt"
    model = DigitClassifier()
    if path.is_file():
        model.load_state_dict(torch.load(path, weights_only=True))
        return model.eval()
    model = train_classifier(train)
    atomic_save(model.state_dict(), path)
    return model
