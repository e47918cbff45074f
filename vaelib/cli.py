"""``python -m vaelib train | eval | bench | records``: train a VAE into a run directory, score it, time the
trainer, and verify or reproduce the book's run records.

``train`` holds out a seeded validation split of the training images (``--val-size``) and early-stops
on its value of the training objective (the ELBO when ``--beta`` is 1; ``--patience``, at most
``--max-epochs``); the best-validation weights are the run's result.
A run directory (``--out``) holds ``run.json`` (the model's settings), ``checkpoint.pt`` (the full
training state, loadable with ``torch.load(..., weights_only=True)``, written at the end of every
epoch), ``metrics.json`` (the per-epoch history), ``samples.png`` (reconstructions and samples) and,
after ``eval``, ``eval.json``. Every file is written atomically. SIGINT or SIGTERM writes a checkpoint
and exits with status 130; ``--resume`` continues from it to exactly the uninterrupted result. ``train``
refuses to replace a run already in ``--out`` unless given ``--overwrite``. Bad arguments end with a
one-line message on stderr and exit status 2; a run that fails (a non-finite loss, a missing data
file) ends with a one-line message and exit status 1.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import sys
import tempfile
from pathlib import Path
from typing import Any, Sequence

from vaelib.runs import CHECKPOINT_FILE, RUN_FILE, build_model, load_run

__all__ = ["main", "UsageError"]

METRICS_FILE, FIGURE_FILE, EVAL_FILE = "metrics.json", "samples.png", "eval.json"
_MODEL_KEYS = ("dataset", "likelihood", "likelihood_args", "latent_dim", "hidden", "limit", "val_size")


class UsageError(Exception):
    """A bad command-line argument: reported in one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse would print the usage and exit; we want one line
        raise UsageError(message)


