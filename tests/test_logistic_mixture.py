"""The discretised mixture of logistics (PixelCNN++): normalised, one component is the discretised
logistic, exact tails against mpmath, gradients, exact mean, the head and its registration."""

from __future__ import annotations

import math
import pickle

import mpmath
import pytest
import torch

from vaelib import likelihoods
from vaelib.likelihoods import DiscretizedLogistic, DiscretizedLogisticMixture, DiscretizedLogisticMixtureHead

F64 = dict(dtype=torch.float64)
mp = mpmath.mpf
N = 255


def _example() -> DiscretizedLogisticMixture:
    logits = torch.tensor([[0.0, 1.0, -2.0], [3.0, -1.0, 0.5]], **F64)
    loc = torch.tensor([[0.1, 0.5, 0.95], [-0.3, 0.5, 40.0]], **F64)
    scale = torch.tensor([[0.02, 0.2, 1e-4], [0.05, 1e-6, 10.0]], **F64)
    return DiscretizedLogisticMixture(logits, loc, scale)


def _ref_log_mass(k: int, logits: list[float], loc: list[float], scale: list[float]) -> mpmath.mpf:
    """log sum_j pi_j P_j(k) at 80 digits, each P_j on its non-cancelling side."""
    with mpmath.workdps(80):
        sig = lambda t: 1 / (1 + mpmath.exp(-t))  # noqa: E731
        z = sum(mpmath.exp(mp(l)) for l in logits)
        total = mp(0)
        for l, m, s in zip(logits, loc, scale):
            m, s = mp(m), mp(s)
            lo, hi = (mp(k) - mp(1) / 2) / N, (mp(k) + mp(1) / 2) / N
            if k == 0:
                p = sig((hi - m) / s)
            elif k == N:
                p = sig((m - lo) / s)
            elif lo > m:
                p = sig((m - lo) / s) - sig((m - hi) / s)
            else:
                p = sig((hi - m) / s) - sig((lo - m) / s)
            total += mpmath.exp(mp(l)) / z * p
        return mpmath.log(total)


def test_masses_sum_to_one_and_match_mpmath_in_the_tails() -> None:
    d = _example()
    grid = d.enumerate_support()
    log_p = d.log_prob(grid)
    assert grid.shape == (256, 2) and torch.isfinite(log_p).all()
    assert torch.allclose(log_p.exp().sum(0), torch.ones(2, **F64), rtol=0, atol=1e-13)
    worst = 0.0
    for i in range(2):
        for k in (0, 1, 25, 26, 127, 128, 200, 242, 243, 254, 255):
            ref = _ref_log_mass(k, d.logits[i].tolist(), d.loc[i].tolist(), d.scale[i].tolist())
            worst = max(worst, float(abs(mp(log_p[k, i].item()) - ref) / max(1, abs(ref))))
    # narrow components only: far tails, finite and exact
    narrow = DiscretizedLogisticMixture(torch.tensor([0.0, -1.0], **F64), torch.tensor([0.1, 0.3], **F64), torch.tensor([1e-3, 2e-3], **F64))
    for k in (0, 26, 77, 200, 255):
        got = narrow.log_prob(torch.tensor(k / N, **F64))
        ref = _ref_log_mass(k, [0.0, -1.0], [0.1, 0.3], [1e-3, 2e-3])
        worst = max(worst, float(abs(mp(got.item()) - ref) / max(1, abs(ref))))
    assert float(ref) < -300  # a mass far below 1e-300, finite and to 1e-12 relative in its log
    assert worst <= 1e-12


def test_one_component_is_the_discretized_logistic_bit_for_bit() -> None:
    torch.manual_seed(0)
    loc, scale = torch.rand(4, 3, **F64), 10 ** (torch.rand(4, 3, **F64) * 4 - 4)
    x = torch.round(torch.rand(4, 3, **F64) * N) / N
    mix = DiscretizedLogisticMixture(torch.randn(4, 3, 1, **F64), loc.unsqueeze(-1), scale.unsqueeze(-1))
    single = DiscretizedLogistic(loc, scale)
    assert torch.equal(mix.log_prob(x), single.log_prob(x))
    assert torch.allclose(mix.mean, single.mean, rtol=1e-15, atol=0)
    assert torch.allclose(mix.cdf(x), single.cdf(x), rtol=1e-15, atol=0)


def test_identical_components_are_one_component() -> None:
    loc, scale = torch.tensor([0.3, 0.7], **F64), torch.tensor([0.05, 0.01], **F64)
    mix = DiscretizedLogisticMixture(torch.tensor([[0.0, 2.0, -1.0]] * 2, **F64), loc[:, None].expand(2, 3), scale[:, None].expand(2, 3))
    grid = mix.enumerate_support()
    assert torch.allclose(mix.log_prob(grid), DiscretizedLogistic(loc, scale).log_prob(grid), rtol=0, atol=1e-13)


