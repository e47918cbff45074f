r"""Heads on the 8-bit scale: a continuous head's exact pmf, and training on uniformly dequantised data.

Chapter 8 compares every likelihood by the probability it gives 8-bit images. Two ways lead from a
continuous head to that scale:

* :class:`DiscretizedHead` replaces the head's density by the mass of each pixel's bin,
  Eq. (eq-discrete-pmf), through :func:`~vaelib.likelihoods.discretize`. Its NLL is a discrete NLL,
  and a model can be trained on it.
* :class:`DequantizedHead` trains on the density at the pixels plus uniform noise inside their bins.
  By Jensen's inequality the expected NLL of the noisy pixels, plus :math:`d \log n`, bounds the
  discrete NLL from above, Eq. (eq-dequant-bound) (Theis et al. 2016). It evaluates (in ``eval()``
  mode) the discrete NLL that it bounds.

:func:`pmf_head` gives the head whose NLL is the discrete NLL of a trained model's head, the way the
book measures bits per dimension, or says why there is none.
"""

from __future__ import annotations

import math

import torch
from torch.distributions import Distribution

from vaelib.likelihoods.discretized import Discretized, _check_levels
from vaelib.likelihoods.heads import (
    BernoulliHead,
    DiscretizedLogisticHead,
    DiscretizedLogisticMixtureHead,
    FixedSigmaGaussian,
    LikelihoodHead,
    OptimalSigmaGaussian,
    PixelOptimalSigmaGaussian,
)

__all__ = ["DiscretizedHead", "DequantizedHead", "NoDiscreteScale", "pmf_head", "DISCRETE_MODES"]


class NoDiscreteScale(ValueError):
    """A head that defines no probability for 8-bit images (the reason is the message)."""


def _continuous(owner: str, base: LikelihoodHead) -> LikelihoodHead:
    if not isinstance(base, LikelihoodHead):
        raise TypeError(f"{owner}: base must be a LikelihoodHead, got {type(base).__name__}")
    if isinstance(base, (DiscretizedHead, DequantizedHead, BernoulliHead, DiscretizedLogisticHead, DiscretizedLogisticMixtureHead)):
        raise ValueError(f"{owner}: base {type(base).__name__} is already a likelihood of discrete data")
    if isinstance(base, (OptimalSigmaGaussian, PixelOptimalSigmaGaussian)):
        raise ValueError(f"{owner}: base {type(base).__name__} computes sigma from the image it scores, "
                         "so it has no distribution to discretise")
    return base


class DiscretizedHead(LikelihoodHead):
    r"""A continuous head turned into the pmf it assigns to data on the grid k/n, Eq. (eq-discrete-pmf).

    Same decoder channels as ``base``; ``distribution(params)`` is
    ``Discretized(base.distribution(params), levels)`` and ``mean(params)`` its exact mean over the
    grid, in [0, 1] (what reconstructions show). Training on this head maximises the probability of
    the 8-bit data itself; it may then move the base's location far outside [0, 1] on pixels that are
    exactly 0 or 1, where the edge bins collect the tails.
    """

    def __init__(self, base: LikelihoodHead, levels: int = 256) -> None:
        super().__init__()
        self.base = _continuous("DiscretizedHead", base)
        self.levels = _check_levels("DiscretizedHead", levels)
        self.name = base.name
        self.params_per_channel = base.params_per_channel

    def channels(self, data_channels: int) -> int:
        return self.base.channels(data_channels)

    def distribution(self, params: torch.Tensor) -> Discretized:
        return Discretized(self.base.distribution(params), self.levels)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return self.distribution(params).mean

    def extra_repr(self) -> str:
        return f"levels={self.levels}"


