"""The Gaussian reconstruction likelihood and the squared error it turns into (chapter 02)."""

from __future__ import annotations

import math
import torch

from vaelib.likelihoods._base import ElementwiseDistribution, check_batched, per_example_sum
from vaelib.likelihoods.constraints import finite_positive, finite_real

__all__ = ["Gaussian", "gaussian_nll", "HALF_LOG_2PI"]

HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


class Gaussian(ElementwiseDistribution):
    r"""Independent Gaussian per data dimension, Eq. (eq-gauss-nll):

    .. math::
        -\log p(x \mid \mu, \sigma) = \frac{(x - \mu)^2}{2\sigma^2} + \log \sigma + \tfrac12 \log 2\pi .

    With a fixed ``scale`` the negative log-likelihood is the squared error times
    :math:`1/(2\sigma^2)` plus a constant, Eq. (eq-gauss-mse).

    Args:
        loc: the mean :math:`\mu`, any finite real.
        scale: the standard deviation :math:`\sigma > 0`, a float or a tensor that broadcasts with ``loc``.
        validate_args: check parameters and data (default: torch's global setting, on unless
            switched off with ``torch.distributions.Distribution.set_default_validate_args``).

    Example:
        >>> p = Gaussian(torch.zeros(3), 0.5)
        >>> p.log_prob(torch.tensor([0.0, 1.0, -1.0])).shape
        torch.Size([3])
    """

    arg_constraints = {"loc": finite_real, "scale": finite_positive}
    support = finite_real
    has_rsample = True
    _param_names = ("loc", "scale")

    def __init__(self, loc: torch.Tensor, scale: torch.Tensor | float, validate_args: bool | None = None) -> None:
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
    def stddev(self) -> torch.Tensor:
        return self.scale

    @property
    def variance(self) -> torch.Tensor:
        return self.scale.pow(2)

    def rsample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        shape = self._extended_shape(sample_shape)
        eps = torch.randn(shape, dtype=self.loc.dtype, device=self.loc.device)
        return self.loc + eps * self.scale

    def sample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        with torch.no_grad():
            return self.rsample(sample_shape)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """Log-density of ``value``, Eq. (eq-gauss-nll) with the sign flipped."""
        if self._validate_args:
            self._validate_sample(value)
        z = (value - self.loc) / self.scale
        return -0.5 * z * z - torch.log(self.scale) - HALF_LOG_2PI

    def cdf(self, value: torch.Tensor) -> torch.Tensor:
        if self._validate_args:
            self._validate_sample(value)
        return 0.5 * torch.erfc((self.loc - value) / (self.scale * math.sqrt(2.0)))

    def icdf(self, value: torch.Tensor) -> torch.Tensor:
        """loc + scale * Phi^{-1}(u), with ``torch.special.ndtri`` (accurate in both tails)."""
        return self.loc + self.scale * torch.special.ndtri(value)

    def entropy(self) -> torch.Tensor:
        return 0.5 + HALF_LOG_2PI + torch.log(self.scale)


def gaussian_nll(loc: torch.Tensor, scale: torch.Tensor | float, x: torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood of each example, summed over all but the first dimension, Eq. (eq-gauss-nll).

    Argument order: the parameters of :class:`Gaussian` (``loc``, ``scale``), then the data ``x``, as
    ``-Gaussian(loc, scale).log_prob(x)``.

    Args:
        loc: predicted means, broadcastable to ``x``.
        scale: standard deviation(s), positive, broadcastable to ``x`` (no default).
        x: data of shape (N, ...).

    Returns:
        A tensor of shape (N,).
    """
    check_batched("gaussian_nll", x)
    return per_example_sum("gaussian_nll", Gaussian(loc, scale).log_prob(x), x)
