"""The training engine: device-resident data, optional compile and bf16, a NaN/inf guard, crash-safe
checkpoints with exact resumption, and DistributedDataParallel under ``torchrun``.

On a CPU in a single process, with ``compile`` and ``bf16`` off, :meth:`Trainer.fit` is the plain
minibatch Adam loop: one ``randperm`` of the seeded generator per epoch, one normal draw of the
global stream per step, ``MLPVAE.terms`` arithmetic; a test checks it bit for bit against such a
loop written out by hand. :func:`vaelib.train.train` is this Trainer with its defaults.

A checkpoint holds the model, the optimiser, both random states, the epoch's permutation, the
position within the epoch and the running sums, so a run resumed from it continues the very same
loss curve: on a CPU the resumed run and an uninterrupted one agree bit for bit. With a checkpoint
path a checkpoint is written at the end of every epoch (so a SIGKILL loses at most the current
epoch) and, on SIGINT or SIGTERM, at the next step before :class:`TrainingInterrupted` is raised.

With validation images the Trainer early-stops: after every epoch it scores the validation images
with a fixed noise draw (a separate generator, so the training stream is untouched), keeps the
weights of the epoch with the best validation objective, stops once ``patience`` epochs have passed
without an improvement of more than ``min_delta`` nats, and leaves the model holding the best
weights. The validation objective is the one being trained, -(rec + beta * kl), Eq. (eq-elbo-beta):
the ELBO when beta = 1. A beta-weighted run is thus selected on its own objective, not on an ELBO
it does not optimise. ``History.val_elbo`` records the validation ELBO either way.
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
from dataclasses import fields
from pathlib import Path
from typing import Any, Callable, Iterator, Literal

import torch
from torch import nn
from tqdm import tqdm

from vaelib import checkpoint as ckpt
from vaelib.data.types import ImageSet
from vaelib.likelihoods._base import argument_validation
from vaelib.device import default_device, seed_everything
from vaelib.distributed import DistContext, all_reduce_sum, barrier, shard_bounds
from vaelib.elbo import kl_diag_gaussians, mc_kl
from vaelib.models import MLPVAE
from vaelib.history import History, evaluate
from vaelib.protocol import check_vae

__all__ = ["Trainer", "NonFiniteLossError", "TrainingInterrupted", "VAEObjective", "CHECKPOINT_FORMAT", "VAL_SEED"]

CHECKPOINT_FORMAT = 2
VAL_SEED = 1234  # seed of the noise of every validation evaluation (common random numbers across epochs)
_TERMS = ("rec", "kl", "loss")
# settings a resumed run must share with the run that wrote the checkpoint
_RESUME_KEYS = ("batch_size", "lr", "beta", "kl", "seed", "num_train", "num_val", "patience", "min_delta")


class NonFiniteLossError(FloatingPointError):
    """Training stopped because a term of the objective became NaN or infinite."""

    def __init__(self, step: int, epoch: int, term: str, value: float, checkpoint: Path | None, last_good_step: int | None):
        self.step, self.epoch, self.term, self.value = step, epoch, term, value
        self.checkpoint, self.last_good_step = checkpoint, last_good_step
        if checkpoint is None:
            kept = "no checkpoint was requested"
        elif last_good_step is None:
            kept = f"no checkpoint had been written yet to {checkpoint}"
        else:
            kept = f"the last good checkpoint (step {last_good_step}) is kept at {checkpoint}"
        super().__init__(f"non-finite {term} ({value}) at step {step} (epoch {epoch}); training stopped, {kept}")


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on SIGINT or SIGTERM after writing a checkpoint (when it has a path)."""

    def __init__(self, signum: int, step: int, checkpoint: Path | None) -> None:
        self.signum, self.step, self.checkpoint = signum, step, checkpoint
        kept = f"checkpoint written to {checkpoint}" if checkpoint is not None else "no checkpoint was requested"
        super().__init__(f"{signal.Signals(signum).name} at step {step}; {kept}")


