"""Beta likelihood: the log-Beta function at concentrations 1e-3..1e6, log-density, normalisation, squeeze."""

from __future__ import annotations

import math

import mpmath
import numpy
import pytest
import torch

from conftest import rel_err
from vaelib import likelihoods
from vaelib.likelihoods import Beta, beta_nll, beta_squeeze, log_beta

mp = mpmath.mpf
CONC = [1e-3, 0.02, 0.3, 0.999, 1.0, 1.5, 2.0, 3.7, 9.999, 10.0, 10.001, 31.0, 500.0, 1e4, 2.5e5, 1e6]


def _ref_log_beta(a: float, b: float) -> tuple[mpmath.mpf, mpmath.mpf]:
    """log B(a, b) and its condition scale |a d/da log B| + |b d/db log B|: the error any float64
    evaluation inherits from rounding its inputs, 2^-53 times this."""
    a, b = mp(a), mp(b)
    psi_ab = mpmath.digamma(a + b)
    cond = abs(a * (mpmath.digamma(a) - psi_ab)) + abs(b * (mpmath.digamma(b) - psi_ab))
    return mpmath.log(mpmath.beta(a, b)), cond


def test_log_beta_float64_relative_1e12() -> None:
    """Relative to max(|log B|, condition scale); the condition scale exceeds |log B| only near the
    curve log B = 0, where no evaluation from rounded inputs can do better. The plain lgamma sum
    fails this by up to 1e-10 at (1e6, 0.3)."""
    a = torch.tensor([u for u in CONC for _ in CONC], dtype=torch.float64)
    b = torch.tensor([v for _ in CONC for v in CONC], dtype=torch.float64)
    got = log_beta(a, b)
    worst = 0.0
    for g, u, v in zip(got.tolist(), a.tolist(), b.tolist()):
        ref, cond = _ref_log_beta(u, v)
        worst = max(worst, float(abs(mp(g) - ref) / max(abs(ref), cond)))
    assert worst <= 1e-12
    # where log B is not near zero, the error is relative to log B itself
    well = [i for i, (u, v) in enumerate(zip(a.tolist(), b.tolist())) if abs(_ref_log_beta(u, v)[0]) > 0.1]
    assert rel_err(got[well], [_ref_log_beta(a[i].item(), b[i].item())[0] for i in well]) <= 1e-12


def _inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(9)
    n = 200
    a = 10.0 ** (torch.rand(n, generator=gen, dtype=torch.float64) * 9 - 3)
    b = 10.0 ** (torch.rand(n, generator=gen, dtype=torch.float64) * 9 - 3)
    # data near the mean or anywhere in (0, 1), including values very close to 0 and 1
    mean = a / (a + b)
    x = torch.where(torch.rand(n, generator=gen) < 0.5, mean, torch.rand(n, generator=gen, dtype=torch.float64))
    x[:10] = torch.tensor([1e-300, 1e-20, 1e-5, 0.5, 1 - 1e-5, 1 - 2.0**-53, 2.0**-1074, 0.25, 0.75, 1e-3], dtype=torch.float64)
    x = x.clamp(2.0**-1074, 1 - 2.0**-53)
    return x, a, b


def test_log_prob_float64_relative_1e12() -> None:
    x, a, b = _inputs()
    got = Beta(a, b).log_prob(x)
    refs, sizes = [], []
    for xv, av, bv in zip(x.tolist(), a.tolist(), b.tolist()):
        xm, am, bm = mp(xv), mp(av), mp(bv)
        lb, cond = _ref_log_beta(av, bv)
        t1, t2 = (am - 1) * mpmath.log(xm), (bm - 1) * mpmath.log1p(-xm)
        refs.append(t1 + t2 - lb)
        sizes.append(abs(t1) + abs(t2) + max(abs(lb), cond))
    well = [i for i, (r, s) in enumerate(zip(refs, sizes)) if abs(r) > s / 100]
    assert len(well) > 120
    assert rel_err(got[well], [refs[i] for i in well]) <= 1e-12
    # where the three terms cancel, the error is bounded relative to their size
    assert max(abs(mp(g) - r) / s for g, r, s in zip(got.tolist(), refs, sizes)) <= 1e-15


