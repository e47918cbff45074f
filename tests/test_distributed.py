"""Two CPU processes under torchrun (gloo on 127.0.0.1) give the result of one process on the same global batch."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from vaelib import checkpoint
from vaelib.distributed import DistContext, init_from_env, shard_bounds

pytestmark = pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="needs torch.distributed with gloo")

# Tiny run: 96 training images (of 128, 32 held out), global batch 32 (16 per rank), 2 epochs = 6 Adam steps.
ARGS = ["train", "--limit", "128", "--val-size", "32", "--epochs", "2", "--batch-size", "32", "--hidden", "16", "--latent-dim", "2",
        "--no-progress", "--device", "cpu", "--seed", "3"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env() -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    if sys.platform.startswith("linux"):
        env.setdefault("GLOO_SOCKET_IFNAME", "lo")
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    return env


def test_shard_bounds_cover_the_batch() -> None:
    for batch in range(0, 12):
        for world in range(1, 5):
            parts = [shard_bounds(batch, r, world) for r in range(world)]
            assert parts[0][0] == 0 and parts[-1][1] == batch
            assert all(a[1] == b[0] for a, b in zip(parts, parts[1:]))
            assert max(b - a for a, b in parts) - min(b - a for a, b in parts) <= 1
    with pytest.raises(ValueError, match="rank"):
        shard_bounds(4, 2, 2)


def test_single_process_without_torchrun(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RANK", raising=False)
    ctx = init_from_env("cpu")
    assert ctx == DistContext() and not ctx.enabled and ctx.is_main


def test_two_gloo_processes_match_one(tmp_path: Path) -> None:
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
                "--master_addr", "127.0.0.1", "--master_port", str(_free_port()), "-m", "vaelib"]
    pair = subprocess.Popen([*launcher, *ARGS, "--out", str(tmp_path / "ddp")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    single = subprocess.Popen([sys.executable, "-m", "vaelib", *ARGS, "--out", str(tmp_path / "one")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    for proc in (pair, single):
        _, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err[-3000:]
    ddp, one = checkpoint.load(tmp_path / "ddp" / "checkpoint.pt"), checkpoint.load(tmp_path / "one" / "checkpoint.pt")
    assert ddp["config"]["world_size"] == 2 and one["config"]["world_size"] == 1
    assert ddp["step"] == one["step"] == 6
    # Same global batches and the same posterior noise: only the summation order of the gradient
    # differs (two half-batch sums added by the all-reduce instead of one sum), i.e. float32
    # rounding of ~1e-7 relative per step, which six Adam steps keep well below 1e-5.
    torch.testing.assert_close(torch.tensor(ddp["step_loss"]), torch.tensor(one["step_loss"]), rtol=1e-5, atol=0.0)
    for name, value in one["model"].items():
        torch.testing.assert_close(ddp["model"][name], value, rtol=1e-5, atol=1e-6, msg=lambda m: f"{name}: {m}")
    assert ddp["history"]["epoch"] == [1, 2]
    torch.testing.assert_close(torch.tensor(ddp["history"]["loss"]), torch.tensor(one["history"]["loss"]), rtol=1e-5, atol=0.0)
