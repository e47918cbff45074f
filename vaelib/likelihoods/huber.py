"""The Huber likelihood: the normalised density whose negative log is the Huber loss (chapter 04)."""

from __future__ import annotations

import math
from numbers import Real

import torch

from vaelib.likelihoods._base import ElementwiseDistribution, check_batched, per_example_sum
from vaelib.likelihoods.constraints import finite_positive, finite_real

__all__ = ["Huber", "huber_nll", "huber_log_normalizer", "huber_loss"]

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
_SQRT_HALF = math.sqrt(0.5)
_LOG2 = math.log(2.0)


def huber_loss(r: torch.Tensor, delta: torch.Tensor | float) -> torch.Tensor:
    r"""H_delta(r) = r^2/2 for |r| <= delta, delta (|r| - delta/2) otherwise (``torch.nn.HuberLoss`` per element)."""
    a = r.abs()
    return torch.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))


def _log_erf_half(delta: torch.Tensor) -> torch.Tensor:
    """log erf(delta / sqrt 2) for delta > 0: log(erf) below 1/2 and log1p(-erfc) above, both exact."""
    y = delta * _SQRT_HALF
    small = y < 0.5
    ys = torch.where(small, y, torch.full_like(y, 0.5))
    yl = torch.where(small, torch.full_like(y, 0.5), y)
    return torch.where(small, torch.log(torch.erf(ys)), torch.log1p(-torch.erfc(yl)))


