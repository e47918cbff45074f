"""``python -m vaelib``: one-line errors with exit status 2, and a train / resume / eval round trip."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from vaelib import checkpoint, cli

_TINY = ["--limit", "160", "--val-size", "32", "--hidden", "16", "--latent-dim", "2", "--batch-size", "64", "--no-progress", "--device", "cpu"]


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}


def _vaelib(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "vaelib", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())


def test_bad_arguments_give_one_line_and_status_2(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    cases = {
        "unknown dataset 'nope'": ["train", "--dataset", "nope", "--out", str(tmp_path / "a")],
        "unknown likelihood 'nope'": ["train", "--likelihood", "nope", "--out", str(tmp_path / "b")],
        "--beta must be >= 0": ["train", "--beta", "-1", "--out", str(tmp_path / "c")],
        "is not a writable directory": ["train", "--out", str(blocker / "run")],
    }
    procs = {expected: _vaelib(*args) for expected, args in cases.items()}  # in parallel: each start imports torch
    for expected, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 2, (expected, err)
        assert err.count("\n") == 1 and err.startswith("vaelib: error: ") and expected in err, err
        assert "Traceback" not in err and out == ""


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["train"], "required: --out"),
        (["train", "--epochs", "0", "--out", "x"], "--max-epochs"),
        (["train", "--val-size", "0", "--out", "x"], "--patience needs a validation split"),
        (["train", "--resume", "--overwrite", "--out", "x"], "exclude each other"),
        (["train", "--hidden", "a,b", "--out", "x"], "--hidden"),
        (["eval", "--out", "missing-run"], "holds no finished run"),
        (["fly"], "invalid choice"),
    ],
)
def test_more_usage_errors_in_process(argv: list[str], expected: str, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err


def test_train_resume_eval(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert cli.main(["train", "--epochs", "1", "--out", str(out), *_TINY]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt", "metrics.json", "run.json", "samples.png"]
    assert (out / "samples.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["history"]["epoch"] == [1] and metrics["steps"] == 2
    assert checkpoint.load(out / "checkpoint.pt")["step"] == 2

    # a finished run is never replaced by accident: exit 2, naming both deliberate ways on
    capsys.readouterr()
    assert cli.main(["train", "--epochs", "1", "--out", str(out), *_TINY]) == 2
    err = capsys.readouterr().err
    assert "holds a finished run" in err and "--resume" in err and "--overwrite" in err
    assert checkpoint.load(out / "checkpoint.pt")["step"] == 2

    assert cli.main(["train", "--epochs", "3", "--resume", "--out", str(out), *_TINY]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["history"]["epoch"] == [1, 2, 3] and metrics["steps"] == 6
    assert len(metrics["history"]["val_elbo"]) == 3 and metrics["best_epoch"] in (1, 2, 3)
    assert metrics["final"]["val_elbo"] == max(metrics["history"]["val_elbo"])
    # resuming with another model is refused in one line
    assert cli.main(["train", "--epochs", "3", "--resume", "--out", str(out), *_TINY[:-2], "--latent-dim", "3"]) == 2
    assert "latent_dim" in capsys.readouterr().err

    assert cli.main(["eval", "--out", str(out), "--limit", "50", "--k", "4", "--no-fid", "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "ELBO" in printed and "IWAE-4" in printed and "FID" in printed
    # the default likelihood is a Bernoulli and the digits are grey: no 8-bit bits/dim is printed
    assert "bits/dim none: a Bernoulli is a pmf of binary images" in printed
    scores = json.loads((out / "eval.json").read_text())
    assert scores["iwae_4"] >= scores["elbo"] - 5.0 and scores["bits_per_dim"] is None and scores["fid"] is None
    assert "no 8-bit bits/dim exists" in scores["bits_per_dim_why"]

    # the run as a model in one's own code: the best-validation weights, in eval mode
    import vaelib

    model, settings = vaelib.load_run(out)
    assert not model.training and settings["latent_dim"] == model.latent_dim
    best = checkpoint.load(out / "checkpoint.pt")["best_state"]
    assert all(torch.equal(v, best[k]) for k, v in model.state_dict().items())
    with pytest.raises(FileNotFoundError, match="load_run: .* holds no run"):
        vaelib.load_run(tmp_path)

    # --overwrite starts over deliberately
    assert cli.main(["train", "--epochs", "1", "--overwrite", "--out", str(out), *_TINY]) == 0
    assert json.loads((out / "metrics.json").read_text())["history"]["epoch"] == [1]
    assert not (out / "eval.json").exists()


def test_unfinished_run_is_not_replaced(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert cli.main(["train", "--epochs", "1", "--out", str(out), *_TINY]) == 0
    (out / "metrics.json").unlink()  # as after a kill: a checkpoint but no finished metrics
    capsys.readouterr()
    assert cli.main(["train", "--epochs", "2", "--out", str(out), *_TINY]) == 2
    err = capsys.readouterr().err
    assert "unfinished run" in err and "--resume" in err


def test_help_shows_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # independent of the terminal width
    for option, default in [("--max-epochs", "300"), ("--patience", "10"), ("--val-size", "500")]:
        listed = text[text.rindex(f"{option} "):]  # its entry in the option list, after the usage line
        assert re.match(rf"{option} [A-Z_]+(, --[a-z-]+ [A-Z_]+)? [^(]*(\((?!default:)[^)]*\)[^(]*)*?\(default: {default}\)", listed), listed[:200]


def test_bench_tiny(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["bench", "--size", "tiny", "--repeats", "1"]) == 0
    assert "ratio" in capsys.readouterr().out


def test_likelihood_args_take_strings_and_files_follow_the_umask(tmp_path: Path) -> None:
    import os

    out = tmp_path / "run"
    old = os.umask(0o027)
    try:
        assert cli.main(["train", "--epochs", "1", "--out", str(out), *_TINY, "--likelihood", "gaussian-optimal",
                         "--likelihood-arg", "over=batch"]) == 0
    finally:
        os.umask(old)
    assert json.loads((out / "run.json").read_text())["likelihood_args"] == {"over": "batch"}
    for name in ("run.json", "metrics.json", "checkpoint.pt"):
        assert (out / name).stat().st_mode & 0o777 == 0o640
    assert cli.main(["train", "--out", str(tmp_path / "x"), "--likelihood-arg", "sigma"]) == 2


def test_eval_prints_bits_per_dim_of_the_exact_pmf(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A density is scored by the probabilities of its 8-bit bins; a sigma computed from the scored
    image is replaced by one fitted on the training split first."""
    for likelihood, extra, fitted in [("laplace", [], False), ("gaussian-optimal", ["--likelihood-arg", "over=batch"], True)]:
        out = tmp_path / likelihood
        assert cli.main(["train", "--epochs", "1", "--out", str(out), *_TINY, "--likelihood", likelihood, *extra]) == 0
        capsys.readouterr()
        assert cli.main(["eval", "--out", str(out), "--limit", "20", "--k", "3", "--no-fid", "--device", "cpu"]) == 0
        printed = capsys.readouterr().out
        assert "of the exact pmf of 8-bit images" in printed and ("fitted on the training split" in printed) == fitted
        scores = json.loads((out / "eval.json").read_text())
        assert scores["bits_per_dim_scale"] == "8-bit" and 0 < scores["bits_per_dim"] < 30 and ("sigma" in scores) == fitted
