"""The Beta likelihood for data in (0, 1), with an exact log-Beta function (chapter 05)."""

from __future__ import annotations

import math

import torch

from vaelib.likelihoods._base import ElementwiseDistribution, check_batched, per_example_sum
from vaelib.likelihoods.constraints import finite_positive, open_unit_interval

__all__ = ["Beta", "beta_nll", "log_beta", "squeeze"]

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)

# Stirling series of lgamma(x) - [(x - 1/2) log x - x + log sqrt(2 pi)]: B_2k / (2k (2k - 1) x^(2k-1)), k = 1..8.
# At x >= 10 the first omitted term is below 2e-18, so the correction is exact to float64 rounding.
_STIRLING = (
    1.0 / 12.0,
    -1.0 / 360.0,
    1.0 / 1260.0,
    -1.0 / 1680.0,
    1.0 / 1188.0,
    -691.0 / 360360.0,
    1.0 / 156.0,
    -3617.0 / 122400.0,
)
_BIG = 10.0  # above this the Stirling forms are used (as in R's lbeta and TOMS 708)


def _lgamma_correction(x: torch.Tensor) -> torch.Tensor:
    """lgamma(x) - (x - 1/2) log x + x - log sqrt(2 pi), for x >= 10."""
    c = 1.0 / x
    c2 = c * c
    acc = torch.full_like(x, _STIRLING[-1])
    for coeff in reversed(_STIRLING[:-1]):
        acc = acc * c2 + coeff
    return acc * c