# ---------------------------------------------------------------- arguments
def _int_at_least(low: int) -> Any:
    """An argparse type: an int >= ``low``, with a one-line message otherwise."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an int >= {low}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected an int >= {low}, got {value}")
        return value

    return parse


_positive_int, _non_negative_int = _int_at_least(1), _int_at_least(0)


def _hidden(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected comma-separated widths >= 1 such as 512,256, got {text!r}")
    return sizes


def _key_value(text: str) -> tuple[str, float | str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip() or not value.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE such as sigma=0.1 or over=batch, got {text!r}")
    try:
        return key.strip(), float(value)
    except ValueError:
        return key.strip(), value.strip()


def _parser() -> _Parser:
    parser = _Parser(prog="python -m vaelib", description="Train and evaluate VAEs with vaelib's likelihoods.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    fmt = argparse.ArgumentDefaultsHelpFormatter

    train = sub.add_parser("train", help="train a VAE into --out, early-stopped on a validation split (resumable)", formatter_class=fmt)
    train.add_argument("--dataset", default="mnist-5k", help="mnist-5k (embedded), mnist, fashion-mnist or cifar10")
    train.add_argument("--likelihood", default="bernoulli", help="a name of vaelib.likelihoods.names()")
    train.add_argument("--likelihood-arg", action="append", type=_key_value, default=[], metavar="NAME=VALUE",
                       help="keyword argument of the likelihood head, e.g. sigma=0.1 (repeatable)")
    train.add_argument("--beta", type=float, default=1.0, help="weight of the KL term (>= 0)")
    train.add_argument("--latent-dim", type=_positive_int, default=16)
    train.add_argument("--hidden", type=_hidden, default=(512, 256), help="encoder widths, e.g. 512,256")
    train.add_argument("--max-epochs", "--epochs", dest="epochs", type=_positive_int, default=300,
                       help="the most epochs to train (early stopping usually ends sooner)")
    train.add_argument("--patience", type=_non_negative_int, default=10,
                       help="stop after this many epochs without a better validation objective (0: train --max-epochs)")
    train.add_argument("--min-delta", type=float, default=0.0, help="nats by which a validation objective must beat the best")
    train.add_argument("--val-size", type=_non_negative_int, default=500,
                       help="training images held out (seeded by --split-seed) to select the epoch; 0: none")
    train.add_argument("--split-seed", type=_non_negative_int, default=0, help="seed of the validation hold-out")
    train.add_argument("--batch-size", type=_positive_int, default=128)
    train.add_argument("--lr", type=float, default=1e-3)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--kl", choices=("analytic", "mc"), default="analytic")
    train.add_argument("--limit", type=_positive_int, default=None, help="train on the first LIMIT images only")
    train.add_argument("--device", default=None, help="cpu, cuda, ... (default: the best available)")
    train.add_argument("--checkpoint-every", type=int, default=0, metavar="STEPS", help="also checkpoint every STEPS steps")
    train.add_argument("--compile", action="store_true", help="torch.compile the objective")
    train.add_argument("--bf16", action="store_true", help="bf16 autocast for the encoder and decoder")
    train.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    train.add_argument("--overwrite", action="store_true", help="discard a run already in --out and start over")
    train.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    train.add_argument("--out", required=True, type=Path, help="run directory")

    ev = sub.add_parser("eval", help="ELBO, IWAE-k, bits/dim and FID of the run in --out on the test split", formatter_class=fmt)
    ev.add_argument("--out", required=True, type=Path, help="run directory written by train")
    ev.add_argument("--k", type=_positive_int, default=100, help="importance samples of the IWAE bound")
    ev.add_argument("--limit", type=_positive_int, default=None, help="evaluate the first LIMIT test images only")
    ev.add_argument("--no-fid", action="store_true", help="skip the FID")
    ev.add_argument("--device", default=None)
    ev.add_argument("--seed", type=int, default=0)

    bench = sub.add_parser("bench", help="images/s of the Trainer against a plain DataLoader loop", formatter_class=fmt)
    from vaelib.benchmark import add_arguments

    add_arguments(bench)

    rec = sub.add_parser("records", help="verify, reproduce or train the run records of the book")
    rsub = rec.add_subparsers(dest="records_command", required=True, parser_class=_Parser)
    verify = rsub.add_parser("verify", help="retrain the first epoch of each record on the CPU and compare", formatter_class=fmt)
    verify.add_argument("paths", nargs="*", type=Path, default=[Path("notebooks/records")], help="record files or directories")
    reproduce = rsub.add_parser("reproduce", help="retrain whole records and print recorded beside reproduced metrics", formatter_class=fmt)
    reproduce.add_argument("paths", nargs="+", type=Path, help="a record file, or directories to choose one from with --choose")
    reproduce.add_argument("--choose", default=None, metavar="HEX",
                           help="reproduce one record of PATHS, chosen by this hexadecimal number (a commit hash) modulo their count, "
                                "among the records made on a CPU that rounds like this one")
    reproduce.add_argument("--max-wall", type=float, default=None, metavar="SECONDS",
                           help="with --choose: choose among the records whose recorded wall time is at most SECONDS")
    reproduce.add_argument("--json", action="store_true", help="end with one JSON line {recorded, reproduced}")
    rtrain = rsub.add_parser("train", help="train and save the missing records of a JSON list of specs", formatter_class=fmt)
    rtrain.add_argument("specs", type=Path, help="a JSON file holding a list of specs (vaelib.records.Spec fields)")
    rtrain.add_argument("--root", type=Path, default=Path("notebooks/records"), help="records directory")
    rtrain.add_argument("--shard", default="0/1", metavar="I/N", help="train only the specs whose index is I modulo N")
    rtrain.add_argument("--device", default=None, help="cpu, cuda, ... (default: the best available)")
    return parser


def _check_out(out: Path) -> None:
    """Fail early, as a usage error, when --out cannot hold files."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        raise UsageError(f"--out {str(out)!r} is not a writable directory ({exc.strerror or exc})") from None


