"""discretize: the exact probabilities of 8-bit data under the Gaussian, Laplace, Huber, continuous
Bernoulli and Beta, against mpmath; normalisation, gradients, the Distribution API, errors."""

from __future__ import annotations

import math
import pickle
import random

import mpmath
import pytest
import torch

from test_special import ref_pair
from vaelib.likelihoods import (
    Beta,
    ContinuousBernoulli,
    Discretized,
    Gaussian,
    Huber,
    Laplace,
    discretize,
)

F64 = dict(dtype=torch.float64)
mp = mpmath.mpf
N = 255


# ---------------------------------------------------------------------------------------------------
# references at 80 digits: each mass on the side of the distribution where the difference does not cancel


def _edges(k: int, loc: float, scale: float, n: int = N) -> tuple[mpmath.mpf, mpmath.mpf]:
    lo, hi = (mp(k) - mp(1) / 2) / n, (mp(k) + mp(1) / 2) / n
    u = (lo - mp(loc)) / mp(scale) if k > 0 else -mpmath.inf
    v = (hi - mp(loc)) / mp(scale) if k < n else mpmath.inf
    return u, v


def _by_sides(F, u: mpmath.mpf, v: mpmath.mpf) -> mpmath.mpf:
    """F(v) - F(u) for a CDF symmetric about 0 (S(t) = F(-t))."""
    if v <= 0:
        return F(v) - F(u)
    if u >= 0:
        return F(-u) - F(-v)
    return 1 - F(u) - F(-v)


def ref_gaussian(k: int, loc: float, scale: float) -> mpmath.mpf:
    with mpmath.workdps(80):
        return _by_sides(lambda t: mpmath.erfc(-t / mpmath.sqrt(2)) / 2 if t > -mpmath.inf else mp(0), *_edges(k, loc, scale))


def ref_laplace(k: int, loc: float, scale: float) -> mpmath.mpf:
    def F(t: mpmath.mpf) -> mpmath.mpf:
        return mpmath.exp(t) / 2 if t <= 0 else 1 - mpmath.exp(-t) / 2

    with mpmath.workdps(80):
        return _by_sides(F, *_edges(k, loc, scale))


def ref_huber(k: int, loc: float, scale: float, delta: float) -> mpmath.mpf:
    with mpmath.workdps(80):
        d = mp(delta)
        z = mpmath.sqrt(2 * mpmath.pi) * mpmath.erf(d / mpmath.sqrt(2)) + 2 / d * mpmath.exp(-d * d / 2)

        def F(t: mpmath.mpf) -> mpmath.mpf:
            if t == -mpmath.inf:
                return mp(0)
            if t <= -d:
                return mpmath.exp(d * d / 2 + d * t) / (d * z)
            if t <= 0:
                phi = lambda s: mpmath.erfc(-s / mpmath.sqrt(2)) / 2  # noqa: E731
                return mpmath.exp(-d * d / 2) / (d * z) + mpmath.sqrt(2 * mpmath.pi) / z * (phi(t) - phi(-d))
            return 1 - F(-t)

        return _by_sides(F, *_edges(k, loc, scale))


def ref_cb(k: int, eta: float) -> mpmath.mpf:
    with mpmath.workdps(80):
        a, b, e = max(mp(k) - mp(1) / 2, 0) / N, min(mp(k) + mp(1) / 2, N) / N, mp(eta)
        return b - a if e == 0 else (mpmath.exp(e * b) - mpmath.exp(e * a)) / mpmath.expm1(e)


def ref_beta(k: int, a: float, b: float) -> mpmath.mpf:
    lo, hi = max(mp(k) - mp(1) / 2, 0) / N, min(mp(k) + mp(1) / 2, N) / N
    i_lo, c_lo = (mp(0), mp(1)) if lo == 0 else ref_pair(a, b, lo)
    i_hi, c_hi = (mp(1), mp(0)) if hi == 1 else ref_pair(a, b, hi)
    if i_hi < 0.5:
        return i_hi - i_lo
    if c_lo < 0.5:
        return c_lo - c_hi
    return 1 - i_lo - c_hi


# ---------------------------------------------------------------------------------------------------


