"""Discretised logistic for 8-bit data: exact bin masses against mpmath, normalisation, moments."""

from __future__ import annotations

import mpmath
import pytest
import torch

from conftest import rel_err
from vaelib.likelihoods import DiscretizedLogistic, discretized_logistic_nll

mp = mpmath.mpf
N = 255


def _sigmoid(t: mpmath.mpf) -> mpmath.mpf:
    return 1 / (1 + mpmath.exp(-t))


def _ref_log_mass(k: int, loc: float, scale: float, n: int = N) -> mpmath.mpf:
    """log P(k) at 80 digits, written so that no difference of two numbers near 1 is formed."""
    with mpmath.workdps(80):
        m, s = mp(loc), mp(scale)
        lo = (mp(k) - mp(1) / 2) / n
        hi = (mp(k) + mp(1) / 2) / n
        if k == 0:
            return mpmath.log(_sigmoid((hi - m) / s))
        if k == n:
            return mpmath.log(_sigmoid((m - lo) / s))
        if lo > m:  # both edges above the location: use the upper tails, 1 - sigma(t) = sigma(-t)
            mass = _sigmoid((m - lo) / s) - _sigmoid((m - hi) / s)
        else:
            mass = _sigmoid((hi - m) / s) - _sigmoid((lo - m) / s)
        return +mpmath.log(mass)


def _inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(21)
    n = 260
    k = torch.randint(0, 256, (n,), generator=gen).double()
    k[:40] = torch.tensor([0, 1, 2, 127, 128, 253, 254, 255] * 5, dtype=torch.float64)
    loc = torch.rand(n, generator=gen, dtype=torch.float64) * 1.2 - 0.1
    far = torch.rand(n, generator=gen) < 0.15
    loc = torch.where(far, loc * 1e3, loc)
    # locations on a bin edge (to the float64 rounding), where the edge must be formed exactly
    loc[40:80] = (k[40:80] + 0.5) / 255
    loc[80:100] = (k[80:100] - 0.5) / 255
    scale = 10.0 ** (torch.rand(n, generator=gen, dtype=torch.float64) * 14 - 9)  # 1e-9 .. 1e5
    return k / 255, loc, scale


def test_log_prob_float64_relative_1e12() -> None:
    """Three non-positive terms: purely relative error, however far in a tail (floor: smallest normal)."""
    x, loc, scale = _inputs()
    got = DiscretizedLogistic(loc, scale).log_prob(x)
    refs = [_ref_log_mass(round(a * 255), b, c) for a, b, c in zip(x.tolist(), loc.tolist(), scale.tolist())]
    assert min(refs) < -1e10  # far tails are in the set
    assert rel_err(got, refs, floor=2.3e-308) <= 1e-12


def test_more_accurate_than_the_naive_difference() -> None:
    """log(sigmoid(b) - sigmoid(a)) is -inf or loses all digits 40 scales away; ours is exact."""
    loc, scale = torch.tensor([0.1], dtype=torch.float64), torch.tensor([0.01], dtype=torch.float64)
    x = torch.tensor([230 / 255], dtype=torch.float64)
    got = DiscretizedLogistic(loc, scale).log_prob(x)
    ref = _ref_log_mass(230, 0.1, 0.01)
    assert rel_err(got, [ref]) <= 1e-14
    naive = torch.log(torch.sigmoid((x + 0.5 / 255 - loc) / scale) - torch.sigmoid((x - 0.5 / 255 - loc) / scale))
    assert naive.item() == float("-inf")


@pytest.mark.parametrize(
    ("loc", "scale"),
    [(0.5, 0.1), (0.5, 1e-9), (127.5 / 255, 1e-12), (0.0, 1e-3), (1.0, 1e-3), (-1e3, 1e-3), (1e3, 1e8), (0.37, 1e5), (0.2, 2.0)],
)
def test_masses_sum_to_one(loc: float, scale: float) -> None:
    x = torch.arange(256, dtype=torch.float64) / 255
    p = DiscretizedLogistic(torch.full((256,), loc, dtype=torch.float64), torch.full((256,), scale, dtype=torch.float64))
    total = torch.exp(p.log_prob(x)).sum().item()
    assert abs(total - 1) <= 1e-9
    # and the masses agree with mpmath bin by bin
    refs = [_ref_log_mass(k, loc, scale) for k in range(0, 256, 15)]
    assert rel_err(p.log_prob(x)[::15], refs, floor=2.3e-308) <= 1e-12


