"""One argument order across vaelib: the distribution's parameters first, the data ``x`` last.

That is the order of ``head.nll(params, x)`` and of ``Distribution(params).log_prob(x)``; options that
are not parameters of the distribution (``bits``, ``sigma_min``, ``over``) follow ``x`` with defaults.
These tests read the signatures, so a function that goes back to the data-first order fails here.
"""

from __future__ import annotations

import inspect
from typing import Callable

import pytest
import torch

from vaelib import likelihoods
from vaelib.likelihoods import (
    Bernoulli,
    Beta,
    ContinuousBernoulli,
    DiscretizedLogistic,
    Gaussian,
    Huber,
    Laplace,
)

_SIGMA_FUNCTIONS = ("shared_optimal_sigma", "pixel_optimal_sigma")


def _functions() -> list[str]:
    """The public functions of ``vaelib.likelihoods`` that take parameters and data together."""
    return sorted(
        name
        for name in likelihoods.__all__
        if inspect.isfunction(getattr(likelihoods, name))
        and (name.endswith("_nll") or name.endswith("_log_prob") or name in _SIGMA_FUNCTIONS)
    )


# function -> (the distribution it scores, the constructor arguments that are options and follow x)
_DISTRIBUTION_OF: dict[str, tuple[type, tuple[str, ...]]] = {
    "gaussian_nll": (Gaussian, ()),
    "bernoulli_nll": (Bernoulli, ()),
    "cb_log_prob": (ContinuousBernoulli, ()),
    "cb_nll": (ContinuousBernoulli, ()),
    "laplace_nll": (Laplace, ()),
    "huber_nll": (Huber, ()),
    "beta_nll": (Beta, ()),
    "discretized_logistic_nll": (DiscretizedLogistic, ("bits",)),
}
# the optimal-sigma functions take the mean only: sigma is what they compute
_LOC_ONLY = ("shared_optimal_sigma", "shared_optimal_sigma_nll", "pixel_optimal_sigma", "pixel_optimal_sigma_nll")


def _parameters(fn: Callable[..., object]) -> list[inspect.Parameter]:
    return list(inspect.signature(fn).parameters.values())


def test_the_selection_covers_the_known_functions() -> None:
    found = set(_functions())
    assert found >= set(_DISTRIBUTION_OF) | set(_LOC_ONLY), "a function of the convention left __all__ or was renamed"


@pytest.mark.parametrize("name", _functions())
def test_x_comes_after_every_distribution_parameter(name: str) -> None:
    params = _parameters(getattr(likelihoods, name))
    names = [p.name for p in params]
    assert "x" in names, f"{name}{inspect.signature(getattr(likelihoods, name))} has no argument x"
    at = names.index("x")
    required = [p.name for p in params if p.default is inspect.Parameter.empty and p.name != "x"]
    assert required, f"{name} takes no distribution parameter besides x"
    assert all(names.index(r) < at for r in required), (
        f"{name}{inspect.signature(getattr(likelihoods, name))}: the data x must come after the "
        f"distribution's parameters {required}"
    )
    # the parameters that precede x have no defaults, and everything after x is an option with one
    assert all(p.default is inspect.Parameter.empty for p in params[:at]), f"{name}: a parameter before x has a default"
    assert all(p.default is not inspect.Parameter.empty for p in params[at + 1 :]), f"{name}: an argument after x has no default"
    assert all(p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD for p in params[: at + 1])


@pytest.mark.parametrize("name", sorted(_DISTRIBUTION_OF))
def test_parameters_come_in_the_order_of_the_constructor(name: str) -> None:
    dist, options = _DISTRIBUTION_OF[name]
    constructor = [p.name for p in _parameters(dist.__init__)[1:] if p.name != "validate_args" and p.name not in options]
    names = [p.name for p in _parameters(getattr(likelihoods, name))]
    assert names[: names.index("x")] == constructor, f"{name}: expected ({', '.join(constructor)}, x, ...), got {names}"
    assert all(o in names[names.index("x") + 1 :] for o in options), f"{name}: options {options} must follow x"


@pytest.mark.parametrize("name", _LOC_ONLY)
def test_optimal_sigma_functions_take_the_mean_then_x(name: str) -> None:
    names = [p.name for p in _parameters(getattr(likelihoods, name))]
    assert names[:2] == ["loc", "x"], f"{name}: expected (loc, x, ...), got {names}"


def test_the_functions_score_x_under_the_distribution_of_their_parameters() -> None:
    """Values, not just names: each functional NLL equals -Distribution(params).log_prob(x) summed per example,
    on inputs where exchanging a parameter with x changes the answer."""
    gen = torch.Generator().manual_seed(0)
    f64 = dict(dtype=torch.float64)
    x = torch.rand(3, 5, generator=gen, **f64) * 0.8 + 0.1
    x8 = torch.round(x * 255) / 255
    loc = torch.rand(3, 5, generator=gen, **f64)
    scale = torch.rand(3, 5, generator=gen, **f64) + 0.2
    delta = torch.rand(3, 5, generator=gen, **f64) + 0.5
    a, b = torch.rand(3, 5, generator=gen, **f64) * 3 + 0.5, torch.rand(3, 5, generator=gen, **f64) * 3 + 0.5
    logits = torch.randn(3, 5, generator=gen, **f64) * 2

    def nll(d: torch.distributions.Distribution, data: torch.Tensor) -> torch.Tensor:
        return -d.log_prob(data).sum(1)

    close = torch.testing.assert_close
    close(likelihoods.gaussian_nll(loc, scale, x), nll(Gaussian(loc, scale), x))
    close(likelihoods.bernoulli_nll(logits, x), nll(Bernoulli(logits), x))
    close(likelihoods.cb_nll(logits, x), nll(ContinuousBernoulli(logits), x))
    close(likelihoods.cb_log_prob(logits, x), ContinuousBernoulli(logits).log_prob(x))
    close(likelihoods.laplace_nll(loc, scale, x), nll(Laplace(loc, scale), x))
    close(likelihoods.huber_nll(loc, scale, delta, x), nll(Huber(loc, scale, delta), x))
    close(likelihoods.beta_nll(a, b, x), nll(Beta(a, b), x))
    close(likelihoods.discretized_logistic_nll(loc, scale, x8), nll(DiscretizedLogistic(loc, scale), x8))
    close(likelihoods.discretized_logistic_nll(loc, scale, x8, bits=8), nll(DiscretizedLogistic(loc, scale, 8), x8))


def test_old_order_with_a_number_last_is_an_error() -> None:
    """A call left in the data-first order with a numeric scale puts the number where x goes: a clear error."""
    x = torch.rand(2, 3)
    with pytest.raises(ValueError, match=r"gaussian_nll: x .*must be a tensor, got float"):
        likelihoods.gaussian_nll(x, torch.zeros(2, 3), 0.5)


@pytest.mark.parametrize("name", likelihoods.names())
def test_every_head_takes_params_then_x(name: str) -> None:
    head = likelihoods.get(name)
    assert list(inspect.signature(head.nll).parameters) == ["params", "x"], f"{name}: nll{inspect.signature(head.nll)}"
    if hasattr(head, "distribution_given"):
        assert list(inspect.signature(head.distribution_given).parameters) == ["params", "x"]


def test_elbo_densities_take_the_parameters_then_z() -> None:
    from vaelib.elbo import log_normal_diag, mc_kl

    for fn in (log_normal_diag, mc_kl):
        assert [p.name for p in _parameters(fn)] == ["mu", "logvar", "z"], f"{fn.__name__}{inspect.signature(fn)}"
