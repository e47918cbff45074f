r"""Every likelihood on one scale: a continuous density turned into the probabilities it gives 8-bit data.

A density on [0, 1] evaluated at the pixels k/255 is not a probability, and densities of different
families (or of one family at different scales) are not comparable as numbers. Integrating the
density over the bin of each grid point gives the exact probability mass function the model assigns
to quantised data, in nats that can be compared across likelihoods and with discrete models:

.. math::
    P(k) = F(b_k) - F(a_k), \qquad a_k = \frac{k - 1/2}{n},\ b_k = \frac{k + 1/2}{n},
    \qquad k = 0, \dots, n,\ n = \text{levels} - 1,

with the two edge bins extended to the ends of the support (:math:`a_0 = -\infty`,
:math:`b_n = +\infty` for the Gaussian, Laplace and Huber; :math:`a_0 = 0`, :math:`b_n = 1` for the
continuous Bernoulli and the Beta), so that the masses sum to 1.

The formulas of each family and the measured accuracy are in the docstring of :class:`Discretized`.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch.distributions import Categorical, Distribution, constraints

from vaelib.likelihoods._base import check_finite
from vaelib.likelihoods.beta import Beta
from vaelib.likelihoods.constraints import UnitIntervalLevels
from vaelib.likelihoods.continuous_bernoulli import ContinuousBernoulli
from vaelib.likelihoods.gaussian import HALF_LOG_2PI, Gaussian
from vaelib.likelihoods.huber import Huber, huber_log_normalizer
from vaelib.likelihoods.laplace import Laplace
from vaelib.likelihoods.logistic import _offset_edge, log1mexp

__all__ = ["Discretized", "discretize"]

_LOG2 = math.log(2.0)
_SQRT_HALF = math.sqrt(0.5)
_NARROW = 0.1  # Gaussian bins with h <= this and |m| h <= this use the midpoint series (first omitted term < 2.3e-17)
_MAX_LEVELS = 2**16


def _tiny(t: torch.Tensor) -> float:
    return torch.finfo(t.dtype).tiny


# ----------------------------------------------------------------------------------------------------
# bin edges


def _offset(k: torch.Tensor, n: int, loc: torch.Tensor, side: float) -> torch.Tensor:
    """(k + side)/n - loc: with a single rounding when n + 1 is a power of two (see logistic._offset_edge)."""
    if (n + 1) & n == 0:
        return _offset_edge(k, n, loc, side)
    return (k + side) / n - loc


# ----------------------------------------------------------------------------------------------------
# Gaussian


def _log_ndtr_lower(t: torch.Tensor) -> torch.Tensor:
    """log Phi(t) for t <= 0, as -t^2/2 + log(erfcx(-t/sqrt 2)/2): no cancellation in the far tail."""
    return -0.5 * t * t + torch.log(0.5 * torch.special.erfcx(-t * _SQRT_HALF))


def _normal_interval(u: torch.Tensor, v: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """log(Phi(v) - Phi(u)) for finite u < v, with the width h = v - u given (computed without cancellation)."""
    m = 0.5 * (u + v)
    straddle = (u < 0) & (v > 0)
    upper = u >= 0
    # one side: reflect the upper side onto the lower one, [u, v] -> [-v, -u], so that lo < hi <= 0
    lo = torch.where(upper, -v, u)
    hi = torch.where(upper, -u, v)
    lo = torch.where(straddle, -1.0 - h, lo)  # placeholders where the branch is not used (finite gradients)
    hi = torch.where(straddle, torch.full_like(hi, -1.0), hi)
    ex_lo = torch.special.erfcx(-lo * _SQRT_HALF)
    ex_hi = torch.special.erfcx(-hi * _SQRT_HALF)
    delta = -h * (0.5 * (lo + hi)) + (torch.log(ex_hi) - torch.log(ex_lo))
    one_side = -0.5 * hi * hi + torch.log(0.5 * ex_hi) + log1mexp(delta.clamp_min(_tiny(delta)))
    # across the mean: a sum of two positive erfs
    us = torch.where(straddle, u, torch.full_like(u, -1.0))
    vs = torch.where(straddle, v, torch.ones_like(v))
    across = torch.log(0.5 * (torch.erf(vs * _SQRT_HALF) + torch.erf(-us * _SQRT_HALF)))
    out = torch.where(straddle, across, one_side)
    # narrow bins: h phi(m) times the even series of the integral of phi(m + t) / phi(m) over |t| <= h/2
    narrow = (h <= _NARROW) & (m.abs() * h <= _NARROW)
    ms = torch.where(narrow, m, torch.zeros_like(m))
    hs = torch.where(narrow, h, torch.full_like(h, _NARROW))
    return torch.where(narrow, torch.log(hs) - 0.5 * ms * ms - HALF_LOG_2PI + torch.log1p(_narrow_series(ms * hs, hs)), out)


def _narrow_series(mh: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    r""":math:`\sum_{k=1}^{4} \mathrm{He}_{2k}(m)\,(h/2)^{2k} / (2k+1)!`, written in Y = (m h)^2 and H = h^2 so that
    no power of m alone can overflow. For Y, H <= 0.01 the first omitted term (k = 5) is below 2.3e-17."""
    y, hh = mh * mh, h * h
    t1 = (y - hh) / 24
    t2 = (y * y - 6 * y * hh + 3 * hh * hh) / 1920
    t3 = (y * (y * (y - 15 * hh) + 45 * hh * hh) - 15 * hh * hh * hh) / 322560
    t4 = (y * (y * (y * (y - 28 * hh) + 210 * hh * hh) - 420 * hh * hh * hh) + 105 * hh * hh * hh * hh) / 92897280
    return t1 + (t2 + (t3 + t4))


def _standard_bin(d: Gaussian | Laplace, k: torch.Tensor, n: int) -> tuple[torch.Tensor, ...]:
    """For bin k of a location-scale distribution: whether it is the first or the last bin, its edges
    u and v in standard units, and its width h = 1/(n s) (computed as such, not as v - u)."""
    k, loc, scale = torch.broadcast_tensors(k, d.loc, d.scale)
    return k <= 0, k >= n, _offset(k, n, loc, -0.5) / scale, _offset(k, n, loc, 0.5) / scale, (1.0 / n) / scale


def _gaussian_log_mass(d: Gaussian, k: torch.Tensor, n: int) -> torch.Tensor:
    first, last, u, v, h = _standard_bin(d, k, n)
    inner = ~(first | last)
    ui = torch.where(inner, u, torch.full_like(u, -1.0))
    vi = torch.where(inner, v, torch.ones_like(v))
    hi = torch.where(inner, h, torch.full_like(h, 2.0))
    mass = _normal_interval(ui, vi, hi)
    lower = torch.special.log_ndtr(torch.where(first, v, torch.zeros_like(v)))
    upper = torch.special.log_ndtr(-torch.where(last, u, torch.zeros_like(u)))
    return torch.where(first, lower, torch.where(last, upper, mass))


def _gaussian_log_cdf(d: Gaussian, k: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    k, loc, scale = torch.broadcast_tensors(k, d.loc, d.scale)
    z = _offset(k, n, loc, 0.5) / scale
    return torch.special.log_ndtr(z), torch.special.log_ndtr(-z)


# ----------------------------------------------------------------------------------------------------
# Laplace


def _reflect_down(z: torch.Tensor) -> torch.Tensor:
    """``-|z|``, with the derivative of z (not 0) at z = 0, where the smaller side is the CDF."""
    return torch.where(z <= 0, z, -z)


def _laplace_log_half(z: torch.Tensor) -> torch.Tensor:
    """``log F(-|z|) = -|z| - log 2``: the smaller of the CDF and the survival function."""
    return _reflect_down(z) - _LOG2


def _from_smaller_side(z: torch.Tensor, small: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(log F(z), log S(z)) from log min(F, S) = ``small`` of a distribution symmetric about z = 0."""
    big = log1mexp(-small)
    return torch.where(z <= 0, small, big), torch.where(z <= 0, big, small)


