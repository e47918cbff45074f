"""Gaussian likelihood against mpmath at 50 digits, in float64 and float32, with gradients and bad input."""

from __future__ import annotations

import math

import mpmath
import pytest
import torch

from conftest import rel_err
from vaelib import likelihoods
from vaelib.likelihoods import Gaussian, gaussian_nll


def _ref_log_prob(x: float, loc: float, scale: float) -> mpmath.mpf:
    x, loc, scale = mpmath.mpf(x), mpmath.mpf(loc), mpmath.mpf(scale)
    return -((x - loc) ** 2) / (2 * scale**2) - mpmath.log(scale) - mpmath.log(2 * mpmath.pi) / 2


def _ref_terms_size(x: float, loc: float, scale: float) -> mpmath.mpf:
    """Sum of the magnitudes of the three terms: the scale of the unavoidable rounding error of the sum."""
    x, loc, scale = mpmath.mpf(x), mpmath.mpf(loc), mpmath.mpf(scale)
    return (x - loc) ** 2 / (2 * scale**2) + abs(mpmath.log(scale)) + mpmath.log(2 * mpmath.pi) / 2


def _inputs(dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(7)
    n = 400
    loc = torch.randn(n, generator=gen, dtype=torch.float64) * 10.0 ** torch.randint(-3, 4, (n,), generator=gen)
    scale = 10.0 ** (torch.rand(n, generator=gen, dtype=torch.float64) * 12 - 6)  # 1e-6 .. 1e6
    x = loc + scale * torch.randn(n, generator=gen, dtype=torch.float64) * 10.0 ** torch.randint(-4, 3, (n,), generator=gen)
    extreme = torch.tensor(
        [
            [0.0, 0.0, 1.0],
            [1.0, 0.0, 1e-30],  # huge NLL
            [1e300 ** 0.5, -1e150, 1e149],
            [0.5, 0.5, 1e-300],  # x == loc with a tiny scale
            [3.0, 0.0, 1e300],
            [1.0, 1.0 + 1e-15, 1.0],
        ],
        dtype=torch.float64,
    )
    x = torch.cat([x, extreme[:, 0]])
    loc = torch.cat([loc, extreme[:, 1]])
    scale = torch.cat([scale, extreme[:, 2]])
    if dtype == torch.float32:
        keep = (scale > 1e-30) & (scale < 1e30) & (x.abs() < 1e30) & (loc.abs() < 1e30)
        x, loc, scale = x[keep], loc[keep], scale[keep]
    return x.to(dtype), loc.to(dtype), scale.to(dtype)


def test_log_prob_float64_relative_1e12() -> None:
    x, loc, scale = _inputs(torch.float64)
    got = Gaussian(loc, scale).log_prob(x)
    refs = [_ref_log_prob(a, b, c) for a, b, c in zip(x.tolist(), loc.tolist(), scale.tolist())]
    sizes = [_ref_terms_size(a, b, c) for a, b, c in zip(x.tolist(), loc.tolist(), scale.tolist())]
    well_conditioned = [i for i, (r, s) in enumerate(zip(refs, sizes)) if abs(r) > s / 100]
    assert len(well_conditioned) > 300
    assert rel_err(got[well_conditioned], [refs[i] for i in well_conditioned]) <= 1e-12
    # where the three terms nearly cancel, the error is bounded relative to their size
    worst = max(abs(mpmath.mpf(g) - r) / s for g, r, s in zip(got.tolist(), refs, sizes))
    assert worst <= 1e-15


def test_log_prob_float32_within_a_few_ulps_of_the_terms() -> None:
    x, loc, scale = _inputs(torch.float32)
    got = Gaussian(loc, scale).log_prob(x)
    assert torch.isfinite(got).all()
    xs, ls, ss = (t.double().tolist() for t in (x, loc, scale))
    worst = max(
        abs(mpmath.mpf(g) - _ref_log_prob(a, b, c)) / _ref_terms_size(a, b, c)
        for g, a, b, c in zip(got.double().tolist(), xs, ls, ss)
    )
    assert worst <= 8 * 2.0**-24


def test_gradients_match_mpmath() -> None:
    x, loc, scale = (t[:100].clone() for t in _inputs(torch.float64))
    loc.requires_grad_(True)
    scale.requires_grad_(True)
    Gaussian(loc, scale).log_prob(x).sum().backward()
    ref_loc = [(mpmath.mpf(a) - mpmath.mpf(b)) / mpmath.mpf(c) ** 2 for a, b, c in zip(x.tolist(), loc.tolist(), scale.tolist())]
    ref_scale = [
        (mpmath.mpf(a) - mpmath.mpf(b)) ** 2 / mpmath.mpf(c) ** 3 - 1 / mpmath.mpf(c)
        for a, b, c in zip(x.tolist(), loc.tolist(), scale.tolist())
    ]
    assert rel_err(loc.grad, ref_loc, floor=1e-300) <= 1e-12
    scale_scale = [abs((mpmath.mpf(a) - mpmath.mpf(b)) ** 2 / mpmath.mpf(c) ** 3) + 1 / mpmath.mpf(c) for a, b, c in zip(x.tolist(), loc.tolist(), scale.tolist())]
    worst = max(abs(mpmath.mpf(g) - r) / s for g, r, s in zip(scale.grad.tolist(), ref_scale, scale_scale))
    assert worst <= 1e-14


def test_gradcheck_float64() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(5, 3, dtype=torch.float64, generator=gen)
    loc = torch.randn(5, 3, dtype=torch.float64, generator=gen, requires_grad=True)
    scale = (torch.rand(5, 3, dtype=torch.float64, generator=gen) + 0.2).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda m, s: Gaussian(m, s).log_prob(x), (loc, scale))
    assert torch.autograd.gradcheck(lambda m: gaussian_nll(m, 0.3, x), (loc,))