@pytest.mark.parametrize(("a", "b"), [(0.05, 1.0), (0.05, 1e6), (1.0, 1.0), (2.0, 5.0), (0.5, 30.0), (1e6, 1e6), (1e4, 3.0), (12.0, 2.0)])
def test_density_integrates_to_one(a: float, b: float) -> None:
    """exp(float64 log_prob) integrated over (0, 1) is 1 within 1e-9, breakpoints around the mode.

    A float64 x cannot come closer to 0 than 2^-1074 nor to 1 than 2^-53: an alpha below 0.05 or a
    beta below 0.7 puts more than 1e-9 of the mass where no float64 x can be, so those are covered
    by the log-Beta test above instead."""
    p = Beta(torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64))
    m, sd = a / (a + b), math.sqrt(p.variance.item())

    pts = {min(max(m + k * sd, 1e-300), 0.999) for k in (-30, -10, -3, -1, 0, 1, 3, 10, 30)}
    pts |= {1e-200, 1e-100, 1e-30, 1e-10, 1e-3, 0.5}
    ts = [-744.0, *sorted(math.log(v) for v in pts), 0.0]
    # in t = log x the integrand p(e^t) e^t is smooth where p has a power-law end; composite
    # 48-point Gauss-Legendre on 16 sub-panels of each panel, vectorised in float64
    nodes, weights = (torch.tensor(v, dtype=torch.float64) for v in numpy.polynomial.legendre.leggauss(48))
    edges = torch.cat([torch.linspace(lo, hi, 17, dtype=torch.float64)[:-1] for lo, hi in zip(ts[:-1], ts[1:])] + [torch.tensor([0.0], dtype=torch.float64)])
    lo, hi = edges[:-1, None], edges[1:, None]
    t = (lo + hi) / 2 + (hi - lo) / 2 * nodes
    x = torch.exp(t)
    inside = (x > 0) & (x < 1)
    logp = p.expand(x.shape).log_prob(torch.where(inside, x, torch.full_like(x, 0.5)))
    f = torch.where(inside, torch.exp(logp + t), torch.zeros_like(t))
    total = ((hi - lo) / 2 * (f * weights).sum(1, keepdim=True)).sum().item()
    assert abs(total - 1) <= 1e-9


def test_mean_and_variance_float64() -> None:
    a = torch.tensor(CONC, dtype=torch.float64)
    b = torch.tensor(CONC[::-1], dtype=torch.float64)
    p = Beta(a, b)
    assert rel_err(p.mean, [mp(u) / (mp(u) + mp(v)) for u, v in zip(CONC, CONC[::-1])]) <= 1e-12
    var = [mp(u) * mp(v) / ((mp(u) + mp(v)) ** 2 * (mp(u) + mp(v) + 1)) for u, v in zip(CONC, CONC[::-1])]
    assert rel_err(p.variance, var) <= 1e-12
    ref = torch.distributions.Beta(a[5:9], b[5:9])
    torch.testing.assert_close(p.entropy()[5:9], ref.entropy(), rtol=1e-10, atol=1e-12)


def test_gradcheck_float64_across_the_branches() -> None:
    a = torch.tensor([0.01, 0.5, 3.0, 15.0, 40.0, 2.0, 800.0], dtype=torch.float64, requires_grad=True)
    b = torch.tensor([0.3, 12.0, 7.0, 20.0, 0.2, 2.0, 900.0], dtype=torch.float64, requires_grad=True)
    x = torch.tensor([0.2, 0.01, 0.3, 0.45, 0.9, 0.5, 0.47], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda u, v: Beta(u, v).log_prob(x), (a, b))
    assert torch.autograd.gradcheck(lambda u, v: beta_nll(u, v, x.view(1, -1)), (a, b))


