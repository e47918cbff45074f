"""Bounds on log p(x) for evaluation: the ELBO, the importance-weighted bound and bits per dimension.

The model is a :class:`vaelib.models.MLPVAE` or any module of the protocol of :mod:`vaelib.protocol`: ``encode(x) -> (mu, logvar)`` of a
diagonal-Gaussian posterior, ``decode(z) -> params`` and ``head.nll(params, x) -> (N,)``, with a
standard-normal prior. Every function returns one value per example, shape (N,), in nats unless
it says bits.
"""

from __future__ import annotations

import math
import torch

from vaelib.elbo import kl_diag_gaussians, log_normal_diag
from vaelib.likelihoods import BernoulliHead, LikelihoodHead, NoDiscreteScale, OptimalSigmaGaussian, pmf_head
from vaelib.models import MLPVAE
from vaelib.protocol import BOUNDS_NEED, check_vae

__all__ = [
    "elbo", "log_importance_weights", "log_mean_exp", "iwae_bound", "bits_per_dim", "fit_shared_sigma", "discrete_nll",
]


def elbo(model: MLPVAE, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Single-sample ELBO of each example with the closed-form KL, Eq. (eq-elbo-bound):
    :math:`\log p(x \mid z) - \mathrm{KL}(q(z \mid x) \,\|\, p(z))`, :math:`z \sim q(z \mid x)`."""
    check_vae(model, "elbo", BOUNDS_NEED)
    mu, logvar = model.encode(x)
    eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
    z = mu + eps * torch.exp(0.5 * logvar)
    return -(model.head.nll(model.decode(z), x) + kl_diag_gaussians(mu, logvar))


def log_importance_weights(
    model: MLPVAE, x: torch.Tensor, k: int, generator: torch.Generator | None = None, chunk: int = 16,
    head: LikelihoodHead | None = None,
) -> torch.Tensor:
    r"""log w_i = log p(x | z_i) + log p(z_i) - log q(z_i | x) for k draws z_i ~ q(z | x), shape (k, N).

    The decoder runs on ``chunk`` samples at a time to bound memory. ``head`` (default: the model's)
    is the likelihood that scores x, e.g. :func:`~vaelib.likelihoods.pmf_head` of the model's.
    """
    head = model.head if head is None else head
    if k < 1:
        raise ValueError(f"log_importance_weights: k must be >= 1, got {k}")
    check_vae(model, "log_importance_weights", BOUNDS_NEED)
    mu, logvar = model.encode(x)
    std = torch.exp(0.5 * logvar)
    out = []
    for start in range(0, k, chunk):
        m = min(chunk, k - start)
        eps = torch.randn((m, *mu.shape), generator=generator, dtype=mu.dtype, device=mu.device)
        z = (mu + eps * std).flatten(0, 1)  # (m N, D)
        xs = x.unsqueeze(0).expand(m, *x.shape).flatten(0, 1)
        log_px_z = -head.nll(model.decode(z), xs)
        log_pz = log_normal_diag(0.0, 0.0, z)
        log_qz = log_normal_diag(mu.repeat(m, 1), logvar.repeat(m, 1), z)
        out.append((log_px_z + log_pz - log_qz).view(m, -1))
    return torch.cat(out, 0)


def log_mean_exp(t: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """log(mean(exp(t))) along ``dim``, without overflow, underflow or cancellation.

    Algebraically ``logsumexp(t, dim) - log k``; that form subtracts log k from a number near
    log k when the entries are close to zero (an IWAE bound near 0, say) and loses digits. Here it
    is ``m + log1p(mean(expm1(t - m)))`` with m the maximum (treated as a constant, so the
    gradient is the softmax of t): every entry of ``expm1`` lies in [-1, 0] and ``log1p`` of a mean
    close to 0 is exact.
    """
    m = t.detach().amax(dim, keepdim=True)
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    return (m + torch.log1p(torch.expm1(t - m).mean(dim, keepdim=True))).squeeze(dim)


def iwae_bound(
    model: MLPVAE, x: torch.Tensor, k: int, generator: torch.Generator | None = None, chunk: int = 16,
    head: LikelihoodHead | None = None,
) -> torch.Tensor:
    r"""The importance-weighted bound of each example with k samples, Eq. (eq-iwae-bound):

    .. math::
        \mathcal L_k(x) = \mathbb E\Big[\log \frac1k \sum_{i=1}^k \frac{p(x, z_i)}{q(z_i \mid x)}\Big] \le \log p(x),

    one Monte Carlo draw of the k samples, with the log-mean-exp of :func:`log_mean_exp`. :math:`\mathcal L_1` is the ELBO (with the Monte Carlo
    KL), :math:`\mathcal L_k` increases with k and tends to :math:`\log p(x)`; k = 5000 is the usual
    test log-likelihood estimate. ``head`` replaces the model's likelihood, as in :func:`log_importance_weights`.
    """
    return log_mean_exp(log_importance_weights(model, x, k, generator, chunk, head), dim=0)


def bits_per_dim(nll: torch.Tensor, num_dims: int, levels: float = 1.0) -> torch.Tensor:
    r"""Negative log-likelihood in bits per dimension, Eq. (eq-bits-per-dim):

    .. math::
        \mathrm{bpd} = \frac{\mathrm{NLL} + d \log(\mathrm{levels})}{d \log 2} .

    * ``levels = 1`` (default): ``nll`` is already the negative log of a probability mass on the
      quantised data (Bernoulli on binary data, the discretised logistic): bpd = NLL / (d log 2).
    * ``levels = L``: ``nll`` is a density's NLL on data that were divided by L (with 8-bit data,
      ``x = (k + u)/256`` with uniform dequantisation noise u, ``levels = 256``). The change of variables
      back to the integer scale adds d log L nats, i.e. log2(L) = 8 bits per dimension; the result
      is then, in expectation over u, an upper bound on the discrete model's bits per dimension
      (Theis et al. 2016). For data k/255 without noise, ``levels = 255`` gives the same
      conversion, but the value is then only a midpoint-rule approximation, not a bound.

    Only numbers computed under the same convention are comparable across models.
    """
    if num_dims < 1:
        raise ValueError(f"bits_per_dim: num_dims must be >= 1, got {num_dims}")
    if not (levels > 0 and levels < math.inf):
        raise ValueError(f"bits_per_dim: levels must satisfy 0 < levels < inf, got {levels}")
    return (nll + num_dims * math.log(levels)) / (num_dims * math.log(2.0))


@torch.no_grad()
def fit_shared_sigma(model: MLPVAE, x: torch.Tensor, generator: torch.Generator | None = None, batch: int = 1000) -> float:
    r"""The shared sigma that maximises the expected Gaussian likelihood of ``x`` under the model's decoder,
    :math:`\sigma^2 = \mathrm{E}_{q(z \mid x)}\,\overline{(x - \mu(z))^2}` (one posterior draw per image), Eq. (eq-sigma-shared-opt).

    Fitted on training images, it turns a head whose sigma is computed from the image it scores into a
    likelihood fixed before the test images are seen, so that it can be scored on them.
    """
    check_vae(model, "fit_shared_sigma", BOUNDS_NEED)
    total, count = 0.0, 0
    for start in range(0, x.shape[0], batch):
        xb = x[start : start + batch]
        mu, logvar = model.encode(xb)
        z = mu + torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device) * torch.exp(0.5 * logvar)
        total += (xb - model.head.mean(model.decode(z))).double().pow(2).sum().item()
        count += xb.numel()
    return math.sqrt(total / count)


@torch.no_grad()
def discrete_nll(
    model: MLPVAE, x: torch.Tensor, k: int, generator: torch.Generator | None = None, *,
    fit_images: torch.Tensor | None = None, batch: int = 50,
) -> tuple[torch.Tensor, dict[str, float | str]]:
    """The discrete NLL of each image of ``x`` (nats, shape (N,)) from the IWAE-k bound of
    :func:`~vaelib.likelihoods.pmf_head` of the model's head (an upper bound on -log P(x),
    Eqs. (eq-discrete-pmf), (eq-iwae-bound)), and how it was obtained:
    ``{"scale": "8-bit" or "binary", "sigma": ...}`` (sigma: the shared sigma fitted on ``fit_images``
    for a head whose sigma depends on the image it scores).

    Raises :class:`~vaelib.likelihoods.NoDiscreteScale` where none exists: a Bernoulli on grey images
    (it is a pmf of binary images only), or an image-dependent sigma without ``fit_images``.
    """
    head = model.head
    info: dict[str, float | str] = {"scale": "8-bit"}
    if isinstance(head, BernoulliHead):
        if not bool(((x == 0) | (x == 1)).all()):
            raise NoDiscreteScale("a Bernoulli is a pmf of binary images; these images are grey, so no 8-bit bits/dim exists "
                                  "for it (its BCE on grey pixels is not the log of a probability)")
        info["scale"] = "binary"
    sigma = None
    if isinstance(head, OptimalSigmaGaussian) and fit_images is not None:
        sigma = fit_shared_sigma(model, fit_images, generator)
        info["sigma"] = sigma
    pmf = pmf_head(head, sigma)
    return torch.cat([iwae_bound(model, x[i : i + batch], k, generator, head=pmf) for i in range(0, x.shape[0], batch)]).neg(), info
