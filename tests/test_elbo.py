"""KL and ELBO helpers against mpmath, and the Monte Carlo estimator against its expectation."""

from __future__ import annotations

import mpmath
import pytest
import torch

from conftest import rel_err
from vaelib.elbo import ElboTerms, expm1_minus_x, kl_diag_gaussians, log_normal_diag, mc_kl


def _ref_kl(mq: list[float], lq: list[float], mp: list[float], lp: list[float]) -> mpmath.mpf:
    total = mpmath.mpf(0)
    for a, b, c, d in zip(mq, lq, mp, lp):
        a, b, c, d = (mpmath.mpf(v) for v in (a, b, c, d))
        total += (mpmath.exp(b - d) + (a - c) ** 2 / mpmath.exp(d) - 1 - (b - d)) / 2
    return total


def test_kl_float64_against_mpmath_including_q_close_to_p() -> None:
    gen = torch.Generator().manual_seed(3)
    n, k = 60, 8
    mq = torch.randn(n, k, dtype=torch.float64, generator=gen) * 3
    lq = torch.randn(n, k, dtype=torch.float64, generator=gen) * 4
    mp = torch.randn(n, k, dtype=torch.float64, generator=gen)
    lp = torch.randn(n, k, dtype=torch.float64, generator=gen)
    # rows where q is within 1e-9 of p: the naive formula loses every digit there
    mq[:10] = mp[:10] + 1e-9 * torch.randn(10, k, dtype=torch.float64, generator=gen)
    lq[:10] = lp[:10] + 1e-9 * torch.randn(10, k, dtype=torch.float64, generator=gen)
    got = kl_diag_gaussians(mq, lq, mp, lp)
    refs = [_ref_kl(*(t[i].tolist() for t in (mq, lq, mp, lp))) for i in range(n)]
    assert rel_err(got, refs) <= 1e-12
    # the standard-normal prior is the default
    got_std = kl_diag_gaussians(mq, lq)
    refs_std = [_ref_kl(mq[i].tolist(), lq[i].tolist(), [0.0] * k, [0.0] * k) for i in range(n)]
    assert rel_err(got_std, refs_std) <= 1e-12


def test_kl_is_zero_only_at_the_prior_and_matches_torch() -> None:
    assert kl_diag_gaussians(torch.zeros(2, 4), torch.zeros(2, 4)).tolist() == [0.0, 0.0]
    gen = torch.Generator().manual_seed(4)
    mu = torch.randn(5, 3, generator=gen, dtype=torch.float64)
    lv = torch.randn(5, 3, generator=gen, dtype=torch.float64)
    q = torch.distributions.Normal(mu, torch.exp(0.5 * lv))
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    torch.testing.assert_close(kl_diag_gaussians(mu, lv), torch.distributions.kl_divergence(q, p).sum(1), rtol=1e-12, atol=0)


def test_kl_float32_keeps_relative_accuracy_near_zero() -> None:
    mu = torch.full((1, 4), 1e-4)
    lv = torch.full((1, 4), 1e-4)
    ref = _ref_kl([float(mu[0, 0])] * 4, [float(lv[0, 0])] * 4, [0.0] * 4, [0.0] * 4)
    assert rel_err(kl_diag_gaussians(mu, lv), [ref]) <= 1e-6


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_expm1_minus_x_across_the_branch_point(dtype: torch.dtype) -> None:
    # in float32 the result must stay between the smallest normal number (d^2/2 > 1.2e-38) and e^88
    low = -30 if dtype == torch.float64 else -18
    d = torch.cat([torch.logspace(low, 1.9, 300, dtype=torch.float64), torch.tensor([0.999999, 1.0, 1.000001], dtype=torch.float64)])
    d = torch.cat([d, -d, torch.zeros(1, dtype=torch.float64)]).to(dtype)
    refs = [mpmath.expm1(mpmath.mpf(v)) - mpmath.mpf(v) for v in d.double().tolist()]
    tol = 1e-14 if dtype == torch.float64 else 4e-7
    assert rel_err(expm1_minus_x(d), refs, floor=1e-300) <= tol
    g = d.clone().requires_grad_(True)
    expm1_minus_x(g).sum().backward()
    assert rel_err(g.grad, [mpmath.expm1(mpmath.mpf(v)) for v in d.double().tolist()], floor=1e-300) <= tol


def test_expm1_minus_x_gradient_is_finite_far_out() -> None:
    d = torch.tensor([-1e300, -800.0, 700.0], dtype=torch.float64, requires_grad=True)
    expm1_minus_x(d).sum().backward()
    assert torch.isfinite(d.grad).all()


def test_mc_kl_is_unbiased_for_the_closed_form() -> None:
    """Eq. (eq-elbo-mc): E_q[log q(z) - log p(z)] = KL(q || p)."""
    gen = torch.Generator().manual_seed(5)
    mu = torch.randn(1, 6, generator=gen, dtype=torch.float64)
    lv = torch.randn(1, 6, generator=gen, dtype=torch.float64) * 0.5
    n = 200_000
    z = mu + torch.randn(n, 6, generator=gen, dtype=torch.float64) * torch.exp(0.5 * lv)
    samples = mc_kl(mu.expand(n, 6), lv.expand(n, 6), z)
    exact = kl_diag_gaussians(mu, lv).item()
    stderr = samples.std().item() / n**0.5
    assert abs(samples.mean().item() - exact) < 4 * stderr
    assert stderr < 0.01 * exact  # the check has power to see a 4% bias


def test_log_normal_diag_matches_torch() -> None:
    gen = torch.Generator().manual_seed(6)
    z, mu, lv = (torch.randn(7, 5, generator=gen, dtype=torch.float64) for _ in range(3))
    ref = torch.distributions.Normal(mu, torch.exp(0.5 * lv)).log_prob(z).sum(1)
    torch.testing.assert_close(log_normal_diag(mu, lv, z), ref, rtol=1e-12, atol=1e-13)


def test_kl_gradcheck() -> None:
    gen = torch.Generator().manual_seed(8)
    args = [torch.randn(3, 4, dtype=torch.float64, generator=gen, requires_grad=True) for _ in range(4)]
    assert torch.autograd.gradcheck(kl_diag_gaussians, tuple(args))
    assert torch.autograd.gradcheck(mc_kl, tuple(args[:3]))


def test_elbo_terms_arithmetic() -> None:
    terms = ElboTerms(rec=torch.tensor([1.0, 3.0]), kl=torch.tensor([0.5, 1.5]))
    assert terms.elbo.tolist() == [-1.5, -4.5]
    assert terms.loss(beta=2.0).item() == pytest.approx((2.0 + 6.0) / 2)