def test_mean_and_variance_are_the_sums_over_bins() -> None:
    cases = [(0.5, 0.1), (0.03, 0.02), (-0.3, 1e-3), (0.8, 5.0), (200 / 255, 1e-6)]
    loc = torch.tensor([c[0] for c in cases], dtype=torch.float64)
    scale = torch.tensor([c[1] for c in cases], dtype=torch.float64)
    p = DiscretizedLogistic(loc, scale)
    means, variances = [], []
    for m, s in cases:
        probs = [mpmath.exp(_ref_log_mass(k, m, s)) for k in range(256)]
        mu = sum(mp(k) / 255 * q for k, q in enumerate(probs))
        means.append(mu)
        variances.append(sum((mp(k) / 255 - mu) ** 2 * q for k, q in enumerate(probs)))
    assert rel_err(p.mean, means) <= 1e-12
    assert rel_err(p.variance, variances, floor=1e-300) <= 1e-9


def test_samples_follow_the_masses() -> None:
    torch.manual_seed(0)
    p = DiscretizedLogistic(torch.tensor(0.5), torch.tensor(0.02))
    s = p.sample((50000,))
    assert torch.equal(s, torch.round(s * 255) / 255)
    ks = torch.round(s * 255).long()
    freq = torch.bincount(ks, minlength=256).double() / 50000
    probs = torch.exp(DiscretizedLogistic(torch.tensor(0.5, dtype=torch.float64), 0.02).log_prob(torch.arange(256, dtype=torch.float64) / 255))
    assert (freq - probs).abs().max().item() < 0.01
    assert p.expand((2,)).batch_shape == (2,)


def test_float32_8bit_data() -> None:
    x = torch.arange(256, dtype=torch.float32) / 255  # what ToTensor produces
    p = DiscretizedLogistic(torch.full((256,), 0.3), torch.full((256,), 0.05))
    lp = p.log_prob(x)
    assert torch.isfinite(lp).all()
    assert abs(torch.exp(lp.double()).sum().item() - 1) < 1e-5


def test_gradcheck_float64() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (4, 6), generator=gen).double() / 255
    x[0, 0], x[0, 1] = 0.0, 1.0
    loc = torch.rand(4, 6, dtype=torch.float64, generator=gen).requires_grad_(True)
    scale = (torch.rand(4, 6, dtype=torch.float64, generator=gen) * 0.2 + 0.003).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda m, s: DiscretizedLogistic(m, s).log_prob(x), (loc, scale))
    assert torch.autograd.gradcheck(lambda m, s: discretized_logistic_nll(m, s, x), (loc, scale))


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: DiscretizedLogistic(0.5, 0.1).log_prob(torch.tensor([0.5 / 255])), r"value.*QuantizedUnitInterval\(value = k/255.*DiscretizedLogistic"),
        (lambda: DiscretizedLogistic(0.5, 0.1).log_prob(torch.tensor([1.2])), r"value.*QuantizedUnitInterval.*DiscretizedLogistic"),
        (lambda: DiscretizedLogistic(0.5, 0.1).log_prob(torch.tensor([float("nan")])), r"DiscretizedLogistic: value contains nan"),
        (lambda: DiscretizedLogistic(0.5, 0.0), r"scale.*DiscretizedLogistic.*0 < value < inf"),
        (lambda: DiscretizedLogistic(torch.tensor([float("nan")]), 1.0), r"DiscretizedLogistic: loc contains nan"),
        (lambda: DiscretizedLogistic(0.5, 0.1, bits=0), r"DiscretizedLogistic.*bits"),
        (lambda: DiscretizedLogistic(torch.zeros(2), torch.ones(3)), r"DiscretizedLogistic.*broadcast"),
        (lambda: discretized_logistic_nll(torch.zeros(2, 4), 1.0, torch.zeros(2, 3)), r"DiscretizedLogistic.*broadcast"),
    ],
)
def test_bad_input_is_a_clear_value_error(make, match: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=match):
        make()