class DequantizedHead(LikelihoodHead):
    r"""Train a continuous head on uniformly dequantised data; evaluate the discrete NLL it bounds.

    In training mode the NLL of image x (pixels k/n) is, with fresh noise :math:`u \sim U(-\tfrac12, \tfrac12)^d`
    from torch's global generator at every call,

    .. math::
        -\log p\big(x + u/n\big) + d \log n \;\ge\; -\log P(x) \quad \text{in expectation over } u,

    Eq. (eq-dequant-bound): a density NLL on the scale of the discrete NLL, an upper bound on it.
    In ``eval()`` mode (validation, early stopping, test figures) the NLL is the discrete NLL
    :math:`-\log P(x)` of :class:`DiscretizedHead`, and ``mean`` is the mean of that discrete
    distribution. The noisy pixels leave [0, 1] near 0 and 1, so the base must have the real line as
    its support (Gaussian, Laplace, Huber).
    """

    def __init__(self, base: LikelihoodHead, levels: int = 256) -> None:
        super().__init__()
        self.pmf = DiscretizedHead(base, levels)
        self.name = base.name
        self.params_per_channel = base.params_per_channel

    @property
    def base(self) -> LikelihoodHead:
        return self.pmf.base

    @property
    def levels(self) -> int:
        return self.pmf.levels

    def channels(self, data_channels: int) -> int:
        return self.base.channels(data_channels)

    def distribution(self, params: torch.Tensor) -> Distribution:
        """The discrete distribution that the training objective bounds (as in ``eval()`` mode)."""
        return self.pmf.distribution(params)

    def nll(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return self.pmf.nll(params, x)
        n = self.levels - 1
        noise = torch.rand(x.shape, dtype=x.dtype, device=x.device) - 0.5
        dims = x[0].numel() if x.ndim > 0 else 1
        return self.base.nll(params, x + noise / n) + dims * math.log(n)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return self.pmf.mean(params)

    def extra_repr(self) -> str:
        return f"levels={self.levels}"


DISCRETE_MODES = {"pmf": DiscretizedHead, "dequantized": DequantizedHead}


def pmf_head(head: LikelihoodHead, sigma: float | None = None) -> LikelihoodHead:
    """The head whose NLL is the discrete NLL (8-bit pmf, or native discrete) of a trained ``head``.

    * Already discrete heads (:class:`DiscretizedHead`, the discretised logistic and its mixture, the
      Bernoulli) are returned as they are; for :class:`DequantizedHead`, its :class:`DiscretizedHead`.
      The Bernoulli is a pmf of binary images only: bits per dimension of it are on that scale.
    * Heads whose sigma is computed from the image they score (the optimal-sigma Gaussians) define no
      distribution over images; with a ``sigma`` fixed beforehand (fitted on training data, say) the
      shared-sigma form becomes :class:`~vaelib.likelihoods.FixedSigmaGaussian` at that sigma, discretised.
    * Any other continuous head is wrapped in :class:`DiscretizedHead`.

    Raises :class:`NoDiscreteScale` where no discrete NLL exists.
    """
    if isinstance(head, DequantizedHead):
        return head.pmf
    if isinstance(head, (DiscretizedHead, BernoulliHead)):
        return head
    if isinstance(head, (DiscretizedLogisticHead, DiscretizedLogisticMixtureHead)):
        if head.bits != 8:
            raise NoDiscreteScale(f"pmf_head: {type(head).__name__} is a pmf on {2**head.bits} levels, not 256")
        return head
    if isinstance(head, PixelOptimalSigmaGaussian):
        raise NoDiscreteScale("pmf_head: PixelOptimalSigmaGaussian sets each pixel's sigma from that pixel's own value; "
                              "it defines no distribution over images and has no discrete NLL")
    if isinstance(head, OptimalSigmaGaussian):
        if sigma is None:
            raise NoDiscreteScale(f"pmf_head: {type(head).__name__} computes sigma from the image it scores; "
                                  "pass a sigma fixed beforehand (e.g. fitted on the training split)")
        return DiscretizedHead(FixedSigmaGaussian(sigma))
    return DiscretizedHead(head)
