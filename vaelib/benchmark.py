"""Images per second of :class:`vaelib.trainer.Trainer` against a plain PyTorch training loop.

The reference is the loop of pytorch/examples' VAE: a ``DataLoader`` over a ``TensorDataset``
with shuffling, a host-to-device copy per batch, and Adam on the same model, likelihood and batch
size. Both sides run alternately in the same process, ``repeats`` times, and the medians are
reported, so that a machine shared with other work slows both alike.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import torch

__all__ = ["add_arguments", "plain_loop", "trainer_loop", "run", "run_from_args"]

SIZES = {  # images, hidden widths, epochs per measurement, repeats
    "tiny": (1024, (64,), 1, 3),
    "small": (4000, (512, 256), 1, 5),
    "full": (60000, (512, 256), 1, 5),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The benchmark's options, shared by ``python -m vaelib bench`` and ``benchmarks/bench_trainer.py``."""
    parser.add_argument("--size", choices=tuple(SIZES), default="tiny", help="tiny (CI), small (the embedded 4000 digits) or full (60000 images)")
    parser.add_argument("--batch-size", type=int, default=None, help="default: 128 on a CPU, 1024 on CUDA")
    parser.add_argument("--likelihood", default="bernoulli")
    parser.add_argument("--latent-dim", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=None, help="alternating measurements of each side")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--compile", action="store_true", help="torch.compile in the Trainer")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast in the Trainer")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _images(n: int) -> torch.Tensor:
    from vaelib.data import load_mnist_5k

    base = load_mnist_5k().train.images
    reps = -(-n // base.shape[0])
    return base.repeat(reps, 1, 1, 1)[:n].contiguous()


def _model(likelihood: str, latent_dim: int, hidden: tuple[int, ...], device: torch.device) -> Any:
    from vaelib import likelihoods, seed_everything
    from vaelib.models import MLPVAE

    seed_everything(0)
    return MLPVAE((1, 28, 28), latent_dim, likelihoods.get(likelihood), hidden=hidden).to(device)


def plain_loop(model: Any, images: torch.Tensor, *, epochs: int, batch_size: int, device: torch.device) -> float:
    """The hand-written reference loop; returns images per second."""
    from torch.utils.data import DataLoader, TensorDataset

    loader = DataLoader(TensorDataset(images), batch_size=batch_size, shuffle=True, pin_memory=device.type == "cuda")
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    _sync(device)
    start = time.perf_counter()
    for _ in range(epochs):
        for (x,) in loader:
            x = x.to(device, non_blocking=True)
            optimizer.zero_grad()
            loss = model.terms(x).loss(1.0)
            loss.backward()
            optimizer.step()
    _sync(device)
    return epochs * images.shape[0] / (time.perf_counter() - start)


def trainer_loop(model: Any, images: torch.Tensor, *, epochs: int, batch_size: int, device: torch.device,
                 compile: bool = False, bf16: bool = False) -> float:
    """:class:`vaelib.trainer.Trainer` on the same work; returns images per second."""
    from vaelib.trainer import Trainer

    trainer = Trainer(model, images, epochs=epochs, batch_size=batch_size, device=device, progress=False, compile=compile, bf16=bf16)
    _sync(device)
    start = time.perf_counter()
    trainer.fit()
    _sync(device)
    return epochs * images.shape[0] / (time.perf_counter() - start)


def run(*, size: str = "tiny", batch_size: int | None = None, likelihood: str = "bernoulli", latent_dim: int = 16,
        repeats: int | None = None, device: str = "cpu", compile: bool = False, bf16: bool = False) -> dict[str, Any]:
    """Measure both sides alternately; returns the medians, every measurement and their ratio."""
    if size not in SIZES:
        raise ValueError(f"benchmark: size must be one of {', '.join(SIZES)}, got {size!r}")
    dev = torch.device(device)
    n, hidden, epochs, default_repeats = SIZES[size]
    repeats = repeats or default_repeats
    batch_size = batch_size or (1024 if dev.type == "cuda" else 128)
    images = _images(n)
    plain_model = _model(likelihood, latent_dim, hidden, dev)
    trainer_model = _model(likelihood, latent_dim, hidden, dev)
    # one warm-up epoch each (allocator, compile), not timed
    plain_loop(plain_model, images, epochs=1, batch_size=batch_size, device=dev)
    trainer_loop(trainer_model, images, epochs=1, batch_size=batch_size, device=dev, compile=compile, bf16=bf16)
    plain, ours = [], []
    for i in range(repeats):  # alternate the order too, so neither side always runs first
        sides = [("plain", plain_model), ("trainer", trainer_model)]
        for name, model in sides if i % 2 == 0 else sides[::-1]:
            if name == "plain":
                plain.append(plain_loop(model, images, epochs=epochs, batch_size=batch_size, device=dev))
            else:
                ours.append(trainer_loop(model, images, epochs=epochs, batch_size=batch_size, device=dev, compile=compile, bf16=bf16))
    result = {
        "device": str(dev), "size": size, "images": n, "hidden": list(hidden), "batch_size": batch_size,
        "compile": compile, "bf16": bf16, "threads": torch.get_num_threads(), "repeats": repeats,
        "plain_images_per_s": statistics.median(plain), "trainer_images_per_s": statistics.median(ours),
        "plain_all": plain, "trainer_all": ours,
    }
    result["ratio"] = result["trainer_images_per_s"] / result["plain_images_per_s"]
    return result


def run_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Run with parsed :func:`add_arguments` options and print a short table."""
    if args.threads:
        torch.set_num_threads(args.threads)
    result = run(size=args.size, batch_size=args.batch_size, likelihood=args.likelihood, latent_dim=args.latent_dim,
                 repeats=args.repeats, device=args.device, compile=args.compile, bf16=args.bf16)
    print(f"device {result['device']}, {result['images']} images, hidden {result['hidden']}, batch {result['batch_size']}, "
          f"threads {result['threads']}, compile {result['compile']}, bf16 {result['bf16']}, {result['repeats']} alternating repeats")
    print(f"plain DataLoader loop  {result['plain_images_per_s']:10.0f} images/s (median)")
    print(f"vaelib Trainer         {result['trainer_images_per_s']:10.0f} images/s (median)")
    print(f"ratio                  {result['ratio']:10.3f}x")
    print("every measurement (images/s), plain:", " ".join(f"{v:.0f}" for v in result["plain_all"]),
          "| trainer:", " ".join(f"{v:.0f}" for v in result["trainer_all"]))
    return result
