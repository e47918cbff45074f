"""Variational autoencoders that work with any likelihood head."""

from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import Literal, Sequence

import torch
from torch import nn

from vaelib import protocol
from vaelib.elbo import ElboTerms, kl_diag_gaussians, mc_kl
from vaelib.likelihoods.heads import LikelihoodHead

__all__ = ["MLPVAE", "Encoded"]


@dataclass(frozen=True)
class Encoded:
    """What one forward pass produces: the posterior parameters, a sample and the decoder output."""

    mu: torch.Tensor
    logvar: torch.Tensor
    z: torch.Tensor
    params: torch.Tensor


def _mlp(sizes: Sequence[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class MLPVAE(nn.Module):
    """A fully connected VAE with a diagonal-Gaussian posterior and a standard-normal prior.

    Args:
        image_shape: (C, H, W) of the data.
        latent_dim: dimension of z.
        head: the likelihood head that turns decoder outputs into p(x | z).
        hidden: widths of the hidden layers of the encoder (mirrored in the decoder).
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        latent_dim: int,
        head: LikelihoodHead,
        hidden: Sequence[int] = (512, 256),
    ) -> None:
        super().__init__()
        if latent_dim < 1:
            raise ValueError(f"MLPVAE: latent_dim must be >= 1, got {latent_dim}")
        self.image_shape = tuple(int(s) for s in image_shape)
        self.latent_dim = int(latent_dim)
        self.head = head
        channels, height, width = self.image_shape
        self.out_shape = (head.channels(channels), height, width)
        self.encoder = _mlp([prod(self.image_shape), *hidden, 2 * latent_dim])
        self.decoder = _mlp([latent_dim, *reversed(hidden), prod(self.out_shape)])

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and log-variance, each (N, latent_dim)."""
        mu, logvar = self.encoder(x.flatten(1)).chunk(2, dim=1)
        return mu, logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Decoder output (the likelihood head's parameters), shape ``(N, *out_shape)``."""
        return self.decoder(z).view(z.shape[0], *self.out_shape)

    def forward(self, x: torch.Tensor) -> Encoded:
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return Encoded(mu=mu, logvar=logvar, z=z, params=self.decode(z))

    def terms(self, x: torch.Tensor, kl: Literal["analytic", "mc"] = "analytic") -> ElboTerms:
        """Per-example reconstruction NLL and KL for one reparameterised sample, Eq. (eq-elbo-mc)."""
        out = self(x)
        rec = self.head.nll(out.params, x)
        if kl == "analytic":
            kl_term = kl_diag_gaussians(out.mu, out.logvar)
        elif kl == "mc":
            kl_term = mc_kl(out.mu, out.logvar, out.z)
        else:
            raise ValueError(f"MLPVAE.terms: kl must be 'analytic' or 'mc', got {kl!r}")
        return ElboTerms(rec=rec, kl=kl_term)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Mean of p(x | z = posterior mean): the usual reconstruction figure (:func:`vaelib.protocol.reconstruct`)."""
        return protocol.reconstruct(self, x)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Means of p(x | z) for ``n`` draws of z from the prior (:func:`vaelib.protocol.sample`)."""
        return protocol.sample(self, n, generator)
