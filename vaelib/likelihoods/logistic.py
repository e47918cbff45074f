"""The discretised logistic likelihood for quantised (8-bit) data, PixelCNN++ style (chapter 06)."""

from __future__ import annotations

import torch
from torch.distributions import constraints

from vaelib.likelihoods._base import (
    ElementwiseDistribution,
    check_batched,
    check_finite,
    exact_softplus,
    per_example_sum,
)
from vaelib.likelihoods.constraints import QuantizedUnitInterval, broadcast_params, finite_positive, finite_real

__all__ = ["DiscretizedLogistic", "DiscretizedLogisticMixture", "discretized_logistic_nll", "log1mexp"]


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


class _QuantizedGrid:
    """What a distribution on the grid k/n, n = 2**bits - 1, shares: ``n``, its discrete ``support``
    and ``enumerate_support``. Mixed in before the Distribution base; needs ``bits`` and a ``loc`` tensor."""

    bits: int
    loc: torch.Tensor
    batch_shape: torch.Size
    has_enumerate_support = True

    @property
    def n(self) -> int:
        """The number of bins minus one: data are k/n."""
        return 2**self.bits - 1

    @constraints.dependent_property(is_discrete=True, event_dim=0)
    def support(self) -> QuantizedUnitInterval:
        return QuantizedUnitInterval(self.bits)

    def enumerate_support(self, expand: bool = True) -> torch.Tensor:
        """The grid k/n, k = 0..n, shape ``(n + 1, *batch_shape)`` (or (n + 1, 1, ...) without ``expand``)."""
        values = torch.arange(self.n + 1, dtype=self.loc.dtype, device=self.loc.device) / self.n
        values = values.view((-1,) + (1,) * len(self.batch_shape))
        return values.expand((-1,) + self.batch_shape) if expand else values


class DiscretizedLogistic(_QuantizedGrid, ElementwiseDistribution):
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

    def _log_masses(self) -> torch.Tensor:
        """log P(k) for every bin, shape ``(n + 1, *batch_shape)``."""
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


def discretized_logistic_nll(loc: torch.Tensor, scale: torch.Tensor | float, x: torch.Tensor, bits: int = 8) -> torch.Tensor:
    """Discretised-logistic NLL of each example in nats, summed over all but the first dimension, Eq. (eq-logistic-bins).

    Argument order: the parameters ``loc``, ``scale``, then the data ``x`` of shape (N, ...), then the
    option ``bits``, as ``-DiscretizedLogistic(loc, scale, bits).log_prob(x)``.

    ``x`` holds k/n values (n = 2**bits - 1). Divide by d log 2 for bits per dimension
    (:func:`vaelib.bounds.bits_per_dim`).
    """
    check_batched("discretized_logistic_nll", x)
    return per_example_sum("discretized_logistic_nll", DiscretizedLogistic(loc, scale, bits).log_prob(x), x)


