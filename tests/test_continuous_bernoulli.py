"""Continuous Bernoulli in logit space against mpmath at 50 digits, in float64 and float32."""

from __future__ import annotations

import mpmath
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import rel_err
from vaelib.likelihoods.continuous_bernoulli import (
    MEAN_SERIES,
    ContinuousBernoulli,
    cb_log_normalizer,
    cb_log_prob,
    cb_mean,
    cb_nll,
    cb_variance,
)


def ref_log_c(eta: float) -> mpmath.mpf:
    e = mpmath.mpf(eta)
    return mpmath.log(2) if e == 0 else mpmath.log(e / mpmath.tanh(e / 2))


def ref_mean(eta: float) -> mpmath.mpf:
    e = mpmath.mpf(eta)
    return mpmath.mpf(1) / 2 if e == 0 else 1 / (1 - mpmath.exp(-e)) - 1 / e


def ref_dlog_c(eta: float) -> mpmath.mpf:
    e = mpmath.mpf(eta)
    return mpmath.mpf(0) if e == 0 else 1 / e - 1 / mpmath.sinh(e)


def ref_variance(eta: float) -> mpmath.mpf:
    e = mpmath.mpf(eta)
    return mpmath.mpf(1) / 12 if e == 0 else 1 / e**2 - 1 / (4 * mpmath.sinh(e / 2) ** 2)


def ref_log_prob(x: float, eta: float) -> mpmath.mpf:
    x, e = mpmath.mpf(x), mpmath.mpf(eta)
    if e == 0:
        return mpmath.mpf(0)
    return x * e - mpmath.log(mpmath.expm1(e) / e)


def logits(dtype: torch.dtype) -> torch.Tensor:
    """Logits over [-1e4, 1e4]: a log-spaced sweep of both signs, zero, the neighbourhood of 0 and the
    series/direct switch points, then a dense linear sweep over [-20, 20]."""
    mags = torch.logspace(-12, 4, 700, dtype=torch.float64)
    around = torch.tensor([1e-2, 2.0, 1e-6], dtype=torch.float64)
    around = torch.cat([around * (1 + d) for d in (-1e-7, -1e-12, 0.0, 1e-12, 1e-7)])
    dense = torch.linspace(-20, 20, 801, dtype=torch.float64)
    eta = torch.cat([mags, -mags, around, -around, dense, torch.zeros(1, dtype=torch.float64)])
    return eta.to(dtype).unique()


@pytest.mark.parametrize(("dtype", "tol"), [(torch.float64, 1e-12), (torch.float32, 4e-7)])
def test_log_normalizer_and_mean(dtype: torch.dtype, tol: float) -> None:
    eta = logits(dtype)
    values = eta.double().tolist()
    assert rel_err(cb_log_normalizer(eta), [ref_log_c(v) for v in values]) <= tol
    assert rel_err(cb_mean(eta), [ref_mean(v) for v in values]) <= tol
    assert cb_mean(eta).dtype == dtype


@pytest.mark.parametrize(("dtype", "tol"), [(torch.float64, 1e-12), (torch.float32, 5e-6)])
def test_gradient_of_log_normalizer(dtype: torch.dtype, tol: float) -> None:
    eta = logits(dtype).requires_grad_(True)
    cb_log_normalizer(eta).sum().backward()
    assert torch.isfinite(eta.grad).all()
    assert rel_err(eta.grad, [ref_dlog_c(v) for v in eta.detach().double().tolist()], floor=1e-6) <= tol


def test_variance_float64() -> None:
    eta = logits(torch.float64)
    eta = eta[eta.abs() < 700]  # beyond, the variance 1/eta^2 is still exact; sinh overflows only in the discarded term
    refs = [ref_variance(v) for v in eta.tolist()]
    assert rel_err(cb_variance(eta), refs) <= 1e-12


def test_log_prob_float64_against_the_exponential_family_form() -> None:
    eta = logits(torch.float64)[::7]
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(eta.shape, generator=gen, dtype=torch.float64)
    x[:5] = 0.0
    x[5:10] = 1.0
    got = ContinuousBernoulli(logits=eta).log_prob(x)
    refs = [ref_log_prob(a, b) for a, b in zip(x.tolist(), eta.tolist())]
    # measured relative to the size of the terms x*eta and log C, which may cancel
    scale = [abs(mpmath.mpf(a) * mpmath.mpf(b)) + abs(ref_log_c(b)) + 1e-300 for a, b in zip(x.tolist(), eta.tolist())]
    worst = max(abs(mpmath.mpf(g) - r) / s for g, r, s in zip(got.tolist(), refs, scale))
    assert worst <= 1e-14


def test_log_prob_gradient_is_x_minus_mean() -> None:
    """Eq. (eq-cb-score): d log p / d eta = x - mean(eta), checked against mpmath in float32."""
    eta = logits(torch.float32)[::5].clone().requires_grad_(True)
    x = torch.rand(eta.shape, generator=torch.Generator().manual_seed(1))
    cb_log_prob(eta, x).sum().backward()
    refs = [mpmath.mpf(a) - ref_mean(b) for a, b in zip(x.double().tolist(), eta.detach().double().tolist())]
    scale = [max(abs(mpmath.mpf(a)), abs(ref_mean(b))) for a, b in zip(x.double().tolist(), eta.detach().double().tolist())]
    worst = max(abs(mpmath.mpf(g) - r) / s for g, r, s in zip(eta.grad.double().tolist(), refs, scale))
    assert worst <= 4 * 2.0**-24 * 2