def _location_scale_cases(seed: int, count: int, smallest: float = -4, largest: float = 6) -> list[tuple[int, float, float, float]]:
    """(k, loc, scale, delta): edge and middle bins, locations inside, far outside and on a bin edge,
    scales log-uniform from 1e-4 to 1e6, Huber deltas from 1e-2 to 10."""
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        k = rng.choice([0, 1, 2, rng.randint(0, N), 127, 128, 253, 254, N])
        r = rng.random()
        if r < 0.6:
            loc = rng.uniform(-0.2, 1.2)
        elif r < 0.8:
            loc = rng.uniform(-1, 2) * 10 ** rng.uniform(0, 3)
        else:
            loc = (k + rng.choice([0.5, -0.5])) / N
        rows.append((k, loc, 10 ** rng.uniform(smallest, largest), 10 ** rng.uniform(-2, 1)))
    return rows


def _worst(got: torch.Tensor, refs: list[mpmath.mpf]) -> tuple[float, int]:
    """Largest relative error of exp(got) over the masses above 1e-300, and how many there are."""
    worst, count = 0.0, 0
    for g, r in zip(got.tolist(), refs):
        if r > mp("1e-300"):
            count += 1
            worst = max(worst, float(abs(mpmath.exp(mp(g)) - r) / r))
    return worst, count


FAMILIES = {
    "Gaussian": (lambda c: Gaussian(c[1], c[2]), lambda r: ref_gaussian(*r[:3])),
    "Laplace": (lambda c: Laplace(c[1], c[2]), lambda r: ref_laplace(*r[:3])),
    "Huber": (lambda c: Huber(c[1], c[2], c[3]), lambda r: ref_huber(*r)),
}


@pytest.mark.parametrize("name", FAMILIES)
def test_location_scale_masses_float64_relative_1e12(name: str) -> None:
    """Measured maxima (seed 3): Gaussian 1.6e-13, Laplace 1.2e-13, Huber 7.9e-14, on every mass above 1e-300."""
    rows = _location_scale_cases(3, 200)
    cols = [torch.tensor(c, **F64) for c in zip(*rows)]
    make, ref = FAMILIES[name]
    got = discretize(make(cols)).log_prob(cols[0] / N)
    worst, count = _worst(got, [ref(r) for r in rows])
    assert count >= 150  # the far tails below 1e-300 are excluded, the rest is most of the set
    assert float(got.min()) < -1e4  # and masses far below 1e-300 are finite
    assert torch.isfinite(got).all()
    assert worst <= 1e-12


def test_continuous_bernoulli_masses_float64_relative_1e12() -> None:
    """Logits 0, +-1e-9, moderate and up to +-1e3 (measured maximum 1.3e-13)."""
    rng = random.Random(4)
    rows = [(rng.choice([0, 1, 2, rng.randint(0, N), 127, 128, 253, 254, N]),
             rng.choice([0.0, 1e-9, -1e-6, rng.uniform(-1e3, 1e3), rng.uniform(-5, 5), 1e3, -1e3])) for _ in range(200)]
    k, eta = (torch.tensor(c, **F64) for c in zip(*rows))
    got = discretize(ContinuousBernoulli(eta)).log_prob(k / N)
    worst, count = _worst(got, [ref_cb(*r) for r in rows])
    assert count >= 150 and torch.isfinite(got).all() and float(got.min()) < -690  # e^-1000 masses are finite
    assert worst <= 1e-12


def test_beta_masses_float64_relative_1e10() -> None:
    """Concentrations log-uniform in [1e-3, 1e4] (measured maximum 2.7e-11, at concentrations near 1e-3,
    where the CDF's complement comes from a value close to 1; see tests/test_special.py)."""
    rng = random.Random(5)
    rows = []
    for _ in range(150):
        a, b = 10 ** rng.uniform(-3, 4), 10 ** rng.uniform(-3, 4)
        mode = min(N, max(0, round(a / (a + b) * N) + rng.randint(-3, 3)))
        rows.append((rng.choice([0, 1, 2, rng.randint(0, N), 127, 128, 253, 254, N, mode]), a, b))
    rows += [(k, 1e4, 1e4) for k in (120, 126, 127, 128, 129, 135)] + [(k, 1e-3, 1e-3) for k in (0, 1, 127, 254, 255)]
    k, a, b = (torch.tensor(c, **F64) for c in zip(*rows))
    got = discretize(Beta(a, b)).log_prob(k / N)
    worst, count = _worst(got, [ref_beta(*r) for r in rows])
    assert count >= 100 and torch.isfinite(got).all()
    assert worst <= 1e-10


