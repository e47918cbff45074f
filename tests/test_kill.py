"""SIGKILL a training process mid-run: every checkpoint stays loadable and the resumed run finishes on
exactly the loss curve of an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from vaelib import checkpoint

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL (POSIX)")

STEPS = 32  # 4 epochs of 8 steps
SCRIPT = """
import json, sys, time
import torch
torch.set_num_threads(1)
from vaelib import data, likelihoods, seed_everything
from vaelib.models import MLPVAE
from vaelib.trainer import Trainer

out, resume, delay = sys.argv[1], sys.argv[2] == "1", float(sys.argv[3])
images = data.load_mnist_5k().train.images[:256]
seed_everything(0)
model = MLPVAE((1, 28, 28), 4, likelihoods.get("bernoulli"), hidden=(32,))
trainer = Trainer(model, images, epochs=4, batch_size=32, seed=5, device="cpu", progress=False,
                  checkpoint=out + "/ckpt.pt", checkpoint_every=3, on_step=lambda t: time.sleep(delay))
trainer.fit(resume=resume)
with open(out + "/result.json", "w") as handle:
    json.dump({"history": vars(trainer.history), "step_loss": trainer.step_loss, "step": trainer.step}, handle)
"""


def _start(script: Path, out: Path, resume: bool, delay: float) -> subprocess.Popen[bytes]:
    out.mkdir(exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, str(script), str(out), "1" if resume else "0", str(delay)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def _finish(proc: subprocess.Popen[bytes]) -> None:
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()


def test_sigkill_then_resume(tmp_path: Path) -> None:
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    killed, reference = tmp_path / "killed", tmp_path / "reference"
    victim = _start(script, killed, resume=False, delay=0.1)
    baseline = _start(script, reference, resume=False, delay=0.0)
    ckpt = killed / "ckpt.pt"
    deadline = time.monotonic() + 90
    while not ckpt.exists():
        assert victim.poll() is None, victim.communicate()[1].decode()
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.02)
    time.sleep(0.4)  # let it run on past a few more checkpoints, then kill it wherever it is
    assert victim.poll() is None, "the run finished before it could be killed"
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    assert victim.returncode == -signal.SIGKILL

    # no corrupt checkpoint: every *.pt loads with weights_only=True; temporaries never end in .pt
    files = sorted(p.name for p in killed.iterdir())
    assert all(name == "ckpt.pt" or name.endswith(checkpoint.TMP_SUFFIX) for name in files), files
    state = checkpoint.load(ckpt)
    assert 0 < state["step"] < STEPS and state["step"] % 3 == 0
    assert all(torch.isfinite(t).all() for t in state["model"].values())

    _finish(_start(script, killed, resume=True, delay=0.0))
    _finish(baseline)
    assert sorted(p.name for p in killed.iterdir()) == ["ckpt.pt", "result.json"]  # stale temporaries removed
    got = json.loads((killed / "result.json").read_text())
    expected = json.loads((reference / "result.json").read_text())
    assert got["step"] == expected["step"] == STEPS
    assert got["step_loss"] == expected["step_loss"]  # the whole curve, bit for bit, from the checkpoint on
    assert got["history"] == expected["history"]
    final, ref_final = checkpoint.load(ckpt), checkpoint.load(reference / "ckpt.pt")
    assert all(torch.equal(final["model"][k], ref_final["model"][k]) for k in ref_final["model"])
