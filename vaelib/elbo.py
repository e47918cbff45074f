"""The evidence lower bound and its KL term (chapter 01).

Shapes: latent tensors are (N, D); every function returns one value per example, shape (N,).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from vaelib.likelihoods._base import check_finite

__all__ = ["kl_diag_gaussians", "expm1_minus_x", "mc_kl", "log_normal_diag", "ElboTerms"]

_LOG_2PI = math.log(2.0 * math.pi)


# 1/k! for k = 2..20: the Taylor series of exp(d) - 1 - d, exact to float64 rounding for |d| < 1
_EXPM1_MINUS_X_COEFFS = tuple(1.0 / math.factorial(k) for k in range(2, 21))


def expm1_minus_x(d: torch.Tensor) -> torch.Tensor:
    """``exp(d) - 1 - d`` without the cancellation of ``expm1(d) - d`` at small ``|d|``.

    For ``|d| < 1`` a Horner evaluation of the Taylor series (degree 20) is used; elsewhere the direct
    formula, which has no cancellation there. The unused branch is fed a safe value so that its
    gradient cannot turn into NaN.
    """
    small = d.abs() < 1.0
    ds = torch.where(small, d, torch.zeros_like(d))
    series = torch.full_like(ds, _EXPM1_MINUS_X_COEFFS[-1])
    for c in reversed(_EXPM1_MINUS_X_COEFFS[:-1]):
        series = series * ds + c
    series = series * ds * ds
    dl = torch.where(small, torch.ones_like(d), d)
    return torch.where(small, series, torch.expm1(dl) - dl)


def _sum_per_example(t: torch.Tensor) -> torch.Tensor:
    return t.flatten(1).sum(1) if t.ndim > 1 else t


def kl_diag_gaussians(
    mu_q: torch.Tensor,
    logvar_q: torch.Tensor,
    mu_p: torch.Tensor | float = 0.0,
    logvar_p: torch.Tensor | float = 0.0,
    validate: bool | None = None,
) -> torch.Tensor:
    r"""KL(q || p) between diagonal Gaussians, summed over latent dimensions, Eq. (eq-elbo-kl-diag):

    .. math::
        \tfrac12 \sum_k \Big[ \frac{\sigma_{q,k}^2 + (\mu_{q,k} - \mu_{p,k})^2}{\sigma_{p,k}^2}
        - 1 - \log\frac{\sigma_{q,k}^2}{\sigma_{p,k}^2} \Big].

    The defaults give the standard-normal prior, Eq. (eq-elbo-kl-std). The term
    :math:`r - 1 - \log r` with :math:`r = \sigma_q^2/\sigma_p^2` is evaluated as
    :func:`expm1_minus_x` of ``d = logvar_q - logvar_p``, which keeps full relative accuracy
    when q is close to p.

    ``validate`` (default: torch's distribution validation, on unless Python runs with ``-O``) checks
    that the result is finite and, if not, names the first non-finite input; the trainer turns it off
    because it reports non-finite terms itself, with their step.
    """
    if not isinstance(mu_q, torch.Tensor) or not isinstance(logvar_q, torch.Tensor) or mu_q.shape != logvar_q.shape:
        raise ValueError("kl_diag_gaussians: mu_q and logvar_q must be tensors of one shape, got "
                         f"{tuple(getattr(mu_q, 'shape', ()))} and {tuple(getattr(logvar_q, 'shape', ()))}")
    mu_p = torch.as_tensor(mu_p, dtype=mu_q.dtype, device=mu_q.device)
    logvar_p = torch.as_tensor(logvar_p, dtype=mu_q.dtype, device=mu_q.device)
    d = logvar_q - logvar_p
    per_dim = 0.5 * (expm1_minus_x(d) + (mu_q - mu_p).pow(2) * torch.exp(-logvar_p))
    kl = _sum_per_example(per_dim)
    if (validate if validate is not None else torch.distributions.Distribution._validate_args) and not torch.isfinite(kl).all():  # one check of N numbers; the inputs are scanned only on a failure
        for name, value in (("mu_q", mu_q), ("logvar_q", logvar_q), ("mu_p", mu_p), ("logvar_p", logvar_p)):
            check_finite("kl_diag_gaussians", name, value)
        raise ValueError("kl_diag_gaussians: the KL overflowed: exp(logvar_q - logvar_p) or (mu_q - mu_p)^2 is "
                         "too large for the dtype")
    return kl


def log_normal_diag(mu: torch.Tensor | float, logvar: torch.Tensor | float, z: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag(exp(logvar))), summed over latent dimensions.

    Argument order: the parameters ``mu``, ``logvar`` first, the point ``z`` (a tensor, (N, D)) last,
    as for the likelihoods (``Distribution(params).log_prob(z)``).
    """
    if not isinstance(z, torch.Tensor):
        raise ValueError(f"log_normal_diag: z (the last argument, after mu and logvar) must be a tensor, got {type(z).__name__}")
    mu = torch.as_tensor(mu, dtype=z.dtype, device=z.device)
    logvar = torch.as_tensor(logvar, dtype=z.dtype, device=z.device)
    per_dim = -0.5 * ((z - mu).pow(2) * torch.exp(-logvar) + logvar + _LOG_2PI)
    return _sum_per_example(per_dim)


def mc_kl(mu: torch.Tensor, logvar: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    r"""Single-sample Monte Carlo estimate :math:`\log q(z|x) - \log p(z)` with a standard-normal prior.

    Its expectation over :math:`z \sim q` is :func:`kl_diag_gaussians`, Eq. (eq-elbo-mc).
    Argument order: the parameters of q (``mu``, ``logvar``) first, the sample ``z`` last.
    """
    return log_normal_diag(mu, logvar, z) - log_normal_diag(0.0, 0.0, z)


@dataclass(frozen=True)
class ElboTerms:
    """Per-example reconstruction NLL and KL, shape (N,) each, Eq. (eq-elbo-bound)."""

    rec: torch.Tensor
    kl: torch.Tensor

    @property
    def elbo(self) -> torch.Tensor:
        """The evidence lower bound, -(rec + kl)."""
        return -(self.rec + self.kl)

    def loss(self, beta: float = 1.0) -> torch.Tensor:
        """The minibatch objective: mean over examples of rec + beta * kl (beta = 1 is the negative ELBO)."""
        return (self.rec + beta * self.kl).mean()