def test_float32_log_masses_to_a_few_roundings() -> None:
    """In float32 each log-mass is within 4 float32 roundings of its size (8e-6 relative mass at log P = -33);
    the Beta is computed in float64 and rounded."""
    rows = [(k, float(torch.tensor(l, dtype=torch.float32)), float(torch.tensor(s, dtype=torch.float32)),
             float(torch.tensor(d, dtype=torch.float32))) for k, l, s, d in _location_scale_cases(6, 120, -3, 3)]
    cols = [torch.tensor(c, dtype=torch.float32) for c in zip(*rows)]
    eps = torch.finfo(torch.float32).eps
    for name, (make, ref) in FAMILIES.items():
        got = discretize(make(cols)).log_prob(cols[0] / N)
        assert got.dtype == torch.float32
        for g, r in zip(got.tolist(), rows):
            lref = mpmath.log(ref(r))
            assert float(abs(mp(g) - lref)) <= 4 * eps * max(1.0, float(abs(lref))), (name, r, g, float(lref))
    eta = torch.tensor([0.0, 3.0, -700.0, 1000.0], dtype=torch.float32)
    k = torch.tensor([0.0, 200.0, 3.0, 255.0])
    for e, kk, g in zip(eta.tolist(), k.tolist(), discretize(ContinuousBernoulli(eta)).log_prob(k / N).tolist()):
        lref = mpmath.log(ref_cb(int(kk), e))
        assert float(abs(mp(g) - lref)) <= 4 * eps * max(1.0, float(abs(lref)))
    a, b = torch.tensor([1e-3, 2.0, 1e4], dtype=torch.float32), torch.tensor([1e-3, 5.0, 1e4], dtype=torch.float32)
    k = torch.tensor([127.0, 40.0, 128.0])
    got = discretize(Beta(a, b)).log_prob(k / N)
    assert got.dtype == torch.float32
    for aa, bb, kk, g in zip(a.tolist(), b.tolist(), k.tolist(), got.tolist()):
        lref = mpmath.log(ref_beta(int(kk), aa, bb))
        assert float(abs(mp(g) - lref)) <= eps * max(1.0, float(abs(lref)))


EXAMPLES = {
    "Gaussian": lambda: Gaussian(torch.tensor([0.3, -2.0, 0.5, 0.5, 40.0], **F64), torch.tensor([0.1, 0.5, 1e-4, 1e6, 0.02], **F64)),
    "Laplace": lambda: Laplace(torch.tensor([0.3, -2.0, 0.5, 0.5, 40.0], **F64), torch.tensor([0.1, 0.5, 1e-4, 1e6, 0.02], **F64)),
    "Huber": lambda: Huber(torch.tensor([0.3, -2.0, 0.5, 0.5, 40.0], **F64), torch.tensor([0.1, 0.5, 1e-4, 1e6, 0.02], **F64),
                           torch.tensor([0.5, 2.0, 1.0, 0.1, 5.0], **F64)),
    "ContinuousBernoulli": lambda: ContinuousBernoulli(torch.tensor([0.0, 3.0, -1e3, 1e3, 1e-7], **F64)),
    "Beta": lambda: Beta(torch.tensor([1e-3, 2.0, 1e4, 0.5, 30.0], **F64), torch.tensor([1e-3, 5.0, 1e4, 1e4, 0.2], **F64)),
}