def _check_train_args(args: argparse.Namespace) -> None:
    from vaelib import data, likelihoods

    if args.dataset not in data.names():
        raise UsageError(f"unknown dataset {args.dataset!r}; choose one of {', '.join(data.names())}")
    if args.likelihood not in likelihoods.names():
        raise UsageError(f"unknown likelihood {args.likelihood!r}; choose one of {', '.join(likelihoods.names())}")
    if not 0 <= args.beta < math.inf:
        raise UsageError(f"--beta must be >= 0 and finite, got {args.beta}")
    if not 0 < args.lr < math.inf:
        raise UsageError(f"--lr must be > 0 and finite, got {args.lr}")
    if args.checkpoint_every < 0:
        raise UsageError(f"--checkpoint-every must be >= 0, got {args.checkpoint_every}")
    if args.seed < 0:
        raise UsageError(f"--seed must be >= 0, got {args.seed}")
    try:
        likelihoods.get(args.likelihood, **dict(args.likelihood_arg))
    except (TypeError, ValueError) as exc:
        raise UsageError(f"--likelihood {args.likelihood} with {dict(args.likelihood_arg)}: {exc}") from None
    if not 0 <= args.min_delta < math.inf:
        raise UsageError(f"--min-delta must be >= 0 and finite, got {args.min_delta}")
    if args.patience and not args.val_size:
        raise UsageError("--patience needs a validation split: pass --val-size > 0, or --patience 0 to train --max-epochs")
    if args.resume and args.overwrite:
        raise UsageError("--resume and --overwrite exclude each other")
    _check_out(args.out)
    has_checkpoint = (args.out / CHECKPOINT_FILE).is_file()
    if args.resume and not has_checkpoint:
        raise UsageError(f"--resume: no {CHECKPOINT_FILE} in {str(args.out)!r}")
    if has_checkpoint and not args.resume and not args.overwrite:
        state = "a finished run" if (args.out / METRICS_FILE).is_file() else f"an unfinished run ({CHECKPOINT_FILE})"
        raise UsageError(f"--out {str(args.out)!r} holds {state}; pass --resume to continue it "
                         f"(a larger --max-epochs extends a run that reached it), or --overwrite to discard it and start over")


# --------------------------------------------------------------------- runs
def _model_settings(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "dataset": args.dataset, "likelihood": args.likelihood, "likelihood_args": dict(args.likelihood_arg),
        "latent_dim": args.latent_dim, "hidden": list(args.hidden), "limit": args.limit,
        "val_size": args.val_size, "split_seed": args.split_seed,
    }


def _load_splits(name: str) -> Any:
    from vaelib import data

    try:
        return data.load(name)
    except (OSError, data.DownloadError, data.ChecksumError) as exc:
        raise RuntimeError(f"cannot load dataset {name!r}: {exc}") from exc


