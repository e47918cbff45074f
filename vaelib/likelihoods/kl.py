"""``torch.distributions.kl_divergence`` between two members of one vaelib family, registered with
``register_kl`` as torch registers its own pairs. Each is the closed form of
:math:`\\mathrm{KL}(p \\,\\|\\, q) = \\mathbb{E}_p[\\log p(X) - \\log q(X)]`.

The Huber family has no closed form (its log-density ratio is piecewise in two different breakpoints),
so no pair is registered for it and ``kl_divergence`` raises ``NotImplementedError``, as torch does for
pairs it does not know.
"""

from __future__ import annotations

import torch
from torch.distributions.kl import register_kl

from vaelib.likelihoods._base import exact_softplus
from vaelib.likelihoods.bernoulli import Bernoulli
from vaelib.likelihoods.beta import Beta, log_beta
from vaelib.likelihoods.continuous_bernoulli import ContinuousBernoulli, cb_mean
from vaelib.likelihoods.gaussian import Gaussian
from vaelib.likelihoods.laplace import Laplace
from vaelib.likelihoods.logistic import DiscretizedLogistic

__all__: list[str] = []


@register_kl(Gaussian, Gaussian)
def _kl_gaussian(p: Gaussian, q: Gaussian) -> torch.Tensor:
    """log(s_q/s_p) + (s_p^2 + (m_p - m_q)^2) / (2 s_q^2) - 1/2, with r = s_p/s_q as (r^2 - 1)/2 - log r."""
    log_r = torch.log(p.scale) - torch.log(q.scale)
    return 0.5 * (torch.expm1(2 * log_r) - 2 * log_r) + 0.5 * ((p.loc - q.loc) / q.scale).pow(2)


@register_kl(Laplace, Laplace)
def _kl_laplace(p: Laplace, q: Laplace) -> torch.Tensor:
    """log(b_q/b_p) + |m_p - m_q|/b_q + (b_p/b_q) exp(-|m_p - m_q|/b_p) - 1."""
    gap = (p.loc - q.loc).abs()
    ratio = p.scale / q.scale
    return -torch.log(ratio) + gap / q.scale + ratio * torch.expm1(-gap / p.scale) + (ratio - 1)


@register_kl(Bernoulli, Bernoulli)
def _kl_bernoulli(p: Bernoulli, q: Bernoulli) -> torch.Tensor:
    """In logits: softplus(l_q) - softplus(l_p) + sigmoid(l_p) (l_p - l_q)."""
    return exact_softplus(q.logits) - exact_softplus(p.logits) + torch.sigmoid(p.logits) * (p.logits - q.logits)


@register_kl(ContinuousBernoulli, ContinuousBernoulli)
def _kl_continuous_bernoulli(p: ContinuousBernoulli, q: ContinuousBernoulli) -> torch.Tensor:
    """The exponential family of Eq. (eq-cb-expfam): log p(x) = eta x + log p(0), so
    KL = (eta_p - eta_q) E_p[X] + log p(0) - log q(0)."""
    zero = torch.zeros_like(p.logits)
    return (p.logits - q.logits) * cb_mean(p.logits) + p.log_prob(zero) - q.log_prob(zero)


@register_kl(Beta, Beta)
def _kl_beta(p: Beta, q: Beta) -> torch.Tensor:
    """log B(a_q, b_q) - log B(a_p, b_p) + (a_p - a_q) psi(a_p) + (b_p - b_q) psi(b_p) + (a_q - a_p + b_q - b_p) psi(a_p + b_p)."""
    a1, b1, a2, b2 = p.concentration1, p.concentration0, q.concentration1, q.concentration0
    return (log_beta(a2, b2) - log_beta(a1, b1) + (a1 - a2) * torch.digamma(a1) + (b1 - b2) * torch.digamma(b1)
            + (a2 - a1 + b2 - b1) * torch.digamma(a1 + b1))


@register_kl(DiscretizedLogistic, DiscretizedLogistic)
def _kl_discretized_logistic(p: DiscretizedLogistic, q: DiscretizedLogistic) -> torch.Tensor:
    """The finite sum over the bins, sum_k P(k) (log P(k) - log Q(k)); both must have the same ``bits``."""
    if p.bits != q.bits:
        raise ValueError(f"kl_divergence(DiscretizedLogistic, DiscretizedLogistic): bits differ ({p.bits} and {q.bits})")
    log_p, log_q = p._log_masses(), q._log_masses()
    log_p, log_q = torch.broadcast_tensors(log_p, log_q)
    return (torch.exp(log_p) * (log_p - log_q)).sum(0)