def test_fixed_sigma_nll_is_scaled_squared_error_plus_constant() -> None:
    """Eq. (eq-gauss-mse): NLL = SSE / (2 sigma^2) + d (log sigma + log(2 pi) / 2)."""
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(4, 1, 28, 28, dtype=torch.float64, generator=gen)
    mu = torch.rand(4, 1, 28, 28, dtype=torch.float64, generator=gen)
    for sigma in (0.05, 1 / math.sqrt(2), 3.0):
        d = 784
        sse = (x - mu).pow(2).flatten(1).sum(1)
        expected = sse / (2 * sigma**2) + d * (math.log(sigma) + 0.5 * math.log(2 * math.pi))
        torch.testing.assert_close(gaussian_nll(mu, sigma, x), expected, rtol=1e-13, atol=0)
        head = likelihoods.get("gaussian", sigma=sigma)
        torch.testing.assert_close(head.nll(mu, x), expected, rtol=1e-13, atol=0)


def test_distribution_interface() -> None:
    p = Gaussian(torch.zeros(2, 3), 2.0)
    assert p.batch_shape == (2, 3)
    assert torch.equal(p.mean, torch.zeros(2, 3))
    assert torch.equal(p.variance, torch.full((2, 3), 4.0))
    torch.manual_seed(0)
    s = p.sample((20000,))
    assert s.shape == (20000, 2, 3)
    assert abs(s.std().item() - 2.0) < 0.03
    assert p.expand((4, 2, 3)).batch_shape == (4, 2, 3)
    torch.testing.assert_close(p.cdf(torch.zeros(2, 3)), torch.full((2, 3), 0.5))
    ref = torch.distributions.Normal(torch.zeros(2, 3), 2.0)
    torch.testing.assert_close(p.entropy(), ref.entropy())
    r = p.rsample()
    assert r.shape == (2, 3)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: Gaussian(torch.tensor([float("nan")]), 1.0), r"Gaussian: loc contains nan"),
        (lambda: Gaussian(torch.tensor([float("inf")]), 1.0), r"Gaussian: loc contains inf"),
        (lambda: Gaussian(torch.zeros(1), 0.0), r"scale.*Gaussian.*0 < value < inf"),
        (lambda: Gaussian(torch.zeros(1), -1.0), r"scale.*Gaussian.*0 < value < inf"),
        (lambda: Gaussian(torch.zeros(1), float("inf")), r"Gaussian: scale is inf"),
        (lambda: Gaussian(torch.zeros(1), 1.0).log_prob(torch.tensor([float("nan")])), r"Gaussian: value contains nan"),
        (lambda: Gaussian(torch.zeros(1), 1.0).log_prob(torch.tensor([float("-inf")])), r"Gaussian: value contains -inf"),
        (lambda: Gaussian(torch.zeros(3), 1.0).log_prob(torch.zeros(4)), r"broadcast|shape"),
        (lambda: gaussian_nll(torch.zeros(2, 4), 1.0, torch.zeros(2, 3)), r"shape|broadcast"),
        (lambda: gaussian_nll(torch.zeros(5, 2, 3), 1.0, torch.zeros(2, 3)), r"gaussian_nll.*broadcast"),
        (lambda: likelihoods.get("gaussian", sigma=0.0), r"FixedSigmaGaussian.*sigma"),
        (lambda: likelihoods.get("poisson"), r"unknown likelihood 'poisson'.*gaussian"),
    ],
)
def test_bad_input_is_a_clear_value_error(make, match: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=match):
        make()


def test_head_channels_and_mean() -> None:
    head = likelihoods.get("gaussian", sigma=0.5)
    assert head.channels(3) == 3
    params = torch.randn(2, 1, 4, 4)
    assert torch.equal(head.mean(params), params)
    assert "sigma=0.5" in repr(head)
