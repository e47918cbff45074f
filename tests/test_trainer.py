"""The Trainer: identical to vaelib.train.train on a CPU, exact resumption, and the NaN/inf guard."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import vaelib.trainer
from vaelib import checkpoint, data, likelihoods, seed_everything
from vaelib.models import MLPVAE
from vaelib.history import History, evaluate
from vaelib.train import train
from vaelib.trainer import NonFiniteLossError, Trainer


@pytest.fixture(scope="module")
def digits() -> data.Splits:
    return data.load_mnist_5k()


def _model(likelihood: str = "bernoulli") -> MLPVAE:
    seed_everything(0)
    return MLPVAE((1, 28, 28), 4, likelihoods.get(likelihood), hidden=(32,))


def _same_parameters(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


def _reference_loop(model: MLPVAE, x: torch.Tensor, test: torch.Tensor, *, epochs: int, batch_size: int, lr: float,
                    beta: float, seed: int, kl: str) -> History:
    """The specification of the Trainer on a CPU: a plain seeded minibatch Adam loop."""
    generator = seed_everything(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    history = History()
    n = x.shape[0]
    for epoch in range(1, epochs + 1):
        order = torch.randperm(n, generator=generator)
        sums = torch.zeros(3, dtype=torch.float64)
        for start in range(0, n, batch_size):
            terms = model.terms(x[order[start : start + batch_size]], kl=kl)
            optimizer.zero_grad(set_to_none=True)
            terms.loss(beta).backward()
            optimizer.step()
            sums += torch.stack([terms.rec.sum(), terms.kl.sum(), (terms.rec + beta * terms.kl).sum()]).detach().double()
        rec, kl_mean, loss = (sums / n).tolist()
        history.epoch.append(epoch)
        history.rec.append(rec)
        history.kl.append(kl_mean)
        history.loss.append(loss)
        history.elbo.append(-(rec + kl_mean))
        scores = evaluate(model, test)
        history.test_elbo.append(scores["elbo"])
        history.test_rec.append(scores["rec"])
        history.test_kl.append(scores["kl"])
    return history


@pytest.mark.parametrize("kl", ["analytic", "mc"])
def test_fit_equals_a_plain_loop_bit_for_bit(digits: data.Splits, kl: str) -> None:
    x, t = digits.train.images[:300], digits.test.images[:100]
    reference = _model()
    expected = _reference_loop(reference, x, t, epochs=3, batch_size=64, lr=2e-3, beta=0.5, seed=3, kl=kl)
    model = _model()
    settings = dict(epochs=3, batch_size=64, lr=2e-3, beta=0.5, seed=3, test=t, progress=False, kl=kl, device="cpu")
    got = Trainer(model, x, **settings).fit()
    assert got == expected  # every float of every epoch, train and test
    assert _same_parameters(model, reference)
    again = _model()
    assert train(again, x, **settings) == expected  # train() is the Trainer with its defaults
    assert _same_parameters(again, reference)


def test_bad_settings_are_rejected(digits: data.Splits) -> None:
    for kwargs, match in [
        ({"beta": -1.0}, "beta"), ({"epochs": 0}, "epochs"), ({"kl": "exact"}, "kl"),
        ({"checkpoint_every": 2}, "checkpoint path"), ({"guard_every": 0}, "guard_every"),
    ]:
        with pytest.raises(ValueError, match=match):
            Trainer(_model(), digits.train.images[:10], device="cpu", **kwargs)
    with pytest.raises(ValueError, match="resume=True needs a checkpoint"):
        Trainer(_model(), digits.train.images[:10], device="cpu", progress=False).fit(resume=True)


class _Crash(Exception):
    pass


def test_resume_continues_the_same_curve(digits: data.Splits, tmp_path: Path) -> None:
    x = digits.train.images[:200]
    settings = dict(epochs=3, batch_size=32, seed=1, progress=False, device="cpu", test=digits.test.images[:50])
    full = Trainer(_model(), x, **settings)
    expected = full.fit()

    def crash_after_step_11(trainer: Trainer) -> None:
        if trainer.step == 11:
            raise _Crash

    path = tmp_path / "ckpt.pt"
    with pytest.raises(_Crash):
        Trainer(_model(), x, checkpoint=path, checkpoint_every=5, on_step=crash_after_step_11, **settings).fit()
    assert checkpoint.load(path)["step"] == 10  # mid-epoch 2 (7 steps per epoch)
    resumed = Trainer(_model(), x, checkpoint=path, checkpoint_every=5, **settings)
    got = resumed.fit(resume=True)
    assert got == expected
    assert resumed.step_loss == full.step_loss and len(resumed.step_loss) == 21
    assert _same_parameters(resumed.model, full.model)
    final = checkpoint.load(path)
    assert final["step"] == 21 and final["epoch"] == 4
    # resuming a finished run does nothing; asking for more epochs extends it
    more = Trainer(_model(), x, checkpoint=path, **{**settings, "epochs": 4})
    assert more.fit(resume=True).epoch == [1, 2, 3, 4] and more.step == 28


def test_resume_refuses_a_different_run(digits: data.Splits, tmp_path: Path) -> None:
    x = digits.train.images[:64]
    path = tmp_path / "ckpt.pt"
    Trainer(_model(), x, epochs=1, batch_size=32, progress=False, device="cpu", checkpoint=path).fit()
    with pytest.raises(checkpoint.CheckpointError, match="batch_size=32"):
        Trainer(_model(), x, epochs=2, batch_size=16, progress=False, device="cpu", checkpoint=path).fit(resume=True)


def _poison_head_at(model: MLPVAE, bad_call: int) -> None:
    """Make the head's NLL NaN on its ``bad_call``-th call with gradients on (one per training step;
    the trainer's one check of the images before the first step runs without gradients)."""
    nll = model.head.nll
    calls = {"n": 0}

    def poisoned(params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        calls["n"] += torch.is_grad_enabled()
        out = nll(params, x)
        return out * float("nan") if calls["n"] == bad_call else out

    model.head.nll = poisoned  # type: ignore[method-assign]


@pytest.mark.parametrize("guard_every", [1, 4])
def test_nan_guard_names_step_and_term_and_keeps_last_good_checkpoint(digits: data.Splits, tmp_path: Path, guard_every: int) -> None:
    model = _model()
    _poison_head_at(model, 7)
    path = tmp_path / "ckpt.pt"
    trainer = Trainer(model, digits.train.images[:128], epochs=5, batch_size=32, progress=False, device="cpu",
                      checkpoint=path, checkpoint_every=4, guard_every=guard_every)
    with pytest.raises(NonFiniteLossError, match=r"non-finite rec \(nan\) at step 7 \(epoch 2\).*last good checkpoint \(step 4\)") as info:
        trainer.fit()
    assert (info.value.step, info.value.term, info.value.epoch) == (7, "rec", 2)
    kept = checkpoint.load(path)
    assert kept["step"] == 4
    assert all(torch.isfinite(v).all() for v in kept["model"].values())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.pt"]


def test_nan_guard_kl_and_loss_terms(digits: data.Splits, monkeypatch: pytest.MonkeyPatch) -> None:
    kl_fn = vaelib.trainer.kl_diag_gaussians
    calls = {"n": 0}

    def kl_blowing_up(mu: torch.Tensor, logvar: torch.Tensor, validate: bool | None = None) -> torch.Tensor:
        calls["n"] += 1
        out = kl_fn(mu, logvar, validate=validate)
        return out + (float("inf") if calls["n"] == 3 else 0.0)

    monkeypatch.setattr(vaelib.trainer, "kl_diag_gaussians", kl_blowing_up)
    x = digits.train.images[:64]
    with pytest.raises(NonFiniteLossError, match="non-finite kl .* at step 3 .*no checkpoint was requested"):
        Trainer(_model(), x, epochs=2, batch_size=16, progress=False, device="cpu").fit()
    # rec and kl finite, but beta * kl overflows float32: the objective itself is reported
    monkeypatch.setattr(vaelib.trainer, "kl_diag_gaussians", lambda mu, logvar, validate=None: kl_fn(mu, logvar) + 1e30)
    with pytest.raises(NonFiniteLossError, match="non-finite loss .* at step 1 "):
        Trainer(_model(), x, epochs=1, batch_size=16, beta=1e9, progress=False, device="cpu").fit()


def test_early_stopping_keeps_and_restores_the_best_epoch(digits: data.Splits, tmp_path: Path) -> None:
    train_set, val_set = data.holdout(data.ImageSet(digits.train.images[:600], digits.train.labels[:600], "d"), 100, seed=0)
    settings = dict(epochs=60, batch_size=50, lr=3e-3, seed=3, progress=False, device="cpu")
    trainer = Trainer(_model(), train_set, val=val_set, patience=3, **settings)
    history = trainer.fit()
    best = trainer.best_epoch
    assert trainer.stopped == "patience" and len(history.epoch) == best + 3 < 60
    assert history.val_elbo[best - 1] == max(history.val_elbo)
    assert all(v <= history.val_elbo[best - 1] for v in history.val_elbo[best:])
    # the model holds the best epoch's weights: its validation ELBO is the recorded best
    again = evaluate(trainer.model, val_set, generator=torch.Generator().manual_seed(vaelib.trainer.VAL_SEED))["elbo"]
    assert again == history.val_elbo[best - 1]

    # interrupted after the best epoch and resumed: the same stopping point and the same weights
    def crash(t: Trainer) -> None:  # mid-epoch best + 2; the last checkpoint is the end of epoch best + 1
        if t.step == (best + 1) * 10 + 3:
            raise _Crash

    path = tmp_path / "ckpt.pt"
    with pytest.raises(_Crash):
        Trainer(_model(), train_set, val=val_set, patience=3, checkpoint=path, on_step=crash, **settings).fit()
    resumed = Trainer(_model(), train_set, val=val_set, patience=3, checkpoint=path, **settings)
    assert resumed.fit(resume=True) == history
    assert resumed.best_epoch == best and _same_parameters(resumed.model, trainer.model)


def test_validation_does_not_change_the_training_stream(digits: data.Splits) -> None:
    x = digits.train.images[:128]
    settings = dict(epochs=2, batch_size=32, seed=1, progress=False, device="cpu")
    plain = Trainer(_model(), x, **settings)
    plain.fit()
    with_val = Trainer(_model(), x, val=digits.train.images[128:192], **settings)
    with_val.fit()
    assert plain.step_loss == with_val.step_loss


def test_patience_needs_validation() -> None:
    with pytest.raises(ValueError, match="patience needs validation"):
        Trainer(_model(), torch.zeros(4, 1, 28, 28), patience=2)


def test_a_beta_weighted_run_is_selected_on_its_own_objective(digits: data.Splits) -> None:
    train_set, val_set = data.holdout(data.ImageSet(digits.train.images[:400], digits.train.labels[:400], "d"), 100, seed=1)
    trainer = Trainer(_model(), train_set, val=val_set, epochs=8, batch_size=50, beta=30.0, seed=0, progress=False, device="cpu")
    h = trainer.fit()
    assert trainer.best_epoch == 1 + min(range(len(h.val_loss)), key=h.val_loss.__getitem__)
    assert trainer.best_objective == -h.val_loss[trainer.best_epoch - 1]
    assert trainer.best_val == h.val_elbo[trainer.best_epoch - 1]
    plain = Trainer(_model(), train_set, val=val_set, epochs=2, batch_size=50, seed=0, progress=False, device="cpu")
    hp = plain.fit()
    assert hp.val_loss == [-v for v in hp.val_elbo]  # beta = 1: the objective is the ELBO


def test_images_are_checked_once_before_the_first_step_and_steps_run_unvalidated(digits: data.Splits) -> None:
    """A pixel outside the head's support fails before any step, naming the distribution; then the
    training steps call the head with argument validation off (the images cannot change)."""
    bad = digits.train.images[:64].clone()
    bad[5, 0, 3, 4] = 1.5
    model = _model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=r"Bernoulli.*value"):
        Trainer(model, bad, epochs=1, batch_size=32, progress=False, device="cpu").fit()
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # nothing trained

    seen: list[bool] = []
    nll = model.head.nll

    def recording(params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled():
            seen.append(torch.distributions.Distribution._validate_args)
        return nll(params, x)

    model.head.nll = recording  # type: ignore[method-assign]
    Trainer(model, digits.train.images[:64], epochs=1, batch_size=32, progress=False, device="cpu").fit()
    assert seen == [False, False]
    assert torch.distributions.Distribution._validate_args  # restored after each step
