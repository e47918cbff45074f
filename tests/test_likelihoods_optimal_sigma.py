"""Optimal-sigma Gaussian NLLs: the closed forms against mpmath and against the Gaussian NLL at that sigma."""

from __future__ import annotations

import math

import mpmath
import pytest
import torch

from vaelib.likelihoods import (
    gaussian_nll,
    pixel_optimal_sigma,
    pixel_optimal_sigma_nll,
    shared_optimal_sigma,
    shared_optimal_sigma_nll,
)

mp = mpmath.mpf
LOG_2PI = mpmath.log(2 * mpmath.pi)


def _data(scale: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(6, 1, 5, 5, generator=gen, dtype=torch.float64)
    loc = x + scale * torch.randn(6, 1, 5, 5, generator=gen, dtype=torch.float64)
    return x, loc


@pytest.mark.parametrize("err_scale", [1e-2, 0.3, 0.2419707245, 5.0])
def test_shared_sigma_nll_is_the_closed_form(err_scale: float) -> None:
    """Eq. (eq-sigma-shared-opt): d/2 log MSE + d/2 (1 + log 2 pi), relative to the size of the two
    terms (0.2419... makes MSE close to 1/(2 pi e), where they cancel)."""
    x, loc = _data(err_scale, 1)
    got = shared_optimal_sigma_nll(loc, x, sigma_min=1e-12)
    d = 25
    for i in range(6):
        mse = sum((mp(a) - mp(b)) ** 2 for a, b in zip(x[i].flatten().tolist(), loc[i].flatten().tolist())) / d
        t1, t2 = mp(d) / 2 * mpmath.log(mse), mp(d) / 2 * (1 + LOG_2PI)
        assert abs(got[i].item() - (t1 + t2)) / (abs(t1) + t2) <= 1e-15
    sigma = shared_optimal_sigma(loc, x, sigma_min=1e-12)
    torch.testing.assert_close(got, gaussian_nll(loc, sigma.view(-1, 1, 1, 1), x), rtol=1e-13, atol=1e-12)


def test_shared_sigma_is_the_minimiser_and_the_floor_keeps_it_exact() -> None:
    x, loc = _data(0.1, 2)
    sigma = shared_optimal_sigma(loc, x).view(-1, 1, 1, 1)
    best = shared_optimal_sigma_nll(loc, x)
    for f in (0.99, 1.01):
        assert (gaussian_nll(loc, sigma * f, x) > best).all()
    # perfect reconstruction: the floor sigma_min gives the Gaussian NLL at sigma_min
    close = x + 1e-6
    torch.testing.assert_close(shared_optimal_sigma_nll(close, x, sigma_min=1e-3), gaussian_nll(close, 1e-3, x), rtol=1e-14, atol=0)
    assert torch.isfinite(shared_optimal_sigma_nll(x.clone(), x)).all()


def test_shared_sigma_over_the_batch() -> None:
    x, loc = _data(0.1, 3)
    got = shared_optimal_sigma_nll(loc, x, over="batch")
    mse = (x - loc).pow(2).mean()
    torch.testing.assert_close(got, gaussian_nll(loc, mse.sqrt(), x), rtol=1e-13, atol=0)
    assert torch.allclose(got.sum(), 0.5 * x.numel() * (torch.log(mse) + 1 + math.log(2 * math.pi)), rtol=1e-13)


def test_pixel_sigma_nll_is_the_closed_form_above_the_floor() -> None:
    """Eq. (eq-sigma-pixel-opt): sum_j log|r_j| + d/2 (1 + log 2 pi), relative to the terms' size."""
    x, loc = _data(0.5, 4)
    got = pixel_optimal_sigma_nll(loc, x, sigma_min=1e-300)
    for i in range(6):
        logs = [mpmath.log(abs(mp(a) - mp(b))) for a, b in zip(x[i].flatten().tolist(), loc[i].flatten().tolist())]
        ref = sum(logs) + mp(25) / 2 * (1 + LOG_2PI)
        size = sum(abs(t) for t in logs) + mp(25) / 2 * (1 + LOG_2PI)
        assert abs(got[i].item() - ref) / size <= 1e-15
    sigma = pixel_optimal_sigma(loc, x, sigma_min=1e-300)
    torch.testing.assert_close(got, gaussian_nll(loc, sigma, x), rtol=1e-13, atol=1e-12)


def test_pixel_sigma_floor_is_the_gaussian_nll_at_the_floor_and_continuous() -> None:
    x = torch.zeros(1, 4, dtype=torch.float64)
    loc = torch.tensor([[0.0, 1e-5, 1e-3, 0.2]], dtype=torch.float64)
    sigma = torch.tensor([[1e-3, 1e-3, 1e-3, 0.2]], dtype=torch.float64)
    torch.testing.assert_close(pixel_optimal_sigma_nll(loc, x, 1e-3), gaussian_nll(loc, sigma, x), rtol=1e-14, atol=0)
    # value and slope are continuous at |r| = sigma_min
    r = torch.tensor([[1e-3 * (1 - 1e-9), 1e-3 * (1 + 1e-9)]], dtype=torch.float64, requires_grad=True)
    per = [pixel_optimal_sigma_nll(r[:, i : i + 1], torch.zeros(1, 1, dtype=torch.float64), 1e-3) for i in range(2)]
    assert abs(per[0].item() - per[1].item()) < 1e-8
    (per[0] + per[1]).sum().backward()
    assert abs(r.grad[0, 0].item() - r.grad[0, 1].item()) < 1e-3 * abs(r.grad[0, 0].item())


def test_gradients_envelope_and_gradcheck() -> None:
    """At the optimum d NLL / d sigma = 0, so the gradient in loc is that of the Gaussian NLL at a fixed sigma."""
    x, loc = _data(0.2, 5)
    loc.requires_grad_(True)
    shared_optimal_sigma_nll(loc, x).sum().backward()
    sigma = shared_optimal_sigma(loc.detach(), x).view(-1, 1, 1, 1)
    ref = (loc.detach() - x) / sigma**2
    torch.testing.assert_close(loc.grad, ref, rtol=1e-10, atol=1e-12)
    small = loc.detach()[:2, :, :2, :2].clone().requires_grad_(True)
    xs = x[:2, :, :2, :2]
    assert torch.autograd.gradcheck(lambda m: shared_optimal_sigma_nll(m, xs), (small,))
    assert torch.autograd.gradcheck(lambda m: pixel_optimal_sigma_nll(m, xs, 1e-3), (small,))
    assert torch.autograd.gradcheck(lambda m: shared_optimal_sigma_nll(m, xs, over="batch"), (small,))


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: shared_optimal_sigma_nll(torch.zeros(2, 4), torch.zeros(2, 3)), r"shared_optimal_sigma_nll.*shape"),
        (lambda: pixel_optimal_sigma_nll(torch.zeros(3), torch.zeros(2, 3)), r"pixel_optimal_sigma_nll.*shape"),
        (lambda: shared_optimal_sigma_nll(torch.zeros(2, 3), torch.zeros(2, 3), sigma_min=0.0), r"sigma_min.*0 < sigma_min"),
        (lambda: pixel_optimal_sigma_nll(torch.zeros(2, 3), torch.zeros(2, 3), sigma_min=-1.0), r"sigma_min.*0 < sigma_min"),
        (lambda: shared_optimal_sigma_nll(torch.zeros(2, 3), torch.full((2, 3), float("nan"))), r"shared_optimal_sigma_nll.*x.*finite"),
        (lambda: pixel_optimal_sigma_nll(torch.full((2, 3), float("inf")), torch.zeros(2, 3)), r"pixel_optimal_sigma_nll.*loc.*finite"),
        (lambda: shared_optimal_sigma_nll(torch.zeros(2, 3), torch.zeros(2, 3), over="pixel"), r"over.*'image' or 'batch'"),
    ],
)
def test_bad_input_is_a_clear_value_error(make, match: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=match):
        make()
