from __future__ import annotations

import math

import pytest
import torch

from vaelib import likelihoods, seed_everything
from vaelib.metrics import active_units, prior_hole_kl
from vaelib.models import MLPVAE


class _FixedEncoder(MLPVAE):
    """A VAE whose posterior is set by hand, to check the metrics against known answers."""

    def __init__(self, mu: torch.Tensor, logvar: torch.Tensor) -> None:
        super().__init__((1, 1, 1), mu.shape[1], likelihoods.get("gaussian"), hidden=(2,))
        self._mu, self._logvar = mu, logvar

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self._mu, self._logvar


def test_active_units_counts_dimensions_whose_mean_varies() -> None:
    gen = torch.Generator().manual_seed(0)
    mu = torch.zeros(500, 4)
    mu[:, 0] = torch.randn(500, generator=gen)  # variance 1: active
    mu[:, 1] = 0.05 * torch.randn(500, generator=gen)  # variance 0.0025: inactive
    mu[:, 2] = 0.3 * torch.randn(500, generator=gen)  # variance 0.09: active
    model = _FixedEncoder(mu, torch.zeros(500, 4))
    assert active_units(model, torch.zeros(500, 1, 1, 1)) == 2
    assert active_units(model, torch.zeros(500, 1, 1, 1), threshold=1e-4) == 3


def test_prior_hole_kl_is_zero_when_the_aggregate_posterior_is_the_prior() -> None:
    n, k = 1, 3
    model = _FixedEncoder(torch.zeros(n, k), torch.zeros(n, k))
    assert prior_hole_kl(model, torch.zeros(n, 1, 1, 1), generator=torch.Generator().manual_seed(0)) == pytest.approx(0.0, abs=1e-12)


def test_prior_hole_kl_matches_the_closed_form_for_one_gaussian() -> None:
    """With a single posterior N(m, s^2) per dimension, KL(N(0,1) || N(m, s^2)) has a closed form."""
    m, s = 0.5, 0.4
    k = 2
    model = _FixedEncoder(torch.full((1, k), m, dtype=torch.float64), torch.full((1, k), 2 * math.log(s), dtype=torch.float64))
    exact = k * (math.log(s) + (1 + m**2) / (2 * s**2) - 0.5)
    seed_everything(0)
    got = prior_hole_kl(model, torch.zeros(1, 1, 1, 1), n_draws=200_000, generator=torch.Generator().manual_seed(1))
    assert got == pytest.approx(exact, rel=0.02)


def test_frechet_distance_of_diagonal_gaussians_has_its_closed_form() -> None:
    """For diagonal covariances the distance is sum (mu_a - mu_b)^2 + sum (s_a - s_b)^2 exactly."""
    from vaelib.metrics import frechet_distance

    gen = torch.Generator().manual_seed(0)
    n, f = 4000, 5
    a = torch.randn(n, f, generator=gen, dtype=torch.float64)
    b = torch.randn(n, f, generator=gen, dtype=torch.float64)
    # whiten each sample exactly so that its mean and covariance are the chosen ones
    def shape_to(x: torch.Tensor, mu: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        x = x - x.mean(0)
        x = x @ torch.linalg.inv(torch.linalg.cholesky(torch.cov(x.T))).T
        return mu + x * s
    mu_a, s_a = torch.arange(5.0, dtype=torch.float64), torch.linspace(0.5, 2.0, 5, dtype=torch.float64)
    mu_b, s_b = torch.zeros(5, dtype=torch.float64), torch.linspace(1.0, 3.0, 5, dtype=torch.float64)
    got = frechet_distance(shape_to(a, mu_a, s_a), shape_to(b, mu_b, s_b))
    exact = float((mu_a - mu_b).pow(2).sum() + (s_a - s_b).pow(2).sum())
    assert got == pytest.approx(exact, rel=1e-10)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="frechet_distance"):
        frechet_distance(a, b[:, :3])


def test_classifier_learns_digits_and_is_cached(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from vaelib import data
    from vaelib.classifier import accuracy, load_classifier, train_classifier
    from vaelib.metrics import fid

    splits = data.load_mnist_5k()
    small = data.ImageSet(splits.train.images[:1000], splits.train.labels[:1000], "subset")
    model = train_classifier(small, epochs=2)
    assert accuracy(model, splits.test) > 0.8
    again = train_classifier(small, epochs=2)
    assert all(torch.equal(p, q) for p, q in zip(model.state_dict().values(), again.state_dict().values()))
    real, other = splits.test.images[:500], splits.test.images[500:]
    noise = torch.rand(500, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    assert fid(model, real, other) < fid(model, real, noise)


def test_load_classifier_writes_the_cache_once(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import vaelib.classifier as classifier

    calls = []
    real_train = classifier.train_classifier

    def counting(data, **kw):  # type: ignore[no-untyped-def]
        calls.append(1)
        return real_train(data.__class__(data.images[:200], data.labels[:200], "tiny"), epochs=1)

    monkeypatch.setattr(classifier, "train_classifier", counting)
    first = classifier.load_classifier(tmp_path)
    files = list(tmp_path.iterdir())
    assert len(files) == 1 and files[0].suffix == ".pt"
    second = classifier.load_classifier(tmp_path)
    assert len(calls) == 1
    assert all(torch.equal(p, q) for p, q in zip(first.state_dict().values(), second.state_dict().values()))


def test_mean_and_se_over_seeds() -> None:
    from vaelib.metrics import mean_and_se

    mean, se = mean_and_se([1.0, 2.0, 4.0])
    assert mean == pytest.approx(7 / 3, rel=1e-15)
    assert se == pytest.approx(math.sqrt(((1 - 7 / 3) ** 2 + (2 - 7 / 3) ** 2 + (4 - 7 / 3) ** 2) / 2 / 3), rel=1e-14)
    with pytest.raises(ValueError, match="mean_and_se: needs at least 2 values"):
        mean_and_se([1.0])
