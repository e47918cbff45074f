"""The registry and every head: channels, NLL equal to the functional form, means, learned parameters."""

from __future__ import annotations

import math

import pytest
import torch

from vaelib import likelihoods
from vaelib.likelihoods import (
    Beta,
    Gaussian,
    bernoulli_nll,
    cb_mean,
    cb_nll,
    discretized_logistic_nll,
    gaussian_nll,
    huber_nll,
    laplace_nll,
    pixel_optimal_sigma_nll,
    shared_optimal_sigma_nll,
)
from vaelib.models import MLPVAE

CHANNELS = {
    "gaussian": 1,
    "gaussian-learned": 1,
    "gaussian-image": None,  # C + 1
    "gaussian-pixel": 2,
    "gaussian-optimal": 1,
    "gaussian-optimal-pixel": 1,
    "bernoulli": 1,
    "cb": 1,
    "huber": 1,
    "laplace": 1,
    "beta": 2,
    "logistic": 2,
}
KWARGS = {"beta": {"eps": 1e-3}}


def test_registry_lists_every_likelihood_of_the_book() -> None:
    assert set(CHANNELS) <= set(likelihoods.names())
    for name, per in CHANNELS.items():
        head = likelihoods.get(name, **KWARGS.get(name, {}))
        assert head.channels(3) == (4 if per is None else 3 * per)


def test_register_adds_one_name() -> None:
    likelihoods.register("test-only-gaussian", likelihoods.FixedSigmaGaussian)
    try:
        assert likelihoods.get("test-only-gaussian", sigma=2.0).sigma == 2.0
        with pytest.raises(ValueError, match="already registered"):
            likelihoods.register("test-only-gaussian", likelihoods.FixedSigmaGaussian)
    finally:
        likelihoods._REGISTRY.pop("test-only-gaussian")


@pytest.mark.parametrize("name", sorted(CHANNELS))
def test_every_head_trains_in_the_vae(name: str) -> None:
    torch.manual_seed(0)
    head = likelihoods.get(name, **KWARGS.get(name, {}))
    model = MLPVAE((2, 4, 4), 3, head, (16,))
    x = torch.randint(0, 256, (5, 2, 4, 4)).float() / 255
    terms = model.terms(x)
    assert terms.rec.shape == (5,) and torch.isfinite(terms.rec).all()
    terms.loss().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    recon = model.reconstruct(x)
    assert recon.shape == x.shape and torch.isfinite(recon).all()


def test_heads_equal_the_functional_nlls() -> None:
    gen = torch.Generator().manual_seed(1)
    x = (torch.randint(0, 256, (3, 2, 4, 4), generator=gen).double() / 255)
    one = torch.randn(3, 2, 4, 4, generator=gen, dtype=torch.float64)
    two = torch.randn(3, 4, 4, 4, generator=gen, dtype=torch.float64)
    sp = torch.nn.functional.softplus

    torch.testing.assert_close(likelihoods.get("bernoulli").nll(one, x), bernoulli_nll(one, x))
    torch.testing.assert_close(likelihoods.get("cb").nll(one, x), cb_nll(one, x))
    torch.testing.assert_close(likelihoods.get("cb").mean(one), cb_mean(one))
    torch.testing.assert_close(likelihoods.get("huber", scale=0.5, delta=0.2).nll(one, x), huber_nll(one, 0.5, 0.2, x))
    torch.testing.assert_close(likelihoods.get("laplace", scale=0.3).nll(one, x), laplace_nll(one, 0.3, x))
    loc, raw = two.chunk(2, 1)
    torch.testing.assert_close(likelihoods.get("laplace", scale="pixel").nll(two, x), laplace_nll(loc, 1e-3 + sp(raw), x))
    torch.testing.assert_close(likelihoods.get("gaussian-pixel", sigma_min=0.01).nll(two, x), gaussian_nll(loc, 0.01 + sp(raw), x))
    torch.testing.assert_close(likelihoods.get("logistic").nll(two, x), discretized_logistic_nll(loc, 1e-4 + sp(raw), x))
    torch.testing.assert_close(likelihoods.get("gaussian-optimal").nll(one, x), shared_optimal_sigma_nll(one, x))
    torch.testing.assert_close(likelihoods.get("gaussian-optimal-pixel").nll(one, x), pixel_optimal_sigma_nll(one, x))
    assert torch.equal(likelihoods.get("gaussian-optimal").mean(one), one)


