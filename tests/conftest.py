"""Shared test settings: float64 references come from mpmath at 50 significant digits."""

from __future__ import annotations

import mpmath
import pytest
import torch

mpmath.mp.dps = 50


@pytest.fixture(autouse=True)
def _fixed_threads() -> None:
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))


def rel_err(got: torch.Tensor, ref: list[mpmath.mpf], floor: float = 0.0) -> float:
    """Largest |got - ref| / max(|ref|, floor) over the elements, computed in mpmath."""
    worst = mpmath.mpf(0)
    for g, r in zip(got.detach().double().flatten().tolist(), ref):
        denom = max(abs(r), mpmath.mpf(floor))
        worst = max(worst, abs(mpmath.mpf(g) - r) / denom)
    return float(worst)
