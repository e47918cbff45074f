"""Likelihood heads: how a decoder's output becomes a distribution over the data.

A head knows how many output channels the decoder needs per data channel and how to turn those
channels into a :class:`torch.distributions.Distribution`. Models and the trainer only talk to heads,
so every likelihood of the book plugs into the same VAE.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.distributions import Distribution

from vaelib.likelihoods.gaussian import Gaussian

__all__ = ["LikelihoodHead", "FixedSigmaGaussian"]


class LikelihoodHead(nn.Module):
    """Maps decoder outputs of shape (N, channels(C), H, W) to a distribution over (N, C, H, W) data.

    A head is an :class:`torch.nn.Module` so that a head with learned parameters (a learned
    sigma, say) trains together with the model that owns it.
    """

    name: str = ""
    params_per_channel: int = 1

    def channels(self, data_channels: int) -> int:
        """Number of decoder output channels for data with ``data_channels`` channels."""
        return self.params_per_channel * data_channels

    def distribution(self, params: torch.Tensor) -> Distribution:
        """The reconstruction distribution p(x | z) given the decoder output ``params``."""
        raise NotImplementedError(f"{type(self).__name__} does not define distribution()")

    def nll(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Negative log-likelihood of each example, summed over pixels and channels, shape (N,)."""
        return -self.distribution(params).log_prob(x).flatten(1).sum(1)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        """The mean of p(x | z): what a reconstruction figure should show."""
        return self.distribution(params).mean


class FixedSigmaGaussian(LikelihoodHead):
    r"""Gaussian with a fixed standard deviation :math:`\sigma`; the decoder predicts the mean.

    Its NLL is the summed squared error scaled by :math:`1/(2\sigma^2)` plus
    :math:`d(\log\sigma + \tfrac12\log 2\pi)`, Eq. (eq-gauss-mse).
    """

    name = "gaussian"

    def __init__(self, sigma: float = 1.0) -> None:
        sigma = float(sigma)
        if not (sigma > 0 and sigma < float("inf")):
            raise ValueError(f"FixedSigmaGaussian: sigma must satisfy 0 < sigma < inf, got {sigma}")
        super().__init__()
        self.sigma = sigma

    def distribution(self, params: torch.Tensor) -> Gaussian:
        return Gaussian(params, torch.full_like(params, self.sigma))

    def extra_repr(self) -> str:
        return f"sigma={self.sigma:g}"