def _log_parts(delta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """log of the two parts of Z: the Gaussian core sqrt(2 pi) erf(delta/sqrt 2), the tails (2/delta) e^{-delta^2/2}."""
    log_core = _LOG_SQRT_2PI + _log_erf_half(delta)
    log_tails = _LOG2 - torch.log(delta) - 0.5 * delta * delta
    return log_core, log_tails


def huber_log_normalizer(delta: torch.Tensor | float) -> torch.Tensor:
    r"""log Z(delta), Z = \int exp(-H_delta(r)) dr = sqrt(2 pi) erf(delta/sqrt 2) + (2/delta) exp(-delta^2/2), Eq. (eq-huber-normaliser).

    Evaluated as ``logaddexp(log core, log tails)`` with both logs computed directly (no erf of a
    tiny argument is subtracted from anything, no exp(delta^2/2) can overflow): full relative
    accuracy for every delta > 0, from the Laplace-like limit delta -> 0 (Z ~ 2/delta) to the
    Gaussian limit delta -> inf (Z -> sqrt(2 pi)). Z is decreasing in delta, so log Z > log sqrt(2 pi) > 0.
    """
    delta = torch.as_tensor(delta, dtype=torch.get_default_dtype() if not isinstance(delta, torch.Tensor) else None)
    log_core, log_tails = _log_parts(delta)
    return torch.logaddexp(log_core, log_tails)


class Huber(ElementwiseDistribution):
    r"""The density whose negative log-likelihood is the Huber loss, Eq. (eq-huber-density):

    .. math::
        p(x \mid \mu, s, \delta) = \frac{1}{s\,Z(\delta)} \exp\!\big(-H_\delta\big(\tfrac{x-\mu}{s}\big)\big),
        \qquad H_\delta(r) = \begin{cases} r^2/2 & |r| \le \delta \\ \delta(|r| - \delta/2) & |r| > \delta \end{cases}

    with the exact normaliser of Eq. (eq-huber-normaliser),
    :math:`Z(\delta) = \sqrt{2\pi}\,\mathrm{erf}(\delta/\sqrt2) + \tfrac{2}{\delta} e^{-\delta^2/2}`
    (see :func:`huber_log_normalizer`), so that, Eq. (eq-huber-nll),
    :math:`-\log p = H_\delta(r) + \log s + \log Z(\delta)`. With ``scale = 1`` the first term is
    ``torch.nn.HuberLoss(delta=delta)`` per element. Gaussian core of unit variance for
    :math:`|r| \le \delta`, Laplace tails beyond.

    Mean ``loc``; variance :math:`s^2 \big(1 + t\,(1 + 2/\delta^2)\big)` with
    :math:`t = (2/\delta) e^{-\delta^2/2} / Z` the probability of the tails; entropy
    :math:`\log(s Z) + (1 + t)/2`. ``kl_divergence`` between two Huber densities has no closed form and is
    not registered.

    Args:
        loc: :math:`\mu`, any finite real.
        scale: :math:`s > 0` (default 1).
        delta: :math:`\delta > 0`, where the quadratic core meets the linear tails, in units of ``scale`` (default 1).
        validate_args: check parameters and data (default: torch's global setting).
    """

    arg_constraints = {"loc": finite_real, "scale": finite_positive, "delta": finite_positive}
    support = finite_real
    has_rsample = True
    _param_names = ("loc", "scale", "delta")

    def __init__(
        self,
        loc: torch.Tensor | float,
        scale: torch.Tensor | float = 1.0,
        delta: torch.Tensor | float = 1.0,
        validate_args: bool | None = None,
    ) -> None:
        self.loc: torch.Tensor
        self.scale: torch.Tensor
        self.delta: torch.Tensor
        self._init_params(validate_args, loc=loc, scale=scale, delta=delta)

    def _tail_probability(self) -> torch.Tensor:
        log_core, log_tails = _log_parts(self.delta)
        return torch.exp(log_tails - torch.logaddexp(log_core, log_tails))

    @property
    def mean(self) -> torch.Tensor:
        return self.loc

    @property
    def mode(self) -> torch.Tensor:
        return self.loc

    @property
    def variance(self) -> torch.Tensor:
        """s^2 (1 + t (1 + 2/delta^2)): a sum of positive terms, exact for every delta."""
        t = self._tail_probability()
        return self.scale.pow(2) * (1 + t * (1 + 2 / self.delta.pow(2)))

    def entropy(self) -> torch.Tensor:
        return torch.log(self.scale) + huber_log_normalizer(self.delta) + 0.5 * (1 + self._tail_probability())

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """Minus Eq. (eq-huber-nll)."""
        if self._validate_args:
            self._validate_sample(value)
        raw_scale = self._raw_params.get("scale", self.scale)
        raw_delta = self._raw_params.get("delta", self.delta)
        if isinstance(raw_scale, Real):  # one number: no per-element log, a scalar division
            r = (value - self.loc) / float(raw_scale)
            log_scale: torch.Tensor | float = math.log(raw_scale)
        else:
            r = (value - self.loc) / self.scale
            log_scale = torch.log(self.scale)
        if isinstance(raw_delta, Real):  # torch's fused Huber kernel computes H_delta(r) - 0 directly
            h = torch.nn.functional.huber_loss(r, r.new_zeros(()).expand_as(r), reduction="none", delta=float(raw_delta))
            log_z = huber_log_normalizer(torch.tensor(float(raw_delta), dtype=torch.float64)).item()
        else:
            h = huber_loss(r, self.delta)
            log_z = huber_log_normalizer(torch.as_tensor(raw_delta, dtype=r.dtype, device=r.device))
        return -h - (log_scale + log_z)

    def cdf(self, value: torch.Tensor) -> torch.Tensor:
        """P(X <= value): exponential tails beyond +-delta, a normal-CDF piece in between."""
        if self._validate_args:
            self._validate_sample(value)
        r = (value - self.loc) / self.scale
        d = self.delta
        log_z = huber_log_normalizer(d)
        a = r.abs()
        # mass below -a, for a >= delta (a tail): exp(delta^2/2 - delta a) / (delta Z)
        a_tail = torch.maximum(a, d)
        tail = torch.exp(0.5 * d * d - d * a_tail - torch.log(d) - log_z)
        # for a < delta: half the tails, e^{-delta^2/2}/(delta Z), plus the core between -delta and -a
        a_core = torch.minimum(a, d)
        core = torch.exp(-0.5 * d * d - torch.log(d) - log_z) + math.sqrt(0.5 * math.pi) * (
            torch.erfc(a_core * _SQRT_HALF) - torch.erfc(d * _SQRT_HALF)
        ) * torch.exp(-log_z)
        below = torch.where(a >= d, tail, core)
        return torch.where(r <= 0, below, 1 - below)

    def icdf(self, value: torch.Tensor) -> torch.Tensor:
        r"""The inverse of :meth:`cdf`, in closed form: with :math:`m = \min(u, 1 - u)` the mass beyond the
        quantile and :math:`T = e^{-\delta^2/2}/(\delta Z)` the mass of one tail,
        :math:`|r| = \delta/2 - \log(m\,\delta Z)/\delta` for :math:`m \le T` (a tail) and
        :math:`|r| = \sqrt2\,\mathrm{erf}^{-1}\big(\mathrm{erf}(\delta/\sqrt2) - (m - T)\,Z/\sqrt{\pi/2}\big)` in the core;
        :math:`x = \mu \mp s|r|`. Differentiable in every parameter."""
        d = self.delta
        log_z = huber_log_normalizer(d)
        lower = value <= 0.5
        m = torch.where(lower, value, 1 - value)
        log_t = -0.5 * d * d - torch.log(d) - log_z
        in_tail = torch.log(m) <= log_t
        m_tail = torch.where(in_tail, m, torch.exp(log_t))
        a_tail = 0.5 * d - (torch.log(m_tail) + torch.log(d) + log_z) / d
        y = torch.erf(d * _SQRT_HALF) - (m - torch.exp(log_t)) * torch.exp(log_z) / math.sqrt(0.5 * math.pi)
        a_core = math.sqrt(2.0) * torch.erfinv(torch.where(in_tail, torch.zeros_like(y), y).clamp(0, 1))
        a = torch.where(in_tail, a_tail, torch.minimum(a_core, d))
        return self.loc + self.scale * torch.where(lower, -a, a)

    def rsample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        """Inverse-CDF sampling, :meth:`icdf` of a uniform draw: reparameterised in ``loc``, ``scale`` and ``delta``."""
        shape = self._extended_shape(sample_shape)
        u = torch.rand(shape, dtype=self.loc.dtype, device=self.loc.device)
        return self.icdf(u.clamp(min=torch.finfo(u.dtype).tiny))

    def sample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        with torch.no_grad():
            return self.rsample(sample_shape)


def huber_nll(
    loc: torch.Tensor, scale: torch.Tensor | float, delta: torch.Tensor | float, x: torch.Tensor
) -> torch.Tensor:
    """Huber negative log-likelihood of each example, summed over all but the first dimension, Eq. (eq-huber-nll).

    Argument order: the parameters of :class:`Huber` (``loc``, ``scale``, ``delta``; no defaults), then
    the data ``x`` of shape (N, ...), as ``-Huber(loc, scale, delta).log_prob(x)``.

    Equals ``HuberLoss(delta, reduction='none')`` summed per example plus d log Z(delta) when scale = 1.
    """
    check_batched("huber_nll", x)
    return per_example_sum("huber_nll", Huber(loc, scale, delta).log_prob(x), x)