def _laplace_log_mass(d: Laplace, k: torch.Tensor, n: int) -> torch.Tensor:
    first, last, u, v, h = _standard_bin(d, k, n)
    straddle = (u < 0) & (v > 0) & ~first & ~last
    near = torch.where(u >= 0, u, -v)  # the distance of the bin from the median (0 on its edge)
    one_side = -_LOG2 - near + log1mexp(h)
    us = torch.where(straddle, u, torch.full_like(u, -1.0))
    vs = torch.where(straddle, v, torch.ones_like(v))
    across = torch.log(0.5 * (-torch.expm1(us) - torch.expm1(-vs)))
    lower = _from_smaller_side(v, _laplace_log_half(v))[0]
    upper = _from_smaller_side(u, _laplace_log_half(u))[1]
    return torch.where(first, lower, torch.where(last, upper, torch.where(straddle, across, one_side)))


def _laplace_log_cdf(d: Laplace, k: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    k, loc, scale = torch.broadcast_tensors(k, d.loc, d.scale)
    z = _offset(k, n, loc, 0.5) / scale
    return _from_smaller_side(z, _laplace_log_half(z))


# ----------------------------------------------------------------------------------------------------
# Huber


def _huber_log_lower(t: torch.Tensor, delta: torch.Tensor, log_z: torch.Tensor) -> torch.Tensor:
    """log F(t) for t <= 0 (standard units): the exponential tail below -delta, tail plus core above."""
    in_tail = t <= -delta
    tt = torch.where(in_tail, t, -delta)
    tail = 0.5 * delta * delta + delta * tt - torch.log(delta) - log_z
    tc = torch.where(in_tail, torch.zeros_like(t), t)
    half_tail = -0.5 * delta * delta - torch.log(delta) - log_z
    core = torch.logaddexp(half_tail, math.log(math.sqrt(2 * math.pi)) - log_z + _normal_interval(-delta, tc, tc + delta))
    return torch.where(in_tail, tail, core)


def _huber_log_mass(d: Huber, k: torch.Tensor, n: int) -> torch.Tensor:
    k, loc, scale, delta = torch.broadcast_tensors(k, d.loc, d.scale, d.delta)
    log_z = huber_log_normalizer(delta)
    first, last = k <= 0, k >= n
    u = _offset(k, n, loc, -0.5) / scale
    v = _offset(k, n, loc, 0.5) / scale
    h = (1.0 / n) / scale
    # the edge bins reach -inf and +inf: finite stand-ins beyond every cut point
    u = torch.where(first, torch.minimum(v, -delta) - 1, u)
    v = torch.where(last, torch.maximum(u, delta) + 1, v)
    neg_inf = torch.full_like(u, -math.inf)
    log_tail_norm = 0.5 * delta * delta - torch.log(delta) - log_z
    # the lower exponential tail, [u, min(v, -delta)]
    has_lower = first | (u < -delta)
    v1 = torch.minimum(v, -delta)
    w1 = torch.where(v <= -delta, h, -delta - u)
    w1 = torch.where(has_lower & ~first, w1, torch.ones_like(w1))
    lower = log_tail_norm + delta * v1 + torch.where(first, torch.zeros_like(w1), log1mexp(delta * w1))
    lower = torch.where(has_lower, lower, neg_inf)
    # the upper exponential tail, [max(u, delta), v]
    has_upper = last | (v > delta)
    u3 = torch.maximum(u, delta)
    w3 = torch.where(u >= delta, h, v - delta)
    w3 = torch.where(has_upper & ~last, w3, torch.ones_like(w3))
    upper = log_tail_norm - delta * u3 + torch.where(last, torch.zeros_like(w3), log1mexp(delta * w3))
    upper = torch.where(has_upper, upper, neg_inf)
    # the Gaussian core, [max(u, -delta), min(v, delta)]
    u2 = torch.maximum(u, -delta)
    v2 = torch.minimum(v, delta)
    has_core = u2 < v2
    inside = (u >= -delta) & (v <= delta) & ~first & ~last
    w2 = torch.where(inside, h, v2 - u2)
    u2s = torch.where(has_core, u2, -torch.ones_like(u2))
    v2s = torch.where(has_core, v2, torch.ones_like(v2))
    w2s = torch.where(has_core, w2, torch.full_like(w2, 2.0))
    core = math.log(math.sqrt(2 * math.pi)) - log_z + _normal_interval(u2s, v2s, w2s)
    core = torch.where(has_core, core, neg_inf)
    return torch.logsumexp(torch.stack([lower, core, upper]), dim=0)


def _huber_log_cdf(d: Huber, k: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    k, loc, scale, delta = torch.broadcast_tensors(k, d.loc, d.scale, d.delta)
    z = _offset(k, n, loc, 0.5) / scale
    return _from_smaller_side(z, _huber_log_lower(_reflect_down(z), delta, huber_log_normalizer(delta)))


# ----------------------------------------------------------------------------------------------------
# continuous Bernoulli


def _g(t: torch.Tensor) -> torch.Tensor:
    """g(t) = log((1 - exp(-t)) / t) for t >= 0 (g(0) = 0), by its series -t/2 + t^2/24 - t^4/2880 below 1e-2."""
    small = t < 1e-2
    ts = torch.where(small, t, torch.zeros_like(t))
    tl = torch.where(small, torch.ones_like(t), t)
    series = ts * (-0.5 + ts * (1.0 / 24.0 - ts * ts / 2880.0))
    return torch.where(small, series, torch.log(-torch.expm1(-tl) / tl))


def _cb_log_interval(eta: torch.Tensor, lo: torch.Tensor, hi_minus_1: torch.Tensor, width: torch.Tensor) -> torch.Tensor:
    """log of the CB mass of [lo, hi] (0 <= lo < hi <= 1), with hi - 1 and the width hi - lo given."""
    pos = eta >= 0
    a = torch.where(pos, eta, -eta)  # |eta|, with the derivative of the eta >= 0 formula at 0
    lead = torch.where(pos, eta * hi_minus_1, eta * lo)
    return lead + torch.log(width) + _g(a * width) - _g(a)


def _cb_log_mass(d: ContinuousBernoulli, k: torch.Tensor, n: int) -> torch.Tensor:
    k, eta = torch.broadcast_tensors(k, d.logits)
    lo_k = torch.clamp(k - 0.5, min=0.0)
    hi_k = torch.clamp(k + 0.5, max=float(n))
    return _cb_log_interval(eta, lo_k / n, (hi_k - n) / n, (hi_k - lo_k) / n)


def _cb_log_cdf(d: ContinuousBernoulli, k: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    k, eta = torch.broadcast_tensors(k, d.logits)
    e = (k + 0.5) / n
    e_minus_1 = (k + 0.5 - n) / n
    zero = torch.zeros_like(e)
    below = _cb_log_interval(eta, zero, e_minus_1, e)  # [0, e]
    above = _cb_log_interval(eta, e, zero, -e_minus_1)  # [e, 1]
    return below, above


# ----------------------------------------------------------------------------------------------------
# Beta


def _beta_params(d: Beta) -> tuple[torch.Tensor, torch.Tensor]:
    return d.concentration1.to(torch.float64), d.concentration0.to(torch.float64)


def _combine(lf_a: torch.Tensor, ls_a: torch.Tensor, lf_b: torch.Tensor, ls_b: torch.Tensor,
             first: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
    """log(F(b) - F(a)) from log F and log S = log(1 - F) at both edges, on the side where it does not cancel."""
    tiny = _tiny(lf_a)
    lower = lf_b + log1mexp(torch.where(first, torch.full_like(lf_b, math.inf), lf_b - lf_a).clamp_min(tiny))
    upper = ls_a + log1mexp(torch.where(last, torch.full_like(ls_a, math.inf), ls_a - ls_b).clamp_min(tiny))
    middle = log1mexp((-torch.logaddexp(lf_a, ls_b)).clamp_min(tiny))
    half = -_LOG2
    out = torch.where(lf_b <= half, lower, torch.where(ls_a <= half, upper, middle))
    return torch.where(first, lf_b, torch.where(last, ls_a, out))


def _beta_log_mass(d: Beta, k: torch.Tensor, n: int) -> torch.Tensor:
    from vaelib.likelihoods.special import log_betainc_pair

    a, b = _beta_params(d)
    k, a, b = torch.broadcast_tensors(k.to(torch.float64), a, b)
    first, last = k <= 0, k >= n
    lf_a, ls_a = log_betainc_pair(a, b, torch.clamp(k - 0.5, min=0.0) / n)
    lf_b, ls_b = log_betainc_pair(a, b, torch.clamp(k + 0.5, max=float(n)) / n)
    return _combine(lf_a, ls_a, lf_b, ls_b, first, last).to(d.concentration1.dtype)


def _beta_log_masses(d: Beta, n: int, shape: tuple[int, ...]) -> torch.Tensor:
    """All n + 1 log-masses from the n interior edges, each edge evaluated once."""
    from vaelib.likelihoods.special import log_betainc_pair

    a, b = _beta_params(d)
    edges = (torch.arange(n, dtype=torch.float64, device=a.device) + 0.5) / n
    lf, ls = log_betainc_pair(a, b, edges.view((-1,) + (1,) * len(shape)))
    lf, ls = lf.expand((n,) + shape), ls.expand((n,) + shape)
    ninf, zero = torch.full((1,) + shape, -math.inf, dtype=lf.dtype, device=lf.device), torch.zeros((1,) + shape, dtype=lf.dtype, device=lf.device)
    lf_a, ls_a = torch.cat([ninf, lf]), torch.cat([zero, ls])
    lf_b, ls_b = torch.cat([lf, zero]), torch.cat([ls, ninf])
    k = torch.arange(n + 1, device=a.device).view((-1,) + (1,) * len(shape))
    first, last = (k == 0).expand_as(lf_a), (k == n).expand_as(lf_a)
    return _combine(lf_a, ls_a, lf_b, ls_b, first, last).to(d.concentration1.dtype)


def _beta_log_cdf(d: Beta, k: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    from vaelib.likelihoods.special import log_betainc_pair

    a, b = _beta_params(d)
    k, a, b = torch.broadcast_tensors(k.to(torch.float64), a, b)
    lf, ls = log_betainc_pair(a, b, (k + 0.5) / n)
    dtype = d.concentration1.dtype
    return lf.to(dtype), ls.to(dtype)


# ----------------------------------------------------------------------------------------------------

_LogMass = Callable[[Distribution, torch.Tensor, int], torch.Tensor]
_LogCdf = Callable[[Distribution, torch.Tensor, int], "tuple[torch.Tensor, torch.Tensor]"]
_FAMILIES: dict[type, tuple[_LogMass, _LogCdf]] = {
    Gaussian: (_gaussian_log_mass, _gaussian_log_cdf),  # type: ignore[dict-item]
    Laplace: (_laplace_log_mass, _laplace_log_cdf),  # type: ignore[dict-item]
    Huber: (_huber_log_mass, _huber_log_cdf),  # type: ignore[dict-item]
    ContinuousBernoulli: (_cb_log_mass, _cb_log_cdf),  # type: ignore[dict-item]
    Beta: (_beta_log_mass, _beta_log_cdf),  # type: ignore[dict-item]
}


def _family(dist: object, owner: str) -> tuple[_LogMass, _LogCdf]:
    for cls, fns in _FAMILIES.items():
        if type(dist) is cls:
            return fns
    names = ", ".join(c.__name__ for c in _FAMILIES)
    raise ValueError(
        f"{owner}: dist must be one of vaelib.likelihoods' {names}, got {type(dist).__module__}.{type(dist).__qualname__}"
    )


def _check_levels(owner: str, levels: object) -> int:
    if isinstance(levels, bool) or not isinstance(levels, int) or not 2 <= levels <= _MAX_LEVELS:
        raise ValueError(f"{owner}: levels must be an integer with 2 <= levels <= {_MAX_LEVELS}, got {levels!r}")
    return levels


class Discretized(Distribution):
    r"""The probabilities a continuous likelihood on [0, 1] assigns to data quantised to ``levels`` values.

    The grid is :math:`x = k/n`, :math:`k = 0, \dots, n`, :math:`n = \text{levels} - 1`; grid point k
    receives the base distribution's mass on its bin :math:`[(k - \tfrac12)/n, (k + \tfrac12)/n]`,
    the two edge bins extended to the ends of the base's support:

    .. math::
        \log P(k) = \log\big(F(b_k) - F(a_k)\big), \quad a_0 = \inf \operatorname{supp},\ b_n = \sup \operatorname{supp}.

    It is differentiable in the base's parameters wherever its CDF is: a model can be trained on
    this likelihood. ``mean`` and ``variance`` are exact sums over the bins.

    Every log-mass is computed in log space, without forming a difference of two numbers that are close
    to each other, so that it keeps its relative accuracy however far in a tail the bin lies:

    * Gaussian (Eq. (eq-gauss-nll)): for a bin on one side of the mean,
      :math:`\log(\Phi(v) - \Phi(u)) = \log\Phi(v) + \log(1 - e^{-\Delta})` with
      :math:`\log\Phi(v) = -v^2/2 + \log(\mathrm{erfcx}(-v/\sqrt2)/2)` and
      :math:`\Delta = \log\Phi(v) - \log\Phi(u) = -h m + \log\mathrm{erfcx}(-v/\sqrt2) - \log\mathrm{erfcx}(-u/\sqrt2)`
      (u < v <= 0 in standard units, width h = v - u = 1/(n s) formed directly, midpoint m), two terms
      without cancellation; the upper side by reflection; a bin containing the mean as
      :math:`\tfrac12(\mathrm{erf}(v/\sqrt2) + \mathrm{erf}(-u/\sqrt2))`, a sum of positive terms; narrow
      bins (:math:`h \le 0.1`, :math:`|m| h \le 0.1`) by the series
      :math:`h\,\varphi(m)\,[1 + \sum_{k=1}^{4} \mathrm{He}_{2k}(m) (h/2)^{2k}/(2k+1)!]`
      (Hermite polynomials, first omitted term below 2.3e-17); edge bins by
      ``torch.special.log_ndtr``.
    * Laplace (Eq. (eq-laplace-nll)): one side,
      :math:`\log P = -\log 2 - \min(|u|, |v|) + \log(1 - e^{-h})`; across the median,
      :math:`\log\tfrac12(-\mathrm{expm1}(u) - \mathrm{expm1}(-v))`.
    * Huber (Eq. (eq-huber-density)): the bin is cut at :math:`\pm\delta` into at most three pieces, the
      exponential tails :math:`e^{\delta^2/2 \pm \delta t}/(\delta Z)\,(1 - e^{-\delta w})` and a Gaussian
      core :math:`\sqrt{2\pi}/Z` times the Gaussian bin mass above, added with ``logsumexp``.
    * Continuous Bernoulli (Eq. (eq-cb-density)): exactly, with
      :math:`g(t) = \log((1 - e^{-t})/t)`,
      :math:`\log P = \eta (b - 1) + \log h + g(\eta h) - g(\eta)` for :math:`\eta \ge 0` and
      :math:`\eta a + \log h + g(-\eta h) - g(-\eta)` for :math:`\eta < 0` (a, b the bin edges clipped
      to [0, 1], h = b - a): no cancellation for any :math:`\eta`, 0 included.
    * Beta (Eq. (eq-beta-logpdf)): the CDF is the regularised incomplete beta function
      (:func:`~vaelib.likelihoods.log_betainc_pair`, which gives :math:`\log F` and
      :math:`\log(1 - F)` at once); below the median
      :math:`\log P = \log F(b) + \log(1 - e^{\log F(a) - \log F(b)})`, above it the same with the
      survival function, and a bin holding the median as :math:`\log(1 - F(a) - (1 - F(b)))`. The Beta is
      computed in float64 whatever the dtype (the incomplete beta function is float64 throughout).

    Accuracy, measured against mpmath at 80 digits in ``tests/test_discretize.py`` (random bins,
    edge bins included, locations inside the grid, far outside it and on bin edges, scales from 1e-4 to
    1e6, Huber deltas from 1e-2 to 10, continuous-Bernoulli logits up to :math:`\pm 10^3`, Beta
    concentrations from 1e-3 to 1e4): the largest relative error on a bin mass above 1e-300 is, in
    float64, 1.6e-13 (Gaussian), 1.2e-13 (Laplace), 7.9e-14 (Huber), 1.3e-13 (continuous Bernoulli) and
    2.7e-11 (Beta, at concentrations near 1e-3; chapter 8 finds 4.4e-11 at the middle bins of a
    Beta(1e-3, 1e-3); see :func:`~vaelib.likelihoods.log_betainc_pair`). Masses far below 1e-300 are
    finite log-masses. In float32 every log-mass is within 4 float32 roundings of
    ``max(1, |log P|)`` (a relative mass error of 8e-6 at log P = -33); the Beta is computed in float64 and
    rounded once.

    Supported bases: :class:`~vaelib.likelihoods.Gaussian`, :class:`~vaelib.likelihoods.Laplace`,
    :class:`~vaelib.likelihoods.Huber`, :class:`~vaelib.likelihoods.ContinuousBernoulli` and
    :class:`~vaelib.likelihoods.Beta`. The Beta's masses are computed in float64 and returned in the
    dtype of its parameters.

    Args:
        base: the continuous distribution to discretise (its batch shape is this distribution's).
        levels: the number of grid values, 2 <= levels <= 65536 (default 256: 8-bit data).
        validate_args: check that values lie on the grid (default: torch's global setting).

    Example:
        >>> d = Discretized(Gaussian(torch.tensor(0.5, dtype=torch.float64), 0.1))
        >>> round(float(d.log_prob(torch.tensor(128 / 255, dtype=torch.float64)).exp()), 8)  # about density / 255
        0.01564079
    """

    arg_constraints: dict[str, constraints.Constraint] = {}
    has_enumerate_support = True

    def __init__(self, base: Distribution, levels: int = 256, validate_args: bool | None = None) -> None:
        self._log_mass_fn, self._log_cdf_fn = _family(base, "Discretized")
        self.levels = _check_levels("Discretized", levels)
        self.base = base
        super().__init__(base.batch_shape, validate_args=validate_args)

    @property
    def n(self) -> int:
        """levels - 1: the grid is k/n."""
        return self.levels - 1

    @constraints.dependent_property(is_discrete=True, event_dim=0)
    def support(self) -> UnitIntervalLevels:  # type: ignore[override]
        return UnitIntervalLevels(self.levels)

    def __repr__(self) -> str:
        return f"Discretized({self.base!r}, levels={self.levels})"

    def _name(self) -> str:
        return f"Discretized({type(self.base).__name__}, levels={self.levels})"

    @property
    def _dtype(self) -> torch.dtype:
        return next(iter(self._param_tensors())).dtype

    def _param_tensors(self) -> list[torch.Tensor]:
        return [getattr(self.base, name) for name in self.base._param_names]  # type: ignore[attr-defined]

    def expand(self, batch_shape: torch.Size, _instance: Discretized | None = None) -> Discretized:
        new = self._get_checked_instance(Discretized, _instance)
        new.base = self.base.expand(batch_shape)
        new.levels = self.levels
        new._log_mass_fn, new._log_cdf_fn = self._log_mass_fn, self._log_cdf_fn
        Distribution.__init__(new, torch.Size(batch_shape), validate_args=False)
        new._validate_args = self._validate_args
        return new

    def _validate_sample(self, value: torch.Tensor) -> None:
        owner = self._name()
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"{owner}: value must be a tensor, got {type(value).__name__}")
        check_finite(owner, "value", value)
        try:
            torch.broadcast_shapes(value.shape, self.batch_shape)
        except RuntimeError:
            raise ValueError(
                f"{owner}: value of shape {tuple(value.shape)} does not broadcast with the batch shape {tuple(self.batch_shape)}"
            ) from None
        support = self.support
        bad = ~support.check(value)
        if bool(bad.any()):
            index = tuple(int(i) for i in bad.nonzero()[0].tolist())
            raise ValueError(
                f"{owner}: value {value[index].item()!r} at index {index} is not on the grid of the distribution: "
                f"the values must be k/{self.n} for k = 0..{self.n} (within {support.tolerance(value.dtype):g} of a "
                f"bin width); {int(bad.sum())} of {value.numel()} values are off the grid"
            )

    def _grid(self, count: int) -> torch.Tensor:
        p = self._param_tensors()[0]
        return torch.arange(count, dtype=p.dtype, device=p.device).view((-1,) + (1,) * len(self.batch_shape))

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """log P(k) for value = k/n."""
        if self._validate_args:
            self._validate_sample(value)
        value = torch.as_tensor(value, dtype=self._dtype)
        k = torch.round(value * self.n).clamp(0, self.n)
        return self._log_mass_fn(self.base, k, self.n)

    def _log_masses(self) -> torch.Tensor:
        """log P(k) for every grid point, shape ``(levels, *batch_shape)``."""
        if isinstance(self.base, Beta):
            return _beta_log_masses(self.base, self.n, tuple(self.batch_shape))
        return self._log_mass_fn(self.base, self._grid(self.levels), self.n)

    def enumerate_support(self, expand: bool = True) -> torch.Tensor:
        """The grid k/n, shape ``(levels, *batch_shape)`` (or (levels, 1, ...) without ``expand``)."""
        values = self._grid(self.levels) / self.n
        return values.expand((-1,) + self.batch_shape) if expand else values

    def log_cdf(self, value: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(log P(X <= value), log P(X > value)), both accurate in their tails."""
        value = torch.as_tensor(value, dtype=self._dtype)
        k = torch.floor(value * self.n + 1e-6)
        below, above = self._log_cdf_fn(self.base, k.clamp(0, self.n - 1), self.n)
        below = torch.where(k < 0, torch.full_like(below, -math.inf), torch.where(k >= self.n, torch.zeros_like(below), below))
        above = torch.where(k < 0, torch.zeros_like(above), torch.where(k >= self.n, torch.full_like(above, -math.inf), above))
        return below, above

    def cdf(self, value: torch.Tensor) -> torch.Tensor:
        """P(X <= value) = F(b_k) with b_k the upper edge of the bin of the largest grid point k/n <= value
        (0 below the grid, 1 from its top)."""
        return torch.exp(self.log_cdf(value)[0])

    @property
    def mean(self) -> torch.Tensor:
        r""":math:`\mathbb{E}[k/n] = \frac1n \sum_{j=1}^{n} P(k \ge j) = \frac1n \sum_{j=0}^{n-1} (1 - F(b_j))`: positive terms."""
        total = None
        step = 64
        for start in range(0, self.n, step):
            k = self._grid(min(self.n, start + step))[start:]
            part = torch.exp(self._log_cdf_fn(self.base, k, self.n)[1]).sum(0)
            total = part if total is None else total + part
        assert total is not None
        return total / self.n

    @property
    def variance(self) -> torch.Tensor:
        """sum_k (k/n - mean)^2 P(k): non-negative terms."""
        grid = self._grid(self.levels) / self.n
        return ((grid - self.mean).pow(2) * torch.exp(self._log_masses())).sum(0)

    @property
    def mode(self) -> torch.Tensor:
        """The most probable grid point (the smallest one where several tie)."""
        return self._log_masses().argmax(0).to(self._dtype) / self.n

    def entropy(self) -> torch.Tensor:
        """-sum_k P(k) log P(k) over the levels."""
        log_p = self._log_masses()
        return -(torch.exp(log_p) * torch.where(torch.isfinite(log_p), log_p, torch.zeros_like(log_p))).sum(0)

    def sample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        """Grid values drawn from the probabilities (a categorical draw over the levels)."""
        with torch.no_grad():
            logits = self._log_masses().movedim(0, -1)
            k = Categorical(logits=logits).sample(torch.Size(sample_shape))
            return k.to(self._dtype) / self.n


def discretize(dist: Distribution, levels: int = 256) -> Discretized:
    r"""The exact probability mass function ``dist`` assigns to data quantised to ``levels`` grid values.

    ``discretize(Gaussian(loc, 0.1)).log_prob(x)`` for x = k/255 is the log-probability of the 8-bit
    image (in nats per pixel), comparable across likelihood families and with discrete models such as
    the :class:`~vaelib.likelihoods.DiscretizedLogistic`. See :class:`Discretized`.

    Args:
        dist: a :class:`~vaelib.likelihoods.Gaussian`, :class:`~vaelib.likelihoods.Laplace`,
            :class:`~vaelib.likelihoods.Huber`, :class:`~vaelib.likelihoods.ContinuousBernoulli` or
            :class:`~vaelib.likelihoods.Beta`.
        levels: number of grid values, 2 <= levels <= 65536 (default 256).

    Raises:
        ValueError: another distribution, or ``levels`` out of range.
    """
    _family(dist, "discretize")
    return Discretized(dist, _check_levels("discretize", levels), validate_args=dist._validate_args)
