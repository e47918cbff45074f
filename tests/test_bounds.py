"""ELBO, IWAE and bits/dim: exact on a linear-Gaussian model whose marginal likelihood is known."""

from __future__ import annotations

import math

import mpmath
import pytest
import torch
from torch import nn

from conftest import rel_err
from vaelib.bounds import bits_per_dim, elbo, iwae_bound, log_importance_weights, log_mean_exp
from vaelib.elbo import kl_diag_gaussians, mc_kl
from vaelib.likelihoods import FixedSigmaGaussian
from vaelib.models import MLPVAE


class LinearGaussianVAE(nn.Module):
    """p(z) = N(0, I), p(x|z) = N(W z + b, s^2 I); the encoder is the exact posterior, optionally perturbed."""

    def __init__(self, d: int = 3, k: int = 2, s: float = 0.5, perturb: float = 0.0) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        self.w = torch.randn(d, k, generator=gen, dtype=torch.float64)
        self.b = torch.randn(d, generator=gen, dtype=torch.float64)
        self.s = s
        self.head = FixedSigmaGaussian(s)
        self.perturb = perturb
        prec = torch.eye(k, dtype=torch.float64) + self.w.T @ self.w / s**2
        self.cov = torch.linalg.inv(prec)
        # a diagonal encoder is exact only for a diagonal posterior: make W^T W diagonal
        assert torch.allclose(self.cov, torch.diag(torch.diagonal(self.cov)), atol=1e-12) or perturb > 0

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu = (x - self.b) @ self.w @ self.cov / self.s**2
        logvar = torch.log(torch.diagonal(self.cov)).expand_as(mu)
        return mu + self.perturb, logvar + self.perturb

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return z @ self.w.T + self.b

    def log_marginal(self, x: torch.Tensor) -> torch.Tensor:
        cov = self.w @ self.w.T + self.s**2 * torch.eye(self.w.shape[0], dtype=torch.float64)
        return torch.distributions.MultivariateNormal(self.b, cov).log_prob(x)


def _orthogonal_model(perturb: float = 0.0) -> LinearGaussianVAE:
    m = LinearGaussianVAE(perturb=perturb or 0.1)
    q, _ = torch.linalg.qr(m.w)
    m.w = q * torch.tensor([1.5, 0.7], dtype=torch.float64)  # orthogonal columns: a diagonal posterior
    m.cov = torch.linalg.inv(torch.eye(2, dtype=torch.float64) + m.w.T @ m.w / m.s**2)
    m.perturb = perturb
    return m


def test_iwae_is_exact_when_q_is_the_posterior() -> None:
    """Every importance weight equals p(x), so L_k = log p(x) for every k, Eq. (eq-iwae-bound)."""
    model = _orthogonal_model()
    x = torch.randn(7, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    ref = model.log_marginal(x)
    for k in (1, 5, 40):
        got = iwae_bound(model, x, k, generator=torch.Generator().manual_seed(k), chunk=16)
        torch.testing.assert_close(got, ref, rtol=1e-12, atol=1e-12)
    w = log_importance_weights(model, x, 5, generator=torch.Generator().manual_seed(0))
    assert w.shape == (5, 7)


def test_iwae_increases_with_k_towards_log_px() -> None:
    model = _orthogonal_model(perturb=0.6)
    x = torch.randn(200, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    ref = model.log_marginal(x).mean().item()
    bounds = [iwae_bound(model, x, k, generator=torch.Generator().manual_seed(k)).mean().item() for k in (1, 10, 500)]
    assert bounds[0] < bounds[1] < bounds[2] < ref + 1e-3
    assert ref - bounds[2] < 0.1 * (ref - bounds[0])


def test_iwae_with_one_sample_is_the_mc_elbo_and_elbo_uses_the_analytic_kl() -> None:
    torch.manual_seed(0)
    model = MLPVAE((1, 3, 3), 2, FixedSigmaGaussian(0.3), (8,)).double()
    x = torch.rand(4, 1, 3, 3, dtype=torch.float64)
    mu, logvar = model.encode(x)
    eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    z = mu + eps * torch.exp(0.5 * logvar)
    rec = model.head.nll(model.decode(z), x)
    got1 = iwae_bound(model, x, 1, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(got1, -(rec + mc_kl(mu, logvar, z)), rtol=1e-12, atol=1e-12)
    got = elbo(model, x, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(got, -(rec + kl_diag_gaussians(mu, logvar)), rtol=1e-12, atol=1e-12)


def test_log_mean_exp_against_mpmath() -> None:
    gen = torch.Generator().manual_seed(3)
    t = torch.randn(50, 6, generator=gen, dtype=torch.float64) * torch.tensor([1.0, 10.0, 1e3, 1e5, 1e-8, 700.0], dtype=torch.float64)
    t[:, 5] += 1e4  # exp would overflow
    got = log_mean_exp(t, dim=0)
    refs = [mpmath.log(sum(mpmath.exp(mpmath.mpf(v)) for v in t[:, j].tolist()) / 50) for j in range(6)]
    assert rel_err(got, refs) <= 1e-12  # torch.logsumexp(t, 0) - log 50 is off by 1e-7 in column 4
    tg = t[:5].clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda v: log_mean_exp(v, dim=0), (tg,))
    log_mean_exp(tg, dim=0).sum().backward()
    torch.testing.assert_close(tg.grad, torch.softmax(t[:5], 0))
    assert log_mean_exp(torch.full((3, 2), float("-inf"), dtype=torch.float64)).tolist() == [float("-inf")] * 2


def test_bits_per_dim_conventions() -> None:
    """Eq. (eq-bits-per-dim): d log 2 nats are 1 bit per dimension; a density on x/256 adds 8 bits."""
    d = 784
    nll = torch.tensor([d * math.log(2.0), 0.0], dtype=torch.float64)
    torch.testing.assert_close(bits_per_dim(nll, d), torch.tensor([1.0, 0.0], dtype=torch.float64))
    torch.testing.assert_close(bits_per_dim(nll, d, levels=256), torch.tensor([9.0, 8.0], dtype=torch.float64))
    # a uniform density on [0, 1] for 8-bit data is exactly 8 bits per dimension
    torch.testing.assert_close(bits_per_dim(torch.zeros(1), d, levels=256.0), torch.tensor([8.0]))


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: bits_per_dim(torch.zeros(1), 0), r"bits_per_dim.*num_dims"),
        (lambda: bits_per_dim(torch.zeros(1), 3, levels=0.0), r"bits_per_dim.*levels"),
        (lambda: log_importance_weights(_orthogonal_model(), torch.zeros(1, 3, dtype=torch.float64), 0), r"k must be >= 1"),
    ],
)
def test_bad_input_is_a_clear_value_error(make, match: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=match):
        make()
