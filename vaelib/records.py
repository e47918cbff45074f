"""Run records: every experiment of the book trained once, to convergence, and stored as one JSON file.

A :class:`Spec` names everything a trained model depends on (data, split and transform; model,
likelihood and its arguments; beta, KL estimator, optimiser, learning rate and batch size; seed,
maximum number of epochs and patience) and the measurements to take on it (``probes``, see
:mod:`vaelib.probes`). Its :attr:`Spec.id` is a hash of all of that. :func:`run` trains the spec
through :class:`vaelib.trainer.Trainer`, early-stopped on a fixed hold-out of the training split
(the test split selects nothing) by the validation value of the objective it trains (the ELBO when
beta = 1), and returns the record:

* ``spec``; ``history`` (per epoch: the training loss terms and ``val_elbo``);
* ``metrics`` on the best-validation weights: ``best_epoch``, ``epochs_run``, ``stopped`` (``patience``,
  ``max_epochs``, or ``non-finite loss`` for a run that diverged, with the error in ``failure``),
  test ELBO (and its rec and KL terms), train ELBO, the IWAE-k bound, RMSE, active units, FID if asked;
* ``probes``; ten test reconstructions and ten prior samples as 8-bit images;
* ``environment`` (vaelib, torch and Python versions, device, dtype, threads and, on a CPU, the digest
  of how it rounds, :func:`vaelib.cpu_numerics`) and the wall time;
* ``digest``: the SHA-256 of all the rest, so that an edited record is detected.

Chapters read records with :func:`sweep`. :func:`verify` retrains a record's first epoch and compares
it; :func:`reproduce` retrains the whole run. On a CPU runs use one thread and are bit-for-bit
repeatable on CPUs that round alike, so a record is reproduced exactly on a CPU with its digest; CPUs
whose kernels round differently retrain a first epoch that differs by up to a relative 1e-3 or so,
and are held to the cross-hardware tolerance.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import math
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Literal, Sequence

import torch

import vaelib
from vaelib import data, likelihoods, probes
from vaelib.bounds import iwae_bound
from vaelib.checkpoint import atomic_write_text
from vaelib.classifier import load_classifier
from vaelib.data.transforms import TRANSFORMS, apply, holdout
from vaelib.device import cpu_numerics, default_device, one_thread, seed_everything
from vaelib.history import evaluate
from vaelib.metrics import active_units, fid
from vaelib.models import MLPVAE
from vaelib.probes import ProbeContext, encode_uint8_images, measure
from vaelib.runs import build_model
from vaelib.trainer import NonFiniteLossError, Trainer

__all__ = [
    "Spec", "RecordError", "RecordMissing", "run", "save", "load", "path_for", "default_root", "sweep",
    "verify", "reproduce", "trained_model", "training_data", "images", "find", "tolerance", "rounds_like_this_cpu",
    "FORMAT",
]

FORMAT = 1
EVAL_SEED = 7  # noise of the final test evaluation, the IWAE bound and the prior samples
EVAL_PASSES = 8  # posterior draws per image of the reported ELBOs
SHOW = 10  # reconstructions and samples kept as images
CPU_RTOL, OTHER_RTOL = 1e-6, 2e-2  # verify: records made on a CPU that rounds like this one, and all others
_VERIFIED = ("loss", "rec", "kl", "elbo", "val_elbo")


class RecordError(ValueError):
    """A record that is malformed, edited by hand, or does not match its spec."""


class RecordMissing(FileNotFoundError):
    """A chapter asked for a spec whose record has not been made."""


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=True)


@dataclass(frozen=True)
class Spec:
    """Everything a run record depends on. ``chapter`` is the notebook stem the record belongs to."""

    chapter: str
    likelihood: str
    likelihood_args: dict[str, float | str] = field(default_factory=dict)
    beta: float = 1.0
    seed: int = 0
    max_epochs: int = 300
    patience: int = 10
    min_delta: float = 0.0
    dataset: str = "mnist-5k"
    transform: str | None = None
    transform_args: dict[str, float] = field(default_factory=dict)
    val_size: int = 500
    split_seed: int = 0
    latent_dim: int = 16
    hidden: tuple[int, ...] = (512, 256)
    kl: Literal["analytic", "mc"] = "analytic"
    optimizer: Literal["adam"] = "adam"
    lr: float = 1e-3
    batch_size: int = 128
    iwae_k: int = 100
    fid: bool = False
    probes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        object.__setattr__(self, "probes", tuple(self.probes))
        object.__setattr__(self, "likelihood_args", {k: v if isinstance(v, str) else float(v)
                                                     for k, v in sorted(self.likelihood_args.items())})
        object.__setattr__(self, "transform_args", {k: float(v) for k, v in sorted(self.transform_args.items())})
        object.__setattr__(self, "beta", float(self.beta))
        object.__setattr__(self, "lr", float(self.lr))
        object.__setattr__(self, "min_delta", float(self.min_delta))
        checks = [
            ("likelihood", self.likelihood in likelihoods.names(), f"one of {', '.join(likelihoods.names())}"),
            ("dataset", self.dataset in data.names(), f"one of {', '.join(data.names())}"),
            ("transform", self.transform is None or self.transform in TRANSFORMS, f"None or one of {', '.join(TRANSFORMS)}"),
            ("kl", self.kl in ("analytic", "mc"), "'analytic' or 'mc'"),
            ("optimizer", self.optimizer == "adam", "'adam'"),
            ("probes", all(p in probes.names() for p in self.probes), f"names from {', '.join(probes.names())}"),
            ("beta", 0 <= self.beta < math.inf, "in [0, inf)"),
            ("lr", 0 < self.lr < math.inf, "in (0, inf)"),
            ("min_delta", 0 <= self.min_delta < math.inf, "in [0, inf)"),
        ]
        for name in ("seed", "split_seed"):
            checks.append((name, isinstance(getattr(self, name), int) and getattr(self, name) >= 0, "an int >= 0"))
        for name in ("max_epochs", "patience", "val_size", "latent_dim", "batch_size", "iwae_k"):
            checks.append((name, isinstance(getattr(self, name), int) and getattr(self, name) >= 1, "an int >= 1"))
        for name, ok, allowed in checks:
            if not ok:
                raise ValueError(f"Spec: {name} must be {allowed}, got {getattr(self, name)!r}")
        try:
            likelihoods.get(self.likelihood, **self.likelihood_args)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"Spec: likelihood {self.likelihood!r} with {self.likelihood_args}: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        """The spec as plain JSON types."""
        d = asdict(self)
        d["hidden"], d["probes"] = list(self.hidden), list(self.probes)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Spec:
        """The inverse of :meth:`to_dict`; unknown keys are an error."""
        known = {f for f in cls.__dataclass_fields__}
        extra = set(d) - known
        if extra:
            raise RecordError(f"Spec: unknown field(s) {sorted(extra)}")
        return cls(**{**d, "hidden": tuple(d.get("hidden", (512, 256))), "probes": tuple(d.get("probes", ()))})

    @property
    def id(self) -> str:
        """A stable 12-hex-digit id: the SHA-256 of the canonical JSON of the spec."""
        return hashlib.sha256(_canonical(self.to_dict()).encode()).hexdigest()[:12]

    def replace(self, **changes: Any) -> Spec:
        """A copy with some fields changed (a new id)."""
        return Spec.from_dict({**self.to_dict(), **changes})


# ---------------------------------------------------------------- the data of a spec
@dataclass(frozen=True)
class _Data:
    train: Any
    val: Any
    test: Any
    clean_test: Any
    scale: float


@functools.lru_cache(maxsize=2)
def _splits(name: str) -> Any:
    return data.load(name)


def _data(spec: Spec) -> _Data:
    splits = _splits(spec.dataset)
    train, val = holdout(splits.train, spec.val_size, spec.split_seed)
    args = dict(spec.transform_args)
    return _Data(
        train=apply(train, spec.transform, args, 0), val=apply(val, spec.transform, args, 1),
        test=apply(splits.test, spec.transform, args, 2), clean_test=splits.test,
        scale=float(args["factor"]) if spec.transform == "scale" else 1.0,
    )


def _model(spec: Spec, image_shape: tuple[int, int, int]) -> Any:
    seed_everything(spec.seed)
    return build_model(spec.to_dict(), image_shape)


def _trainer(spec: Spec, d: _Data, device: torch.device, epochs: int, progress: bool) -> Any:
    model = _model(spec, d.train.image_shape)
    return Trainer(
        model, d.train, epochs=epochs, batch_size=spec.batch_size, lr=spec.lr, beta=spec.beta, seed=spec.seed,
        device=device, progress=progress, kl=spec.kl, val=d.val, patience=spec.patience, min_delta=spec.min_delta,
        handle_signals=False,
    )


def images(record: dict[str, Any], kind: Literal["reconstructions", "samples"]) -> torch.Tensor:
    """The stored ``reconstructions`` (of the first test images) or prior ``samples`` as float images in [0, 1]."""
    entry = record["images"][kind]
    raw = torch.frombuffer(bytearray(base64.b64decode(entry["uint8_base64"])), dtype=torch.uint8)
    return raw.view(*entry["shape"]).float() / 255


@torch.no_grad()
def _metrics(spec: Spec, d: _Data, trainer: Any) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    model = trainer.model.cpu().eval()
    gen = lambda: torch.Generator().manual_seed(EVAL_SEED)  # noqa: E731
    test = evaluate(model, d.test, generator=gen(), passes=EVAL_PASSES)
    train = evaluate(model, d.train, generator=gen(), passes=EVAL_PASSES)
    g = gen()
    iwae = torch.cat([iwae_bound(model, d.test.images[i : i + 250], spec.iwae_k, generator=g) for i in range(0, len(d.test), 250)])
    recon = model.reconstruct(d.test.images)
    h = trainer.history
    metrics: dict[str, Any] = {
        "best_epoch": trainer.best_epoch, "epochs_run": len(h.epoch), "stopped": trainer.stopped,
        "best_val_elbo": trainer.best_val,
        "test_elbo": test["elbo"], "test_rec": test["rec"], "test_kl": test["kl"], "train_elbo": train["elbo"],
        f"test_iwae_{spec.iwae_k}": iwae.double().mean().item(),
        "rmse": ((recon - d.test.images) / d.scale).pow(2).mean().sqrt().item(),
        "active_units": active_units(model, d.test.images),
    }
    samples = model.sample(len(d.test), generator=gen())
    if spec.fid:
        metrics["fid"] = fid(load_classifier(), d.clean_test.images, (samples / d.scale).clamp(0, 1))
    shown = {"reconstructions": encode_uint8_images(recon[:SHOW] / d.scale), "samples": encode_uint8_images(samples[:SHOW] / d.scale)}
    ctx = ProbeContext(model=model, train=d.train, test=d.test, clean_test=d.clean_test, scale=d.scale)
    return metrics, measure(spec.probes, ctx), shown


def _environment(device: torch.device) -> dict[str, Any]:
    env = {
        "vaelib": vaelib.__version__, "torch": torch.__version__, "python": platform.python_version(),
        "machine": platform.machine(), "device": device.type, "dtype": "float32", "threads": torch.get_num_threads(),
    }
    if device.type == "cpu":
        env["cpu_numerics"] = cpu_numerics()
    return env


def rounds_like_this_cpu(record: dict[str, Any]) -> bool:
    """Whether ``record`` was made on a CPU that rounds like this one (:func:`vaelib.cpu_numerics`),
    so that retraining it here repeats it bit for bit. Records made before the digest was kept, and
    records made on other devices, do not."""
    env = record["environment"]
    return env["device"] == "cpu" and env.get("cpu_numerics") == cpu_numerics()


def tolerance(record: dict[str, Any]) -> float:
    """Relative tolerance of a retrained epoch here: 1e-6 (``CPU_RTOL``) for a record made on a CPU that
    rounds like this one, 2e-2 (``OTHER_RTOL``) otherwise (another device, or a CPU whose kernels round
    differently, whose differences one epoch amplifies to a relative 1e-3)."""
    return CPU_RTOL if rounds_like_this_cpu(record) else OTHER_RTOL


def _digest(record: dict[str, Any]) -> str:
    return hashlib.sha256(_canonical({k: v for k, v in record.items() if k != "digest"}).encode()).hexdigest()


def run(spec: Spec, *, device: torch.device | str | None = None, progress: bool = False) -> dict[str, Any]:
    """Train ``spec`` to its stopping point and return its record (not written; see :func:`save`)."""
    dev = torch.device(device) if device is not None else default_device()
    d = _data(spec)
    with one_thread(dev.type == "cpu"):
        start = time.perf_counter()
        trainer = _trainer(spec, d, dev, spec.max_epochs, progress)
        try:
            history, failure = trainer.fit(), None
        except NonFiniteLossError as exc:  # a diverged run: it ends, like an early stop, at its best epoch so far
            history, failure = trainer.history, str(exc)
            trainer.stopped = "non-finite loss"
            if trainer.best_state is None:
                raise
            trainer.model.load_state_dict(trainer.best_state)
        env = _environment(dev)
        metrics, probed, shown = _metrics(spec, d, trainer)
        if failure is not None:
            metrics["failure"] = failure
        wall = time.perf_counter() - start
    record = {
        "format": FORMAT, "id": spec.id, "spec": spec.to_dict(),
        "history": {k: list(getattr(history, k)) for k in ("epoch", "loss", "rec", "kl", "elbo", "val_elbo")},
        "metrics": metrics, "probes": probed, "images": shown, "environment": env, "wall_time_s": round(wall, 1),
    }
    record = json.loads(_canonical(record))  # plain JSON types, as they will be read back
    record["digest"] = _digest(record)
    return record


# ---------------------------------------------------------------- storage
def default_root() -> Path:
    """``VAELIB_RECORDS_DIR`` if set, else ``records/`` under the working directory when it exists
    (a notebook runs in ``notebooks/``), else ``notebooks/records``."""
    env = os.environ.get("VAELIB_RECORDS_DIR")
    if env:
        return Path(env)
    here = Path.cwd() / "records"
    return here if here.is_dir() else Path.cwd() / "notebooks" / "records"


def path_for(spec: Spec, root: str | Path | None = None) -> Path:
    """Where the record of ``spec`` lives: ``<root>/<chapter>/<id>.json``."""
    return Path(root if root is not None else default_root()) / spec.chapter / f"{spec.id}.json"


def save(record: dict[str, Any], root: str | Path | None = None, *, overwrite: bool = False) -> Path:
    """Write ``record`` atomically to its :func:`path_for`; an existing record is kept unless ``overwrite``."""
    path = path_for(Spec.from_dict(record["spec"]), root)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already holds a record; pass overwrite=True (VAELIB_RECORDS=retrain) to replace it")
    atomic_write_text(json.dumps(record, indent=1, sort_keys=True) + "\n", path)
    return path


def load(path: str | Path) -> dict[str, Any]:
    """Read a record and check it: format, digest, and that its id is its spec's and its file name."""
    path = Path(path)
    try:
        record = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise RecordError(f"{path}: not a readable record ({exc})") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise RecordError(f"{path}: not a vaelib run record of format {FORMAT}")
    if record.get("digest") != _digest(record):
        raise RecordError(f"{path}: digest mismatch; the record was edited after it was made")
    spec = Spec.from_dict(record["spec"])
    if record["id"] != spec.id or path.stem != spec.id:
        raise RecordError(f"{path}: id {record['id']!r} and file name do not match the spec's id {spec.id!r}")
    return record


