"""A default ``python -m vaelib train`` interrupted mid-run (SIGINT, SIGTERM or SIGKILL) and resumed with
``--resume`` ends at exactly the result of an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")

# about 0.1 s an epoch on one thread: long enough to be interrupted after the first checkpoint
ARGS = ["--limit", "1000", "--val-size", "100", "--hidden", "128", "--latent-dim", "4", "--max-epochs", "25",
        "--patience", "25", "--no-progress", "--device", "cpu"]


def _train(out: Path, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    return subprocess.Popen([sys.executable, "-m", "vaelib", "train", *ARGS, "--out", str(out), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _history(out: Path) -> dict[str, list[float]]:
    return json.loads((out / "metrics.json").read_text())["history"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[float]]:
    out = tmp_path_factory.mktemp("reference")
    proc = _train(out)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    return _history(out)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=["SIGINT", "SIGTERM", "SIGKILL"])
def test_interrupt_then_resume_is_exact(sig: signal.Signals, tmp_path: Path, reference: dict[str, list[float]]) -> None:
    out = tmp_path / "run"
    proc = _train(out)
    deadline = time.monotonic() + 120
    while not (out / "checkpoint.pt").exists():  # the end of the first epoch
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.01)
    time.sleep(0.25)
    assert proc.poll() is None, "the run finished before it could be interrupted"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    if sig == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
    else:
        assert proc.returncode == 130, err
        assert "interrupted" in err and "--resume" in err and err.count("\n") == 1, err
    assert not (out / "metrics.json").exists()

    resumed = _train(out, "--resume")
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert _history(out) == reference
