"""The chapters' training call: Adam, minibatches, a beta weight on the KL, per-epoch history.

:func:`train` runs :class:`vaelib.trainer.Trainer` with its defaults (no checkpoints, no
distribution); use the Trainer directly for checkpoints, resumption, compile, bf16 or torchrun.
"""

from __future__ import annotations

from typing import Literal

import torch

from vaelib.data.types import ImageSet
from vaelib.history import History, evaluate
from vaelib.models import MLPVAE
from vaelib.trainer import Trainer

__all__ = ["History", "train", "evaluate"]


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
    return Trainer(
        model, data, epochs=epochs, batch_size=batch_size, lr=lr, beta=beta, seed=seed,
        device=device, test=test, progress=progress, kl=kl,
    ).fit()
