"""Constraints that reject NaN and infinity, with the allowed range in their name.

``torch.distributions.constraints.real`` lets infinities through; a likelihood fed an infinite
pixel or parameter would return a silent NaN or infinity, so vaelib's distributions use these.
"""

from __future__ import annotations

import torch
from torch.distributions import constraints

__all__ = ["finite_real", "finite_positive"]


class _FiniteReal(constraints.Constraint):
    """Finite real numbers: -inf < value < inf, NaN excluded."""

    def check(self, value: torch.Tensor) -> torch.Tensor:
        return torch.isfinite(value)

    def __repr__(self) -> str:
        return "FiniteReal(-inf < value < inf)"


class _FinitePositive(constraints.Constraint):
    """Finite, strictly positive numbers: 0 < value < inf."""

    def check(self, value: torch.Tensor) -> torch.Tensor:
        return torch.isfinite(value) & (value > 0)

    def __repr__(self) -> str:
        return "FinitePositive(0 < value < inf)"


finite_real = _FiniteReal()
finite_positive = _FinitePositive()
