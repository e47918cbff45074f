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


# --------------------------------------------------------------------------------------------
# The head: per-image sums by torch's fused kernel


def _images_and_logits() -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """Batches of 784-pixel images: confident and mistaken decoders on binary digits, grey levels,
    and the cancelling corner of torch's formula (l = -30 on black or nearly black pixels)."""
    gen = torch.Generator().manual_seed(3)
    ink = (torch.rand(4, 784, generator=gen) < 0.2).float()
    mag = torch.rand(4, 784, generator=gen) * 30
    grey = torch.round(torch.rand(4, 784, generator=gen) * 255) / 255 * ink
    return [
        ("confident", torch.where(ink > 0, mag, -mag), ink),
        ("mistaken", torch.where(ink > 0, -mag, mag), ink),
        ("grey", torch.randn(4, 784, generator=gen) * 10, grey),
        ("l = -30, x = 0", torch.full((2, 784), -30.0), torch.zeros(2, 784)),
        ("l = -30, x = 1e-3", torch.full((2, 784), -30.0), torch.full((2, 784), 1e-3)),
        ("l = +-100", torch.where(ink[:2] > 0, 100.0, -100.0), ink[:2]),
    ]


def _ref_nll_per_image(logits: torch.Tensor, x: torch.Tensor) -> list[mpmath.mpf]:
    return [-mpmath.fsum(_ref_log_prob(a, b) for a, b in zip(xi.double().tolist(), li.double().tolist()))
            for li, xi in zip(logits, x)]


@pytest.mark.parametrize(("name", "logits", "x"), _images_and_logits(), ids=lambda v: v if isinstance(v, str) else "")
def test_head_nll_per_image_within_float32_rounding_of_its_logits(name: str, logits: torch.Tensor, x: torch.Tensor) -> None:
    """BernoulliHead.nll sums torch's fused BCE: each image within 2^-22 sum_j (|l_j| + 1) of mpmath.

    That is four float32 rounding units per pixel of the size of its logit, the error of
    (1 - x) l - log sigmoid(l) where the two terms cancel; on the digit-like batches it is also
    within 8 rounding units of the sum itself.
    """
    from vaelib.likelihoods import get

    got = get("bernoulli").nll(logits, x).double().tolist()
    refs = _ref_nll_per_image(logits, x)
    for g, r, li in zip(got, refs, logits):
        bound = 2.0**-22 * float((li.double().abs() + 1).sum())
        assert abs(mp(g) - r) <= bound, (name, g, r)
        if name in ("confident", "mistaken", "grey"):
            assert abs(mp(g) - r) <= 8 * 2.0**-24 * abs(r), (name, g, r)
    assert torch.allclose(get("bernoulli").nll(logits, x), bernoulli_nll(logits, x), rtol=1e-6, atol=2.0**-22 * 784 * 31)


def test_head_nll_checks_like_the_distribution_when_validation_is_on() -> None:
    from vaelib.likelihoods import argument_validation, get

    head = get("bernoulli")
    logits, x = torch.zeros(2, 4), torch.tensor([[0.0, 1.0, 0.5, 1.5], [0.0, 0.0, 0.0, 0.0]])
    with argument_validation(True), pytest.raises(ValueError, match="Bernoulli"):
        head.nll(logits, x)
    with argument_validation(True), pytest.raises(ValueError, match="nan"):
        head.nll(torch.tensor([[0.0, float("nan"), 0.0, 0.0]] * 2), x.clamp(0, 1))
    with argument_validation(False):  # unchecked: the caller has checked x once (the trainer does)
        assert head.nll(logits, x).shape == (2,)
    with argument_validation(False), pytest.raises(ValueError, match="does not match"):
        head.nll(torch.zeros(2, 3), x.clamp(0, 1))


def test_head_gradient_is_sigmoid_minus_x() -> None:
    from vaelib.likelihoods import get

    gen = torch.Generator().manual_seed(5)
    logits = (torch.randn(3, 784, generator=gen, dtype=torch.float64) * 8).requires_grad_(True)
    x = torch.rand(3, 784, generator=gen, dtype=torch.float64)
    get("bernoulli").nll(logits, x).sum().backward()
    torch.testing.assert_close(logits.grad, torch.sigmoid(logits.detach()) - x, rtol=1e-12, atol=1e-15)
