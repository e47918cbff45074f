"""Heads on the 8-bit scale: the exact pmf of a continuous head, training on dequantised pixels, the
discrete NLL of a trained model (`vaelib.bounds.discrete_nll`) and the bits/dim probe of chapter 8."""

from __future__ import annotations

import math

import pytest
import torch

from vaelib import likelihoods
from vaelib.bounds import discrete_nll, fit_shared_sigma, iwae_bound
from vaelib.data import ImageSet
from vaelib.likelihoods import (
    DequantizedHead,
    Discretized,
    DiscretizedHead,
    FixedSigmaGaussian,
    Gaussian,
    NoDiscreteScale,
    pmf_head,
)
from vaelib.models import MLPVAE
from vaelib.probes import PROBES, ProbeContext


def _grey(n: int = 6, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, 1, 4, 4), generator=g).double() / 255
    x[:, :, 0] = 0.0
    x[:, :, 1] = 1.0
    return x


def test_discretized_head_is_the_bin_mass_of_its_base_and_trains_its_parameters() -> None:
    head = likelihoods.get("gaussian-learned", sigma=0.3, discrete="pmf").double()
    assert isinstance(head, DiscretizedHead) and head.channels(3) == 3
    x = _grey()
    params = torch.rand(x.shape, dtype=torch.float64, requires_grad=True)
    nll = head.nll(params, x)
    sigma = head.base.sigma.detach().expand_as(params)
    expected = -Discretized(Gaussian(params, sigma)).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(nll, expected, rtol=1e-12, atol=0)
    nll.sum().backward()
    assert params.grad is not None and bool(params.grad.isfinite().all())
    assert head.base.log_sigma.grad is not None and head.base.log_sigma.grad.item() != 0.0
    # the mean is the discrete distribution's, inside [0, 1] even for a location far outside it
    far = torch.tensor([[-3.0, 0.5, 4.0]], dtype=torch.float64)
    mean = head.mean(far)
    torch.testing.assert_close(mean, Discretized(Gaussian(far, head.base.sigma.detach().expand_as(far))).mean)
    assert 0.0 <= mean.min().item() and mean.max().item() <= 1.0 and abs(mean[0, 1].item() - 0.5) < 1e-12


def test_dequantized_head_bounds_the_discrete_nll_it_evaluates() -> None:
    """Eq. (eq-dequant-bound) for one pixel: E_u[-log p(k/n + u/n)] + log n >= -log P(k), checked with the
    expectation over u computed by quadrature, and the head's own Monte Carlo value matching it."""
    head = likelihoods.get("gaussian", sigma=0.02, discrete="dequantized").double()
    n = 255
    for k, mu in [(0, 0.0), (0, 0.01), (40, 0.2), (128, 0.5), (255, 0.97)]:
        u = (torch.arange(20000, dtype=torch.float64) + 0.5) / 20000 - 0.5
        density = Gaussian(torch.tensor(mu, dtype=torch.float64), 0.02).log_prob(k / n + u / n)
        bound = -density.mean().item() + math.log(n)
        x = torch.full((1, 1), k / n, dtype=torch.float64)
        params = torch.full((1, 1), mu, dtype=torch.float64)
        exact = head.eval().nll(params, x).item()
        assert bound >= exact - 1e-12
        torch.manual_seed(3)
        draws = head.train().nll(params.expand(40000, 1), x.expand(40000, 1))
        assert abs(draws.mean().item() - bound) < 4 * draws.std().item() / math.sqrt(40000) + 1e-12
    # the training NLL is the base's NLL at x + u/n, u ~ U(-1/2, 1/2) from torch's generator, plus d log n
    x = _grey()
    params = torch.rand(x.shape, dtype=torch.float64)
    torch.manual_seed(4)
    u = torch.rand(x.shape, dtype=torch.float64) - 0.5
    torch.manual_seed(4)
    trained = head.train().nll(params, x)
    torch.testing.assert_close(trained, head.base.nll(params, x + u / n) + 16 * math.log(n), rtol=1e-14, atol=0)


def test_get_names_the_allowed_discrete_modes() -> None:
    with pytest.raises(ValueError, match=r"discrete must be None or one of pmf, dequantized, got 'bins'"):
        likelihoods.get("gaussian", discrete="bins")
    assert isinstance(likelihoods.get("laplace", scale="pixel", discrete="dequantized"), DequantizedHead)


@pytest.mark.parametrize(
    "name, args, message",
    [
        ("bernoulli", {}, "already a likelihood of discrete data"),
        ("logistic", {}, "already a likelihood of discrete data"),
        ("gaussian-optimal", {}, "computes sigma from the image it scores"),
        ("gaussian-optimal-pixel", {}, "computes sigma from the image it scores"),
    ],
)
def test_discretized_head_refuses_heads_without_a_density_to_discretise(name: str, args: dict, message: str) -> None:
    with pytest.raises(ValueError, match=f"DiscretizedHead: base .*{message}"):
        DiscretizedHead(likelihoods.get(name, **args))


