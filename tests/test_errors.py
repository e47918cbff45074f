"""Bad numbers get a message that says NaN or inf, names the argument and gives the first index."""

from __future__ import annotations

import math

import pytest
import torch

from vaelib.elbo import kl_diag_gaussians
from vaelib.likelihoods import Beta, ContinuousBernoulli, Gaussian, bernoulli_nll, gaussian_nll


def test_a_nan_in_the_data_is_named_with_its_index() -> None:
    x = torch.zeros(2, 3)
    x[1, 2] = math.nan
    with pytest.raises(ValueError, match=r"Gaussian: value contains nan at index \(1, 2\)") as err:
        Gaussian(torch.zeros(2, 3), 1.0).log_prob(x)
    assert len(str(err.value)) < 200


@pytest.mark.parametrize("make, name", [
    (lambda p: Gaussian(p, 1.0), "loc"), (lambda p: ContinuousBernoulli(p), "logits"),
    (lambda p: Beta(p.abs() + 1, 2.0), "concentration1"),
])
def test_a_non_finite_parameter_is_named(make, name: str) -> None:
    p = torch.zeros(4)
    p[3] = math.inf
    with pytest.raises(ValueError, match=rf"{name} contains inf at index \(3,\)"):
        make(p)


def test_functional_nlls_refuse_non_finite_input_even_without_validation() -> None:
    x = torch.full((2, 4), 0.5)
    x[0, 1] = math.nan
    previous = torch.distributions.Distribution._validate_args
    torch.distributions.Distribution.set_default_validate_args(False)  # what python -O does
    try:
        with pytest.raises(ValueError, match=r"gaussian_nll: x contains nan at index \(0, 1\)"):
            gaussian_nll(torch.zeros(2, 4), 1.0, x)
        logits = torch.zeros(2, 4)
        logits[1, 0] = math.inf
        with pytest.raises(ValueError, match="bernoulli_nll: the NLL of example 1 is"):
            bernoulli_nll(logits, torch.full((2, 4), 0.5))
    finally:
        torch.distributions.Distribution.set_default_validate_args(previous)


def test_kl_diag_gaussians_checks_its_inputs() -> None:
    with pytest.raises(ValueError, match="mu_q and logvar_q must be tensors of one shape"):
        kl_diag_gaussians(torch.zeros(2, 3), torch.zeros(2, 4))
    logvar = torch.zeros(2, 3)
    logvar[0, 2] = math.nan
    with pytest.raises(ValueError, match=r"kl_diag_gaussians: logvar_q contains nan at index \(0, 2\)"):
        kl_diag_gaussians(torch.zeros(2, 3), logvar)
    assert torch.isnan(kl_diag_gaussians(torch.zeros(2, 3), logvar, validate=False)).any()
