"""Huber density: the closed-form normaliser, log-density, variance and samples against mpmath at 50 digits."""

from __future__ import annotations

import math

import mpmath
import pytest
import torch

from conftest import rel_err
from vaelib.likelihoods import Huber, huber_log_normalizer, huber_nll

mp = mpmath.mpf
DELTAS = [1e-8, 1e-6, 1e-4, 1e-2, 0.1, 0.5, 1.0, 1.345, 2.0, 5.0, 10.0, 37.0, 40.0, 100.0, 1e3, 1e4]


def _ref_log_z(delta: float) -> mpmath.mpf:
    d = mp(delta)
    return mpmath.log(mpmath.sqrt(2 * mpmath.pi) * mpmath.erf(d / mpmath.sqrt(2)) + 2 / d * mpmath.exp(-d * d / 2))


def _h(r: mpmath.mpf, d: mpmath.mpf) -> mpmath.mpf:
    return r * r / 2 if abs(r) <= d else d * (abs(r) - d / 2)


def _breaks(d: mpmath.mpf) -> list:
    inner = [p for p in (-10, -1, 0, 1, 10) if abs(p) < d]
    return [-mpmath.inf, -d, *inner, d, mpmath.inf]


@pytest.mark.parametrize("delta", [1e-3, 0.1, 1.0, 3.0, 30.0])
def test_normaliser_is_the_integral_of_the_kernel(delta: float) -> None:
    """Eq. (eq-huber-normaliser): Z = integral of exp(-H_delta(r)) dr, by quadrature with the kinks as breakpoints."""
    d = mp(delta)
    z = mpmath.quad(lambda r: mpmath.exp(-_h(r, d)), _breaks(d))
    assert abs(mpmath.log(z) / _ref_log_z(delta) - 1) < 1e-30


def test_log_normaliser_float64_relative_1e12() -> None:
    deltas = torch.tensor(DELTAS + [float(v) for v in torch.logspace(-8, 4, 60, dtype=torch.float64)], dtype=torch.float64)
    got = huber_log_normalizer(deltas)
    assert rel_err(got, [_ref_log_z(d) for d in deltas.tolist()]) <= 1e-12
    # float32: a few ulps; delta = 1e-8 is where erf(delta/sqrt 2) ~ 8e-9 would vanish next to 2/delta
    got32 = huber_log_normalizer(deltas.float())
    assert rel_err(got32, [_ref_log_z(d) for d in deltas.float().double().tolist()]) <= 8 * 2.0**-24


@pytest.mark.parametrize(("loc", "scale", "delta"), [(0.0, 1.0, 1.0), (3.0, 0.01, 1e-8), (-2.0, 5.0, 1e-3), (1.0, 1e-4, 10.0), (0.0, 2.0, 1e4), (7.0, 3.0, 0.3)])
def test_density_integrates_to_one(loc: float, scale: float, delta: float) -> None:
    """The float64 log_prob, exponentiated and integrated over the real line, is 1 within 1e-9."""
    p = Huber(torch.tensor(loc, dtype=torch.float64), scale, delta)

    def f(x: mpmath.mpf) -> mpmath.mpf:
        return mpmath.exp(p.log_prob(torch.tensor(float(x), dtype=torch.float64)).item())

    d = mp(delta)
    pts = sorted({mp(loc) + mp(scale) * b for b in _breaks(d) if mpmath.isfinite(b)})
    with mpmath.workdps(20):  # the integrand is a float64 function: 20 digits of quadrature are plenty
        total = mpmath.quad(f, [-mpmath.inf, *pts, mpmath.inf])
    assert abs(total - 1) <= 1e-9


def _ref_log_prob(x: float, loc: float, scale: float, delta: float) -> tuple[mpmath.mpf, mpmath.mpf]:
    r = (mp(x) - mp(loc)) / mp(scale)
    h, ls, lz = _h(r, mp(delta)), mpmath.log(mp(scale)), _ref_log_z(delta)
    return -h - ls - lz, h + abs(ls) + lz


