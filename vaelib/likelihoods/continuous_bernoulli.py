r"""The continuous Bernoulli in logit space, exact in float32 and float64 (chapter 05).

With :math:`\lambda = \operatorname{sigmoid}(\eta)` the density on :math:`[0, 1]` is
:math:`p(x \mid \eta) = C(\eta)\,\lambda^x (1 - \lambda)^{1 - x}`, and everything has a closed form in
the logit :math:`\eta` (Eqs. (eq-cb-logc-logit), (eq-cb-mean-logit), (eq-cb-expfam)):

.. math::
    \log C(\eta) = \log\frac{\eta}{\tanh(\eta/2)}, \qquad
    \mathbb{E}[x] = \tfrac12 + \tfrac12\Big(\coth\frac{\eta}{2} - \frac{2}{\eta}\Big), \qquad
    \log p(x \mid \eta) = x\eta - \log\frac{e^\eta - 1}{\eta}.

Probability-space implementations, ``torch.distributions.ContinuousBernoulli`` among them, evaluate
:math:`2\,\mathrm{artanh}(1 - 2\lambda)/(1 - 2\lambda)` after clamping :math:`\lambda`; in float32 the
clamp caps the mean at about 0.937 and the rounding of :math:`\lambda` near 0 and 1 loses the
normaliser. Here no probability is ever formed:

* :math:`\log C` is ``log(|eta| / tanh(|eta|/2))``, which is accurate to a few units in the last place
  over the whole real line (both factors are computed to full relative precision), with the two-term
  series :math:`\log 2 + \eta^2/12 - 7\eta^4/1440 + 31\eta^6/90720` where :math:`|\eta| < 10^{-2}`;
* the mean is the odd series :math:`\tfrac12 + \sum_n B_{2n}\,\eta^{2n-1}/(2n)!` (Bernoulli numbers,
  radius of convergence :math:`2\pi`) for :math:`|\eta| < 2`, and
  ``1/(-expm1(-eta)) - 1/eta`` or ``1/|eta| - 1/expm1(|eta|)`` outside, neither of which cancels;
* the gradient of :math:`\log C` is :math:`\operatorname{sigmoid}(\eta) - \mathbb{E}[x] =
  1/\eta - 1/\sinh\eta`, evaluated as ``tanh(eta/2)/2 - (mean - 1/2)`` inside :math:`|\eta| < 2`
  and directly outside; and since the family is exponential, the gradient of the log-density is
  :math:`x - \mathbb{E}[x]` (Eq. (eq-cb-score)), which :func:`cb_log_prob` uses in its backward pass.
"""

from __future__ import annotations

import math
from typing import Callable
import torch
from torch.distributions.utils import broadcast_all

from vaelib.likelihoods._base import ElementwiseDistribution, check_batched, exact_softplus, per_example_sum
from vaelib.likelihoods.constraints import finite_real, unit_interval

__all__ = [
    "ContinuousBernoulli",
    "cb_log_normalizer",
    "cb_mean",
    "cb_variance",
    "cb_log_prob",
    "cb_nll",
    "MEAN_SERIES",
]

_LOG2 = math.log(2.0)

#: Coefficients B_{2n} / (2n)! of mean(eta) - 1/2 = sum_n c_n eta^(2n-1), n = 1..21 (Eq. (eq-cb-mean-series)).
MEAN_SERIES: tuple[float, ...] = (
    0.08333333333333333,
    -0.001388888888888889,
    3.306878306878307e-05,
    -8.267195767195768e-07,
    2.08767569878681e-08,
    -5.284190138687493e-10,
    1.3382536530684679e-11,
    -3.3896802963225827e-13,
    8.586062056277845e-15,
    -2.174868698558062e-16,
    5.5090028283602295e-18,
    -1.3954464685812522e-19,
    3.534707039629467e-21,
    -8.953517427037546e-23,
    2.267952452337683e-24,
    -5.744790668872202e-26,
    1.455172475614865e-27,
    -3.6859949406653103e-29,
    9.336734257095045e-31,
    -2.36502241570063e-32,
    5.990671762482134e-34,
)
_SERIES_RADIUS = 2.0  # |eta| below which the mean and the score use the series
_LOGC_SERIES_RADIUS = 1e-2  # |eta| below which log C uses its Taylor series to eta^6


def _terms(dtype: torch.dtype) -> int:
    """Series terms that reach the dtype's rounding error at |eta| = 2: the first term left out is below
    1e-18 in float64 and 1.2e-8 in float32, a fifth of a rounding unit of the mean there (0.66)."""
    return 18 if dtype == torch.float64 else 7


