"""Bernoulli likelihood against mpmath at 50 digits: every logit up to 1e4, binary and grey-level data."""

from __future__ import annotations

import mpmath
import pytest
import torch

from conftest import rel_err
from vaelib.likelihoods import Bernoulli, bernoulli_nll

mp = mpmath.mpf


def _ref_log_prob(x: float, logit: float) -> mpmath.mpf:
    x, l = mp(x), mp(logit)
    return -(x * mpmath.log1p(mpmath.exp(-l)) + (1 - x) * mpmath.log1p(mpmath.exp(l)))


def _inputs(dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(11)
    n = 300
    mag = 10.0 ** (torch.rand(n, generator=gen, dtype=torch.float64) * 12 - 8)  # 1e-8 .. 1e4
    sign = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0).double()
    logits = sign * mag
    x = torch.rand(n, generator=gen, dtype=torch.float64)
    x[: n // 3] = torch.round(x[: n // 3])  # binary data
    edge = torch.tensor([[0.0, -1e4], [1.0, 1e4], [0.0, 1e4], [1.0, -1e4], [0.0, -30.0], [1.0, 30.0],
                         [1 - 2.0**-53, 100.0], [2.0**-60, -100.0], [0.5, 0.0], [1.0, 745.0], [0.0, -40.0]],
                        dtype=torch.float64)
    x = torch.cat([x, edge[:, 0]])
    logits = torch.cat([logits, edge[:, 1]])
    if dtype == torch.float32:
        x = x.float().double()  # representable in float32
        logits = logits.float().double()
    return x.to(dtype), logits.to(dtype)


def test_log_prob_float64_relative_1e12() -> None:
    """Both terms have the same sign, so the error is purely relative (floor: the smallest normal double)."""
    x, logits = _inputs(torch.float64)
    got = Bernoulli(logits).log_prob(x)
    refs = [_ref_log_prob(a, b) for a, b in zip(x.tolist(), logits.tolist())]
    assert rel_err(got, refs, floor=2.3e-308) <= 1e-12


def test_log_prob_float32_within_a_few_ulps() -> None:
    x, logits = _inputs(torch.float32)
    got = Bernoulli(logits).log_prob(x)
    assert torch.isfinite(got).all()
    refs = [_ref_log_prob(a, b) for a, b in zip(x.double().tolist(), logits.double().tolist())]
    assert rel_err(got, refs, floor=1.2e-38) <= 8 * 2.0**-24


def test_more_accurate_than_torch_where_torch_cancels() -> None:
    """torch's BCE computes softplus(-l) + (1 - x) l and returns 0 for l = -30, x = 0 in float32."""
    logits = torch.tensor([-30.0, -20.0])
    x = torch.zeros(2)
    ours = -Bernoulli(logits).log_prob(x)
    refs = [-_ref_log_prob(0.0, -30.0), -_ref_log_prob(0.0, -20.0)]
    assert rel_err(ours, refs) <= 4 * 2.0**-24


def test_matches_torch_bce_with_logits_where_it_is_accurate() -> None:
    gen = torch.Generator().manual_seed(2)
    logits = torch.randn(8, 20, generator=gen, dtype=torch.float64) * 3
    x = torch.rand(8, 20, generator=gen, dtype=torch.float64)
    ref = torch.nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(1)
    torch.testing.assert_close(bernoulli_nll(logits, x), ref, rtol=1e-13, atol=0)


def test_mean_and_variance_float64_relative_1e12() -> None:
    x, logits = _inputs(torch.float64)
    p = Bernoulli(logits)
    sig = [1 / (1 + mpmath.exp(-mp(l))) for l in logits.tolist()]
    assert rel_err(p.mean, sig, floor=1e-300) <= 1e-12
    var = [s / (1 + mpmath.exp(mp(l))) for s, l in zip(sig, logits.tolist())]  # sigma(l) sigma(-l), no 1 - s
    assert rel_err(p.variance, var, floor=1e-300) <= 1e-12


@pytest.mark.parametrize("logit", [-8.0, -0.3, 0.0, 1e-6, 2.0, 12.0])
def test_not_normalised_on_the_unit_interval(logit: float) -> None:
    """Eq. (eq-bern-integral): the integral over [0, 1] is 1/C(lambda) = (2 lambda - 1)/log(lambda/(1 - lambda))."""
    p = Bernoulli(torch.tensor(logit, dtype=torch.float64))
    integral = mpmath.quad(lambda t: mpmath.exp(p.log_prob(torch.tensor(float(t), dtype=torch.float64)).item()), [0, 1])
    lam = 1 / (1 + mpmath.exp(-mp(logit)))
    expected = mp(1) / 2 if logit == 0 else (2 * lam - 1) / mpmath.log(lam / (1 - lam))
    assert abs(integral / expected - 1) < 1e-12
    assert integral < 1


def test_gradcheck_float64() -> None:
    gen = torch.Generator().manual_seed(0)
    logits = (torch.randn(4, 5, dtype=torch.float64, generator=gen) * 4).requires_grad_(True)
    x = torch.rand(4, 5, dtype=torch.float64, generator=gen).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda l, v: Bernoulli(l).log_prob(v), (logits, x))
    assert torch.autograd.gradcheck(lambda l: bernoulli_nll(l, x.detach()), (logits,))
    # broadcast parameters get summed gradients
    row = torch.randn(5, dtype=torch.float64, generator=gen, requires_grad=True)
    assert torch.autograd.gradcheck(lambda l: Bernoulli(l).log_prob(x.detach()), (row,))


