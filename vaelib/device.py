"""Where tensors live and how runs are made repeatable."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import random
from typing import Iterator

import numpy as np
import torch

__all__ = ["default_device", "seed_everything", "one_thread", "cpu_numerics"]


def default_device() -> torch.device:
    """The best available device: CUDA, then Apple MPS, then the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int, *, deterministic: bool = True) -> torch.Generator:
    """Seed Python, NumPy and PyTorch (all devices) and return a CPU generator seeded with ``seed``.

    With ``deterministic=True`` cuDNN autotuning is switched off and cuDNN is asked for
    deterministic kernels. On a CPU with a fixed number of threads the chapters' runs are then
    bit-for-bit repeatable.
    """
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed_everything: seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    return torch.Generator().manual_seed(seed)


@contextlib.contextmanager
def one_thread(enabled: bool = True) -> Iterator[None]:
    """Run the block on one intra-op CPU thread (when ``enabled``), restoring the count afterwards.

    Reductions such as a matrix product's are split over threads, and another split rounds
    differently; on one thread a CPU computation is the same whatever the process's thread count.
    """
    saved = torch.get_num_threads()
    if enabled:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


@functools.lru_cache(maxsize=1)
def cpu_numerics() -> str:
    """A 12-hex digest of how this CPU rounds the float32 kernels that training uses.

    On one thread a CPU run is repeatable bit for bit, but only on CPUs that round alike: the
    matrix-product and vectorised elementwise kernels are chosen by the instruction set (AVX2,
    AVX-512, ...), and another choice rounds differently, which a training epoch amplifies (up to
    a relative 1e-3 in the first epoch's KL between two x86-64 CPUs). The digest hashes the bits
    of a fixed computation through those kernels: a 784-to-256 linear layer's forward and backward
    pass, the transcendental functions of the likelihoods and an Adam-style update. Two machines
    with the same digest and torch version retrain a record identically.
    """
    with one_thread(), torch.enable_grad():
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(64, 784, generator=gen)
        w = (torch.randn(256, 784, generator=gen) * 0.05).requires_grad_(True)
        h = torch.nn.functional.linear(x, w)
        parts = [h, torch.exp(-h.abs()), torch.log1p(h.abs()), torch.expm1(-h.abs()), torch.tanh(h),
                 torch.sigmoid(h), torch.nn.functional.softplus(h), torch.nn.functional.logsigmoid(h)]
        loss = sum(p.sum() for p in parts[1:])
        (grad,) = torch.autograd.grad(loss, w)
        step = torch.addcdiv(w.detach(), grad, grad.pow(2).add(1e-8).sqrt(), value=-1e-3)
    digest = hashlib.sha256(torch.__version__.encode())
    for t in [*parts, grad, step]:
        digest.update(t.detach().contiguous().numpy().tobytes())
    return digest.hexdigest()[:12]
