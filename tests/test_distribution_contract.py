"""vaelib's distributions held to the generic checks PyTorch runs over its own
(test/distributions/test_distributions.py): support and constraints, sample shapes, moments and
entropy by Monte Carlo, cdf and icdf, expand, validation, constraint transforms, kl_divergence,
pickling and enumerate_support."""

from __future__ import annotations

import math
import pickle

import mpmath

import pytest
import torch
from torch.distributions import biject_to, kl_divergence, transform_to

from vaelib.likelihoods import Bernoulli, Beta, ContinuousBernoulli, DiscretizedLogistic, Gaussian, Huber, Laplace

F64 = dict(dtype=torch.float64)
EXAMPLES = {
    "Gaussian": lambda: Gaussian(torch.tensor([0.2, -1.0], **F64), torch.tensor([0.5, 2.0], **F64)),
    "Laplace": lambda: Laplace(torch.tensor([0.2, -1.0], **F64), torch.tensor([0.5, 2.0], **F64)),
    "Huber": lambda: Huber(torch.tensor([0.2, -1.0], **F64), torch.tensor([0.5, 2.0], **F64), torch.tensor([0.3, 2.5], **F64)),
    "ContinuousBernoulli": lambda: ContinuousBernoulli(torch.tensor([-3.0, 0.4], **F64)),
    "Beta": lambda: Beta(torch.tensor([0.7, 5.0], **F64), torch.tensor([2.0, 3.0], **F64)),
    "Bernoulli": lambda: Bernoulli(torch.tensor([-1.0, 2.0], **F64)),
    "DiscretizedLogistic": lambda: DiscretizedLogistic(torch.tensor([0.026, 0.6], **F64), torch.tensor([0.083, 0.01], **F64), 4),
}
OTHER = {  # a second member of each family, for kl_divergence
    "Gaussian": lambda: Gaussian(torch.tensor([1.0, 0.0], **F64), torch.tensor([1.0, 0.7], **F64)),
    "Laplace": lambda: Laplace(torch.tensor([1.0, 0.0], **F64), torch.tensor([1.0, 0.7], **F64)),
    "ContinuousBernoulli": lambda: ContinuousBernoulli(torch.tensor([2.0, -0.5], **F64)),
    "Beta": lambda: Beta(torch.tensor([1.5, 2.0], **F64), torch.tensor([1.0, 6.0], **F64)),
    "Bernoulli": lambda: Bernoulli(torch.tensor([0.5, -3.0], **F64)),
    "DiscretizedLogistic": lambda: DiscretizedLogistic(torch.tensor([0.3, 0.5], **F64), torch.tensor([0.2, 0.05], **F64), 4),
}
N = 200_000


def _draws(d, n: int = N) -> torch.Tensor:
    torch.manual_seed(0)
    return d.sample((n,))


@pytest.mark.parametrize("name", EXAMPLES)
def test_samples_lie_in_the_support_with_the_right_shape(name: str) -> None:
    d = EXAMPLES[name]()
    for pname, constraint in d.arg_constraints.items():
        assert constraint.check(getattr(d, pname)).all()
    assert d.sample().shape == d.batch_shape
    assert d.sample((3, 4)).shape == (3, 4, *d.batch_shape)
    if d.has_rsample:
        assert d.rsample((5,)).shape == (5, *d.batch_shape)
    assert d.support.check(_draws(d, 1000)).all()


@pytest.mark.parametrize("name", EXAMPLES)
def test_mean_variance_and_entropy_match_monte_carlo(name: str) -> None:
    d = EXAMPLES[name]()
    x = _draws(d)
    se_mean = (d.variance / N).sqrt()
    assert ((x.mean(0) - d.mean).abs() < 6 * se_mean).all()
    fourth = (x - d.mean).pow(4).mean(0)
    se_var = ((fourth - d.variance.pow(2)) / N).sqrt()
    assert ((x.var(0) - d.variance).abs() < 6 * se_var + 1e-12).all()
    if name != "Bernoulli":  # the Bernoulli scores grey levels: its entropy is that of its mass function on {0, 1}
        lp = d.log_prob(x)
        assert ((-lp.mean(0) - d.entropy()).abs() < 6 * lp.std(0) / math.sqrt(N)).all()


@pytest.mark.parametrize("name", ["Gaussian", "Laplace", "Huber", "ContinuousBernoulli"])
def test_cdf_and_icdf_are_inverse_and_match_the_samples(name: str) -> None:
    d = EXAMPLES[name]()
    u = torch.tensor([1e-10, 1e-3, 0.1, 0.37, 0.5, 0.81, 0.999, 1 - 1e-9], **F64).unsqueeze(1).expand(-1, 2)
    assert torch.allclose(d.cdf(d.icdf(u)), u, rtol=1e-9, atol=1e-13)
    x = _draws(d, 20_000)
    empirical = (x.unsqueeze(0) <= d.icdf(u[2:7]).unsqueeze(1)).double().mean(1)
    assert (empirical - u[2:7]).abs().max() < 0.02


