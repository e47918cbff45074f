"""Reconstruction likelihoods p(x | z): distributions, functional NLLs and a registry of heads.

``get(name, **kwargs)`` returns a :class:`LikelihoodHead` that knows how many decoder channels it
needs and how to build its distribution from them.
"""

from __future__ import annotations

from typing import Any, Callable

from vaelib.likelihoods.constraints import finite_positive, finite_real
from vaelib.likelihoods.gaussian import Gaussian, gaussian_nll
from vaelib.likelihoods.heads import FixedSigmaGaussian, LikelihoodHead

__all__ = [
    "Gaussian",
    "gaussian_nll",
    "LikelihoodHead",
    "FixedSigmaGaussian",
    "finite_real",
    "finite_positive",
    "get",
    "names",
]

_REGISTRY: dict[str, Callable[..., LikelihoodHead]] = {
    "gaussian": FixedSigmaGaussian,
}


def names() -> list[str]:
    """Names accepted by :func:`get`."""
    return sorted(_REGISTRY)


def get(name: str, **kwargs: Any) -> LikelihoodHead:
    """The likelihood head registered as ``name``, built with ``kwargs`` (e.g. ``get("gaussian", sigma=0.1)``)."""
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown likelihood {name!r}; choose one of {', '.join(names())}") from None
    return factory(**kwargs)
