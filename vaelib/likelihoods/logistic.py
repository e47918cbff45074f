"""The discretised logistic likelihood for quantised (8-bit) data, PixelCNN++ style (chapter 06)."""

from __future__ import annotations

import torch
from torch.distributions import constraints

from vaelib.likelihoods._base import ElementwiseDistribution, check_batched, exact_softplus, per_example_sum
from vaelib.likelihoods.constraints import QuantizedUnitInterval, finite_positive, finite_real

__all__ = ["DiscretizedLogistic", "discretized_logistic_nll", "log1mexp"]


def log1mexp(h: torch.Tensor) -> torch.Tensor:
    """log(1 - exp(-h)) for h > 0, exact on both sides of h = log 2 (Maechler 2012)."""
    near = h <= 0.6931471805599453
    hn = torch.where(near, h, torch.ones_like(h))
    hf = torch.where(near, torch.ones_like(h), h)
    return torch.where(near, torch.log(-torch.expm1(-hn)), torch.log1p(-torch.exp(-hf)))


def _offset_edge(k: torch.Tensor, n: int, loc: torch.Tensor, side: float) -> torch.Tensor:
    """(k + side)/n - loc with a single rounding, for n + 1 a power of two.

    The edge e = (k + side)/n is not a float; write it as e_hi + r/n with e_hi = fl(e). The
    remainder r = (k + side) - n e_hi is exact: (n + 1) e_hi is an exact power-of-two scaling, both
    subtractions below are between numbers within a factor 2 of each other (Sterbenz). So
    (e_hi - loc) + r/n is correct to a rounding or two even when loc is within one ulp of e.
    """
    m = k + side
    e_hi = m / n
    r = (m - (n + 1) * e_hi) + e_hi
    return (e_hi - loc) + r / n