def test_log_prob_float64_relative_1e12() -> None:
    gen = torch.Generator().manual_seed(5)
    n = 240
    loc = torch.randn(n, generator=gen, dtype=torch.float64) * 10.0 ** torch.randint(-3, 4, (n,), generator=gen)
    scale = 10.0 ** (torch.rand(n, generator=gen, dtype=torch.float64) * 8 - 4)
    delta = 10.0 ** (torch.rand(n, generator=gen, dtype=torch.float64) * 12 - 8)
    r = torch.randn(n, generator=gen, dtype=torch.float64) * 10.0 ** torch.randint(-3, 3, (n,), generator=gen)
    x = loc + scale * r
    got = Huber(loc, scale, delta).log_prob(x)
    pairs = [_ref_log_prob(*v) for v in zip(x.tolist(), loc.tolist(), scale.tolist(), delta.tolist())]
    refs = [p[0] for p in pairs]
    sizes = [p[1] for p in pairs]
    well = [i for i, (ref, s) in enumerate(pairs) if abs(ref) > s / 100]
    assert len(well) > 150
    assert rel_err(got[well], [refs[i] for i in well]) <= 1e-12
    # where the terms cancel, the error is bounded relative to their size
    assert max(abs(mp(g) - ref) / s for g, ref, s in zip(got.tolist(), refs, sizes)) <= 1e-15


def test_matches_torch_huber_loss_plus_log_normaliser() -> None:
    """Eq. (eq-huber-nll) with scale 1: -log p = HuberLoss(delta) + log Z(delta), per element."""
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(6, 50, generator=gen, dtype=torch.float64) * 3
    loc = torch.randn(6, 50, generator=gen, dtype=torch.float64)
    for delta in (0.1, 1.0, 2.5):
        loss = torch.nn.HuberLoss(reduction="none", delta=delta)(loc, x)
        expected = loss.sum(1) + 50 * huber_log_normalizer(torch.tensor(delta, dtype=torch.float64))
        torch.testing.assert_close(huber_nll(loc, 1.0, delta, x), expected, rtol=1e-14, atol=0)


def _ref_variance(delta: float) -> mpmath.mpf:
    d = mp(delta)
    core = mpmath.sqrt(2 * mpmath.pi) * mpmath.erf(d / mpmath.sqrt(2))
    tails = 4 * mpmath.exp(-d * d / 2) * (1 / d + 1 / d**3)
    return (core + tails) / mpmath.exp(_ref_log_z(delta))


@pytest.mark.parametrize("delta", [1e-2, 0.7, 2.0, 6.0])
def test_variance_formula_is_the_second_moment(delta: float) -> None:
    d = mp(delta)
    m2 = mpmath.quad(lambda r: r * r * mpmath.exp(-_h(r, d)), _breaks(d)) / mpmath.exp(_ref_log_z(delta))
    assert abs(m2 / _ref_variance(delta) - 1) < 1e-30


def test_mean_variance_entropy_float64() -> None:
    deltas = torch.tensor(DELTAS, dtype=torch.float64)
    scale = torch.linspace(0.1, 3.0, len(DELTAS), dtype=torch.float64)
    loc = torch.linspace(-5, 5, len(DELTAS), dtype=torch.float64)
    p = Huber(loc, scale, deltas)
    assert torch.equal(p.mean, loc)
    refs = [mp(s) ** 2 * _ref_variance(d) for s, d in zip(scale.tolist(), DELTAS)]
    assert rel_err(p.variance, refs) <= 1e-12
    for i in (0, 6, 9):  # entropy against quadrature
        d, s = mp(DELTAS[i]), mp(scale[i].item())
        lz = _ref_log_z(DELTAS[i])
        ent = mpmath.log(s) + lz + mpmath.quad(lambda r: _h(r, d) * mpmath.exp(-_h(r, d) - lz), _breaks(d))
        assert abs(p.entropy()[i].item() - ent) / abs(ent) < 1e-13