def test_mean_variance_cdf_entropy_are_the_exact_sums() -> None:
    d = _example()
    grid = d.enumerate_support()
    p = d.log_prob(grid).exp()
    mean = (grid * p).sum(0)
    assert torch.allclose(d.mean, mean, rtol=1e-13, atol=0)
    assert torch.allclose(d.variance, ((grid - mean) ** 2 * p).sum(0), rtol=1e-11, atol=0)
    assert torch.allclose(d.cdf(grid), p.cumsum(0), rtol=0, atol=1e-13)
    assert torch.allclose(d.entropy(), -(p * p.log()).sum(0), rtol=1e-12, atol=0)


def test_gradients_are_finite_and_correct() -> None:
    logits = torch.tensor([[0.0, 1.0, -2.0], [3.0, -1.0, 0.5]], **F64, requires_grad=True)
    loc = torch.tensor([[0.1, 0.5, 0.95], [-0.3, 0.5, 2.0]], **F64, requires_grad=True)
    scale = torch.tensor([[0.02, 0.2, 1e-2], [0.05, 1e-3, 10.0]], **F64, requires_grad=True)
    x = torch.tensor([[0.0, 128 / N, 1.0], [3 / N, 127 / N, 254 / N]], **F64).T.unsqueeze(-1).expand(3, 2, 1).squeeze(-1)
    assert torch.autograd.gradcheck(lambda l, m, s: DiscretizedLogisticMixture(l, m, s).log_prob(x), (logits, loc, scale))
    # float32 decoder outputs far out: finite loss and gradients
    raw = torch.linspace(-30, 30, 2 * 3 * 5 * 4).view(2, 3 * 5 * 4, 1, 1).requires_grad_()
    head = DiscretizedLogisticMixtureHead(components=5)
    xs = torch.round(torch.rand(2, 4, 1, 1, generator=torch.Generator().manual_seed(1)) * N) / N
    nll = head.nll(raw, xs)
    (g,) = torch.autograd.grad(nll.sum(), raw)
    assert nll.shape == (2,) and torch.isfinite(nll).all() and torch.isfinite(g).all()


def test_the_head_layout_and_registration() -> None:
    head = likelihoods.get("logistic-mixture", components=3)
    assert isinstance(head, DiscretizedLogisticMixtureHead) and "logistic-mixture" in likelihoods.names()
    assert head.channels(2) == 18 and head.params_per_channel == 9
    torch.manual_seed(0)
    params = torch.randn(4, 18, 5, 6)
    d = head.distribution(params)
    assert d.batch_shape == (4, 2, 5, 6) and d.components == 3
    # component j of channel c: logits at channel j*C + c, locations at 6 + j*C + c, scales at 12 + j*C + c
    j, c = 2, 1
    assert torch.equal(d.logits[..., j], params[:, j * 2 : j * 2 + 2])
    assert torch.equal(d.loc[:, c, ..., j], params[:, 6 + j * 2 + c])
    assert torch.allclose(d.scale[:, c, ..., j], 1e-4 + torch.nn.functional.softplus(params[:, 12 + j * 2 + c]))
    assert head.mean(params).shape == (4, 2, 5, 6)
    x = torch.round(torch.rand(4, 2, 5, 6) * N) / N
    assert torch.allclose(head.nll(params, x), -d.log_prob(x).flatten(1).sum(1))
    with pytest.raises(ValueError, match=r"DiscretizedLogisticMixtureHead: decoder output must have a channel dimension .* divisible by 3"):
        head.distribution(torch.randn(1, 10, 2, 2))
    with pytest.raises(ValueError, match=r"components must be an integer >= 1, got 0"):
        DiscretizedLogisticMixtureHead(components=0)


def test_validation_sampling_expand_pickle() -> None:
    d = _example()
    with pytest.raises(ValueError, match=r"DiscretizedLogisticMixture"):
        d.log_prob(torch.tensor([0.5 / N, 0.0], **F64))
    with pytest.raises(ValueError, match=r"DiscretizedLogisticMixture: value contains nan"):
        d.log_prob(torch.tensor([math.nan, 0.0], **F64))
    with pytest.raises(ValueError, match=r"scale.*FinitePositive\(0 < value < inf\)"):
        DiscretizedLogisticMixture(torch.zeros(2), torch.zeros(2), torch.tensor([1.0, -1.0]))
    with pytest.raises(ValueError, match=r"DiscretizedLogisticMixture: loc contains inf"):
        DiscretizedLogisticMixture(torch.zeros(2), torch.tensor([0.0, math.inf]), 1.0)
    with pytest.raises(ValueError, match=r"bits must be an integer in 1\.\.16"):
        DiscretizedLogisticMixture(torch.zeros(2), torch.zeros(2), 1.0, bits=0)
    torch.manual_seed(0)
    x = d.sample((20_000,))
    assert x.shape == (20_000, 2) and d.support.check(x).all()
    se = (d.variance / 20_000).sqrt()
    assert ((x.mean(0) - d.mean).abs() < 6 * se).all()
    e = d.expand((3, 2))
    assert e.batch_shape == (3, 2) and torch.allclose(e.log_prob(x[:3]), d.log_prob(x[:3]))
    assert torch.equal(pickle.loads(pickle.dumps(d)).log_prob(x[:3]), d.log_prob(x[:3]))
