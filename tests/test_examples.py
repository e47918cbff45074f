"""The pytorch/examples VAE, ported to vaelib in examples/pytorch_examples_vae.py, trains and is scored."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from vaelib.protocol import VAE

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "pytorch_examples_vae.py"


def _load():
    spec = importlib.util.spec_from_file_location("pytorch_examples_vae", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_pytorch_examples_vae_trains_with_vaelib(capsys: pytest.CaptureFixture[str]) -> None:
    example = _load()
    assert isinstance(example.ExampleVAE(), VAE)
    first = example.main(["--epochs", "1", "--limit", "1000"])
    second = example.main(["--epochs", "3", "--limit", "1000"])
    assert "test ELBO" in capsys.readouterr().out
    # a Bernoulli ELBO of digits: negative, improving with training, and the IWAE bound above the ELBO
    assert second["test_elbo"] > first["test_elbo"] and second["test_elbo"] < 0
    assert second["test_iwae_100"] > second["test_elbo"] - 2.0