class DiscretizedLogisticMixture(_QuantizedGrid, torch.distributions.Distribution):
    r"""A mixture of K discretised logistics per data dimension, the PixelCNN++ likelihood (Salimans et al. 2017).

    With mixture weights :math:`\pi_j = \operatorname{softmax}(\text{logits})_j` and components
    :math:`P_j(k)` the bin masses of :class:`DiscretizedLogistic` (same grid, same edge bins),

    .. math::
        \log P(k) = \operatorname{logsumexp}_j \big(\log\pi_j + \log P_j(k)\big),

    with ``log_softmax`` for :math:`\log\pi_j` and each :math:`\log P_j(k)` computed as in
    :class:`DiscretizedLogistic` (three non-positive terms, exact in every tail), so the mixture is
    exact in the tails too. The masses sum to 1. Channels are independent (the linear
    dependence between the colour channels of PixelCNN++ is not modelled).

    Mean, variance and ``cdf`` are exact: weighted sums of the components' exact values.

    Args:
        logits: unnormalised log mixture weights, shape ``(*batch, K)``.
        loc: component locations :math:`\mu_j` in data units, shape ``(*batch, K)`` (or broadcastable).
        scale: component scales :math:`s_j > 0`, shape ``(*batch, K)`` (or broadcastable).
        bits: bits per value (default 8: 256 bins).
        validate_args: check parameters and data; data must be on the grid k/n within 1e-3 bins.
    """

    arg_constraints = {"logits": finite_real, "loc": finite_real, "scale": finite_positive}
    has_enumerate_support = True

    def __init__(
        self,
        logits: torch.Tensor,
        loc: torch.Tensor,
        scale: torch.Tensor | float,
        bits: int = 8,
        validate_args: bool | None = None,
    ) -> None:
        if int(bits) != bits or not 1 <= bits <= 16:
            raise ValueError(f"DiscretizedLogisticMixture: bits must be an integer in 1..16, got {bits}")
        self.bits = int(bits)
        if validate_args if validate_args is not None else torch.distributions.Distribution._validate_args:
            for name, value in (("logits", logits), ("loc", loc), ("scale", scale)):
                check_finite("DiscretizedLogisticMixture", name, value)
        self.logits, self.loc, self.scale = broadcast_params("DiscretizedLogisticMixture", logits=logits, loc=loc, scale=scale)
        if self.logits.ndim < 1:
            raise ValueError(
                "DiscretizedLogisticMixture: the parameters need a last dimension of components, got scalars"
            )
        super().__init__(self.logits.shape[:-1], validate_args=validate_args)

    @property
    def components(self) -> int:
        """K, the number of mixture components (the last parameter dimension)."""
        return self.logits.shape[-1]

    def _component(self) -> DiscretizedLogistic:
        return DiscretizedLogistic(self.loc, self.scale, self.bits, validate_args=False)

    def expand(self, batch_shape: torch.Size, _instance: DiscretizedLogisticMixture | None = None) -> DiscretizedLogisticMixture:
        new = self._get_checked_instance(DiscretizedLogisticMixture, _instance)
        shape = torch.Size(batch_shape) + (self.components,)
        new.logits, new.loc, new.scale = self.logits.expand(shape), self.loc.expand(shape), self.scale.expand(shape)
        new.bits = self.bits
        torch.distributions.Distribution.__init__(new, torch.Size(batch_shape), validate_args=False)
        new._validate_args = self._validate_args
        return new

    def _validate_sample(self, value: torch.Tensor) -> None:
        check_finite(type(self).__name__, "value", value)
        super()._validate_sample(value)

    def _log_weights(self) -> torch.Tensor:
        return torch.log_softmax(self.logits, dim=-1)

    def _component_log_mass(self, k: torch.Tensor) -> torch.Tensor:
        """log P_j(k) for k of shape (..., 1) broadcasting against (*batch, K)."""
        k, loc, scale = torch.broadcast_tensors(k, self.loc, self.scale)
        return self._component()._log_mass(k, loc, scale)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """log P(k) for value = k/n: logsumexp over the components of log weight plus log mass."""
        if self._validate_args:
            self._validate_sample(value)
        return self._log_prob(value)

    def _log_prob(self, value: torch.Tensor) -> torch.Tensor:
        value = torch.as_tensor(value, dtype=self.loc.dtype, device=self.loc.device)
        k = torch.round(value * self.n).clamp(0, self.n).unsqueeze(-1)
        return torch.logsumexp(self._log_weights() + self._component_log_mass(k), dim=-1)

    def _weights(self) -> torch.Tensor:
        return torch.softmax(self.logits, dim=-1)

    @property
    def mean(self) -> torch.Tensor:
        """sum_j pi_j E_j[k/n], each component mean the exact sum of DiscretizedLogistic.mean."""
        return (self._weights() * self._component().mean).sum(-1)

    @property
    def variance(self) -> torch.Tensor:
        """sum_j pi_j (Var_j + (E_j - E)^2): non-negative terms."""
        comp = self._component()
        m_j = comp.mean
        m = (self._weights() * m_j).sum(-1, keepdim=True)
        return (self._weights() * (comp.variance + (m_j - m).pow(2))).sum(-1)

    def cdf(self, value: torch.Tensor) -> torch.Tensor:
        """sum_j pi_j P_j(X <= value)."""
        value = torch.as_tensor(value, dtype=self.loc.dtype, device=self.loc.device).unsqueeze(-1)
        return (self._weights() * self._component().cdf(value)).sum(-1)

    def entropy(self) -> torch.Tensor:
        """-sum_k P(k) log P(k) over the n + 1 bins."""
        log_p = self._log_prob(self.enumerate_support())
        return -(torch.exp(log_p) * log_p).sum(0)

    def sample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        """A component drawn from the weights, then a draw of that component's discretised logistic."""
        with torch.no_grad():
            sample_shape = torch.Size(sample_shape)
            j = torch.distributions.Categorical(logits=self.logits).sample(sample_shape).unsqueeze(-1)
            shape = sample_shape + self.logits.shape
            loc = self.loc.expand(shape).gather(-1, j).squeeze(-1)
            scale = self.scale.expand(shape).gather(-1, j).squeeze(-1)
            u = torch.rand(loc.shape, dtype=loc.dtype, device=loc.device).clamp(min=torch.finfo(loc.dtype).tiny)
            y = loc + scale * (torch.log(u) - torch.log1p(-u))
            return torch.round(y * self.n).clamp(0, self.n) / self.n