@pytest.mark.parametrize("delta", [0.05, 1.0, 4.0])
def test_cdf_against_quadrature_and_samples_ks(delta: float) -> None:
    p = Huber(torch.tensor(0.5, dtype=torch.float64), 2.0, delta)
    d = mp(delta)
    lz = _ref_log_z(delta)
    for x in (-30.0, -3.0, -0.2, 0.5, 1.1, 4.0, 50.0):
        r = (mp(x) - mp("0.5")) / 2
        ref = mpmath.quad(lambda t: mpmath.exp(-_h(t, d) - lz), [-mpmath.inf, *[b for b in (-d, d) if b < r], r])
        assert abs(p.cdf(torch.tensor(x, dtype=torch.float64)).item() - ref) < 1e-13
    torch.manual_seed(0)
    n = 20000
    s = p.sample((n,)).sort().values
    cdf = p.cdf(s)
    i = torch.arange(1, n + 1, dtype=torch.float64)
    ks = torch.maximum(i / n - cdf, cdf - (i - 1) / n).max().item()
    assert ks < 1.63 / math.sqrt(n)  # the 1% critical value


def test_gradcheck_float64() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(4, 6, dtype=torch.float64, generator=gen) * 3
    loc = torch.randn(4, 6, dtype=torch.float64, generator=gen, requires_grad=True)
    scale = (torch.rand(4, 6, dtype=torch.float64, generator=gen) + 0.3).requires_grad_(True)
    delta = (torch.rand(4, 6, dtype=torch.float64, generator=gen) * 2 + 0.05).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda m, s, d: Huber(m, s, d).log_prob(x), (loc, scale, delta))
    assert torch.autograd.gradcheck(lambda m, s: huber_nll(m, s, 0.7, x), (loc, scale))
    tiny = torch.tensor([1e-4, 1e-2, 50.0], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(huber_log_normalizer, (tiny,))


def test_rsample_is_reparameterised_in_loc_and_scale() -> None:
    loc = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    scale = torch.ones(3, dtype=torch.float64, requires_grad=True)
    torch.manual_seed(0)
    y = Huber(loc, scale, 1.0).rsample((4,))
    y.sum().backward()
    assert torch.equal(loc.grad, torch.full((3,), 4.0, dtype=torch.float64))
    torch.testing.assert_close(scale.grad, (y.detach()).sum(0))
    assert Huber(0.0, 1.0, 1.0).expand((2, 2)).batch_shape == (2, 2)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: Huber(torch.zeros(1), 1.0, 0.0), r"delta.*Huber.*0 < value < inf"),
        (lambda: Huber(torch.zeros(1), 1.0, -1.0), r"delta.*Huber.*0 < value < inf"),
        (lambda: Huber(torch.zeros(1), 0.0, 1.0), r"scale.*Huber.*0 < value < inf"),
        (lambda: Huber(torch.tensor([float("nan")]), 1.0), r"Huber: loc contains nan"),
        (lambda: Huber(torch.zeros(1), float("inf")), r"Huber: scale is inf"),
        (lambda: Huber(torch.zeros(1)).log_prob(torch.tensor([float("inf")])), r"Huber: value contains inf"),
        (lambda: Huber(torch.zeros(3), torch.ones(2)), r"Huber.*broadcast.*loc \(3,\).*scale \(2,\)"),
        (lambda: Huber(torch.zeros(3)).log_prob(torch.zeros(4)), r"Huber.*shape.*broadcast"),
        (lambda: huber_nll(torch.zeros(5, 2, 3), 1.0, 1.0, torch.zeros(2, 3)), r"huber_nll.*broadcast"),
    ],
)
def test_bad_input_is_a_clear_value_error(make, match: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=match):
        make()
