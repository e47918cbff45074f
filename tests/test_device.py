from __future__ import annotations

import numpy as np
import pytest
import torch

import vaelib


def test_default_device_is_a_usable_device() -> None:
    device = vaelib.default_device()
    assert device.type in {"cuda", "mps", "cpu"}
    assert torch.ones(2, device=device).sum().item() == 2.0
    if not torch.cuda.is_available():
        assert device.type in {"mps", "cpu"}


def test_seed_everything_repeats_every_generator() -> None:
    def draw() -> tuple[float, float, float, list[int]]:
        gen = vaelib.seed_everything(123)
        import random

        return random.random(), float(np.random.rand()), torch.rand(1).item(), torch.randperm(10, generator=gen).tolist()

    assert draw() == draw()
    first = draw()
    vaelib.seed_everything(124)
    assert torch.rand(1).item() != first[2]


@pytest.mark.parametrize("bad", [-1, 1.5, "3"])
def test_seed_everything_rejects_bad_seed(bad: object) -> None:
    with pytest.raises(ValueError, match="seed"):
        vaelib.seed_everything(bad)  # type: ignore[arg-type]