def test_image_sigma_is_one_sigma_per_image() -> None:
    head = likelihoods.get("gaussian-image", sigma_min=0.01)
    params = torch.randn(3, 3, 4, 4, dtype=torch.float64)  # C = 2 means + 1 raw channel
    p = head.distribution(params)
    assert isinstance(p, Gaussian) and p.batch_shape == (3, 2, 4, 4)
    sigma = 0.01 + torch.nn.functional.softplus(params[:, 2].mean((1, 2)))
    torch.testing.assert_close(p.scale, sigma.view(3, 1, 1, 1).expand(3, 2, 4, 4))
    assert torch.equal(head.mean(params), params[:, :2])


def test_learned_sigma_is_a_trained_parameter() -> None:
    head = likelihoods.get("gaussian-learned", sigma=0.5)
    assert [n for n, _ in head.named_parameters()] == ["log_sigma"]
    assert math.isclose(head.sigma.item(), 0.5, rel_tol=1e-6)
    x = torch.rand(4, 1, 3, 3)
    mu = torch.rand(4, 1, 3, 3)
    head.nll(mu, x).sum().backward()
    # d/d log sigma of SSE/(2 sigma^2) + d log sigma = -SSE/sigma^2 + d, summed over the batch
    sse = (x - mu).pow(2).sum()
    assert math.isclose(head.log_sigma.grad.item(), (-sse / 0.25 + 36).item(), rel_tol=1e-4)


def test_beta_head_concentrations_and_cap() -> None:
    params = torch.tensor([[-200.0, 0.0, 50.0, 5.0]], dtype=torch.float64).view(1, 4, 1, 1)
    p = likelihoods.get("beta", eps=0.01).distribution(params)
    assert isinstance(p, Beta)
    assert p.concentration1.min().item() >= 1e-3
    capped = likelihoods.get("beta", max_concentration=20.0).distribution(params * 100)
    assert capped.concentration1.max().item() <= 20.0
    assert capped.concentration0.max().item() <= 20.0
    # near zero the cap is the plain softplus
    small = likelihoods.get("beta", max_concentration=1e6).distribution(torch.full((1, 2, 1, 1), -3.0, dtype=torch.float64))
    torch.testing.assert_close(small.concentration1, 1e-3 + torch.nn.functional.softplus(torch.tensor(-3.0, dtype=torch.float64)).expand(1, 1, 1, 1), rtol=1e-6, atol=0)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: likelihoods.get("gaussian-pixel").nll(torch.zeros(2, 3, 4, 4), torch.zeros(2, 1, 4, 4)), r"PixelSigmaGaussian.*divisible by 2"),
        (lambda: likelihoods.get("gaussian-image", sigma_min=0.0), r"ImageSigmaGaussian.*sigma_min"),
        (lambda: likelihoods.get("huber", delta=0.0), r"HuberHead.*delta.*0 < value < inf"),
        (lambda: likelihoods.get("huber", scale=-1.0), r"HuberHead.*scale.*0 < value < inf"),
        (lambda: likelihoods.get("beta", eps=0.7), r"BetaHead.*eps"),
        (lambda: likelihoods.get("beta", max_concentration=1e-4), r"BetaHead.*max_concentration"),
        (lambda: likelihoods.get("gaussian-optimal").distribution(torch.zeros(1, 1)), r"OptimalSigmaGaussian.*distribution_given"),
        (lambda: likelihoods.get("gaussian-learned", sigma=float("nan")), r"LearnedSigmaGaussian.*sigma"),
        (lambda: likelihoods.get("cauchy"), r"unknown likelihood 'cauchy'.*bernoulli"),
    ],
)
def test_bad_input_is_a_clear_value_error(make, match: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=match):
        make()


def test_cb_head_clip_reproduces_the_probability_clamp() -> None:
    logits = torch.tensor([[-50.0, -5.0, 0.0, 5.0, 50.0]], dtype=torch.float64)
    clipped = likelihoods.get("cb", clip=1e-4)
    lam = torch.sigmoid(clipped.distribution(logits).logits)
    torch.testing.assert_close(lam, torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4), rtol=1e-12, atol=0)
    assert clipped.mean(logits).max().item() == pytest.approx(0.8915, abs=1e-4)  # the clamp's ceiling
    assert likelihoods.get("cb").mean(logits).max().item() == pytest.approx(1 - 1 / 50, rel=1e-9)
    with pytest.raises(ValueError, match="clip must satisfy"):
        likelihoods.get("cb", clip=0.7)
