"""Any nn.Module with encode, decode, head and latent_dim trains and is scored by vaelib; one that
lacks a piece gets an error naming it."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from vaelib import likelihoods
from vaelib.bounds import iwae_bound
from vaelib.history import evaluate
from vaelib.metrics import active_units
from vaelib.protocol import VAE, check_vae, reconstruct, sample
from vaelib.train import train


class ConvVAE(nn.Module):
    """A model written without vaelib: a convolutional encoder, a linear decoder."""

    def __init__(self, latent_dim: int = 3) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.enc = nn.Sequential(nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(64, 2 * latent_dim))
        self.dec = nn.Linear(latent_dim, 64)
        self.head = likelihoods.get("bernoulli")

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.enc(x).chunk(2, dim=1)
        return mu, logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.dec(z).view(-1, 1, 8, 8)


def test_a_foreign_model_trains_and_is_scored() -> None:
    torch.manual_seed(0)
    x = torch.zeros(64, 1, 8, 8)
    x[::2, :, :4] = 1.0  # two kinds of image: top half on, or all off
    model = ConvVAE()
    assert isinstance(model, VAE)
    history = train(model, x, epochs=20, batch_size=16, lr=1e-2, progress=False)
    assert len(history.loss) == 20 and history.loss[-1] < 0.5 * history.loss[0]
    scores = evaluate(model, x)
    assert scores["elbo"] == pytest.approx(-(scores["rec"] + scores["kl"]))
    assert iwae_bound(model, x[:4], 5).shape == (4,)
    assert 0 <= active_units(model, x) <= 3
    assert reconstruct(model, x[:2]).shape == (2, 1, 8, 8)
    assert sample(model, 5, torch.Generator().manual_seed(1)).shape == (5, 1, 8, 8)


class NoHead(nn.Module):
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x, x


def test_a_model_lacking_pieces_gets_an_error_naming_them() -> None:
    with pytest.raises(TypeError, match=r"Trainer: NoHead does not implement the VAE protocol.*decode\(z\).*head.*latent_dim"):
        train(NoHead(), torch.rand(8, 1, 2, 2), epochs=1, progress=False)
    with pytest.raises(TypeError, match="evaluate: NoHead"):
        evaluate(NoHead(), torch.rand(8, 1, 2, 2))
    bad = ConvVAE()
    bad.latent_dim = 3.0  # type: ignore[assignment]
    with pytest.raises(TypeError, match="latent_dim must be an int, got float"):
        check_vae(bad, "iwae_bound")