@pytest.mark.parametrize("name", ["Bernoulli", "DiscretizedLogistic", "Beta"])
def test_cdf_is_the_running_sum_of_the_probabilities(name: str) -> None:
    d = EXAMPLES[name]()
    if name == "Beta":  # continuous: the CDF is the integral of the density (mpmath quadrature, 50 digits)
        x = torch.tensor([1e-6, 0.02, 0.3, 0.5, 0.77, 0.999], **F64).unsqueeze(1).expand(-1, 2)
        got = d.cdf(x)
        for j in range(2):
            a, b = (float(t[j]) for t in (d.concentration1, d.concentration0))
            density = lambda t: t ** (a - 1) * (1 - t) ** (b - 1) / mpmath.beta(a, b)  # noqa: E731
            for i in range(x.shape[0]):
                ref = mpmath.quad(density, [0, float(x[i, j])])
                assert float(abs(got[i, j].item() - ref) / ref) < 1e-12, (a, b, float(x[i, j]))
                assert float(abs(got[i, j].item() - mpmath.betainc(a, b, 0, float(x[i, j]), regularized=True)) / ref) < 1e-12
        assert (got[1:] > got[:-1]).all()  # increasing
        return
    grid = d.enumerate_support()
    pmf = d.log_prob(grid).exp()
    assert torch.allclose(pmf.sum(0), torch.ones(2, **F64), atol=1e-12)
    assert torch.allclose(d.cdf(grid), pmf.cumsum(0), atol=1e-12)
    assert torch.equal(d.cdf(torch.full((2,), -0.5, **F64)), torch.zeros(2, **F64))
    assert d.support.is_discrete or name == "Bernoulli"


def test_the_mode_of_the_discretised_logistic_counts_the_tail_in_the_edge_bin() -> None:
    d = DiscretizedLogistic(torch.tensor(0.026, **F64), torch.tensor(0.083, **F64))
    grid = d.enumerate_support()
    assert d.mode.item() == grid[d.log_prob(grid).argmax()].item() == 0.0
    assert d.log_prob(torch.tensor(0.0, **F64)).exp().item() == pytest.approx(0.43, abs=0.01)


@pytest.mark.parametrize("name", EXAMPLES)
def test_expand_pickle_and_validation(name: str) -> None:
    d = EXAMPLES[name]()
    e = d.expand((3, 2))
    x = d.sample((3,))
    assert e.batch_shape == (3, 2) and torch.allclose(e.log_prob(x), d.log_prob(x))
    again = pickle.loads(pickle.dumps(d))
    assert torch.equal(again.log_prob(x), d.log_prob(x))
    with pytest.raises(ValueError, match=type(d).__name__):
        d.log_prob(torch.full((2,), math.nan, **F64))


@pytest.mark.parametrize("name", ["Gaussian", "Laplace", "Huber", "ContinuousBernoulli", "Beta"])
def test_constraint_transforms_map_the_reals_into_the_support(name: str) -> None:
    d = EXAMPLES[name]()
    y = torch.linspace(-30, 30, 61, **F64)
    for registry in (biject_to, transform_to):
        inside = registry(d.support)(y)
        assert d.support.check(inside).all() or name == "Beta"  # sigmoid(+-30) rounds to 0 or 1 in the far ends
        assert d.support.check(registry(d.support)(y[20:41])).all()
    for pname, constraint in d.arg_constraints.items():
        assert constraint.check(biject_to(constraint)(y[20:41])).all()


@pytest.mark.parametrize("name", OTHER)
def test_kl_divergence_is_zero_on_itself_and_matches_monte_carlo(name: str) -> None:
    p, q = EXAMPLES[name](), OTHER[name]()
    assert torch.allclose(kl_divergence(p, p), torch.zeros(2, **F64), atol=1e-12)
    kl = kl_divergence(p, q)
    if p.support.is_discrete or name == "Bernoulli":
        grid = p.enumerate_support()
        exact = (p.log_prob(grid).exp() * (p.log_prob(grid) - q.log_prob(grid))).sum(0)
        assert torch.allclose(kl, exact, rtol=1e-10)
        return
    x = _draws(p)
    ratio = p.log_prob(x) - q.log_prob(x)
    assert ((ratio.mean(0) - kl).abs() < 6 * ratio.std(0) / math.sqrt(N)).all()


def test_huber_has_no_kl_and_its_rsample_reaches_delta() -> None:
    with pytest.raises(NotImplementedError):
        kl_divergence(EXAMPLES["Huber"](), EXAMPLES["Huber"]())
    delta = torch.tensor(1.5, **F64, requires_grad=True)
    torch.manual_seed(1)
    Huber(torch.tensor(0.0, **F64), 1.0, delta).rsample((1000,)).abs().mean().backward()
    assert delta.grad is not None and torch.isfinite(delta.grad) and delta.grad != 0