def find(paths: Iterable[str | Path]) -> list[Path]:
    """Every record file under ``paths`` (files, or directories searched recursively), sorted."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found += [q for q in p.rglob("*.json") if not any(part.startswith(".") for part in q.relative_to(p).parts)]
        elif p.is_file():
            found.append(p)
        else:
            raise FileNotFoundError(f"no record or directory at {p}")
    return sorted(set(found))


def sweep(specs: Sequence[Spec], root: str | Path | None = None, *, mode: str | None = None,
          device: torch.device | str | None = None) -> list[dict[str, Any]]:
    """The stored record of each spec, in order.

    ``mode`` (default: the environment variable ``VAELIB_RECORDS``): unset or ``read`` reads the
    records and fails with :class:`RecordMissing` on one that is missing; ``train`` trains and saves
    the missing ones; ``retrain`` trains and replaces all of them.
    """
    mode = mode if mode is not None else (os.environ.get("VAELIB_RECORDS") or "read")
    if mode not in ("read", "train", "retrain"):
        raise ValueError(f"sweep: mode (VAELIB_RECORDS) must be read, train or retrain, got {mode!r}")
    out = []
    for spec in specs:
        path = path_for(spec, root)
        if mode == "retrain" or (mode == "train" and not path.exists()):
            save(run(spec, device=device), root, overwrite=True)
        elif not path.exists():
            raise RecordMissing(
                f"no run record for spec {spec.id} of {spec.chapter} at {path}; make it by executing the chapter with "
                f"VAELIB_RECORDS=train (VAELIB_RECORDS=train jupyter execute --inplace notebooks/{spec.chapter}.ipynb) "
                f"or with `python -m vaelib records train SPECS.json`"
            )
        out.append(load(path))
    return out


# ---------------------------------------------------------------- checks
def _rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-12)


def verify(path: str | Path) -> tuple[bool, str]:
    """Retrain the first epoch of the record at ``path`` on the CPU and compare it with the record.

    Returns ``(ok, message)``. A record made on a CPU that rounds like this one must match to a
    relative 1e-6; one made on another device or CPU, to 2e-2 (see :func:`tolerance`); a record that
    fails :func:`load` fails.
    """
    try:
        record = load(path)
    except RecordError as exc:
        return False, str(exc)
    spec = Spec.from_dict(record["spec"])
    cpu = torch.device("cpu")
    d = _data(spec)
    with one_thread():
        trainer = _trainer(spec, d, cpu, 1, False)
        trainer.patience = None
        history = trainer.fit()
    rtol = tolerance(record)
    worst, key = 0.0, ""
    for k in _VERIFIED:
        diff = _rel(getattr(history, k)[0], record["history"][k][0])
        if diff > worst:
            worst, key = diff, k
    ok = worst <= rtol
    made = "" if rtol == CPU_RTOL else ", not known to be made on a CPU that rounds like this one"
    detail = f"first epoch matches (largest relative difference {worst:.1e}, tolerance {rtol:.0e}{made})" if ok else (
        f"first epoch differs: {key} retrained {getattr(history, key)[0]!r}, recorded {record['history'][key][0]!r} "
        f"(relative {worst:.1e} > {rtol:.0e}{made}); the record is stale or was not made from its spec")
    return ok, f"{path}: {detail}"


def reproduce(path: str | Path, *, device: torch.device | str | None = "cpu") -> dict[str, dict[str, Any]]:
    """Retrain the record at ``path`` from its spec; ``{"recorded": metrics, "reproduced": metrics}``."""
    record = load(path)
    again = run(Spec.from_dict(record["spec"]), device=device)
    return {"recorded": record["metrics"], "reproduced": again["metrics"]}


def training_data(spec: Spec) -> Any:
    """The training images of ``spec`` as its model saw them: its dataset without the validation
    hold-out, after its transform (an :class:`vaelib.data.ImageSet`)."""
    return _data(spec).train


def trained_model(spec: Spec, root: str | Path | None = None) -> MLPVAE:
    """The trained model of a stored CPU record (records keep numbers, not weights), retrained on the CPU
    to the record's best epoch. On a CPU that rounds like the record's its per-epoch history must equal
    the record's to a relative 1e-6, so the model returned is the one the record measured; on another
    CPU, to 2e-2 (:func:`tolerance`): a model trained alike, not the same one. A record made on
    another device is refused.
    """
    record = load(path_for(spec, root))
    if record["environment"]["device"] != "cpu":
        raise RecordError(f"trained_model: record {spec.id} was made on {record['environment']['device']!r}; "
                          "only a CPU record is retrained exactly")
    best = int(record["metrics"]["best_epoch"])
    d = _data(spec)
    with one_thread():
        trainer = _trainer(spec, d, torch.device("cpu"), best, False)
        trainer.patience = None
        history = trainer.fit()
    rtol = tolerance(record)
    for k in _VERIFIED:
        for epoch, (got, want) in enumerate(zip(getattr(history, k), record["history"][k][:best]), start=1):
            if _rel(got, want) > rtol:
                raise RecordError(f"trained_model: record {spec.id}, epoch {epoch}: {k} retrained {got!r}, "
                                  f"recorded {want!r}; the record is stale")
    return trainer.model.cpu().eval()
