"""What a training run returns, and the evaluation of a model on held-out images."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from vaelib.data.types import ImageSet
from vaelib.models import MLPVAE

__all__ = ["History", "evaluate"]


@dataclass
class History:
    """Per-epoch means over examples (nats per image). ``loss`` is rec + beta * kl; ``elbo`` is -(rec + kl)."""

    epoch: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    elbo: list[float] = field(default_factory=list)
    rec: list[float] = field(default_factory=list)
    kl: list[float] = field(default_factory=list)
    test_elbo: list[float] = field(default_factory=list)
    test_rec: list[float] = field(default_factory=list)
    test_kl: list[float] = field(default_factory=list)

    def last(self) -> dict[str, float]:
        """The final epoch's figures."""
        return {k: v[-1] for k, v in vars(self).items() if v}


def _images(data: ImageSet | torch.Tensor) -> torch.Tensor:
    return data.images if isinstance(data, ImageSet) else data


@torch.no_grad()
def evaluate(model: MLPVAE, data: ImageSet | torch.Tensor, *, batch_size: int = 1000) -> dict[str, float]:
    """Mean ELBO, reconstruction NLL and KL per image, each with one posterior sample per image."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    images = _images(data).to(device)
    rec = kl = 0.0
    for start in range(0, images.shape[0], batch_size):
        terms = model.terms(images[start : start + batch_size])
        rec += terms.rec.sum().item()
        kl += terms.kl.sum().item()
    model.train(was_training)
    n = images.shape[0]
    return {"elbo": -(rec + kl) / n, "rec": rec / n, "kl": kl / n}