def test_pmf_head_of_every_kind_of_head() -> None:
    for name in ("bernoulli", "logistic", "logistic-mixture"):
        head = likelihoods.get(name)
        assert pmf_head(head) is head
    deq = likelihoods.get("gaussian", discrete="dequantized")
    assert pmf_head(deq) is deq.pmf
    wrapped = pmf_head(likelihoods.get("beta"))
    assert isinstance(wrapped, DiscretizedHead) and wrapped.levels == 256
    with pytest.raises(NoDiscreteScale, match="pass a sigma fixed beforehand"):
        pmf_head(likelihoods.get("gaussian-optimal-batch"))
    fixed = pmf_head(likelihoods.get("gaussian-optimal-batch"), sigma=0.25)
    assert isinstance(fixed.base, FixedSigmaGaussian) and fixed.base.sigma == 0.25
    with pytest.raises(NoDiscreteScale, match="each pixel's sigma from that pixel's own value"):
        pmf_head(likelihoods.get("gaussian-optimal-pixel"), sigma=0.25)
    with pytest.raises(NoDiscreteScale, match="on 16 levels, not 256"):
        pmf_head(likelihoods.get("logistic", bits=4))


def _model(name: str, **args: object) -> MLPVAE:
    torch.manual_seed(0)
    return MLPVAE((1, 4, 4), 2, likelihoods.get(name, **args), hidden=(8,)).double().eval()


def test_discrete_nll_is_the_iwae_bound_of_the_pmf_head() -> None:
    model, x = _model("gaussian", sigma=0.2), _grey()
    nll, info = discrete_nll(model, x, 7, torch.Generator().manual_seed(1), batch=4)
    g = torch.Generator().manual_seed(1)
    parts = torch.cat([-iwae_bound(model, x[i : i + 4], 7, g, head=pmf_head(model.head)) for i in (0, 4)])
    torch.testing.assert_close(nll, parts, rtol=1e-12, atol=0)
    assert info == {"scale": "8-bit"} and nll.shape == (6,)
    # the density's own IWAE is a different number: the density at the pixels is not a probability
    density = -iwae_bound(model, x, 7, torch.Generator().manual_seed(1))
    assert not torch.allclose(density, nll)


def test_discrete_nll_of_a_bernoulli_exists_on_binary_images_only() -> None:
    model = _model("bernoulli")
    with pytest.raises(NoDiscreteScale, match="no 8-bit bits/dim exists"):
        discrete_nll(model, _grey(), 3)
    binary = (_grey() > 0.5).double()
    nll, info = discrete_nll(model, binary, 3, torch.Generator().manual_seed(0))
    assert info == {"scale": "binary"} and bool((nll > 0).all())


def test_shared_sigma_fitted_on_training_images_scores_the_sigma_vae() -> None:
    model, x = _model("gaussian-optimal-batch"), _grey(20)
    g = torch.Generator().manual_seed(5)
    sigma = fit_shared_sigma(model, x, g)
    g = torch.Generator().manual_seed(5)
    mu, logvar = model.encode(x)
    z = mu + torch.randn(mu.shape, generator=g, dtype=mu.dtype) * torch.exp(0.5 * logvar)
    assert sigma == pytest.approx(math.sqrt((x - model.decode(z)).pow(2).mean().item()), rel=1e-12)
    with pytest.raises(NoDiscreteScale, match="pass a sigma fixed beforehand"):
        discrete_nll(model, x, 2)
    nll, info = discrete_nll(model, x, 2, torch.Generator().manual_seed(0), fit_images=x)
    assert info["scale"] == "8-bit" and info["sigma"] > 0 and nll.shape == (20,)


def test_bits_per_dim_probe_records_a_valid_scale_or_why_there_is_none(monkeypatch: pytest.MonkeyPatch) -> None:
    import vaelib.probes as probes

    monkeypatch.setattr(probes, "BPD_K", 5)
    x = _grey(8).float()
    data = ImageSet(x, torch.zeros(8, dtype=torch.long), "toy")
    for name, args in [("cb", {}), ("bernoulli", {}), ("logistic", {})]:
        torch.manual_seed(0)
        model = MLPVAE((1, 4, 4), 2, likelihoods.get(name, **args), hidden=(8,)).eval()
        out = PROBES["bits_per_dim"](ProbeContext(model=model, train=data, test=data, clean_test=data, scale=1.0))
        assert out["k"] == 5 and out["images"] == 8
        if name == "bernoulli":
            assert out["scale"] is None and "no 8-bit bits/dim" in out["why"]
            continue
        assert out["scale"] == "8-bit" and len(out["per_image"]) == 8
        assert out["bits_per_dim"] == pytest.approx(sum(out["per_image"]) / 8, rel=1e-12)
        assert ("density_bits_per_dim" in out) == (name == "cb")
        assert out["bits_per_dim"] > 0  # the NLL of a probability
