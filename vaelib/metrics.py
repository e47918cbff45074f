"""Diagnostics of a trained VAE shared by the chapters: latent activity, prior holes, Frechet distance, seed spreads."""

from __future__ import annotations

import math
from typing import Sequence

import torch

from vaelib.classifier import DigitClassifier
from vaelib.elbo import log_normal_diag
from vaelib.models import MLPVAE

__all__ = ["active_units", "prior_hole_kl", "frechet_distance", "fid", "mean_and_se"]


@torch.no_grad()
def active_units(model: MLPVAE, images: torch.Tensor, threshold: float = 0.01) -> int:
    """Number of latent dimensions whose posterior mean varies across ``images`` by more than ``threshold``.

    A dimension k is active when :math:`\\mathrm{Var}_x(\\mathbb{E}_{q(z|x)}[z_k]) > 0.01`, the criterion
    of Burda et al. (2016); a collapsed dimension copies the prior for every input.
    """
    mu, _ = model.encode(images)
    return int((mu.var(dim=0) > threshold).sum())


@torch.no_grad()
def prior_hole_kl(
    model: MLPVAE, images: torch.Tensor, n_draws: int = 1000, generator: torch.Generator | None = None
) -> float:
    r"""Monte Carlo estimate of :math:`\mathrm{KL}(p(z) \,\|\, \bar q(z))`, :math:`\bar q = \frac1n \sum_i q(z \mid x_i)`.

    It measures how much prior mass falls where no encoded image puts any ("holes"): samples
    drawn from there decode to images unlike the data. ``n_draws`` prior samples, each scored
    against the mixture of the ``n`` posteriors, cost ``n_draws * n`` density evaluations.
    """
    mu, logvar = model.encode(images)
    n, k = mu.shape
    z = torch.randn(n_draws, k, generator=generator).to(mu.device, mu.dtype)
    pairs = log_normal_diag(
        mu[None].expand(n_draws, n, k).reshape(-1, k),
        logvar[None].expand(n_draws, n, k).reshape(-1, k),
        z[:, None, :].expand(n_draws, n, k).reshape(-1, k),
    ).view(n_draws, n)
    log_qbar = torch.logsumexp(pairs, dim=1) - math.log(n)
    return (log_normal_diag(0.0, 0.0, z) - log_qbar).mean().item()


def _psd_sqrt(matrix: torch.Tensor) -> torch.Tensor:
    values, vectors = torch.linalg.eigh(matrix)
    return (vectors * values.clamp_min(0).sqrt()) @ vectors.T


def frechet_distance(features_a: torch.Tensor, features_b: torch.Tensor) -> float:
    r"""Frechet distance between Gaussians fitted to two feature sets (rows are samples), in float64:

    .. math::
        \|\mu_a - \mu_b\|^2 + \operatorname{tr}\Big(\Sigma_a + \Sigma_b
        - 2\big(\Sigma_a^{1/2} \Sigma_b \Sigma_a^{1/2}\big)^{1/2}\Big).

    The matrix square roots are taken through symmetric eigendecompositions, so the result is
    real and never negative up to rounding.
    """
    a, b = features_a.double(), features_b.double()
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(a.shape[0], b.shape[0]) < 2:
        raise ValueError(
            f"frechet_distance: need two (N, F) feature sets with the same F and N >= 2, got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = torch.cov(a.T), torch.cov(b.T)
    root_a = _psd_sqrt(cov_a)
    cross = torch.linalg.eigvalsh(root_a @ cov_b @ root_a).clamp_min(0).sqrt().sum()
    return float((mu_a - mu_b).pow(2).sum() + torch.trace(cov_a) + torch.trace(cov_b) - 2 * cross)


@torch.no_grad()
def fid(classifier: DigitClassifier, real: torch.Tensor, generated: torch.Tensor, batch_size: int = 1000) -> float:
    """Frechet distance between the classifier features of ``real`` and ``generated`` images, (N, 1, 28, 28) in [0, 1]."""
    classifier.eval()

    def features(images: torch.Tensor) -> torch.Tensor:
        return torch.cat([classifier.features(images[i : i + batch_size].float().cpu()) for i in range(0, images.shape[0], batch_size)])

    return frechet_distance(features(real), features(generated))


def mean_and_se(values: Sequence[float]) -> tuple[float, float]:
    """The mean of ``values`` (one per seed, say) and its standard error, std (ddof = 1) / sqrt(n)."""
    v = torch.tensor([float(a) for a in values], dtype=torch.float64)
    if v.numel() < 2:
        raise ValueError(f"mean_and_se: needs at least 2 values for a standard error, got {v.numel()}")
    return v.mean().item(), (v.std() / math.sqrt(v.numel())).item()
