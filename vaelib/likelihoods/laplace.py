"""The Laplace likelihood: the density whose negative log is the L1 loss (chapter 04)."""

from __future__ import annotations

import math

import torch

from vaelib.likelihoods._base import ElementwiseDistribution, check_batched, per_example_sum
from vaelib.likelihoods.constraints import finite_positive, finite_real

__all__ = ["Laplace", "laplace_nll"]

_LOG2 = math.log(2.0)


class Laplace(ElementwiseDistribution):
    r"""Independent Laplace per data dimension, Eq. (eq-laplace-nll):

    .. math::
        -\log p(x \mid \mu, b) = \frac{|x - \mu|}{b} + \log b + \log 2 .

    With a fixed ``scale`` the NLL is the L1 loss divided by :math:`b` plus a constant. Unlike
    ``torch.distributions.Laplace``, NaN and infinite parameters or data are rejected.

    Mean ``loc``, variance :math:`2b^2`, entropy :math:`1 + \log 2b`.

    Args:
        loc: the median :math:`\mu`, any finite real.
        scale: :math:`b > 0`.
        validate_args: check parameters and data (default: torch's global setting).
    """

    arg_constraints = {"loc": finite_real, "scale": finite_positive}
    support = finite_real
    has_rsample = True
    _param_names = ("loc", "scale")

    def __init__(self, loc: torch.Tensor | float, scale: torch.Tensor | float = 1.0, validate_args: bool | None = None) -> None:
        self.loc: torch.Tensor
        self.scale: torch.Tensor
        self._init_params(validate_args, loc=loc, scale=scale)

    @property
    def mean(self) -> torch.Tensor:
        return self.loc

    @property
    def mode(self) -> torch.Tensor:
        return self.loc

    @property
    def variance(self) -> torch.Tensor:
        return 2 * self.scale.pow(2)

    @property
    def stddev(self) -> torch.Tensor:
        return math.sqrt(2.0) * self.scale

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """Minus Eq. (eq-laplace-nll)."""
        if self._validate_args:
            self._validate_sample(value)
        return -(value - self.loc).abs() / self.scale - torch.log(self.scale) - _LOG2

    def cdf(self, value: torch.Tensor) -> torch.Tensor:
        if self._validate_args:
            self._validate_sample(value)
        z = (value - self.loc) / self.scale
        half_tail = 0.5 * torch.exp(-z.abs())
        return torch.where(z <= 0, half_tail, 1 - half_tail)

    def icdf(self, value: torch.Tensor) -> torch.Tensor:
        """loc - scale * sign(u - 1/2) log(1 - 2|u - 1/2|), with the tail side computed from min(u, 1 - u)."""
        lower = value <= 0.5
        tail = torch.where(lower, value, 1 - value)  # the mass beyond the quantile, <= 1/2
        z = torch.log(2 * tail)  # <= 0
        return self.loc + self.scale * torch.where(lower, z, -z)

    def entropy(self) -> torch.Tensor:
        return 1 + _LOG2 + torch.log(self.scale)

    def rsample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        """loc + scale * (difference of two standard exponentials), reparameterised in loc and scale."""
        shape = self._extended_shape(sample_shape)
        e = torch.empty(2, *shape, dtype=self.loc.dtype, device=self.loc.device).exponential_()
        return self.loc + self.scale * (e[0] - e[1])

    def sample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        with torch.no_grad():
            return self.rsample(sample_shape)


def laplace_nll(loc: torch.Tensor, scale: torch.Tensor | float, x: torch.Tensor) -> torch.Tensor:
    """Laplace negative log-likelihood of each example, summed over all but the first dimension, Eq. (eq-laplace-nll).

    Argument order: the parameters of :class:`Laplace` (``loc``, ``scale``; no default), then the data
    ``x`` of shape (N, ...), as ``-Laplace(loc, scale).log_prob(x)``.
    """
    check_batched("laplace_nll", x)
    return per_example_sum("laplace_nll", Laplace(loc, scale).log_prob(x), x)