@pytest.mark.parametrize("name", EXAMPLES)
@pytest.mark.parametrize("levels", [256, 2, 17, 1000])
def test_masses_sum_to_one_and_the_api_agrees(name: str, levels: int) -> None:
    d = discretize(EXAMPLES[name](), levels)
    grid = d.enumerate_support()
    assert grid.shape == (levels, 5) and d.support.is_discrete and d.support.check(grid).all()
    log_p = d.log_prob(grid)
    assert torch.isfinite(log_p).all()
    p = log_p.exp()
    assert torch.allclose(p.sum(0), torch.ones(5, **F64), rtol=0, atol=1e-13)
    assert torch.equal(d._log_masses(), log_p) or torch.allclose(d._log_masses(), log_p, rtol=1e-13, atol=0)
    assert torch.allclose(d.cdf(grid), p.cumsum(0), rtol=0, atol=1e-13)
    assert torch.equal(d.cdf(torch.full((5,), -0.1, **F64)), torch.zeros(5, **F64))
    assert torch.equal(d.cdf(torch.full((5,), 1.0, **F64)), torch.ones(5, **F64))
    mean = (grid * p).sum(0)
    assert torch.allclose(d.mean, mean, rtol=1e-12, atol=1e-300)
    # absolute tolerance: where all the mass is in one bin the reference's rounded mean leaves (1e-16)^2
    assert torch.allclose(d.variance, ((grid - mean) ** 2 * p).sum(0), rtol=1e-10, atol=1e-15)
    assert torch.allclose(d.entropy(), -(p * log_p).sum(0), rtol=1e-12, atol=1e-300)
    assert torch.equal(d.mode, grid.gather(0, log_p.argmax(0, keepdim=True)).squeeze(0))


def test_the_continuous_limit_and_the_concentrated_limit() -> None:
    """A broad Gaussian: P(k) = density times bin width to O(h^2); a narrow one puts all its mass in one bin."""
    g = Gaussian(torch.tensor(0.4, **F64), torch.tensor(3.0, **F64))
    x = torch.arange(256, **F64)[1:-1] / N
    approx = g.log_prob(x) + math.log(1 / N)
    assert (discretize(g).log_prob(x) - approx).abs().max() < (1 / (N * 3.0)) ** 2
    narrow = discretize(Gaussian(torch.tensor(100 / N, **F64), torch.tensor(1e-5, **F64)))
    assert narrow.log_prob(torch.tensor(100 / N, **F64)).item() == 0.0
    assert narrow.mean.item() == pytest.approx(100 / N, rel=1e-15)


def test_sampling_follows_the_probabilities() -> None:
    d = discretize(Laplace(torch.tensor([0.2, 0.9], **F64), torch.tensor([0.05, 0.3], **F64)), levels=8)
    torch.manual_seed(0)
    n = 40_000
    x = d.sample((n,))
    assert x.shape == (n, 2) and d.support.check(x).all()
    p = d.log_prob(d.enumerate_support()).exp()
    counts = torch.stack([(x == v).sum(0) for v in d.enumerate_support()[:, 0]]).double()
    se = (p * (1 - p) / n).sqrt()
    assert ((counts / n - p).abs() <= 6 * se + 1e-12).all()


GRADS = {
    "Gaussian": (lambda loc, scale, delta: Gaussian(loc, scale), 2),
    "Laplace": (lambda loc, scale, delta: Laplace(loc, scale), 2),
    "Huber": (lambda loc, scale, delta: Huber(loc, scale, delta), 3),
}
X = torch.tensor([0, 1, 50, 127, 128, 200, 254, 255], **F64) / N


@pytest.mark.parametrize("name", GRADS)
def test_gradcheck_location_scale(name: str) -> None:
    make, count = GRADS[name]
    # a location on a bin edge (0.5 + 1/510), far outside, tiny and huge scales, the Huber cut points
    loc = torch.tensor([0.4, 0.5, -3.0, 2.0, 128.5 / 255, 0.5, 0.6, 0.9], **F64, requires_grad=True)
    scale = torch.tensor([0.07, 1e3, 0.5, 0.3, 1e-2, 5.0, 0.003, 0.2], **F64, requires_grad=True)
    delta = torch.tensor([0.5, 1.0, 2.0, 0.1, 3.0, 0.7, 1.2, 0.05], **F64, requires_grad=True)
    params = (loc, scale, delta)[:count]
    assert torch.autograd.gradcheck(lambda *p: discretize(make(*p, *([None] * (3 - len(p))))).log_prob(X), params)


def test_gradcheck_continuous_bernoulli_including_eta_zero() -> None:
    eta = torch.tensor([0.0, 1e-8, -3.0, 5.0, -500.0, 800.0, 0.3, -0.02], **F64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda e: discretize(ContinuousBernoulli(e)).log_prob(X), (eta,))


