"""Where tensors live and how runs are made repeatable."""

from __future__ import annotations

import contextlib
import random
from typing import Iterator

import numpy as np
import torch

__all__ = ["default_device", "seed_everything", "one_thread"]


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