def test_large_logit_mean_is_not_clamped() -> None:
    for dtype in (torch.float32, torch.float64):
        m = cb_mean(torch.tensor([1000.0, 1e4, -1000.0], dtype=dtype))
        assert m[0].item() == pytest.approx(0.999, rel=1e-6)
        assert m[1].item() == pytest.approx(1 - 1e-4, rel=1e-7)
        assert m[2].item() == pytest.approx(1e-3, rel=1e-6)


@pytest.mark.parametrize("eta", [-5000.0, -30.0, -1.0, -1e-3, 0.0, 1e-8, 0.5, 3.0, 40.0, 800.0])
def test_density_integrates_to_one(eta: float) -> None:
    d = ContinuousBernoulli(logits=torch.tensor(eta, dtype=torch.float64))

    def pdf(x: mpmath.mpf) -> mpmath.mpf:
        return mpmath.exp(mpmath.mpf(d.log_prob(torch.tensor(float(x), dtype=torch.float64)).item()))

    # the mass sits within ~1/|eta| of an end point: give quad those break points
    pts = [0, 1] if abs(eta) < 10 else sorted({0.0, min(1.0, 50 / abs(eta)), max(0.0, 1 - 50 / abs(eta)), 1.0})
    total = mpmath.quad(pdf, pts)
    assert abs(total - 1) <= 1e-9


def test_gradcheck_float64() -> None:
    gen = torch.Generator().manual_seed(2)
    eta = (torch.randn(12, dtype=torch.float64, generator=gen) * 4).requires_grad_(True)
    eta.data[:3] = torch.tensor([1e-3, -1.999, 2.001], dtype=torch.float64)
    x = torch.rand(12, dtype=torch.float64, generator=gen).requires_grad_(True)
    assert torch.autograd.gradcheck(cb_log_normalizer, (eta,))
    assert torch.autograd.gradcheck(cb_mean, (eta,))
    assert torch.autograd.gradcheck(cb_log_prob, (eta, x))
    assert torch.autograd.gradgradcheck(cb_log_prob, (eta, x))
    u = torch.rand(12, dtype=torch.float64, generator=gen) * 0.98 + 0.01
    assert torch.autograd.gradcheck(lambda e: ContinuousBernoulli(logits=e).icdf(u), (eta,))


def test_sampling_matches_the_cdf() -> None:
    torch.manual_seed(0)
    for eta in (-40.0, -2.0, 0.0, 0.7, 15.0, 3000.0):
        d = ContinuousBernoulli(logits=torch.tensor(eta, dtype=torch.float64))
        s = d.sample((20000,))
        assert s.min() >= 0 and s.max() <= 1
        assert abs(s.mean().item() - d.mean.item()) < 5 * d.variance.sqrt().item() / 20000**0.5 + 1e-12
        u = torch.linspace(0.01, 0.99, 50, dtype=torch.float64)
        torch.testing.assert_close(d.cdf(d.icdf(u)), u, rtol=1e-9, atol=1e-12)


def test_mean_series_coefficients_are_bernoulli_numbers() -> None:
    sympy = pytest.importorskip("sympy")
    for n, c in enumerate(MEAN_SERIES, start=1):
        exact = sympy.bernoulli(2 * n) / sympy.factorial(2 * n)
        assert c == pytest.approx(float(exact), rel=1e-15)


def test_matches_torch_where_torch_is_accurate() -> None:
    eta = torch.linspace(-3, 3, 61, dtype=torch.float64)
    x = torch.rand(61, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    ref = torch.distributions.ContinuousBernoulli(logits=eta)
    ours = ContinuousBernoulli(logits=eta)
    outside = (torch.sigmoid(eta) - 0.5).abs() > 0.01  # torch uses a two-term Taylor series inside
    torch.testing.assert_close(ours.log_prob(x)[outside], ref.log_prob(x)[outside], rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(ours.mean[outside], ref.mean[outside], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: ContinuousBernoulli(logits=torch.tensor([float("nan")])), r"ContinuousBernoulli: logits contains nan at index \(0,\)"),
        (lambda: ContinuousBernoulli(logits=torch.tensor([float("inf")])), r"ContinuousBernoulli: logits contains inf at index \(0,\)"),
        (lambda: ContinuousBernoulli(logits=torch.zeros(2)).log_prob(torch.tensor([0.5, 1.5])), r"value.*Interval.*ContinuousBernoulli"),
        (lambda: ContinuousBernoulli(logits=torch.zeros(2)).log_prob(torch.tensor([0.5, -1e-9])), r"value.*Interval.*ContinuousBernoulli"),
        (lambda: ContinuousBernoulli(logits=torch.zeros(2)).log_prob(torch.tensor([0.5, float("nan")])), r"ContinuousBernoulli: value contains nan at index \(1,\)"),
        (lambda: ContinuousBernoulli(logits=torch.zeros(3)).log_prob(torch.zeros(4)), r"broadcast|shape"),
        (lambda: cb_nll(torch.zeros(5, 2, 3), torch.zeros(2, 3)), r"cb_nll.*broadcast"),
    ],
)
def test_bad_input_is_a_clear_value_error(make, match: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=match):
        make()


@settings(max_examples=300, derandomize=True, deadline=None)
@given(
    eta=st.floats(allow_nan=False, allow_infinity=False, width=32),
    x=st.floats(min_value=0.0, max_value=1.0, width=32),
)
def test_never_nan_or_inf_in_float32(eta: float, x: float) -> None:
    e = torch.tensor([eta], dtype=torch.float32, requires_grad=True)
    d = ContinuousBernoulli(logits=e)
    lp = d.log_prob(torch.tensor([x], dtype=torch.float32))
    outs = [lp, d.mean, d.variance, d.log_normalizer(), d.entropy()]
    lp.sum().backward()
    outs.append(e.grad)
    for t in outs:
        assert torch.isfinite(t).all(), (eta, x, [o.item() for o in outs])