def test_squeeze_and_the_head_jacobian() -> None:
    x = torch.tensor([[0.0, 1.0, 0.5]], dtype=torch.float64)
    y = beta_squeeze(x, 1e-3)
    torch.testing.assert_close(y, torch.tensor([[1e-3, 1 - 1e-3, 0.5]], dtype=torch.float64))
    head = likelihoods.get("beta", eps=1e-3)
    params = torch.zeros(1, 6, dtype=torch.float64)  # 2 x 3 channels
    expected = beta_nll(head.distribution(params).concentration1, head.distribution(params).concentration0, y)
    torch.testing.assert_close(head.nll(params, x), expected - 3 * math.log1p(-2e-3))


def test_rsample() -> None:
    torch.manual_seed(0)
    a = torch.tensor([2.0, 0.5], requires_grad=True)
    s = Beta(a, torch.tensor([3.0, 0.5])).rsample((4000,))
    assert ((s > 0) & (s < 1)).all()
    assert abs(s[:, 0].mean().item() - 0.4) < 0.02
    s.sum().backward()
    assert torch.isfinite(a.grad).all()


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: Beta(1.0, 1.0).log_prob(torch.tensor([0.0])), r"value.*OpenUnitInterval\(0 < value < 1\).*Beta"),
        (lambda: Beta(1.0, 1.0).log_prob(torch.tensor([1.0])), r"value.*OpenUnitInterval\(0 < value < 1\).*Beta"),
        (lambda: Beta(1.0, 1.0).log_prob(torch.tensor([float("nan")])), r"Beta: value contains nan"),
        (lambda: Beta(torch.tensor([0.0]), 1.0), r"concentration1.*Beta.*0 < value < inf"),
        (lambda: Beta(1.0, torch.tensor([float("inf")])), r"Beta: concentration0 contains inf"),
        (lambda: Beta(torch.ones(2), torch.ones(3)), r"Beta.*broadcast"),
        (lambda: beta_nll(torch.ones(4, 2, 3), torch.ones(2, 3), torch.full((2, 3), 0.5)), r"beta_nll.*broadcast"),
        (lambda: beta_squeeze(torch.zeros(1), 0.6), r"squeeze.*eps"),
        (lambda: likelihoods.get("beta").nll(torch.zeros(1, 2), torch.zeros(1, 1)), r"value.*OpenUnitInterval.*Beta"),
    ],
)
def test_bad_input_is_a_clear_value_error(make, match: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=match):
        make()


def test_log_prob_near_the_mean_of_large_concentrations() -> None:
    """A predictable pixel: x at or near the mean, both concentrations large. The three terms of the
    log-density are about (a + b) log 2 while the result is of order ten; at a = b = 1e6 and x = 1/2
    the plain sum of the terms has a relative error of about 1e-11."""
    cases = [(1e6, 1e6, 0.5), (1e6, 1e6, 0.5 + 3e-4), (1e6, 3e6, 0.25), (2.5e5, 1e4, 2.5e5 / 2.6e5 - 1e-3),
             (10.0, 10.0, 0.5), (31.0, 500.0, 31.0 / 531.0), (1e4, 1e4, 0.49), (5e5, 20.0, 5e5 / (5e5 + 20.0))]
    a, b, x = (torch.tensor(col, dtype=torch.float64) for col in zip(*cases))
    got = Beta(a, b).log_prob(x)
    refs = []
    for xv, av, bv in zip(x.tolist(), a.tolist(), b.tolist()):
        xm, am, bm = mp(xv), mp(av), mp(bv)
        refs.append((am - 1) * mpmath.log(xm) + (bm - 1) * mpmath.log1p(-xm) - mpmath.log(mpmath.beta(am, bm)))
    assert abs(refs[0] - mp("7.0285373916")) < 1e-9
    assert rel_err(got, refs) <= 1e-13
    # the gradient stays the exponential-family score: d/dx = (a - 1)/x - (b - 1)/(1 - x)
    xg = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(Beta(a, b).log_prob(xg).sum(), xg)
    expected = (a - 1) / x - (b - 1) / (1 - x)
    assert torch.allclose(grad, expected, rtol=1e-9, atol=1e-6)
