from __future__ import annotations

import math

import pytest
import torch

from vaelib import likelihoods, seed_everything
from vaelib.metrics import active_units, prior_hole_kl
from vaelib.models import MLPVAE


class _FixedEncoder(MLPVAE):
    """A VAE whose posterior is set by hand, to check the metrics against known answers."""

    def __init__(self, mu: torch.Tensor, logvar: torch.Tensor) -> None:
        super().__init__((1, 1, 1), mu.shape[1], likelihoods.get("gaussian"), hidden=(2,))
        self._mu, self._logvar = mu, logvar

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self._mu, self._logvar


def test_active_units_counts_dimensions_whose_mean_varies() -> None:
    gen = torch.Generator().manual_seed(0)
    mu = torch.zeros(500, 4)
    mu[:, 0] = torch.randn(500, generator=gen)  # variance 1: active
    mu[:, 1] = 0.05 * torch.randn(500, generator=gen)  # variance 0.0025: inactive
    mu[:, 2] = 0.3 * torch.randn(500, generator=gen)  # variance 0.09: active
    model = _FixedEncoder(mu, torch.zeros(500, 4))
    assert active_units(model, torch.zeros(500, 1, 1, 1)) == 2
    assert active_units(model, torch.zeros(500, 1, 1, 1), threshold=1e-4) == 3


def test_prior_hole_kl_is_zero_when_the_aggregate_posterior_is_the_prior() -> None:
    n, k = 1, 3
    model = _FixedEncoder(torch.zeros(n, k), torch.zeros(n, k))
    assert prior_hole_kl(model, torch.zeros(n, 1, 1, 1), generator=torch.Generator().manual_seed(0)) == pytest.approx(0.0, abs=1e-12)


def test_prior_hole_kl_matches_the_closed_form_for_one_gaussian() -> None:
    """With a single posterior N(m, s^2) per dimension, KL(N(0,1) || N(m, s^2)) has a closed form."""
    m, s = 0.5, 0.4
    k = 2
    model = _FixedEncoder(torch.full((1, k), m, dtype=torch.float64), torch.full((1, k), 2 * math.log(s), dtype=torch.float64))
    exact = k * (math.log(s) + (1 + m**2) / (2 * s**2) - 0.5)
    seed_everything(0)
    got = prior_hole_kl(model, torch.zeros(1, 1, 1, 1), n_draws=200_000, generator=torch.Generator().manual_seed(1))
    assert got == pytest.approx(exact, rel=0.02)
