"""The Bernoulli likelihood with logits: binary cross-entropy, exact at every logit (chapter 03)."""

from __future__ import annotations

from typing import Any

import torch
from torch.distributions import constraints

from vaelib.likelihoods._base import ElementwiseDistribution, check_batched, per_example_sum
from vaelib.likelihoods.constraints import finite_real, unit_interval

__all__ = ["Bernoulli", "bernoulli_nll"]


def _bce_log_prob(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    r"""Minus the BCE, as ``logsigmoid(|l|) - l * ([l > 0] - x)``: a sum of two non-positive terms.

    Algebraically this is -[x softplus(-l) + (1 - x) softplus(l)]: for l > 0 the second term is
    (1 - x) l >= 0, for l <= 0 it is -x l >= 0, and ``logsigmoid(|l|) = -log1p(exp(-|l|))`` is the
    common part. No large numbers are subtracted, so the result keeps full relative accuracy for
    every logit and every x in [0, 1] (torch's ``softplus(-l) + (1 - x) l`` cancels when l << 0 and
    x = 0, and ``softplus(l) - x l`` when l >> 0 and x is close to 1).
    """
    # the step [l > 0] written straight into a float tensor (one kernel), then 1 - x where l > 0, -x elsewhere
    d = torch.gt(logits, 0, out=torch.empty_like(logits, dtype=torch.result_type(logits, x))).sub_(x)
    out = logits.abs()
    _log_sigmoid_(out)
    return out.addcmul_(logits, d, value=-1.0)


def _log_sigmoid_(t: torch.Tensor) -> None:
    """logsigmoid in place (saves an allocation and torch's side buffer on a 1024 x 784 batch)."""
    try:
        torch._C._nn.log_sigmoid(t, out=t)
    except (AttributeError, TypeError, RuntimeError):  # an older or different build: the out-of-place op
        t.copy_(torch.nn.functional.logsigmoid(t))


class _BernoulliLogProb(torch.autograd.Function):
    """Elementwise log-likelihood with a hand-written backward: d/dl = x - sigmoid(l), d/dx = l."""

    @staticmethod
    def forward(ctx: Any, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(logits, x)
        return _bce_log_prob(logits, x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:  # type: ignore[override]
        logits, x = ctx.saved_tensors
        grad_logits = grad_x = None
        if ctx.needs_input_grad[0]:
            sig = torch.sigmoid(logits)
            grad_logits = torch.sub(x, sig, out=sig).mul_(grad)
        if ctx.needs_input_grad[1]:
            grad_x = grad * logits
        return grad_logits, grad_x


def _log_prob(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Elementwise log-likelihood of broadcast ``logits`` and ``x`` (of equal shapes)."""
    dtype = torch.result_type(logits, x)
    logits, x = logits.to(dtype), x.to(dtype)  # no-ops when the dtypes agree
    if torch.is_grad_enabled() and (logits.requires_grad or x.requires_grad):
        return _BernoulliLogProb.apply(logits, x)
    return _bce_log_prob(logits, x)


class Bernoulli(ElementwiseDistribution):
    r"""Independent Bernoulli per data dimension with logits :math:`l`, Eq. (eq-bern-bce):

    .. math::
        -\log p(x \mid l) = x\,\mathrm{softplus}(-l) + (1 - x)\,\mathrm{softplus}(l)
        = \mathrm{BCE}(\sigma(l), x),

    evaluated as :math:`\mathrm{softplus}(-|l|) + |l|\,(1-x \text{ if } l > 0 \text{ else } x)`, a sum of
    non-negative terms: full relative accuracy for every logit (float32: exact for
    :math:`|l|` up to 1e4 and beyond) and every :math:`x \in [0, 1]`.

    The support is the closed interval [0, 1] so that grey levels can be scored, as VAEs on
    [0,1]-valued images do. On non-binary data this is **not a normalised density**: by
    Eq. (eq-bern-integral), :math:`\int_0^1 \lambda^x (1-\lambda)^{1-x}\,dx = 1/C(\lambda)` with
    :math:`\lambda = \sigma(l)` and :math:`C` the continuous-Bernoulli normaliser, which is
    :math:`\ge 2` everywhere. Only on binary data is it a probability mass function.

    Args:
        logits: the log-odds :math:`l`, any finite real.
        validate_args: check parameters and data (default: torch's global setting).
    """

    arg_constraints = {"logits": finite_real}
    support = unit_interval
    _param_names = ("logits",)

    def __init__(self, logits: torch.Tensor | float, validate_args: bool | None = None) -> None:
        self.logits: torch.Tensor
        self._init_params(validate_args, logits=logits)

    @property
    def probs(self) -> torch.Tensor:
        return torch.sigmoid(self.logits)

    @property
    def mean(self) -> torch.Tensor:
        """sigmoid(logits), to full relative accuracy on both tails."""
        return torch.sigmoid(self.logits)

    @property
    def mode(self) -> torch.Tensor:
        return (self.logits > 0).to(self.logits.dtype)

    @property
    def variance(self) -> torch.Tensor:
        """sigmoid(l) sigmoid(-l): accurate also where p(1 - p) would round 1 - p to zero."""
        return torch.sigmoid(self.logits) * torch.sigmoid(-self.logits)

    def sample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        shape = self._extended_shape(sample_shape)
        with torch.no_grad():
            return torch.bernoulli(torch.sigmoid(self.logits).expand(shape))

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """Minus Eq. (eq-bern-bce)."""
        if self._validate_args:
            self._validate_sample(value)
        logits, value = torch.broadcast_tensors(self.logits, value)
        return _log_prob(logits, value)

    has_enumerate_support = True

    def enumerate_support(self, expand: bool = True) -> torch.Tensor:
        """The two outcomes 0 and 1, shape ``(2, *batch_shape)`` (or (2, 1, ...) without ``expand``)."""
        values = torch.tensor([0.0, 1.0], dtype=self.logits.dtype, device=self.logits.device)
        values = values.view((-1,) + (1,) * len(self.batch_shape))
        return values.expand((-1,) + self.batch_shape) if expand else values

    def cdf(self, value: torch.Tensor) -> torch.Tensor:
        """P(X <= value) of the mass function on {0, 1}: 0 below 0, 1 - p on [0, 1), 1 from 1 on."""
        value, logits = torch.broadcast_tensors(torch.as_tensor(value, dtype=self.logits.dtype), self.logits)
        q = torch.sigmoid(-logits)
        return torch.where(value < 0, torch.zeros_like(q), torch.where(value < 1, q, torch.ones_like(q)))

    def entropy(self) -> torch.Tensor:
        """Entropy of the Bernoulli mass function: the BCE of sigmoid(l) against itself."""
        return -_log_prob(self.logits, torch.sigmoid(self.logits))


def bernoulli_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of each example, summed over all but the first dimension, Eq. (eq-bern-bce).

    Argument order: the parameter of :class:`Bernoulli` (``logits``), then the data ``x``, as
    ``-Bernoulli(logits).log_prob(x)``.

    Args:
        logits: predicted log-odds, broadcastable to ``x``.
        x: data in [0, 1] of shape (N, ...).

    Returns:
        A tensor of shape (N,).
    """
    check_batched("bernoulli_nll", x)
    return per_example_sum("bernoulli_nll", Bernoulli(logits).log_prob(x), x)
