"""Gaussian NLLs at the maximum-likelihood sigma: the sigma-VAE losses (chapter 02)."""

from __future__ import annotations

import math
from typing import Literal

import torch

from vaelib.likelihoods._base import check_batched

__all__ = ["shared_optimal_sigma", "shared_optimal_sigma_nll", "pixel_optimal_sigma", "pixel_optimal_sigma_nll"]

_LOG_2PI = math.log(2.0 * math.pi)


def _check(owner: str, x: torch.Tensor, loc: torch.Tensor, sigma_min: float) -> None:
    check_batched(owner, x)
    if not isinstance(loc, torch.Tensor) or loc.shape != x.shape:
        shape = tuple(loc.shape) if isinstance(loc, torch.Tensor) else type(loc).__name__
        raise ValueError(f"{owner}: loc must be a tensor of the shape of x {tuple(x.shape)}, got {shape}")
    if not (0 < sigma_min < math.inf):
        raise ValueError(f"{owner}: sigma_min must satisfy 0 < sigma_min < inf, got {sigma_min}")
    if torch.distributions.Distribution._validate_args:
        for name, t in (("x", x), ("loc", loc)):
            if not torch.isfinite(t).all():
                raise ValueError(f"{owner}: {name} must be finite (-inf < value < inf), found NaN or infinity")


def _mse(x: torch.Tensor, loc: torch.Tensor, over: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-example MSE (N,) and the MSE that sets sigma: the same, or the batch mean broadcast to (N,)."""
    if over not in ("image", "batch"):
        raise ValueError(f"shared_optimal_sigma: over must be 'image' or 'batch', got {over!r}")
    per_example = (x - loc).pow(2).flatten(1).mean(1)
    return per_example, (per_example if over == "image" else per_example.mean().expand_as(per_example))


def shared_optimal_sigma(
    loc: torch.Tensor, x: torch.Tensor, sigma_min: float = 1e-3, over: Literal["image", "batch"] = "image"
) -> torch.Tensor:
    """The maximum-likelihood shared sigma, max(sqrt(MSE), sigma_min), shape (N,), Eq. (eq-sigma-shared-opt).

    Argument order: the predicted means ``loc``, then the data ``x`` (equal shapes), then the options.
    """
    _check("shared_optimal_sigma", x, loc, sigma_min)
    return _mse(x, loc, over)[1].clamp_min(sigma_min**2).sqrt()


def shared_optimal_sigma_nll(
    loc: torch.Tensor, x: torch.Tensor, sigma_min: float = 1e-3, over: Literal["image", "batch"] = "image"
) -> torch.Tensor:
    r"""Gaussian NLL of each example at the optimal shared sigma, Eq. (eq-sigma-shared-opt).

    Minimising :math:`\frac{\mathrm{SSE}}{2\sigma^2} + d\log\sigma + \frac d2\log 2\pi` over one
    :math:`\sigma` gives :math:`\sigma^2 = \mathrm{MSE}` and

    .. math::
        \mathrm{NLL} = \frac d2 \log \mathrm{MSE} + \frac d2 (1 + \log 2\pi)

    (the sigma-VAE of Rybkin et al. 2021). With the floor, :math:`\sigma^2 = \max(\mathrm{MSE}, \sigma_{\min}^2)`
    and the value returned is the Gaussian NLL at that sigma, :math:`\frac d2(\mathrm{MSE}/\sigma^2 + \log\sigma^2 + \log 2\pi)`:
    an exact NLL everywhere, equal to the formula above whenever the floor is inactive.

    Argument order: the predicted means ``loc``, then the data ``x``, then the options.

    Args:
        loc, x: predicted means and data, shape (N, ...), equal shapes.
        sigma_min: the floor on sigma (> 0); it keeps the loss finite at a perfect reconstruction.
        over: ``"image"`` (one sigma per example, the default) or ``"batch"`` (one sigma for the
            whole minibatch, as in the sigma-VAE code: the minibatch estimate of a dataset-wide sigma).

    Returns:
        A tensor of shape (N,). Gradients flow through sigma; at the optimum its own derivative is
        zero, so they equal those of the NLL at a fixed sigma.
    """
    _check("shared_optimal_sigma_nll", x, loc, sigma_min)
    d = x[0].numel()
    mse, pooled = _mse(x, loc, over)
    var = pooled.clamp_min(sigma_min**2)
    return 0.5 * d * (mse / var + torch.log(var) + _LOG_2PI)


def pixel_optimal_sigma(loc: torch.Tensor, x: torch.Tensor, sigma_min: float = 1e-3) -> torch.Tensor:
    """The per-dimension maximum-likelihood sigma, ``max(|x - loc|, sigma_min)``, Eq. (eq-sigma-pixel-opt).

    Argument order: the predicted means ``loc``, then the data ``x`` (equal shapes), then ``sigma_min``.
    """
    _check("pixel_optimal_sigma", x, loc, sigma_min)
    return (x - loc).abs().clamp_min(sigma_min)


def pixel_optimal_sigma_nll(loc: torch.Tensor, x: torch.Tensor, sigma_min: float = 1e-3) -> torch.Tensor:
    r"""Gaussian NLL of each example with each dimension at its own optimal sigma, Eq. (eq-sigma-pixel-opt).

    Minimising each :math:`\frac{r_j^2}{2\sigma_j^2} + \log\sigma_j` gives :math:`\sigma_j = |r_j|` and

    .. math::
        \mathrm{NLL} = \sum_j \log|x_j - \mu_j| + \frac d2 (1 + \log 2\pi),

    which is unbounded below as any :math:`r_j \to 0`, hence the floor
    :math:`\sigma_j = \max(|r_j|, \sigma_{\min})`. The value returned is the Gaussian NLL at that
    sigma, :math:`\sum_j [\frac{r_j^2}{2\sigma_j^2} + \log\sigma_j] + \frac d2\log 2\pi`: an exact NLL
    everywhere, continuous with a continuous gradient at :math:`|r_j| = \sigma_{\min}`.

    Argument order: the predicted means ``loc``, then the data ``x`` (shape (N, ...), equal shapes), then ``sigma_min``.

    Returns:
        A tensor of shape (N,).
    """
    _check("pixel_optimal_sigma_nll", x, loc, sigma_min)
    r = x - loc
    sigma = r.abs().clamp_min(sigma_min)
    per_dim = 0.5 * (r / sigma).pow(2) + torch.log(sigma)
    d = x[0].numel()
    return per_dim.flatten(1).sum(1) + 0.5 * d * _LOG_2PI
