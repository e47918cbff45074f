"""Laplace likelihood against mpmath at 50 digits, with validation and gradients."""

from __future__ import annotations

import mpmath
import pytest
import torch

from conftest import rel_err
from vaelib.likelihoods import Laplace, laplace_nll

mp = mpmath.mpf


def test_log_prob_float64_relative_1e12() -> None:
    gen = torch.Generator().manual_seed(4)
    n = 300
    loc = torch.randn(n, generator=gen, dtype=torch.float64) * 10.0 ** torch.randint(-3, 4, (n,), generator=gen)
    scale = 10.0 ** (torch.rand(n, generator=gen, dtype=torch.float64) * 12 - 6)
    x = loc + scale * torch.randn(n, generator=gen, dtype=torch.float64) * 10.0 ** torch.randint(-4, 3, (n,), generator=gen)
    got = Laplace(loc, scale).log_prob(x)
    refs, sizes = [], []
    for a, m, s in zip(x.tolist(), loc.tolist(), scale.tolist()):
        t = abs(mp(a) - mp(m)) / mp(s)
        refs.append(-t - mpmath.log(2 * mp(s)))
        sizes.append(t + abs(mpmath.log(mp(s))) + mpmath.log(2))
    well = [i for i, (r, s) in enumerate(zip(refs, sizes)) if abs(r) > s / 100]
    assert len(well) > 250
    assert rel_err(got[well], [refs[i] for i in well]) <= 1e-12
    # where the terms cancel, the error is bounded relative to their size
    assert max(abs(mp(g) - r) / s for g, r, s in zip(got.tolist(), refs, sizes)) <= 1e-15


def test_matches_torch_laplace_and_l1() -> None:
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(5, 40, generator=gen, dtype=torch.float64)
    loc = torch.randn(5, 40, generator=gen, dtype=torch.float64)
    scale = torch.rand(5, 40, generator=gen, dtype=torch.float64) + 0.1
    ref = torch.distributions.Laplace(loc, scale)
    p = Laplace(loc, scale)
    torch.testing.assert_close(p.log_prob(x), ref.log_prob(x), rtol=1e-14, atol=1e-14)
    torch.testing.assert_close(p.cdf(x), ref.cdf(x), rtol=1e-13, atol=1e-15)
    torch.testing.assert_close(p.entropy(), ref.entropy())
    torch.testing.assert_close(p.variance, ref.variance)
    l1 = (x - loc).abs().sum(1)
    torch.testing.assert_close(laplace_nll(loc, 0.5, x), l1 / 0.5 + 40 * torch.log(torch.tensor(1.0, dtype=torch.float64)), rtol=1e-14, atol=0)


def test_samples_match_the_moments() -> None:
    torch.manual_seed(0)
    p = Laplace(torch.tensor([1.0]), torch.tensor([2.0]))
    s = p.sample((40000,))
    assert abs(s.mean().item() - 1.0) < 0.05
    assert abs(s.var().item() - 8.0) < 0.25
    assert p.expand((3, 1)).batch_shape == (3, 1)


def test_gradcheck_float64() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(4, 5, dtype=torch.float64, generator=gen)
    loc = torch.randn(4, 5, dtype=torch.float64, generator=gen, requires_grad=True)
    scale = (torch.rand(4, 5, dtype=torch.float64, generator=gen) + 0.2).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda m, s: Laplace(m, s).log_prob(x), (loc, scale))
    assert torch.autograd.gradcheck(lambda m, s: laplace_nll(m, s, x), (loc, scale))


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: Laplace(torch.zeros(1), 0.0), r"scale.*Laplace.*0 < value < inf"),
        (lambda: Laplace(torch.zeros(1), -2.0), r"scale.*Laplace.*0 < value < inf"),
        (lambda: Laplace(torch.tensor([float("inf")]), 1.0), r"Laplace: loc contains inf"),
        (lambda: Laplace(torch.zeros(1), 1.0).log_prob(torch.tensor([float("nan")])), r"Laplace: value contains nan"),
        (lambda: Laplace(torch.zeros(2), torch.ones(3)), r"Laplace.*broadcast"),
        (lambda: laplace_nll(torch.zeros(2, 4), 1.0, torch.zeros(2, 3)), r"Laplace.*broadcast"),
    ],
)
def test_bad_input_is_a_clear_value_error(make, match: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=match):
        make()
