"""A minimal training loop for the chapters: Adam, minibatches, a beta weight on the KL, per-epoch history."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from tqdm import tqdm

from vaelib.data.types import ImageSet
from vaelib.device import default_device, seed_everything
from vaelib.models import MLPVAE

__all__ = ["History", "train", "evaluate"]


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


def train(
    model: MLPVAE,
    data: ImageSet | torch.Tensor,
    *,
    epochs: int = 10,
    batch_size: int = 128,
    lr: float = 1e-3,
    beta: float = 1.0,
    seed: int = 0,
    device: torch.device | str | None = None,
    test: ImageSet | torch.Tensor | None = None,
    progress: bool = True,
    kl: Literal["analytic", "mc"] = "analytic",
) -> History:
    """Train ``model`` in place with Adam on the objective mean(rec + beta * kl), Eq. (eq-elbo-beta).

    The data tensor is moved to the device once and minibatches are drawn by a seeded permutation,
    so a run is repeatable on a CPU for a given ``seed``.

    Args:
        model: the VAE to train (moved to ``device``).
        data: training images (N, C, H, W) in the likelihood's support.
        epochs: passes over the data.
        batch_size: examples per Adam step.
        lr: Adam learning rate.
        beta: weight of the KL term; 1 gives the ELBO.
        seed: seeds parameters' noise, minibatch order and posterior samples.
        device: where to train; defaults to :func:`vaelib.default_device`.
        test: optional held-out images, evaluated after every epoch.
        progress: show a tqdm progress bar over epochs.
        kl: the KL estimator of the training loss: the closed form, Eq. (eq-elbo-kl-std), or the
            single-sample Monte Carlo estimate, Eq. (eq-elbo-mc). Evaluation always uses the closed form.

    Returns:
        The per-epoch :class:`History`.
    """
    checks = (
        ("epochs", epochs, isinstance(epochs, int) and epochs >= 1, "an int >= 1"),
        ("batch_size", batch_size, isinstance(batch_size, int) and batch_size >= 1, "an int >= 1"),
        ("lr", lr, 0 < lr < float("inf"), "in (0, inf)"),
        ("beta", beta, 0 <= beta < float("inf"), "in [0, inf)"),
        ("kl", kl, kl in ("analytic", "mc"), "'analytic' or 'mc'"),
    )
    for name, value, ok, allowed in checks:
        if not ok:
            raise ValueError(f"train: {name} must be {allowed}, got {value!r}")
    device = torch.device(device) if device is not None else default_device()
    generator = seed_everything(seed)
    model.to(device).train()
    images = _images(data).to(device)
    n = images.shape[0]
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    history = History()
    bar = tqdm(range(1, epochs + 1), desc="train", unit="epoch", disable=not progress)
    for epoch in bar:
        order = torch.randperm(n, generator=generator).to(device)
        sums = torch.zeros(3, dtype=torch.float64, device=device)
        for start in range(0, n, batch_size):
            batch = images[order[start : start + batch_size]]
            terms = model.terms(batch, kl=kl)
            loss = terms.loss(beta)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            sums += torch.stack([terms.rec.sum(), terms.kl.sum(), (terms.rec + beta * terms.kl).sum()]).detach().double()
        rec, kl_mean, objective = (sums / n).tolist()
        history.epoch.append(epoch)
        history.rec.append(rec)
        history.kl.append(kl_mean)
        history.loss.append(objective)
        history.elbo.append(-(rec + kl_mean))
        if test is not None:
            scores = evaluate(model, test)
            history.test_elbo.append(scores["elbo"])
            history.test_rec.append(scores["rec"])
            history.test_kl.append(scores["kl"])
        bar.set_postfix(elbo=f"{history.elbo[-1]:.2f}", rec=f"{rec:.2f}", kl=f"{kl_mean:.2f}")
    return history