def _figure(model: Any, images: Any, path: Path, seed: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from vaelib.checkpoint import atomic_write_bytes
    from vaelib.plotting import show_rows

    model.eval()
    x = images[:10].to(next(model.parameters()).device)
    rows = [("data", x), ("reconstructions", model.reconstruct(x)), ("samples", model.sample(10, torch.Generator().manual_seed(seed)))]
    fig = show_rows(rows, ncol=10)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    atomic_write_bytes(buffer.getvalue(), path)


def _train(args: argparse.Namespace) -> int:
    import torch

    from vaelib import seed_everything
    from vaelib.checkpoint import atomic_write_text
    from vaelib.distributed import init_from_env, shutdown
    from vaelib.trainer import Trainer

    _check_train_args(args)
    settings = _model_settings(args)
    run_file = args.out / RUN_FILE
    if args.resume and run_file.is_file():
        saved = json.loads(run_file.read_text())
        for key in _MODEL_KEYS:
            if saved.get(key) != settings[key]:
                raise UsageError(f"--resume: {key} is {settings[key]!r} but the run in --out used {saved.get(key)!r}")
    ctx = init_from_env(args.device or _default_device())
    try:
        from vaelib.data import ImageSet, holdout

        splits = _load_splits(args.dataset)
        train_set = splits.train if not args.limit else ImageSet(splits.train.images[: args.limit], splits.train.labels[: args.limit], splits.train.name)
        val_images = None
        if args.val_size:
            if args.val_size >= len(train_set):
                raise UsageError(f"--val-size {args.val_size} leaves no training images of {len(train_set)}; lower it, or pass --val-size 0")
            train_set, val_set = holdout(train_set, args.val_size, args.split_seed)
            val_images = val_set.images
        train_images = train_set.images
        if args.overwrite and ctx.is_main:
            for name in (CHECKPOINT_FILE, METRICS_FILE, FIGURE_FILE, EVAL_FILE):
                (args.out / name).unlink(missing_ok=True)
        seed_everything(args.seed)
        model = build_model(settings, splits.train.image_shape)
        if ctx.is_main:
            atomic_write_text(json.dumps(settings, indent=2) + "\n", run_file)
        trainer = Trainer(
            model, train_images, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, beta=args.beta, seed=args.seed,
            kl=args.kl, progress=not args.no_progress, checkpoint=args.out / CHECKPOINT_FILE,
            checkpoint_every=args.checkpoint_every, compile=args.compile, bf16=args.bf16, dist=ctx,
            val=val_images, patience=args.patience or None, min_delta=args.min_delta,
        )
        history = trainer.fit(resume=args.resume)
        if ctx.is_main:
            best = trainer.best_epoch if trainer.best_epoch is not None else history.epoch[-1]
            final = {k: v[best - 1] for k, v in vars(history).items() if v}
            metrics = {"settings": settings, "steps": trainer.step, "best_epoch": best, "stopped": trainer.stopped,
                       "history": vars(history), "final": final}
            atomic_write_text(json.dumps(metrics, indent=2) + "\n", args.out / METRICS_FILE)
            with torch.no_grad():
                _figure(model, splits.test.images, args.out / FIGURE_FILE, args.seed)
            why = "early-stopped" if trainer.stopped == "patience" else "reached --max-epochs"
            val = f", validation elbo {final['val_elbo']:.3f}" if "val_elbo" in final else ""
            print(f"{why} after epoch {history.epoch[-1]}; kept epoch {best}: elbo {final['elbo']:.3f}, rec {final['rec']:.3f}, "
                  f"kl {final['kl']:.3f}{val} nats/image; wrote {args.out}")
    finally:
        shutdown()
    return 0


def _default_device() -> Any:
    from vaelib.device import default_device

    return default_device()


def _eval(args: argparse.Namespace) -> int:
    import torch

    from vaelib import seed_everything
    from vaelib.bounds import bits_per_dim, discrete_nll, elbo, iwae_bound
    from vaelib.checkpoint import atomic_write_text
    from vaelib.likelihoods import NoDiscreteScale

    run_file, ckpt_file = args.out / RUN_FILE, args.out / CHECKPOINT_FILE
    if not run_file.is_file() or not ckpt_file.is_file():
        raise UsageError(f"--out {str(args.out)!r} holds no finished run ({RUN_FILE} and {CHECKPOINT_FILE} are needed)")
    _check_out(args.out)
    device = torch.device(args.device) if args.device else _default_device()
    model, settings = load_run(args.out, device)  # the best-validation weights
    splits = _load_splits(settings["dataset"])
    test = splits.test.images[: args.limit] if args.limit else splits.test.images
    generator = seed_everything(args.seed)
    num_dims = math.prod(splits.test.image_shape)
    elbos, iwaes = [], []
    with torch.no_grad():
        for start in range(0, test.shape[0], 250):
            x = test[start : start + 250].to(device)
            elbos.append(elbo(model, x).cpu())
            iwaes.append(iwae_bound(model, x, args.k).cpu())
    elbo_mean, iwae_mean = torch.cat(elbos).mean().item(), torch.cat(iwaes).mean().item()
    result: dict[str, Any] = {"test_images": int(test.shape[0]), "elbo": elbo_mean, f"iwae_{args.k}": iwae_mean}
    lines = [f"ELBO     {elbo_mean:.3f} nats/image", f"IWAE-{args.k:<4d}{iwae_mean:.3f} nats/image"]
    try:  # bits/dim only where they are a discrete NLL: the exact 8-bit pmf, or a natively discrete likelihood
        nll, info = discrete_nll(model, test.to(device), args.k, fit_images=splits.train.images.to(device))
    except NoDiscreteScale as exc:
        result.update({"bits_per_dim": None, "bits_per_dim_why": str(exc)})
        lines.append(f"bits/dim none: {exc}")
    else:
        bpd = bits_per_dim(nll.cpu().double(), num_dims).mean().item()
        images = "binary images" if info["scale"] == "binary" else "8-bit images (bins of width 1/255 around k/255)"
        fitted = f"; sigma {info['sigma']:.4g} fitted on the training split" if "sigma" in info else ""
        result.update({"bits_per_dim": bpd, "bits_per_dim_scale": info["scale"], **({"sigma": info["sigma"]} if fitted else {})})
        lines.append(f"bits/dim {bpd:.4f} (-IWAE-{args.k} of the exact pmf of {images}{fitted})")
    if args.no_fid:
        result["fid"] = None
        lines.append("FID      skipped (--no-fid)")
    elif tuple(splits.test.image_shape) != (1, 28, 28):
        result["fid"] = None
        lines.append(f"FID      not computed: the digit classifier applies to 1x28x28 images only, not {splits.test.image_shape}")
    else:
        from vaelib.classifier import load_classifier
        from vaelib.metrics import fid

        with torch.no_grad():
            samples = model.sample(test.shape[0], generator=generator)
        result["fid"] = fid(load_classifier(), test, samples.cpu())
        lines.append(f"FID      {result['fid']:.3f} (digit-classifier features, {test.shape[0]} samples)")
    atomic_write_text(json.dumps(result, indent=2) + "\n", args.out / EVAL_FILE)
    print("\n".join(lines))
    return 0


def _bench(args: argparse.Namespace) -> int:
    from vaelib.benchmark import run_from_args

    run_from_args(args)
    return 0


def _records(args: argparse.Namespace) -> int:
    from vaelib import records

    if args.records_command == "verify":
        paths = records.find(args.paths)
        if not paths:
            raise UsageError(f"no records under {', '.join(map(str, args.paths))}")
        failed = 0
        for path in paths:
            ok, message = records.verify(path)
            failed += not ok
            print(("ok   " if ok else "FAIL ") + message, flush=True)
        print(f"{len(paths) - failed} of {len(paths)} records verified")
        return 1 if failed else 0
    if args.records_command == "reproduce":
        paths = records.find(args.paths)
        if args.max_wall is not None:
            if args.choose is None:
                raise UsageError("--max-wall applies with --choose")
            paths = [p for p in paths if records.load(p)["wall_time_s"] <= args.max_wall]
            if not paths:
                raise UsageError(f"no record under {', '.join(map(str, args.paths))} took at most {args.max_wall:g} s")
        if args.choose is not None:
            paths = [p for p in paths if records.rounds_like_this_cpu(records.load(p))]
            if not paths:
                print(f"no record under {', '.join(map(str, args.paths))} was made on a CPU that rounds like this one "
                      f"(cpu_numerics {records.cpu_numerics()}), so none can be reproduced exactly here; skipped")
                return 0
            try:
                paths = [paths[int(args.choose, 16) % len(paths)]]
            except ValueError:
                raise UsageError(f"--choose expects a hexadecimal number, got {args.choose!r}") from None
        elif len(paths) != 1:
            raise UsageError(f"reproduce takes one record, got {len(paths)}; pass --choose HEX to pick one")
        result = records.reproduce(paths[0])
        rec, rep = result["recorded"], result["reproduced"]
        print(f"{paths[0]}")
        print(f"{'metric':>18} {'recorded':>20} {'reproduced':>20}")
        for key in rec:
            print(f"{key:>18} {rec[key]!s:>20} {rep.get(key)!s:>20}")
        same = rec == rep
        print("reproduced exactly" if same else "reproduced metrics differ from the recorded ones")
        if args.json:
            print(json.dumps(result))
        return 0 if same else 1
    specs = [records.Spec.from_dict(d) for d in json.loads(args.specs.read_text())]
    try:
        i, n = (int(t) for t in args.shard.split("/"))
        assert 0 <= i < n
    except (ValueError, AssertionError):
        raise UsageError(f"--shard expects I/N with 0 <= I < N, got {args.shard!r}") from None
    for k, spec in enumerate(specs):
        if k % n != i or records.path_for(spec, args.root).exists():
            continue
        path = records.save(records.run(spec, device=args.device), args.root)
        print(f"wrote {path}", flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 failed run, 2 bad arguments, 130 interrupted)."""
    from vaelib.trainer import TrainingInterrupted

    try:
        args = _parser().parse_args(argv)
        return {"train": _train, "eval": _eval, "bench": _bench, "records": _records}[args.command](args)
    except UsageError as exc:
        print(f"vaelib: error: {exc}", file=sys.stderr)
        return 2
    except TrainingInterrupted as exc:
        print(f"vaelib: interrupted: {exc}; continue with --resume", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("vaelib: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a failed run: one line, not a traceback
        from vaelib.checkpoint import CheckpointError

        status = 2 if isinstance(exc, CheckpointError) else 1
        print(f"vaelib: {'error' if status == 2 else 'failed'}: {exc}", file=sys.stderr)
        return status