class VAEObjective(nn.Module):
    """Per-example reconstruction NLL and KL of a VAE for given posterior noise ``eps``.

    It computes what :meth:`vaelib.models.MLPVAE.terms` computes, but takes the standard-normal
    noise as an argument, so that every process of a distributed run can use its slice of the
    noise of the whole global batch. With ``bf16`` the encoder and decoder run under bf16 autocast
    while the likelihood and the KL are evaluated in float32.
    """

    def __init__(self, model: MLPVAE, kl: Literal["analytic", "mc"] = "analytic", bf16: bool = False) -> None:
        super().__init__()
        self.model = model
        self.kl = kl
        self.bf16 = bf16

    def _autocast(self, x: torch.Tensor) -> contextlib.AbstractContextManager[Any]:
        if not self.bf16:
            return contextlib.nullcontext()
        return torch.autocast(device_type=x.device.type, dtype=torch.bfloat16)

    def forward(self, x: torch.Tensor, eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with self._autocast(x):
            mu, logvar = self.model.encode(x)
        if self.bf16:
            mu, logvar = mu.float(), logvar.float()
        z = mu + eps * torch.exp(0.5 * logvar)
        with self._autocast(x):
            params = self.model.decode(z)
        if self.bf16:
            params = params.float()
        rec = self.model.head.nll(params, x)
        kl_term = kl_diag_gaussians(mu, logvar, validate=False) if self.kl == "analytic" else mc_kl(mu, logvar, z)
        return rec, kl_term


def _images(data: ImageSet | torch.Tensor) -> torch.Tensor:
    return data.images if isinstance(data, ImageSet) else data


class Trainer:
    """Adam on mean(rec + beta * kl), Eq. (eq-elbo-beta), with the extras a long run needs.

    Args:
        model: the VAE to train in place (an :class:`vaelib.models.MLPVAE` or anything with its
            ``encode``, ``decode``, ``head`` and ``latent_dim``).
        data: training images (N, C, H, W).
        epochs, batch_size, lr, beta, seed, test, progress, kl: as in :func:`vaelib.train.train`.
            ``batch_size`` is the global batch: under ``torchrun`` each process takes its share.
            With ``val``, ``epochs`` is the maximum number of epochs.
        val: validation images for early stopping (never the test split); ``None`` trains ``epochs`` epochs.
        patience: with ``val``, stop after this many epochs without a new best validation objective
            (``None``: never stop early, but still keep and restore the best weights).
        min_delta: an epoch is a new best when its validation objective exceeds the best by more than this.
        device: where to train; defaults to ``dist.device`` or :func:`vaelib.default_device`.
        checkpoint: file to write checkpoints to (and to resume from), at the end of every epoch;
            ``None`` writes none.
        checkpoint_every: also write one every this many optimiser steps (0: only at epoch ends).
        handle_signals: on SIGINT or SIGTERM, checkpoint at the next step and raise
            :class:`TrainingInterrupted` (only in the main thread).
        compile: wrap the objective in :func:`torch.compile`.
        bf16: run the encoder and decoder under bf16 autocast (meant for GPUs).
        guard_every: check for non-finite terms every this many steps; default 1 on a CPU (no cost)
            and 50 on other devices (each check waits for the device). The failing step is
            named exactly either way; no checkpoint is ever written after a failure.
        dist: the process's :class:`vaelib.distributed.DistContext` (``init_from_env()`` under torchrun).
        on_step: called as ``on_step(trainer)`` after every optimiser step.
        data_on_device: keep the whole data set on the device (no per-batch host copies); default:
            yes on a CPU, and on CUDA when it takes under half of the free memory.
    """

    def __init__(
        self,
        model: MLPVAE,
        data: ImageSet | torch.Tensor,
        *,
        epochs: int = 10,
        batch_size: int = 128,
        lr: float = 1e-3,
        beta: float = 1.0,
        seed: int = 0,
        device: torch.device | str | None = None,
        test: ImageSet | torch.Tensor | None = None,
        progress: bool = True,
        kl: Literal["analytic", "mc"] = "analytic",
        checkpoint: str | Path | None = None,
        checkpoint_every: int = 0,
        compile: bool = False,
        bf16: bool = False,
        guard_every: int | None = None,
        dist: DistContext | None = None,
        on_step: Callable[[Trainer], None] | None = None,
        data_on_device: bool | None = None,
        val: ImageSet | torch.Tensor | None = None,
        patience: int | None = None,
        min_delta: float = 0.0,
        handle_signals: bool = True,
    ) -> None:
        checks = (
            ("epochs", epochs, isinstance(epochs, int) and epochs >= 1, "an int >= 1"),
            ("batch_size", batch_size, isinstance(batch_size, int) and batch_size >= 1, "an int >= 1"),
            ("lr", lr, 0 < lr < math.inf, "in (0, inf)"),
            ("beta", beta, 0 <= beta < math.inf, "in [0, inf)"),
            ("kl", kl, kl in ("analytic", "mc"), "'analytic' or 'mc'"),
            ("checkpoint_every", checkpoint_every, isinstance(checkpoint_every, int) and checkpoint_every >= 0, "an int >= 0"),
            ("guard_every", guard_every, guard_every is None or (isinstance(guard_every, int) and guard_every >= 1), "None or an int >= 1"),
            ("patience", patience, patience is None or (isinstance(patience, int) and patience >= 1), "None or an int >= 1"),
            ("min_delta", min_delta, 0 <= min_delta < math.inf, "in [0, inf)"),
        )
        for name, value, ok, allowed in checks:
            if not ok:
                raise ValueError(f"Trainer: {name} must be {allowed}, got {value!r}")
        if checkpoint_every and checkpoint is None:
            raise ValueError("Trainer: checkpoint_every needs a checkpoint path")
        if patience is not None and val is None:
            raise ValueError("Trainer: patience needs validation images (val)")
        self.dist = dist if dist is not None else DistContext(device=torch.device(device) if device is not None else default_device())
        if device is not None and torch.device(device).type != self.dist.device.type:
            raise ValueError(f"Trainer: device {device!r} differs from the distributed context's {self.dist.device}")
        self.device = self.dist.device
        self.epochs, self.batch_size, self.lr, self.beta, self.seed, self.kl = epochs, batch_size, lr, beta, seed, kl
        self.progress = progress and self.dist.is_main
        self.checkpoint_path = Path(checkpoint) if checkpoint is not None else None
        self.checkpoint_every = checkpoint_every
        self.compile, self.bf16 = compile, bf16
        self.guard_every = guard_every if guard_every is not None else (1 if self.device.type == "cpu" else 50)
        self.on_step = on_step
        self.model = model
        self.train_data, self.test_data, self.val_data = data, test, val
        self.patience, self.min_delta, self.handle_signals = patience, min_delta, handle_signals
        self._data_on_device = data_on_device
        self.optimizer: torch.optim.Optimizer | None = None
        self.history = History()
        self.step_loss: list[float] = []  # mean objective of every optimiser step, over the global batch
        self.step = 0
        self.last_checkpoint_step: int | None = None
        self.best_epoch: int | None = None
        self.best_val = -math.inf  # validation ELBO of the best epoch
        self.best_objective = -math.inf  # validation -(rec + beta * kl) of the best epoch: what selects it
        self.best_state: dict[str, torch.Tensor] | None = None
        self.stopped: str | None = None  # "patience" or "max_epochs" once training has ended

    # ----------------------------------------------------------------- setup
    def _place(self, images: torch.Tensor) -> torch.Tensor:
        keep = self._data_on_device
        if keep is None:
            keep = self.device.type != "cuda" or images.nbytes < 0.5 * torch.cuda.mem_get_info(self.device)[0]
        self._resident = bool(keep)
        if keep:
            return images.to(self.device)
        return images.pin_memory() if self.device.type == "cuda" else images

    def _config(self) -> dict[str, Any]:
        return {
            "batch_size": self.batch_size, "lr": self.lr, "beta": self.beta, "kl": self.kl, "seed": self.seed,
            "num_train": self.n, "epochs": self.epochs, "world_size": self.dist.world_size,
            "num_val": None if self.val_data is None else int(_images(self.val_data).shape[0]),
            "patience": self.patience, "min_delta": self.min_delta,
        }

    def _build_forward(self) -> Callable[..., tuple[torch.Tensor, torch.Tensor]]:
        objective: nn.Module = VAEObjective(self.model, self.kl, self.bf16)
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device] if self.device.type == "cuda" else None
            objective = DistributedDataParallel(objective, device_ids=ids)
        return torch.compile(objective) if self.compile else objective

    # ------------------------------------------------------------ checkpoint
    def _state(self) -> dict[str, Any]:
        rng: dict[str, Any] = {"generator": self.generator.get_state(), "torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return {
            "format": CHECKPOINT_FORMAT,
            "config": self._config(),
            "step": self.step,
            "epoch": self.epoch,
            "pos": self.pos,
            "order": None if self.order is None else self.order.cpu(),
            "sums": self.sums.cpu(),
            "history": {f.name: list(getattr(self.history, f.name)) for f in fields(History)},
            "step_loss": list(self.step_loss),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "rng": rng,
            "best_epoch": self.best_epoch,
            "best_val": self.best_val,
            "best_objective": self.best_objective,
            "best_state": self.best_state,
            "stopped": self.stopped,
        }

    def save_checkpoint(self) -> None:
        """Write the full training state atomically (rank 0 only); every process waits for it."""
        if self.checkpoint_path is None:
            return
        self._flush()
        if self.dist.is_main:
            ckpt.atomic_save(self._state(), self.checkpoint_path)
        barrier(self.dist)
        self.last_checkpoint_step = self.step

    def _restore(self, path: Path) -> None:
        state = ckpt.load(path, map_location="cpu")
        if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
            raise ckpt.CheckpointError(f"{path} is not a vaelib trainer checkpoint (format {CHECKPOINT_FORMAT})")
        saved, now = state["config"], self._config()
        for key in _RESUME_KEYS:
            if saved[key] != now[key]:
                raise ckpt.CheckpointError(f"cannot resume from {path}: it was written with {key}={saved[key]!r}, this run has {key}={now[key]!r}")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["rng"]["generator"])
        torch.set_rng_state(state["rng"]["torch"])
        if self.device.type == "cuda" and "cuda" in state["rng"]:
            torch.cuda.set_rng_state(state["rng"]["cuda"], self.device)
        self.step, self.epoch, self.pos = int(state["step"]), int(state["epoch"]), int(state["pos"])
        self.order = None if state["order"] is None else state["order"].to(self.device if self._resident else "cpu")
        self.sums = state["sums"].to(self.device)
        self.history = History(**{k: list(v) for k, v in state["history"].items()})
        self.step_loss = list(state["step_loss"])
        self.last_checkpoint_step = self.step
        self.best_epoch, self.best_val = state["best_epoch"], float(state["best_val"])
        self.best_objective = float(state["best_objective"])
        self.best_state, self.stopped = state["best_state"], state["stopped"]

    # ----------------------------------------------------------------- guard
    def _flush(self) -> None:
        """Check the pending steps' terms for NaN/inf and fold them into the epoch sums and the step curve."""
        if not self._pending:
            return
        rows = torch.stack([stats for _, _, stats in self._pending])
        all_reduce_sum(rows, self.dist)
        finite = torch.isfinite(rows)
        if not bool(finite.all()):
            i, j = (~finite).nonzero()[0].tolist()
            step, _, _ = self._pending[i]
            self._pending = []
            raise NonFiniteLossError(step, self.epoch, _TERMS[j], float(rows[i, j]), self.checkpoint_path, self.last_checkpoint_step)
        for row in rows:
            self.sums += row
        self.step_loss.extend((rows[:, 2].cpu() / torch.tensor([c for _, c, _ in self._pending], dtype=torch.float64)).tolist())
        self._pending = []

    # ------------------------------------------------------------------ loop
    def _check_images(self, images: torch.Tensor, chunk: int = 1024) -> None:
        """Score every training image once with argument validation on, before the first step.

        A non-finite pixel, or one outside the support of the likelihood, fails here with the
        distribution's message (naming it, the argument and the first bad index), so that the steps
        can run without rescanning images that cannot change. The model is scored in eval mode at
        its posterior means and without gradients: no parameter, statistic or random stream moves.
        """
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad(), argument_validation(True):
                for start in range(0, images.shape[0], chunk):
                    x = images[start : start + chunk]
                    mu, _ = self.model.encode(x)
                    self.model.head.nll(self.model.decode(mu), x)
        finally:
            self.model.train(was_training)

    def _batches(self, images: torch.Tensor) -> Iterator[tuple[torch.Tensor, int]]:
        while self.pos < self.n:
            idx = self.order[self.pos : self.pos + self.batch_size]
            lo, hi = shard_bounds(idx.shape[0], self.dist.rank, self.dist.world_size) if self.dist.enabled else (0, idx.shape[0])
            mine = idx[lo:hi] if self.dist.enabled else idx
            batch = images[mine]
            if not self._resident:
                batch = batch.to(self.device, non_blocking=True)
            yield batch, idx.shape[0]

    def _train_step(self, forward: Callable[..., tuple[torch.Tensor, torch.Tensor]], batch: torch.Tensor, count: int) -> None:
        eps = torch.randn((count, self.latent_dim), dtype=self.dtype, device=self.device)
        if self.dist.enabled:
            lo, hi = shard_bounds(count, self.dist.rank, self.dist.world_size)
            eps = eps[lo:hi]
        try:
            with argument_validation(False):  # the images were checked once by _check_images
                rec, kl_term = forward(batch, eps)
        except Exception:  # e.g. a distribution rejecting NaN parameters left by an earlier, unchecked step
            self._flush()
            raise
        objective = rec + self.beta * kl_term
        if self.dist.enabled:  # DDP averages gradients over processes: scale so the result is the global mean
            loss = objective.sum() * (self.dist.world_size / count)
        else:
            loss = objective.mean()
        stats = torch.stack([rec.sum(), kl_term.sum(), objective.sum()]).detach().double()
        self._pending.append((self.step + 1, count, stats))
        if len(self._pending) >= self.guard_every:
            self._flush()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.step += 1
        self.pos += self.batch_size

    def _end_epoch(self, bar: tqdm) -> None:
        self._flush()
        rec, kl_mean, objective = (self.sums / self.n).tolist()
        h = self.history
        h.epoch.append(self.epoch)
        h.rec.append(rec)
        h.kl.append(kl_mean)
        h.loss.append(objective)
        h.elbo.append(-(rec + kl_mean))
        if self.val_data is not None:
            scores = evaluate(self.model, self.val_data, generator=torch.Generator().manual_seed(VAL_SEED), beta=self.beta)
            h.val_elbo.append(scores["elbo"])
            h.val_loss.append(scores["loss"])
            if self.best_epoch is None or -scores["loss"] > self.best_objective + self.min_delta:
                self.best_epoch, self.best_val, self.best_objective = self.epoch, scores["elbo"], -scores["loss"]
                self.best_state = {k: t.detach().cpu().clone() for k, t in self.model.state_dict().items()}
        if self.test_data is not None:
            scores = evaluate(self.model, self.test_data)
            h.test_elbo.append(scores["elbo"])
            h.test_rec.append(scores["rec"])
            h.test_kl.append(scores["kl"])
        bar.update(1)
        bar.set_postfix(step=self.step, elbo=f"{h.elbo[-1]:.2f}", rec=f"{rec:.2f}", kl=f"{kl_mean:.2f}")
        self.epoch += 1
        self.pos = 0
        self.order = None
        self.sums.zero_()
        if self.patience is not None and self.epoch - 1 - self.best_epoch >= self.patience:
            self.stopped = "patience"
        elif self.epoch > self.epochs:
            self.stopped = "max_epochs"

    def _on_signal(self, signum: int, frame: Any) -> None:
        self._signal = signum

    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        """Route SIGINT and SIGTERM to a flag checked after every step (main thread only)."""
        self._signal: int | None = None
        if not self.handle_signals or threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

    def _check_signal(self) -> None:
        if self._signal is not None:
            self.save_checkpoint()
            raise TrainingInterrupted(self._signal, self.step, self.checkpoint_path)

    def fit(self, resume: bool = False) -> History:
        """Train to ``epochs`` epochs, or until early stopping, and return the per-epoch :class:`vaelib.history.History`.

        With ``resume=True`` the run continues from ``checkpoint`` (which must exist); a run that
        already ended returns at once, except that a run stopped at ``epochs`` is extended by a
        larger ``epochs``. With validation images the model is left holding the weights of the
        best validation epoch (``best_epoch``).
        Raises :class:`NonFiniteLossError` when a term becomes NaN or infinite, and
        :class:`TrainingInterrupted` on SIGINT or SIGTERM.
        """
        if resume and self.checkpoint_path is None:
            raise ValueError("Trainer.fit: resume=True needs a checkpoint path")
        check_vae(self.model, "Trainer")
        self.generator = seed_everything(self.seed)
        self.model.to(self.device).train()
        images = self._place(_images(self.train_data))
        self._check_images(images)
        self.n = int(images.shape[0])
        self.latent_dim = int(self.model.latent_dim)
        self.dtype = next(self.model.parameters()).dtype
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=self.lr)
        self.history, self.step_loss, self.step, self.last_checkpoint_step = History(), [], 0, None
        self.epoch, self.pos, self.order = 1, 0, None
        self.best_epoch, self.best_val, self.best_objective, self.best_state, self.stopped = None, -math.inf, -math.inf, None, None
        self.sums = torch.zeros(3, dtype=torch.float64, device=self.device)
        self._pending: list[tuple[int, int, torch.Tensor]] = []
        if resume:
            if self.dist.is_main:
                ckpt.remove_stale_temps(self.checkpoint_path)
            barrier(self.dist)
            self._restore(self.checkpoint_path)
            if self.stopped == "max_epochs" and self.epoch <= self.epochs:
                self.stopped = None  # a larger epochs extends a run that ended at its maximum
        forward = self._build_forward()
        bar = tqdm(total=self.epochs, initial=min(self.epoch - 1, self.epochs), desc="train", unit="epoch", disable=not self.progress)
        try:
            with self._signals():
                while self.epoch <= self.epochs and self.stopped is None:
                    if self.order is None:
                        order = torch.randperm(self.n, generator=self.generator)
                        self.order = order.to(self.device) if self._resident else order
                    for batch, count in self._batches(images):
                        self._train_step(forward, batch, count)
                        if self.checkpoint_every and self.step % self.checkpoint_every == 0:
                            self.save_checkpoint()
                        if self.on_step is not None:
                            self.on_step(self)
                        self._check_signal()
                    self._end_epoch(bar)
                    self.save_checkpoint()
                    self._check_signal()
                if self.stopped is None:
                    self.stopped = "max_epochs"
                    self.save_checkpoint()
        finally:
            bar.close()
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        return self.history
