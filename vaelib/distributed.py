"""Running under ``torchrun``: process-group setup from its environment variables, and small helpers.

``torchrun --nproc_per_node K -m vaelib train ...`` starts K processes and sets ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` in each. :func:`init_from_env`
reads them and joins the process group with the gloo backend on a CPU or nccl on CUDA. Without
those variables everything here degrades to a single process (rank 0 of 1), so the same code
runs unchanged on a laptop.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["DistContext", "in_torchrun", "init_from_env", "shutdown", "shard_bounds", "all_reduce_sum", "barrier"]

_ENV = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class DistContext:
    """Where this process stands: its rank, the number of processes and its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def enabled(self) -> bool:
        """True when more than one process trains together."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """True on the process that writes files and shows progress (rank 0)."""
        return self.rank == 0


def in_torchrun() -> bool:
    """True when the torchrun environment variables are all set."""
    return all(name in os.environ for name in _ENV)


def _env_int(name: str) -> int:
    value = os.environ[name]
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"distributed: environment variable {name} must be an int, got {value!r}") from None


def init_from_env(device: torch.device | str | None = None) -> DistContext:
    """Join the process group torchrun describes (gloo on CPU, nccl on CUDA) and return this process's context.

    ``device`` is the device type to train on; with CUDA each process takes ``cuda:LOCAL_RANK``.
    Outside torchrun, or with ``WORLD_SIZE=1``, no process group is created and a single-process
    context on ``device`` is returned. Calling it again after the group exists reuses the group.
    """
    device = torch.device(device) if device is not None else torch.device("cpu")
    if not in_torchrun() or _env_int("WORLD_SIZE") == 1:
        return DistContext(device=device)
    rank, world, local = _env_int("RANK"), _env_int("WORLD_SIZE"), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        if torch.cuda.device_count() <= local:
            raise RuntimeError(f"distributed: LOCAL_RANK {local} but only {torch.cuda.device_count()} CUDA devices")
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
        backend = "nccl"
    elif device.type == "cpu":
        backend = "gloo"
    else:
        raise ValueError(f"distributed: training on {device.type!r} is not supported; use cpu (gloo) or cuda (nccl)")
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, init_method="env://", rank=rank, world_size=world)
    return DistContext(rank=rank, world_size=world, local_rank=local, device=device)


def shutdown() -> None:
    """Leave the process group if one exists."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def shard_bounds(batch: int, rank: int, world_size: int) -> tuple[int, int]:
    """[start, stop) of ``rank``'s contiguous share of a global batch of ``batch`` examples.

    The first ``batch % world_size`` ranks take one example more; a rank may get none.
    """
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"shard_bounds: need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
    base, extra = divmod(batch, world_size)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


def all_reduce_sum(t: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Sum ``t`` over all processes, in place; a no-op in a single process."""
    if ctx.enabled:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def barrier(ctx: DistContext) -> None:
    """Wait for every process; a no-op in a single process."""
    if ctx.enabled:
        dist.barrier()