def test_gradient_is_x_minus_sigmoid() -> None:
    logits = torch.tensor([-50.0, -1.0, 0.0, 3.0, 1e4], dtype=torch.float64, requires_grad=True)
    x = torch.tensor([0.0, 0.25, 1.0, 1.0, 0.5], dtype=torch.float64)
    Bernoulli(logits).log_prob(x).sum().backward()
    torch.testing.assert_close(logits.grad, x - torch.sigmoid(logits.detach()), rtol=0, atol=1e-16)


def test_distribution_interface() -> None:
    p = Bernoulli(torch.zeros(2, 3))
    assert p.batch_shape == (2, 3)
    assert p.expand((4, 2, 3)).batch_shape == (4, 2, 3)
    torch.manual_seed(0)
    s = p.sample((5000,))
    assert s.shape == (5000, 2, 3)
    assert set(s.unique().tolist()) == {0.0, 1.0}
    assert abs(s.mean().item() - 0.5) < 0.02
    torch.testing.assert_close(p.entropy(), torch.full((2, 3), 0.6931471805599453))
    assert Bernoulli(3.0).batch_shape == ()


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: Bernoulli(torch.tensor([float("nan")])), r"Bernoulli: logits contains nan"),
        (lambda: Bernoulli(torch.tensor([float("inf")])), r"Bernoulli: logits contains inf"),
        (lambda: Bernoulli(torch.zeros(1)).log_prob(torch.tensor([1.5])), r"value.*UnitInterval\(0 <= value <= 1\).*Bernoulli"),
        (lambda: Bernoulli(torch.zeros(1)).log_prob(torch.tensor([-0.1])), r"value.*UnitInterval.*Bernoulli"),
        (lambda: Bernoulli(torch.zeros(1)).log_prob(torch.tensor([float("nan")])), r"Bernoulli: value contains nan"),
        (lambda: Bernoulli(torch.zeros(3)).log_prob(torch.zeros(4)), r"Bernoulli.*shape.*broadcast"),
        (lambda: bernoulli_nll(torch.zeros(5, 2, 3), torch.zeros(2, 3)), r"bernoulli_nll.*broadcast"),
        (lambda: bernoulli_nll(torch.tensor(0.0), torch.tensor(0.0)), r"bernoulli_nll.*batch dimension"),
    ],
)
def test_bad_input_is_a_clear_value_error(make, match: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=match):
        make()