class DiscretizedLogistic(ElementwiseDistribution):
    r"""A logistic density integrated over the bins of quantised data, Eq. (eq-logistic-bins).

    Data are ``x = k/n`` with ``n = 2**bits - 1`` (k = 0..255 for 8 bits), bins
    :math:`[(k - \tfrac12)/n, (k + \tfrac12)/n]`; the first and last bins absorb the tails:

    .. math::
        P(k) = \sigma\big(\tfrac{b_k - \mu}{s}\big) - \sigma\big(\tfrac{a_k - \mu}{s}\big),
        \quad a_0 = -\infty,\ b_n = +\infty .

    With :math:`u = (a_k - \mu)/s`, :math:`v = (b_k - \mu)/s` and :math:`h = v - u = 1/(ns)`,
    :math:`\sigma(v) - \sigma(u) = \sigma(v)\,\sigma(-u)\,(1 - e^{-h})`, so

    .. math::
        \log P(k) = -\mathrm{softplus}(-v) - \mathrm{softplus}(u) + \log(1 - e^{-h}),

    three non-positive terms (each dropped at an edge bin), with h computed as 1/(n s) rather than
    v - u: the log-mass is exact to a few roundings in every bin, however far in a tail, with no
    midpoint approximation. The bin edges are formed with a single rounding (see
    ``_offset_edge``). The masses sum to 1 over the bins.

    Mean and variance are exact sums over the bins (cost: one pass per bin).

    Args:
        loc: :math:`\mu` in data units (any finite real; [0, 1] for [0,1]-scaled data).
        scale: :math:`s > 0`.
        bits: bits per value (default 8: 256 bins).
        validate_args: check parameters and data; data must be on the grid k/n within 1e-3 bins.
    """

    arg_constraints = {"loc": finite_real, "scale": finite_positive}
    _param_names = ("loc", "scale")
    _static_names = ("bits",)

    def __init__(
        self,
        loc: torch.Tensor | float,
        scale: torch.Tensor | float,
        bits: int = 8,
        validate_args: bool | None = None,
    ) -> None:
        if int(bits) != bits or not 1 <= bits <= 16:
            raise ValueError(f"DiscretizedLogistic: bits must be an integer in 1..16, got {bits}")
        self.bits = int(bits)
        self.loc: torch.Tensor
        self.scale: torch.Tensor
        self._init_params(validate_args, loc=loc, scale=scale)

    @property
    def n(self) -> int:
        """The number of bins minus one: data are k/n."""
        return 2**self.bits - 1

    @constraints.dependent_property(is_discrete=True, event_dim=0)
    def support(self) -> QuantizedUnitInterval:  # type: ignore[override]
        return QuantizedUnitInterval(self.bits)

    has_enumerate_support = True

    def enumerate_support(self, expand: bool = True) -> torch.Tensor:
        """The grid k/n, k = 0..n, shape (n + 1, *batch_shape) (or (n + 1, 1, ...) without ``expand``)."""
        values = torch.arange(self.n + 1, dtype=self.loc.dtype, device=self.loc.device) / self.n
        values = values.view((-1,) + (1,) * len(self.batch_shape))
        return values.expand((-1,) + self.batch_shape) if expand else values

    def _log_masses(self) -> torch.Tensor:
        """log P(k) for every bin, shape (n + 1, *batch_shape)."""
        k = torch.arange(self.n + 1, dtype=self.loc.dtype, device=self.loc.device).view((-1,) + (1,) * len(self.batch_shape))
        k, loc, scale = torch.broadcast_tensors(k, self.loc, self.scale)
        return self._log_mass(k, loc, scale)

    def _log_mass(self, k: torch.Tensor, loc: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        """log P(k) for integer-valued k (as floats) of the broadcast shape."""
        n = self.n
        v = _offset_edge(k, n, loc, 0.5) / scale
        u = _offset_edge(k, n, loc, -0.5) / scale
        h = (1.0 / n) / scale
        zero = torch.zeros_like(v)
        upper = torch.where(k < n, exact_softplus(-v), zero)  # -log sigma(v)
        lower = torch.where(k > 0, exact_softplus(u), zero)  # -log sigma(-u)
        inner = (k > 0) & (k < n)
        width = torch.where(inner, log1mexp(torch.where(inner, h, torch.ones_like(h))), zero)
        return width - upper - lower

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """log P(k) for value = k/n, Eq. (eq-logistic-bins)."""
        if self._validate_args:
            self._validate_sample(value)
        value, loc, scale = torch.broadcast_tensors(value, self.loc, self.scale)
        k = torch.round(value * self.n).clamp(0, self.n)
        return self._log_mass(k, loc, scale)

    @property
    def mean(self) -> torch.Tensor:
        r"""E[k/n] = (1/n) sum_{j=1}^{n} P(k >= j) = (1/n) sum_j sigma((mu - (j - 1/2)/n)/s): positive terms."""
        total = torch.zeros_like(self.loc)
        for j in range(1, self.n + 1):
            total = total + torch.sigmoid(-_offset_edge(torch.full_like(self.loc, j), self.n, self.loc, -0.5) / self.scale)
        return total / self.n

    @property
    def variance(self) -> torch.Tensor:
        """sum_k (k/n - mean)^2 P(k): a sum of non-negative terms."""
        m = self.mean
        total = torch.zeros_like(self.loc)
        for k in range(self.n + 1):
            kk = torch.full_like(self.loc, k)
            total = total + (k / self.n - m).pow(2) * torch.exp(self._log_mass(kk, self.loc, self.scale))
        return total

    @property
    def mode(self) -> torch.Tensor:
        """The most probable grid point: the interior bin nearest ``loc`` (the logistic is symmetric and
        unimodal, so among bins of equal width it holds the most mass) or an edge bin, which also holds a tail."""
        inner = torch.round(self.loc * self.n).clamp(1, self.n - 1)
        candidates = torch.stack([torch.zeros_like(inner), inner, torch.full_like(inner, self.n)])
        loc, scale = self.loc.expand_as(inner), self.scale.expand_as(inner)
        masses = torch.stack([self._log_mass(c, loc, scale) for c in candidates])
        return candidates.gather(0, masses.argmax(0, keepdim=True)).squeeze(0) / self.n

    def cdf(self, value: torch.Tensor) -> torch.Tensor:
        """P(X <= value) = sigmoid((b_k - loc) / scale) with b_k the upper edge of the bin of the largest
        grid point k/n <= value (0 below the grid, 1 from its top)."""
        value, loc, scale = torch.broadcast_tensors(torch.as_tensor(value, dtype=self.loc.dtype), self.loc, self.scale)
        k = torch.floor(value * self.n + 1e-6)
        inside = torch.sigmoid(_offset_edge(k.clamp(0, self.n), self.n, loc, 0.5) / scale)
        return torch.where(k < 0, torch.zeros_like(inside), torch.where(k >= self.n, torch.ones_like(inside), inside))

    def entropy(self) -> torch.Tensor:
        """-sum_k P(k) log P(k) over the n + 1 bins, exact (one pass per bin)."""
        log_p = self._log_masses()
        return -(torch.exp(log_p) * log_p).sum(0)

    def sample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        """A logistic draw, rounded to the nearest grid point and clamped to [0, 1]."""
        shape = self._extended_shape(sample_shape)
        with torch.no_grad():
            u = torch.rand(shape, dtype=self.loc.dtype, device=self.loc.device)
            u = u.clamp(min=torch.finfo(u.dtype).tiny)
            y = self.loc + self.scale * (torch.log(u) - torch.log1p(-u))
            return torch.round(y * self.n).clamp(0, self.n) / self.n


def discretized_logistic_nll(x: torch.Tensor, loc: torch.Tensor, scale: torch.Tensor | float, bits: int = 8) -> torch.Tensor:
    """Discretised-logistic NLL of each example in nats, summed over all but the first dimension, Eq. (eq-logistic-bins).

    ``x`` holds k/n values (n = 2**bits - 1). Divide by d log 2 for bits per dimension
    (:func:`vaelib.bounds.bits_per_dim`).
    """
    check_batched("discretized_logistic_nll", x)
    return per_example_sum("discretized_logistic_nll", DiscretizedLogistic(loc, scale, bits).log_prob(x), x)
