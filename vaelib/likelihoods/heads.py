"""Likelihood heads: how a decoder's output becomes a distribution over the data.

A head knows how many output channels the decoder needs per data channel and how to turn those
channels into a :class:`torch.distributions.Distribution`. Models and the trainer only talk to heads,
so every likelihood of the book plugs into the same VAE.

Layout: data are (N, C, ...) with channels on dimension 1. A head with two parameters per data
channel reads the first C decoder channels as the first parameter and the next C as the second
(``params.chunk(2, dim=1)``).

Positive parameters predicted by the decoder use a soft floor, ``floor + softplus(raw)``: smooth,
strictly positive even when softplus underflows in float32, and close to ``raw`` for large raw.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F
from torch.distributions import Distribution

from vaelib.likelihoods._base import exact_softplus
from vaelib.likelihoods.bernoulli import Bernoulli
from vaelib.likelihoods.continuous_bernoulli import ContinuousBernoulli
from vaelib.likelihoods.beta import Beta, squeeze
from vaelib.likelihoods.gaussian import Gaussian
from vaelib.likelihoods.huber import Huber
from vaelib.likelihoods.laplace import Laplace
from vaelib.likelihoods.logistic import DiscretizedLogistic, DiscretizedLogisticMixture
from vaelib.likelihoods.optimal_sigma import (
    pixel_optimal_sigma,
    pixel_optimal_sigma_nll,
    shared_optimal_sigma,
    shared_optimal_sigma_nll,
)

__all__ = [
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
    "DiscretizedLogisticHead",
    "DiscretizedLogisticMixtureHead",
]


def _positive(name: str, owner: str, value: float, allow_zero: bool = False) -> float:
    value = float(value)
    ok = (value >= 0 if allow_zero else value > 0) and value < math.inf
    if not ok:
        rng = "0 <= value < inf" if allow_zero else "0 < value < inf"
        raise ValueError(f"{owner}: {name} must satisfy {rng}, got {value}")
    return value


def _split(owner: str, params: torch.Tensor, parts: int) -> tuple[torch.Tensor, ...]:
    if params.ndim < 2 or params.shape[1] % parts != 0:
        raise ValueError(
            f"{owner}: decoder output must have a channel dimension (dim 1) divisible by {parts}, "
            f"got shape {tuple(params.shape)}"
        )
    return params.chunk(parts, dim=1)


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


class LearnedSigmaGaussian(LikelihoodHead):
    r"""Gaussian with one learned standard deviation shared by all pixels and images, Eq. (eq-gauss-nll).

    The parameter is ``log_sigma`` (an :class:`torch.nn.Parameter`, initialised at
    :math:`\log\sigma_0`), :math:`\sigma = e^{\log\sigma}`; the decoder predicts the mean. Trained
    jointly with the model, :math:`\sigma^2` tracks the mean squared error (compare
    :class:`OptimalSigmaGaussian`, which sets it there analytically).
    """

    name = "gaussian-learned"

    def __init__(self, sigma: float = 1.0) -> None:
        super().__init__()
        self.log_sigma = nn.Parameter(torch.tensor(math.log(_positive("sigma", "LearnedSigmaGaussian", sigma))))

    @property
    def sigma(self) -> torch.Tensor:
        return self.log_sigma.exp()

    def distribution(self, params: torch.Tensor) -> Gaussian:
        return Gaussian(params, self.log_sigma.to(params.dtype).exp().expand_as(params))


class ImageSigmaGaussian(LikelihoodHead):
    r"""Gaussian with one standard deviation per image, predicted by the decoder, Eq. (eq-gauss-nll).

    The decoder outputs C + 1 channels: C means, then one raw channel whose average over the
    non-channel dimensions gives :math:`\sigma = \sigma_{\min} + \mathrm{softplus}(\overline{raw})`.
    """

    name = "gaussian-image"

    def __init__(self, sigma_min: float = 1e-3) -> None:
        super().__init__()
        self.sigma_min = _positive("sigma_min", "ImageSigmaGaussian", sigma_min)

    def channels(self, data_channels: int) -> int:
        return data_channels + 1

    def distribution(self, params: torch.Tensor) -> Gaussian:
        if params.ndim < 2 or params.shape[1] < 2:
            raise ValueError(f"ImageSigmaGaussian: decoder output needs C + 1 >= 2 channels, got shape {tuple(params.shape)}")
        loc, raw = params[:, :-1], params[:, -1:]
        raw = raw.flatten(2).mean(2).view(raw.shape[0], 1, *([1] * (raw.ndim - 2))) if raw.ndim > 2 else raw
        sigma = self.sigma_min + exact_softplus(raw)
        return Gaussian(loc, sigma.expand_as(loc))

    def extra_repr(self) -> str:
        return f"sigma_min={self.sigma_min:g}"


class PixelSigmaGaussian(LikelihoodHead):
    r"""Gaussian with a standard deviation per pixel and channel, predicted by the decoder, Eq. (eq-gauss-nll).

    2C channels: means, then raw values with :math:`\sigma = \sigma_{\min} + \mathrm{softplus}(raw)`.
    """

    name = "gaussian-pixel"
    params_per_channel = 2

    def __init__(self, sigma_min: float = 1e-3) -> None:
        super().__init__()
        self.sigma_min = _positive("sigma_min", "PixelSigmaGaussian", sigma_min)

    def distribution(self, params: torch.Tensor) -> Gaussian:
        loc, raw = _split("PixelSigmaGaussian", params, 2)
        return Gaussian(loc, self.sigma_min + exact_softplus(raw))

    def extra_repr(self) -> str:
        return f"sigma_min={self.sigma_min:g}"


class OptimalSigmaGaussian(LikelihoodHead):
    r"""Gaussian at the analytically optimal shared sigma, :math:`\sigma^2 = \mathrm{MSE}`, Eq. (eq-sigma-shared-opt).

    The decoder predicts the mean. Sigma depends on the data, so :meth:`~LikelihoodHead.distribution` needs ``x``
    (:meth:`~OptimalSigmaGaussian.distribution_given`); :meth:`~LikelihoodHead.nll` is :func:`shared_optimal_sigma_nll`.
    """

    name = "gaussian-optimal"

    def __init__(self, sigma_min: float = 1e-3, over: Literal["image", "batch"] = "image") -> None:
        super().__init__()
        self.sigma_min = _positive("sigma_min", "OptimalSigmaGaussian", sigma_min)
        if over not in ("image", "batch"):
            raise ValueError(f"OptimalSigmaGaussian: over must be 'image' or 'batch', got {over!r}")
        self.over = over

    def distribution(self, params: torch.Tensor) -> Distribution:
        raise ValueError("OptimalSigmaGaussian: sigma depends on the data; use distribution_given(params, x)")

    def distribution_given(self, params: torch.Tensor, x: torch.Tensor) -> Gaussian:
        """The Gaussian at the optimal sigma for the data ``x``."""
        sigma = shared_optimal_sigma(params, x, self.sigma_min, self.over)
        return Gaussian(params, sigma.view(-1, *([1] * (x.ndim - 1))).expand_as(params))

    def nll(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return shared_optimal_sigma_nll(params, x, self.sigma_min, self.over)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return params

    def extra_repr(self) -> str:
        return f"sigma_min={self.sigma_min:g}, over={self.over!r}"


class BatchOptimalSigmaGaussian(OptimalSigmaGaussian):
    r"""The analytically optimal sigma shared by a whole minibatch, :math:`\sigma^2 = \mathrm{MSE}` over the batch.

    :class:`OptimalSigmaGaussian` with ``over="batch"``, as a name of its own: this is the estimate of the
    sigma-VAE reference code (Rybkin et al. 2021), where the per-image form is a variant.
    """

    name = "gaussian-optimal-batch"

    def __init__(self, sigma_min: float = 1e-3) -> None:
        super().__init__(sigma_min=sigma_min, over="batch")


class PixelOptimalSigmaGaussian(LikelihoodHead):
    r"""Gaussian with each dimension at its optimal sigma, :math:`\sigma_j = \max(|x_j - \mu_j|, \sigma_{\min})`, Eq. (eq-sigma-pixel-opt)."""

    name = "gaussian-optimal-pixel"

    def __init__(self, sigma_min: float = 1e-3) -> None:
        super().__init__()
        self.sigma_min = _positive("sigma_min", "PixelOptimalSigmaGaussian", sigma_min)

    def distribution(self, params: torch.Tensor) -> Distribution:
        raise ValueError("PixelOptimalSigmaGaussian: sigma depends on the data; use distribution_given(params, x)")

    def distribution_given(self, params: torch.Tensor, x: torch.Tensor) -> Gaussian:
        return Gaussian(params, pixel_optimal_sigma(params, x, self.sigma_min))

    def nll(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return pixel_optimal_sigma_nll(params, x, self.sigma_min)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return params

    def extra_repr(self) -> str:
        return f"sigma_min={self.sigma_min:g}"


class BernoulliHead(LikelihoodHead):
    """Bernoulli with logits predicted by the decoder, Eq. (eq-bern-bce); the mean is sigmoid(logits)."""

    name = "bernoulli"

    def distribution(self, params: torch.Tensor) -> Bernoulli:
        return Bernoulli(params)

    def nll(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        r"""The BCE of each image, Eq. (eq-bern-bce), summed by torch's fused ``binary_cross_entropy_with_logits``.

        The fused kernel evaluates :math:`(1 - x)\,l - \log\sigma(l)`. Where the two terms cancel
        (:math:`l \ll 0` with :math:`x` near 0, say) a pixel's term keeps an absolute error of about
        one rounding unit of :math:`|l|` (2e-6 nats at :math:`l = -30` in float32) instead of its
        relative accuracy, which is below one rounding unit of a per-image sum of 16 nats or more;
        the sum of an image is within :math:`2^{-20} \sum_j (|l_j| + 1)` of the exact value (tested
        against mpmath). For per-pixel relative accuracy use :class:`~vaelib.likelihoods.Bernoulli`
        or :func:`~vaelib.likelihoods.bernoulli_nll`. With argument validation on (torch's default)
        ``params`` and ``x`` are checked as ``Bernoulli(params).log_prob(x)`` checks them; the
        trainer checks its images once and runs its steps without.
        """
        if Distribution._validate_args:
            Bernoulli(params)._validate_sample(x)
        if params.shape != x.shape:
            raise ValueError(f"BernoulliHead: decoder output of shape {tuple(params.shape)} does not match x {tuple(x.shape)}")
        dtype = torch.result_type(params, x)
        loss = F.binary_cross_entropy_with_logits(params.to(dtype), x.to(dtype), reduction="none")
        return loss.flatten(1).sum(1)


class ContinuousBernoulliHead(LikelihoodHead):
    """Continuous Bernoulli with logits predicted by the decoder, Eq. (eq-cb-logc-logit).

    The mean (what a reconstruction figure should show) is ``cb_mean(logits)``, not
    ``sigmoid(logits)``. ``clip`` reproduces the probability clamp of the reference code of
    Loaiza-Ganem and Cunningham (2019), lambda in [clip, 1 - clip] (there 1e-4), as a clamp of the
    logits to +-log((1 - clip)/clip); the default is no clamp.
    """

    name = "cb"

    def __init__(self, clip: float | None = None) -> None:
        super().__init__()
        if clip is not None and not 0.0 < float(clip) < 0.5:
            raise ValueError(f"ContinuousBernoulliHead: clip must satisfy 0 < clip < 0.5, got {clip}")
        self.clip = None if clip is None else float(clip)

    def distribution(self, params: torch.Tensor) -> ContinuousBernoulli:
        if self.clip is not None:
            bound = math.log((1.0 - self.clip) / self.clip)
            params = params.clamp(-bound, bound)
        return ContinuousBernoulli(params)

    def extra_repr(self) -> str:
        return "" if self.clip is None else f"clip={self.clip:g}"


class HuberHead(LikelihoodHead):
    """Huber density with the location predicted by the decoder and fixed ``scale`` and ``delta``, Eq. (eq-huber-nll)."""

    name = "huber"

    def __init__(self, scale: float = 1.0, delta: float = 1.0) -> None:
        super().__init__()
        self.scale = _positive("scale", "HuberHead", scale)
        self.delta = _positive("delta", "HuberHead", delta)

    def distribution(self, params: torch.Tensor) -> Huber:
        return Huber(params, self.scale, self.delta)

    def extra_repr(self) -> str:
        return f"scale={self.scale:g}, delta={self.delta:g}"


class LaplaceHead(LikelihoodHead):
    """Laplace with the location predicted by the decoder, Eq. (eq-laplace-nll).

    ``scale`` a number: fixed scale, C channels (the NLL is the L1 loss / scale plus a constant).
    ``scale="pixel"``: 2C channels, the second half giving ``scale_min + softplus(raw)``.
    """

    name = "laplace"

    def __init__(self, scale: float | Literal["pixel"] = 1.0, scale_min: float = 1e-3) -> None:
        super().__init__()
        self.scale_min = _positive("scale_min", "LaplaceHead", scale_min)
        self.scale: float | str = "pixel" if scale == "pixel" else _positive("scale", "LaplaceHead", scale)  # type: ignore[arg-type]
        self.params_per_channel = 2 if self.scale == "pixel" else 1

    def distribution(self, params: torch.Tensor) -> Laplace:
        if self.scale == "pixel":
            loc, raw = _split("LaplaceHead", params, 2)
            return Laplace(loc, self.scale_min + exact_softplus(raw))
        return Laplace(params, torch.full_like(params, float(self.scale)))

    def extra_repr(self) -> str:
        return f"scale={self.scale!r}" if self.scale == "pixel" else f"scale={self.scale:g}"


class BetaHead(LikelihoodHead):
    r"""Beta with both concentrations predicted by the decoder, Eq. (eq-beta-logpdf).

    2C channels; :math:`c = c_{\min} + \mathrm{softplus}(raw)`, or with ``max_concentration``
    :math:`c_{\max}` the smooth cap :math:`c = c_{\min} + m(1 - e^{-\mathrm{softplus}(raw)/m})`,
    :math:`m = c_{\max} - c_{\min}` (equal to softplus near zero, saturating at :math:`c_{\max}`).

    ``eps``: if given, data are mapped by :func:`~vaelib.likelihoods.beta_squeeze` and :meth:`~LikelihoodHead.nll` adds the Jacobian,
    :math:`-d\log(1 - 2\epsilon)`, so that it is the NLL of a density on the original data.
    Without it, pixels exactly 0 or 1 are a ``ValueError``.
    """

    name = "beta"
    params_per_channel = 2

    def __init__(
        self, eps: float | None = None, min_concentration: float = 1e-3, max_concentration: float | None = None
    ) -> None:
        super().__init__()
        if eps is not None and not (0 < eps < 0.5):
            raise ValueError(f"BetaHead: eps must satisfy 0 < eps < 0.5, got {eps}")
        self.eps = eps
        self.min_concentration = _positive("min_concentration", "BetaHead", min_concentration)
        if max_concentration is not None and not (min_concentration < max_concentration < math.inf):
            raise ValueError(
                f"BetaHead: max_concentration must satisfy min_concentration < value < inf, got {max_concentration}"
            )
        self.max_concentration = max_concentration

    def _concentration(self, raw: torch.Tensor) -> torch.Tensor:
        sp = exact_softplus(raw)
        if self.max_concentration is None:
            return self.min_concentration + sp
        m = self.max_concentration - self.min_concentration
        return self.min_concentration - m * torch.expm1(-sp / m)

    def distribution(self, params: torch.Tensor) -> Beta:
        raw1, raw0 = _split("BetaHead", params, 2)
        return Beta(self._concentration(raw1), self._concentration(raw0))

    def nll(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if self.eps is None:
            return super().nll(params, x)
        nll = -self.distribution(params).log_prob(squeeze(x, self.eps)).flatten(1).sum(1)
        return nll - x[0].numel() * math.log1p(-2 * self.eps)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        """The Beta mean, mapped back through the squeeze when ``eps`` is set."""
        m = self.distribution(params).mean
        return m if self.eps is None else (m - self.eps) / (1 - 2 * self.eps)

    def extra_repr(self) -> str:
        return f"eps={self.eps}, min_concentration={self.min_concentration:g}, max_concentration={self.max_concentration}"


class DiscretizedLogisticHead(LikelihoodHead):
    """Discretised logistic for k/(2**bits - 1) data, Eq. (eq-logistic-bins).

    2C channels: locations (unconstrained), then ``scale = scale_min + softplus(raw)``.
    """

    name = "logistic"
    params_per_channel = 2

    def __init__(self, bits: int = 8, scale_min: float = 1e-4) -> None:
        super().__init__()
        self.bits = int(bits)
        self.scale_min = _positive("scale_min", "DiscretizedLogisticHead", scale_min)

    def distribution(self, params: torch.Tensor) -> DiscretizedLogistic:
        loc, raw = _split("DiscretizedLogisticHead", params, 2)
        return DiscretizedLogistic(loc, self.scale_min + exact_softplus(raw), self.bits)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        """The exact mean over the bins (256 elementwise passes for 8 bits)."""
        return self.distribution(params).mean

    def extra_repr(self) -> str:
        return f"bits={self.bits}, scale_min={self.scale_min:g}"


class DiscretizedLogisticMixtureHead(LikelihoodHead):
    """Mixture of ``components`` discretised logistics per pixel and channel, the PixelCNN++ likelihood.

    3 K C channels for K components and C data channels, read as three blocks of K C channels:
    the logits of the mixture weights, the locations (unconstrained), then raw scales with
    ``scale = scale_min + softplus(raw)``; within a block, component j occupies channels
    j C .. (j + 1) C - 1. See :class:`~vaelib.likelihoods.DiscretizedLogisticMixture`.
    """

    name = "logistic-mixture"

    def __init__(self, components: int = 5, bits: int = 8, scale_min: float = 1e-4) -> None:
        super().__init__()
        if isinstance(components, bool) or int(components) != components or components < 1:
            raise ValueError(
                f"DiscretizedLogisticMixtureHead: components must be an integer >= 1, got {components!r}"
            )
        self.components = int(components)
        self.bits = int(bits)
        self.scale_min = _positive("scale_min", "DiscretizedLogisticMixtureHead", scale_min)
        self.params_per_channel = 3 * self.components

    def distribution(self, params: torch.Tensor) -> DiscretizedLogisticMixture:
        logits, loc, raw = _split("DiscretizedLogisticMixtureHead", params, 3)
        k = self.components
        if logits.shape[1] % k != 0:
            raise ValueError(
                f"DiscretizedLogisticMixtureHead: decoder output must have 3 * {k} * C channels, got shape {tuple(params.shape)}"
            )

        def per_component(t: torch.Tensor) -> torch.Tensor:  # (N, K C, ...) -> (N, C, ..., K)
            return t.reshape(t.shape[0], k, t.shape[1] // k, *t.shape[2:]).movedim(1, -1)

        return DiscretizedLogisticMixture(
            per_component(logits), per_component(loc), self.scale_min + exact_softplus(per_component(raw)), self.bits
        )

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        """The exact mean over the bins (256 elementwise passes per component for 8 bits)."""
        return self.distribution(params).mean

    def extra_repr(self) -> str:
        return f"components={self.components}, bits={self.bits}, scale_min={self.scale_min:g}"
