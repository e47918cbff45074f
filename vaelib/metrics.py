"""Diagnostics of a trained VAE's latent space, shared by the chapters."""

from __future__ import annotations

import math

import torch

from vaelib.elbo import log_normal_diag
from vaelib.models import MLPVAE

__all__ = ["active_units", "prior_hole_kl"]


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
        z[:, None, :].expand(n_draws, n, k).reshape(-1, k),
        mu[None].expand(n_draws, n, k).reshape(-1, k),
        logvar[None].expand(n_draws, n, k).reshape(-1, k),
    ).view(n_draws, n)
    log_qbar = torch.logsumexp(pairs, dim=1) - math.log(n)
    return (log_normal_diag(z, 0.0, 0.0) - log_qbar).mean().item()
