"""The model and the training loop: shapes, repeatability, learning, and argument checks."""

from __future__ import annotations

import pytest
import torch

from vaelib import data, likelihoods, seed_everything
from vaelib.models import MLPVAE
from vaelib.profile import current_profile, pick
from vaelib.train import History, evaluate, train


@pytest.fixture(scope="module")
def digits() -> data.Splits:
    return data.load_mnist_5k()


def _model(seed: int = 0, sigma: float = 0.3) -> MLPVAE:
    seed_everything(seed)
    return MLPVAE((1, 28, 28), 8, likelihoods.get("gaussian", sigma=sigma), hidden=(64,))


def test_model_shapes() -> None:
    model = _model()
    x = torch.rand(5, 1, 28, 28)
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (5, 8)
    assert model.decode(mu).shape == (5, 1, 28, 28)
    out = model(x)
    assert out.z.shape == (5, 8) and out.params.shape == (5, 1, 28, 28)
    for kl in ("analytic", "mc"):
        terms = model.terms(x, kl=kl)
        assert terms.rec.shape == terms.kl.shape == (5,)
    assert model.reconstruct(x).shape == (5, 1, 28, 28)
    assert model.sample(3, generator=torch.Generator().manual_seed(0)).shape == (3, 1, 28, 28)
    with pytest.raises(ValueError, match="kl must be"):
        model.terms(x, kl="exact")
    with pytest.raises(ValueError, match="latent_dim"):
        MLPVAE((1, 28, 28), 0, likelihoods.get("gaussian"))


def test_training_is_repeatable_and_learns(digits: data.Splits) -> None:
    subset = digits.train.images[:512]
    runs = [train(_model(), subset, epochs=3, batch_size=64, seed=1, device="cpu", progress=False) for _ in range(2)]
    assert runs[0].elbo == runs[1].elbo
    assert runs[0].kl == runs[1].kl
    other = train(_model(), subset, epochs=3, batch_size=64, seed=2, device="cpu", progress=False)
    assert other.elbo != runs[0].elbo
    history = runs[0]
    assert history.epoch == [1, 2, 3]
    assert history.elbo[-1] > history.elbo[0] + 10  # nats per image
    for e, r, k, loss in zip(history.elbo, history.rec, history.kl, history.loss):
        assert e == pytest.approx(-(r + k))
        assert loss == pytest.approx(r + k)  # beta = 1


def test_mc_kl_training_differs_but_is_repeatable(digits: data.Splits) -> None:
    subset = digits.train.images[:256]
    runs = [train(_model(), subset, epochs=2, batch_size=64, seed=0, device="cpu", kl="mc", progress=False) for _ in range(2)]
    analytic = train(_model(), subset, epochs=2, batch_size=64, seed=0, device="cpu", progress=False)
    assert runs[0].kl == runs[1].kl
    assert runs[0].kl != analytic.kl


def test_beta_weights_the_kl_and_test_history(digits: data.Splits) -> None:
    history = train(
        _model(), digits.train.images[:256], epochs=2, batch_size=64, beta=4.0, seed=0, device="cpu",
        test=digits.test, progress=False,
    )
    for r, k, loss in zip(history.rec, history.kl, history.loss):
        assert loss == pytest.approx(r + 4.0 * k)
    assert len(history.test_elbo) == 2
    last = history.last()
    assert set(last) >= {"elbo", "rec", "kl", "test_elbo"}


def test_evaluate_matches_terms(digits: data.Splits) -> None:
    model = _model()
    x = digits.test.images[:100]
    seed_everything(5)
    scores = evaluate(model, x, batch_size=30)
    seed_everything(5)
    model.eval()
    terms = [model.terms(x[i : i + 30]) for i in range(0, 100, 30)]
    rec = torch.cat([t.rec for t in terms]).mean().item()
    kl = torch.cat([t.kl for t in terms]).mean().item()
    assert scores["rec"] == pytest.approx(rec, rel=1e-6)
    assert scores["kl"] == pytest.approx(kl, rel=1e-6)
    assert scores["elbo"] == pytest.approx(-(rec + kl), rel=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"epochs": 0}, "epochs must be an int >= 1"),
        ({"batch_size": 0}, "batch_size must be an int >= 1"),
        ({"lr": -1.0}, r"lr must be in \(0, inf\)"),
        ({"beta": -0.5}, r"beta must be in \[0, inf\)"),
        ({"beta": float("nan")}, r"beta must be in \[0, inf\)"),
        ({"kl": "exact"}, r"kl must be 'analytic' or 'mc'"),
    ],
)
def test_train_rejects_bad_arguments(kwargs: dict, match: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValueError, match=match):
        train(_model(), torch.rand(4, 1, 28, 28), progress=False, **kwargs)


def test_history_last_of_empty_history() -> None:
    assert History().last() == {}


def test_profiles(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VAELIB_PROFILE", raising=False)
    assert current_profile() == "ci" and pick(1, 2) == 1
    monkeypatch.setenv("VAELIB_PROFILE", "full")
    assert pick(1, 2) == 2
    monkeypatch.setenv("VAELIB_PROFILE", "huge")
    with pytest.raises(ValueError, match="VAELIB_PROFILE must be one of ci, full"):
        pick(1, 2)