def _odd_series(eta: torch.Tensor, constant: float = 0.0) -> torch.Tensor:
    """``constant`` + mean(eta) - 1/2 by the Bernoulli-number series, Horner's rule with one
    multiply-add kernel per term; accurate for |eta| < 2 only."""
    n = _terms(eta.dtype)

    def scalar(c: float) -> torch.Tensor:
        return torch.tensor(c, dtype=eta.dtype, device=eta.device)

    x = eta * eta
    acc = torch.add(scalar(MEAN_SERIES[n - 2]), x, alpha=MEAN_SERIES[n - 1])
    for c in reversed(MEAN_SERIES[: n - 2]):
        acc = torch.addcmul(scalar(c), acc, x)
    return torch.addcmul(scalar(constant), eta, acc)


def _odd_series_derivative(eta: torch.Tensor) -> torch.Tensor:
    """d/d eta of :func:`_odd_series`: sum_n (2n - 1) c_n eta^(2n-2)."""
    n = _terms(eta.dtype)
    x = eta * eta
    acc = torch.full_like(eta, (2 * n - 1) * MEAN_SERIES[n - 1])
    for k in range(n - 1, 0, -1):
        acc = acc * x + (2 * k - 1) * MEAN_SERIES[k - 1]
    return acc


def _split(eta: torch.Tensor, radius: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mask |eta| < radius and two copies of eta made safe for the inside and the outside formulas.

    Feeding each branch only values it handles keeps NaN out of the branch ``torch.where`` discards,
    in the forward pass and in the gradient.
    """
    inside = eta.abs() < radius
    eta_in = torch.where(inside, eta, torch.zeros_like(eta))
    eta_out = torch.where(inside, torch.full_like(eta, 2.0 * radius), eta)
    return inside, eta_in, eta_out


def _in_working_precision(fn: Callable[[torch.Tensor], torch.Tensor], logits: torch.Tensor | float) -> torch.Tensor:
    """Apply ``fn`` in float32 or float64 (half precisions and integers are computed in float32) and
    return the result in the dtype of ``logits`` when that is a floating dtype."""
    logits = torch.as_tensor(logits)
    eta = logits if logits.dtype in (torch.float32, torch.float64) else logits.float()
    out = fn(eta)
    return out.to(logits.dtype) if logits.is_floating_point() else out


def _log_normalizer(eta: torch.Tensor) -> torch.Tensor:
    inside, eta_in, eta_out = _split(eta, _LOGC_SERIES_RADIUS)
    x = eta_in * eta_in
    series = _LOG2 + x * (1.0 / 12.0 - x * (7.0 / 1440.0 - x * (31.0 / 90720.0)))
    a = eta_out.abs()
    direct = torch.log(a / torch.tanh(0.5 * a))
    return torch.where(inside, series, direct)


def _mean(eta: torch.Tensor) -> torch.Tensor:
    inside, eta_in, eta_out = _split(eta, _SERIES_RADIUS)
    a = eta_out.abs()
    upper = torch.reciprocal(-torch.expm1(-a)) - torch.reciprocal(a)  # mean(+a), in (2/3, 1)
    lower = torch.reciprocal(a) - torch.reciprocal(torch.expm1(a))  # mean(-a), in (0, 1/3)
    return torch.where(inside, _odd_series(eta_in, 0.5), torch.where(eta_out > 0, upper, lower))


def _score_of_log_normalizer(eta: torch.Tensor) -> torch.Tensor:
    """d log C / d eta = 1/eta - 1/sinh(eta) = sigmoid(eta) - mean(eta)."""
    inside, eta_in, eta_out = _split(eta, _SERIES_RADIUS)
    series = 0.5 * torch.tanh(0.5 * eta_in) - _odd_series(eta_in)
    direct = torch.reciprocal(eta_out) - torch.reciprocal(torch.sinh(eta_out))
    return torch.where(inside, series, direct)


def _variance(eta: torch.Tensor) -> torch.Tensor:
    """d mean / d eta = 1/eta^2 - 1/(4 sinh^2(eta/2))."""
    inside, eta_in, eta_out = _split(eta, _SERIES_RADIUS)
    direct = torch.reciprocal(eta_out * eta_out) - torch.reciprocal(4.0 * torch.sinh(0.5 * eta_out).pow(2))
    return torch.where(inside, _odd_series_derivative(eta_in), direct)


class _LogNormalizer(torch.autograd.Function):
    @staticmethod
    def forward(ctx, eta: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(eta)
        return _log_normalizer(eta)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        (eta,) = ctx.saved_tensors
        return grad * _score_of_log_normalizer(eta)


class _LogProb(torch.autograd.Function):
    r"""log p(x | eta) in the exponential-family form of Eq. (eq-cb-expfam), with the gradient x - mean(eta).

    With :math:`a = |\eta|` and :math:`e = \mathrm{expm1}(-a)`,
    :math:`\log\frac{e^\eta - 1}{\eta} = \max(\eta, 0) + \log\frac{-e}{a}`, so that
    :math:`\log p = x\eta - \max(\eta, 0) - \log(-e/a)`: one ``expm1`` and one ``log`` per
    element, and nothing that overflows. The backward pass reuses :math:`e` and :math:`a`:
    :math:`\mathbb{E}[x] = -1/e - 1/a` at :math:`+a` and :math:`1/a - 1/\mathrm{expm1}(a)` at
    :math:`-a` (neither cancels for :math:`a \ge 2`); inside :math:`|\eta| < 2` the two terms would
    cancel, and the Bernoulli-number series is used.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, eta: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        a = eta.abs().clamp_min_(torch.finfo(eta.dtype).tiny)  # at eta = 0: e / a = -1 exactly, log = 0
        e = torch.expm1(-a)
        log_z = torch.div(e, a).neg_().log_().add_(torch.relu(eta))  # log((e^eta - 1) / eta)
        ctx.save_for_backward(x, eta, a, e)
        return torch.mul(x, eta).sub_(log_z)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:  # type: ignore[override]
        x, eta, a, e = ctx.saved_tensors
        grad_x = grad * eta if ctx.needs_input_grad[0] else None
        grad_eta = None
        if ctx.needs_input_grad[1]:
            grad_eta = torch.sub(x, _mean(eta) if torch.is_grad_enabled() else _mean_from(eta, a, e)).mul_(grad)
        return grad_x, grad_eta


def _mean_from(eta: torch.Tensor, a: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
    """mean(eta) from a = |eta| and e = expm1(-a), Eq. (eq-cb-mean-logit), in place where possible
    (not differentiable: the double backward uses :func:`_mean`)."""
    inv_a = torch.reciprocal(a)
    upper = torch.reciprocal(e).neg_().sub_(inv_a)  # mean(+a) = -1/e - 1/a, in (2/3, 1) for a >= 2
    lower = inv_a.sub_(torch.expm1(a).reciprocal_())  # mean(-a) = 1/a - 1/expm1(a), in (0, 1/3)
    mean = torch.where(eta > 0, upper, lower)
    inside = a < _SERIES_RADIUS
    # outside the radius the series may overflow; torch.where discards it there, and no gradient flows
    return torch.where(inside, _odd_series(eta, 0.5), mean)


def cb_log_normalizer(logits: torch.Tensor) -> torch.Tensor:
    r""":math:`\log C(\eta) = \log(\eta / \tanh(\eta/2))`, equal to :math:`\log 2` at 0, Eq. (eq-cb-logc-logit).

    Relative error below 4e-7 in float32 and 1e-12 in float64 for every finite logit; its gradient is
    :math:`1/\eta - 1/\sinh\eta`, accurate to the same order and never exactly 0 for finite
    nonzero logits unless it underflows.
    """
    return _in_working_precision(_LogNormalizer.apply, logits)


def cb_mean(logits: torch.Tensor) -> torch.Tensor:
    r"""Mean of the continuous Bernoulli, :math:`\tfrac12 + \tfrac12(\coth(\eta/2) - 2/\eta)`, Eq. (eq-cb-mean-logit).

    It tends to :math:`1 - 1/\eta` as :math:`\eta \to \infty` (0.999 at :math:`\eta = 1000`) and to
    :math:`1/|\eta|` as :math:`\eta \to -\infty`, with full relative accuracy at both ends.
    """
    return _in_working_precision(_mean, logits)


def cb_variance(logits: torch.Tensor) -> torch.Tensor:
    r"""Variance :math:`1/\eta^2 - 1/(4\sinh^2(\eta/2))`, the derivative of the mean, Eq. (eq-cb-variance)."""
    return _in_working_precision(_variance, logits)


def cb_log_prob(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    r"""Elementwise :math:`\log p(x \mid \eta) = -\mathrm{BCE}(\eta, x) + \log C(\eta)`, Eq. (eq-cb-logprob).

    Evaluated in the equivalent exponential-family form :math:`x\eta - \log((e^\eta - 1)/\eta)`,
    Eq. (eq-cb-expfam), with one ``expm1`` and one ``log`` per element; the backward pass is
    :math:`x - \mathbb{E}[x]`, Eq. (eq-cb-score).

    Argument order: the logits :math:`\eta`, then the data ``x``, as ``ContinuousBernoulli(logits).log_prob(x)``.
    No validation: use :class:`ContinuousBernoulli` for checked input.
    """
    x, logits = broadcast_all(x, logits)
    return _LogProb.apply(x, logits)


def cb_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood of each example, summed over all but the first dimension, shape (N,).

    Argument order: the logits, then the data ``x`` of shape (N, ...), as ``-ContinuousBernoulli(logits).log_prob(x)``.
    """
    check_batched("cb_nll", x)
    return per_example_sum("cb_nll", ContinuousBernoulli(logits=logits).log_prob(x), x)


class ContinuousBernoulli(ElementwiseDistribution):
    r"""The continuous Bernoulli on [0, 1] parametrised by its logit, Eqs. (eq-cb-density), (eq-cb-logc-logit).

    .. math::
        p(x \mid \eta) = C(\eta)\,\lambda^x (1-\lambda)^{1-x}, \quad \lambda = \operatorname{sigmoid}(\eta),
        \quad \log C(\eta) = \log\frac{\eta}{\tanh(\eta/2)} .

    Unlike ``torch.distributions.ContinuousBernoulli`` nothing is clamped: the mean reaches
    :math:`1 - 1/\eta` for large logits, and log-density, mean, variance and gradients keep their
    relative accuracy in float32 for logits up to :math:`\pm 10^4` and beyond.

    Args:
        logits: the natural parameter :math:`\eta`, any finite real.
        validate_args: check the logits and the data (default: torch's global setting).
    """

    arg_constraints = {"logits": finite_real}
    support = unit_interval
    has_rsample = True

    _param_names = ("logits",)

    def __init__(self, logits: torch.Tensor | float, validate_args: bool | None = None) -> None:
        self.logits: torch.Tensor
        self._init_params(validate_args, logits=logits)

    @property
    def probs(self) -> torch.Tensor:
        """:math:`\\lambda = \\operatorname{sigmoid}(\\eta)` (for display; never used in computations)."""
        return torch.sigmoid(self.logits)

    @property
    def mean(self) -> torch.Tensor:
        return cb_mean(self.logits)

    @property
    def mode(self) -> torch.Tensor:
        """The density is monotone in x (Eq. (eq-cb-density)): its mode is 1 for eta > 0 and 0 for eta < 0;
        at eta = 0 it is uniform and every point is a mode (NaN, as torch's Bernoulli at p = 1/2)."""
        one = (self.logits > 0).to(self.logits.dtype)
        return torch.where(self.logits == 0, torch.full_like(one, float("nan")), one)

    @property
    def variance(self) -> torch.Tensor:
        return cb_variance(self.logits)

    def log_normalizer(self) -> torch.Tensor:
        """log C(eta) of every batch element."""
        return cb_log_normalizer(self.logits)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        if self._validate_args:
            self._validate_sample(value)
        return cb_log_prob(self.logits, value)

    def cdf(self, value: torch.Tensor) -> torch.Tensor:
        r""":math:`F(x) = \mathrm{expm1}(\eta x) / \mathrm{expm1}(\eta)`, written without overflow."""
        if self._validate_args:
            self._validate_sample(value)
        value, eta = broadcast_all(value, self.logits)
        small, eta_in, eta_out = _split(eta, 1e-6)
        neg = torch.expm1(eta_out * value) / torch.expm1(eta_out)
        # for eta > 0: exp(eta (x - 1)) * (1 - exp(-eta x)) / (1 - exp(-eta))
        pos = torch.exp(eta_out * (value - 1.0)) * torch.expm1(-eta_out * value) / torch.expm1(-eta_out)
        near_zero = value + 0.5 * eta_in * value * (value - 1.0)
        return torch.where(small, near_zero, torch.where(eta_out > 0, pos, neg)).clamp(0.0, 1.0)

    def icdf(self, value: torch.Tensor) -> torch.Tensor:
        r"""Inverse CDF: :math:`x = \log(1 + u\,\mathrm{expm1}(\eta)) / \eta`, without overflow for large :math:`\eta`."""
        value, eta = broadcast_all(value, self.logits)
        small, eta_in, eta_out = _split(eta, 1e-6)
        neg = torch.log1p(value * torch.expm1(eta_out)) / eta_out
        # for eta > 0: x = 1 + log(u + (1 - u) exp(-eta)) / eta = 1 + log1p(-(1 - u) * (-expm1(-eta))) / eta
        pos = 1.0 + torch.log1p((value - 1.0) * -torch.expm1(-eta_out)) / eta_out
        near_zero = value - 0.5 * eta_in * value * (value - 1.0)
        return torch.where(small, near_zero, torch.where(eta_out > 0, pos, neg)).clamp(0.0, 1.0)

    def rsample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        shape = self._extended_shape(sample_shape)
        u = torch.rand(shape, dtype=self.logits.dtype, device=self.logits.device)
        return self.icdf(u)

    def sample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        with torch.no_grad():
            return self.rsample(sample_shape)

    def entropy(self) -> torch.Tensor:
        """H = log((e^eta - 1)/eta) - eta * mean = softplus(eta) - log C(eta) - eta * mean."""
        eta = self.logits
        return exact_softplus(eta) - cb_log_normalizer(eta) - eta * cb_mean(eta)