def test_gradcheck_beta_concentrations() -> None:
    """Through the forward-mode derivative of the incomplete beta function's continued fraction."""
    a = torch.tensor([1e-3, 0.5, 2.0, 10.0, 1e3, 3.0, 0.7, 50.0], **F64, requires_grad=True)
    b = torch.tensor([1e-3, 5.0, 2.0, 1e4, 1e3, 0.1, 0.7, 20.0], **F64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: discretize(Beta(a, b)).log_prob(X), (a, b))
    # the exact mean is differentiable too
    assert torch.autograd.gradcheck(lambda a, b: discretize(Beta(a, b), levels=16).mean, (a[2:5], b[2:5]))


def test_training_gradients_are_finite_in_float32() -> None:
    loc = torch.linspace(-1, 2, 64).requires_grad_()
    raw = torch.linspace(-12, 8, 64).requires_grad_()
    x = torch.round(torch.rand(64, generator=torch.Generator().manual_seed(0)) * N) / N
    for make in (lambda: Gaussian(loc, 1e-3 + torch.nn.functional.softplus(raw)),
                 lambda: Laplace(loc, 1e-3 + torch.nn.functional.softplus(raw)),
                 lambda: Huber(loc, 1e-3 + torch.nn.functional.softplus(raw), 1.0),
                 lambda: ContinuousBernoulli(raw * 50),
                 lambda: Beta(1e-3 + torch.nn.functional.softplus(raw), 1e-3 + torch.nn.functional.softplus(loc * 5))):
        nll = -discretize(make()).log_prob(x).sum()
        grads = torch.autograd.grad(nll, (loc, raw), allow_unused=True)
        assert torch.isfinite(nll) and all(g is None or torch.isfinite(g).all() for g in grads)


def test_off_grid_values_are_a_value_error_naming_the_distribution_the_value_and_the_grid() -> None:
    d = discretize(Gaussian(torch.zeros(3), 1.0))
    with pytest.raises(ValueError, match=r"Discretized\(Gaussian, levels=256\).*value 0\.3.*index \(1,\).*k/255 for k = 0\.\.255"):
        d.log_prob(torch.tensor([0.0, 0.3, 1.0]))
    with pytest.raises(ValueError, match=r"Discretized\(Beta, levels=4\).*value 1\.5.*k/3 for k = 0\.\.3"):
        discretize(Beta(2.0, 3.0), levels=4).log_prob(torch.tensor(1.5))
    with pytest.raises(ValueError, match=r"Discretized\(Laplace, levels=256\): value contains nan"):
        discretize(Laplace(0.5, 0.1)).log_prob(torch.tensor([math.nan]))
    with pytest.raises(ValueError, match=r"does not broadcast"):
        d.log_prob(torch.zeros(2))
    # float32 rounding of k/255 is on the grid; without validation off-grid values are rounded
    assert torch.isfinite(d.log_prob(torch.arange(256.0)[:, None].expand(-1, 3) / 255)).all()
    loose = discretize(Gaussian(torch.zeros(()), 1.0, validate_args=False))
    assert loose.log_prob(torch.tensor(0.301)).item() == loose.log_prob(torch.tensor(77 / 255)).item()


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match=r"discretize: levels must be an integer with 2 <= levels <= 65536, got 1"):
        discretize(Gaussian(0.0, 1.0), 1)
    with pytest.raises(ValueError, match=r"levels must be .*got 2.5"):
        discretize(Gaussian(0.0, 1.0), 2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"discretize: dist must be one of .*Gaussian.*Beta.*got torch\.distributions\.normal\.Normal"):
        discretize(torch.distributions.Normal(0.0, 1.0))


def test_expand_pickle_repr() -> None:
    d = discretize(EXAMPLES["Huber"]())
    e = d.expand((3, 5))
    x = d.sample((3,))
    assert e.batch_shape == (3, 5) and torch.allclose(e.log_prob(x), d.log_prob(x))
    again = pickle.loads(pickle.dumps(d))
    assert torch.equal(again.log_prob(x), d.log_prob(x))
    assert repr(d).startswith("Discretized(Huber(") and repr(d).endswith("levels=256)")
    assert isinstance(d, Discretized) and d.batch_shape == (5,) and d.event_shape == ()