def log_beta(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    r"""log B(a, b) = lgamma(a) + lgamma(b) - lgamma(a + b), without its cancellation at large arguments.

    With p = min(a, b), q = max(a, b) and c(x) the Stirling correction of lgamma:

    * p >= 10: :math:`-\tfrac12\log q + \log\sqrt{2\pi} + (p - \tfrac12)\log\frac{p}{p+q} + q\,\mathrm{log1p}(-\frac{p}{p+q}) + c(p) + c(q) - c(p+q)`;
    * p < 10 <= q: :math:`\mathrm{lgamma}(p) + p - p\log(p+q) + (q-\tfrac12)\,\mathrm{log1p}(-\frac{p}{p+q}) + c(q) - c(p+q)`;
    * q < 10: the lgamma sum directly (all three values are below lgamma(20) ~ 39).

    The three lgamma values grow like x log x (1.3e7 at 1e6) while log B can be of order one
    (a = 1e6, b = 1e-3 gives 6.9), so the plain lgamma sum would lose up to 9 digits; these forms
    keep the error at a few units of rounding of the result's own conditioning.
    """
    a, b = torch.broadcast_tensors(torch.as_tensor(a), torch.as_tensor(b))
    if bool((a < _BIG).all()) and bool((b < _BIG).all()):  # the common case: no branches, no masks
        return torch.lgamma(a) + torch.lgamma(b) - torch.lgamma(a + b)
    p = torch.minimum(a, b)
    q = torch.maximum(a, b)
    big_p = p >= _BIG
    big_q = (q >= _BIG) & ~big_p
    small = ~(big_p | big_q)
    one = torch.ones_like(p)
    ten = torch.full_like(p, _BIG)
    # each branch is evaluated only when some element needs it (data-dependent, but on the
    # typical decoder output all concentrations are in one regime and two branches are skipped)
    out = torch.zeros_like(p)
    if bool(big_p.any()):  # both large
        pa, qa = torch.where(big_p, p, ten), torch.where(big_p, q, ten)
        sa = pa + qa
        ra = pa / sa
        both = (
            -0.5 * torch.log(qa)
            + _LOG_SQRT_2PI
            + (pa - 0.5) * torch.log(ra)
            + qa * torch.log1p(-ra)
            + (_lgamma_correction(pa) + _lgamma_correction(qa) - _lgamma_correction(sa))
        )
        out = torch.where(big_p, both, out)
    if bool(big_q.any()):  # only q large
        pb, qb = torch.where(big_q, p, one), torch.where(big_q, q, ten)
        sb = pb + qb
        one_big = (
            torch.lgamma(pb)
            + (_lgamma_correction(qb) - _lgamma_correction(sb))
            + pb
            - pb * torch.log(sb)
            + (qb - 0.5) * torch.log1p(-pb / sb)
        )
        out = torch.where(big_q, one_big, out)
    if bool(small.any()):  # both small
        pc, qc = torch.where(small, p, one), torch.where(small, q, one)
        direct = torch.lgamma(pc) + torch.lgamma(qc) - torch.lgamma(pc + qc)
        out = torch.where(small, direct, out)
    return out


def _log_prob_concentrated(a: torch.Tensor, b: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    r"""Eq. (eq-beta-logpdf) for concentrations a, b >= 10, without the cancellation of its three terms.

    With s = a + b, u = x s - a and c(.) the Stirling correction of lgamma, substituting the Stirling
    form of log B(a, b) and collecting the logarithms gives

    .. math::
        (a - 1)\,\mathrm{log1p}(u / a) + (b - 1)\,\mathrm{log1p}(-u / b)
        + \tfrac12 \log \frac{s^3}{a b} - \log\sqrt{2\pi} - c(a) - c(b) + c(s).

    Near the mean x = a/s, where the data of a confident decoder lie, u is small and each term is
    of the size of the result; the plain form adds terms of about (a + b) log 2 (1.4e6 at
    a = b = 1e6) to a result of order ten and loses their digits. An error of the rounded u enters
    the two log1p terms with opposite signs: to first order it moves the result by its size times
    |1/b - 1/a|.
    """
    s_ = a + b
    # u from the side of the smaller concentration: a rounding error e of u (and of s) moves the
    # result by about e |1/b - 1/a|, and e is then about 2^-53 min(a, b), so the error stays near 2^-53
    u = torch.where(a <= b, x * s_ - a, b - (1 - x) * s_)
    return (
        (a - 1) * torch.log1p(u / a)
        + (b - 1) * torch.log1p(-u / b)
        + 0.5 * (3 * torch.log(s_) - torch.log(a) - torch.log(b))
        - _LOG_SQRT_2PI
        - _lgamma_correction(a)
        - _lgamma_correction(b)
        + _lgamma_correction(s_)
    )


def squeeze(x: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    r"""Map [0, 1] into [eps, 1 - eps]: :math:`x \mapsto \epsilon + (1 - 2\epsilon) x`.

    The Beta density lives on the open interval, so pixels that are exactly 0 or 1 must be moved
    inside before scoring. The map has Jacobian :math:`1 - 2\epsilon` per dimension: a density on
    the squeezed data is a density on the original data after adding :math:`d\log(1 - 2\epsilon)`
    to the log-likelihood (the ``"beta"`` head does this).
    """
    if not (0 < eps < 0.5):
        raise ValueError(f"squeeze: eps must satisfy 0 < eps < 0.5, got {eps}")
    return eps + (1 - 2 * eps) * x


class Beta(ElementwiseDistribution):
    r"""Independent Beta per data dimension, Eq. (eq-beta-logpdf):

    .. math::
        \log p(x \mid \alpha, \beta) = (\alpha - 1)\log x + (\beta - 1)\log(1 - x) - \log B(\alpha, \beta),

    with :math:`\log(1-x)` as ``log1p(-x)`` and :math:`\log B` from :func:`log_beta`, exact also at
    concentrations of 1e6 where the lgamma difference loses its digits. Where both concentrations
    are at least 10 the three terms are combined before they are added (``_log_prob_concentrated``),
    so that a confident decoder's log-density near its mean keeps its digits too. Data must lie in the open
    interval (0, 1): an exact 0 or 1 is a ``ValueError``; use :func:`beta_squeeze <vaelib.likelihoods.beta_squeeze>` first.

    Mean :math:`\alpha/(\alpha+\beta)`, variance :math:`\alpha\beta/((\alpha+\beta)^2(\alpha+\beta+1))`.
    ``rsample`` uses torch's implicitly reparameterised gamma sampler.

    Args:
        concentration1: :math:`\alpha > 0`.
        concentration0: :math:`\beta > 0`.
        validate_args: check parameters and data (default: torch's global setting).

    ``cdf`` is the regularised incomplete beta function :math:`I_x(\alpha, \beta)`, which torch does not
    provide: :func:`~vaelib.likelihoods.log_betainc` (a continued fraction evaluated in log
    space, relative error 5e-12 or better in both tails, differentiable in the data and the
    concentrations). ``icdf`` has no closed form (it would invert :math:`I_x` numerically) and raises
    ``NotImplementedError``.
    """

    arg_constraints = {"concentration1": finite_positive, "concentration0": finite_positive}
    support = open_unit_interval
    has_rsample = True
    _param_names = ("concentration1", "concentration0")

    def __init__(
        self,
        concentration1: torch.Tensor | float,
        concentration0: torch.Tensor | float,
        validate_args: bool | None = None,
    ) -> None:
        self.concentration1: torch.Tensor
        self.concentration0: torch.Tensor
        self._init_params(validate_args, concentration1=concentration1, concentration0=concentration0)

    @property
    def mean(self) -> torch.Tensor:
        return self.concentration1 / (self.concentration1 + self.concentration0)

    @property
    def mode(self) -> torch.Tensor:
        a, b = self.concentration1, self.concentration0
        inner = (a - 1) / (a + b - 2)
        return torch.where((a > 1) & (b > 1), inner, torch.full_like(inner, float("nan")))

    @property
    def variance(self) -> torch.Tensor:
        a, b = self.concentration1, self.concentration0
        total = a + b
        return a * b / (total.pow(2) * (total + 1))

    def log_normalizer(self) -> torch.Tensor:
        """log B(alpha, beta), the log-normaliser of Eq. (eq-beta-logpdf)."""
        return log_beta(self.concentration1, self.concentration0)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """Eq. (eq-beta-logpdf)."""
        if self._validate_args:
            self._validate_sample(value)
        a, b = self.concentration1, self.concentration0
        plain = torch.xlogy(a - 1, value) + (b - 1) * torch.log1p(-value) - log_beta(a, b)
        # near the mean (|x - mean| < mean / 2 and < (1 - mean) / 2) the terms cancel: combine them first;
        # farther out the result is large and the plain sum is exact
        mean = a / (a + b)
        near = (a >= _BIG) & (b >= _BIG) & ((value - mean).abs() < 0.5 * torch.minimum(mean, 1 - mean))
        if not bool(near.any()):
            return plain
        ten, half = torch.full_like(a, _BIG), torch.full_like(value, 0.5)
        a_n, b_n = torch.where(near, a, ten), torch.where(near, b, ten)
        return torch.where(near, _log_prob_concentrated(a_n, b_n, torch.where(near, value, half)), plain)

    def cdf(self, value: torch.Tensor) -> torch.Tensor:
        r""":math:`P(X \le x) = I_x(\alpha, \beta)`, the regularised incomplete beta function.

        ``exp`` of :func:`~vaelib.likelihoods.log_betainc`; for the logarithm of a small CDF or of a
        survival function near 0 use :func:`~vaelib.likelihoods.log_betainc` and
        :func:`~vaelib.likelihoods.log_betaincc` directly, which keep their relative accuracy where
        this value underflows or rounds to 1.
        """
        if self._validate_args:
            self._validate_sample(value)
        from vaelib.likelihoods.special import log_betainc  # special imports this module

        return torch.exp(log_betainc(self.concentration1, self.concentration0, value))

    def icdf(self, value: torch.Tensor) -> torch.Tensor:
        """Not implemented: the inverse of the regularised incomplete beta function has no closed form."""
        raise NotImplementedError("Beta.icdf: the inverse of the regularised incomplete beta function has no closed form")

    def entropy(self) -> torch.Tensor:
        a, b = self.concentration1, self.concentration0
        total = a + b
        return (
            log_beta(a, b)
            - (a - 1) * torch.digamma(a)
            - (b - 1) * torch.digamma(b)
            + (total - 2) * torch.digamma(total)
        )

    def rsample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        shape = self._extended_shape(sample_shape)
        a = self.concentration1.expand(shape)
        b = self.concentration0.expand(shape)
        ga = torch._standard_gamma(a)
        gb = torch._standard_gamma(b)
        x = ga / (ga + gb)
        tiny = torch.finfo(x.dtype).tiny
        return x.clamp(min=tiny, max=1 - torch.finfo(x.dtype).eps / 2)

    def sample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        with torch.no_grad():
            return self.rsample(sample_shape)


def beta_nll(concentration1: torch.Tensor, concentration0: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Beta negative log-likelihood of each example, summed over all but the first dimension, Eq. (eq-beta-logpdf).

    Argument order: the parameters of :class:`Beta` (``concentration1``, ``concentration0``), then the
    data ``x`` of shape (N, ...), as ``-Beta(concentration1, concentration0).log_prob(x)``.

    ``x`` must lie in (0, 1); apply :func:`beta_squeeze <vaelib.likelihoods.beta_squeeze>` to [0, 1] data first.
    """
    check_batched("beta_nll", x)
    return per_example_sum("beta_nll", Beta(concentration1, concentration0).log_prob(x), x)
