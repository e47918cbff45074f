"""What a training run returns, and the evaluation of a model on held-out images."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from vaelib.data.types import ImageSet
from vaelib.elbo import kl_diag_gaussians
from vaelib.models import MLPVAE
from vaelib.protocol import BOUNDS_NEED, check_vae

__all__ = ["History", "evaluate"]


@dataclass
class History:
    """Per-epoch means over examples (nats per image). ``loss`` is rec + beta * kl; ``elbo`` is -(rec + kl).

    ``val_elbo`` is the ELBO of the validation images after each epoch (when the Trainer has them) and
    ``val_loss`` their rec + beta * kl, the objective that selects the best epoch (-``val_elbo`` when
    beta = 1); ``test_*`` are the figures on test images when they are given.
    """

    epoch: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    elbo: list[float] = field(default_factory=list)
    rec: list[float] = field(default_factory=list)
    kl: list[float] = field(default_factory=list)
    val_elbo: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    test_elbo: list[float] = field(default_factory=list)
    test_rec: list[float] = field(default_factory=list)
    test_kl: list[float] = field(default_factory=list)

    def last(self) -> dict[str, float]:
        """The final epoch's figures."""
        return {k: v[-1] for k, v in vars(self).items() if v}


def _images(data: ImageSet | torch.Tensor) -> torch.Tensor:
    return data.images if isinstance(data, ImageSet) else data


@torch.no_grad()
def evaluate(
    model: MLPVAE,
    data: ImageSet | torch.Tensor,
    *,
    batch_size: int = 1000,
    generator: torch.Generator | None = None,
    passes: int = 1,
    beta: float = 1.0,
) -> dict[str, float]:
    """Mean ELBO, reconstruction NLL, closed-form KL and loss rec + beta * kl per image, Eq. (eq-elbo-bound).

    Each of ``passes`` passes draws one posterior sample per image; the figures are averaged over
    the passes. With a ``generator`` (a CPU generator) the draws come from it and leave the global
    random stream untouched, so evaluating during training does not change the training run.
    """
    if passes < 1:
        raise ValueError(f"evaluate: passes must be >= 1, got {passes}")
    check_vae(model, "evaluate", BOUNDS_NEED)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    images = _images(data).to(device)
    rec = kl = 0.0
    for _ in range(passes):
        for start in range(0, images.shape[0], batch_size):
            x = images[start : start + batch_size]
            mu, logvar = model.encode(x)
            if generator is None:
                eps = torch.randn_like(mu)
            else:
                eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype).to(device)
            z = mu + eps * torch.exp(0.5 * logvar)
            rec += model.head.nll(model.decode(z), x).sum().item()
            kl += kl_diag_gaussians(mu, logvar, validate=False).sum().item()
    model.train(was_training)
    n = images.shape[0] * passes
    return {"elbo": -(rec + kl) / n, "rec": rec / n, "kl": kl / n, "loss": (rec + beta * kl) / n}
