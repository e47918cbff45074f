"""Reconstruction likelihoods p(x | z): distributions, functional NLLs and a registry of heads.

``get(name, **kwargs)`` returns a :class:`LikelihoodHead` that knows how many decoder channels it
needs and how to build its distribution from them. ``names()`` lists the registered names;
``register(name, factory)`` adds one.
"""

from __future__ import annotations

from typing import Any, Callable

from vaelib.likelihoods._base import argument_validation
from vaelib.likelihoods.bernoulli import Bernoulli, bernoulli_nll
from vaelib.likelihoods.beta import Beta, beta_nll, log_beta
from vaelib.likelihoods.beta import squeeze as beta_squeeze
from vaelib.likelihoods.constraints import finite_positive, finite_real, open_unit_interval, unit_interval
from vaelib.likelihoods.continuous_bernoulli import (
    ContinuousBernoulli,
    cb_log_normalizer,
    cb_log_prob,
    cb_mean,
    cb_nll,
    cb_variance,
)
from vaelib.likelihoods.discretized import Discretized, discretize
from vaelib.likelihoods.discrete_heads import DISCRETE_MODES, DequantizedHead, DiscretizedHead, NoDiscreteScale, pmf_head
from vaelib.likelihoods.gaussian import Gaussian, gaussian_nll
from vaelib.likelihoods.heads import (
    BatchOptimalSigmaGaussian,
    BernoulliHead,
    BetaHead,
    ContinuousBernoulliHead,
    DiscretizedLogisticHead,
    DiscretizedLogisticMixtureHead,
    FixedSigmaGaussian,
    HuberHead,
    ImageSigmaGaussian,
    LaplaceHead,
    LearnedSigmaGaussian,
    LikelihoodHead,
    OptimalSigmaGaussian,
    PixelOptimalSigmaGaussian,
    PixelSigmaGaussian,
)
from vaelib.likelihoods.huber import Huber, huber_log_normalizer, huber_nll
from vaelib.likelihoods import kl as _kl  # noqa: F401  (registers kl_divergence pairs)
from vaelib.likelihoods.laplace import Laplace, laplace_nll
from vaelib.likelihoods.logistic import DiscretizedLogistic, DiscretizedLogisticMixture, discretized_logistic_nll
from vaelib.likelihoods.special import log_betainc, log_betainc_pair, log_betaincc
from vaelib.likelihoods.optimal_sigma import (
    pixel_optimal_sigma,
    pixel_optimal_sigma_nll,
    shared_optimal_sigma,
    shared_optimal_sigma_nll,
)

__all__ = [
    "argument_validation",
    "Gaussian",
    "gaussian_nll",
    "Bernoulli",
    "bernoulli_nll",
    "ContinuousBernoulli",
    "cb_log_normalizer",
    "cb_mean",
    "cb_variance",
    "cb_log_prob",
    "cb_nll",
    "Huber",
    "huber_nll",
    "huber_log_normalizer",
    "Laplace",
    "laplace_nll",
    "Beta",
    "beta_nll",
    "beta_squeeze",
    "log_beta",
    "DiscretizedLogistic",
    "discretized_logistic_nll",
    "Discretized",
    "discretize",
    "DiscretizedHead",
    "DequantizedHead",
    "NoDiscreteScale",
    "pmf_head",
    "log_betainc",
    "log_betaincc",
    "log_betainc_pair",
    "shared_optimal_sigma",
    "shared_optimal_sigma_nll",
    "pixel_optimal_sigma",
    "pixel_optimal_sigma_nll",
    "LikelihoodHead",
    "FixedSigmaGaussian",
    "LearnedSigmaGaussian",
    "ImageSigmaGaussian",
    "PixelSigmaGaussian",
    "OptimalSigmaGaussian",
    "BatchOptimalSigmaGaussian",
    "PixelOptimalSigmaGaussian",
    "BernoulliHead",
    "HuberHead",
    "LaplaceHead",
    "BetaHead",
    "ContinuousBernoulliHead",
    "DiscretizedLogisticHead",
    "DiscretizedLogisticMixture",
    "DiscretizedLogisticMixtureHead",
    "finite_real",
    "finite_positive",
    "unit_interval",
    "open_unit_interval",
    "get",
    "names",
    "register",
]

# One line per likelihood: name -> head class (or any callable returning a LikelihoodHead).
_REGISTRY: dict[str, Callable[..., LikelihoodHead]] = {
    "gaussian": FixedSigmaGaussian,
    "gaussian-learned": LearnedSigmaGaussian,
    "gaussian-image": ImageSigmaGaussian,
    "gaussian-pixel": PixelSigmaGaussian,
    "gaussian-optimal": OptimalSigmaGaussian,
    "gaussian-optimal-batch": BatchOptimalSigmaGaussian,
    "gaussian-optimal-pixel": PixelOptimalSigmaGaussian,
    "bernoulli": BernoulliHead,
    "huber": HuberHead,
    "laplace": LaplaceHead,
    "beta": BetaHead,
    "logistic": DiscretizedLogisticHead,
    "logistic-mixture": DiscretizedLogisticMixtureHead,
    "cb": ContinuousBernoulliHead,
}


def names() -> list[str]:
    """Names accepted by :func:`get`."""
    return sorted(_REGISTRY)


def register(name: str, factory: Callable[..., LikelihoodHead]) -> None:
    """Make ``get(name, **kwargs)`` return ``factory(**kwargs)``; a name can be registered once."""
    if name in _REGISTRY:
        raise ValueError(f"likelihood {name!r} is already registered")
    _REGISTRY[name] = factory


def get(name: str, discrete: str | None = None, **kwargs: Any) -> LikelihoodHead:
    """The likelihood head registered as ``name``, built with ``kwargs`` (e.g. ``get("gaussian", sigma=0.1)``).

    ``discrete="pmf"`` wraps it in :class:`DiscretizedHead` (trained on its exact 8-bit pmf),
    ``discrete="dequantized"`` in :class:`DequantizedHead` (trained on uniformly dequantised pixels).
    """
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown likelihood {name!r}; choose one of {', '.join(names())}") from None
    if discrete is not None and discrete not in DISCRETE_MODES:
        raise ValueError(f"likelihood {name!r}: discrete must be None or one of {', '.join(DISCRETE_MODES)}, got {discrete!r}")
    head = factory(**kwargs)
    return head if discrete is None else DISCRETE_MODES[discrete](head)
