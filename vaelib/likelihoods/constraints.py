"""Constraints that reject NaN and infinity, with the allowed range in their name.

``torch.distributions.constraints.real`` lets infinities through; a likelihood fed an infinite
pixel or parameter would return a silent NaN or infinity, so vaelib's distributions use these.
Every constraint's ``repr`` states the allowed range, so that the ``ValueError`` torch raises on a
failed check names the distribution, the argument and the range.
"""

from __future__ import annotations

import torch
from torch.distributions import constraints

__all__ = [
    "finite_real",
    "finite_positive",
    "unit_interval",
    "open_unit_interval",
    "QuantizedUnitInterval",
    "UnitIntervalLevels",
    "broadcast_params",
]


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


class _UnitInterval(constraints.Constraint):
    """The closed unit interval 0 <= value <= 1 (NaN fails both comparisons, so it is excluded)."""

    def check(self, value: torch.Tensor) -> torch.Tensor:
        return (value >= 0) & (value <= 1)

    def __repr__(self) -> str:
        return "UnitInterval(0 <= value <= 1)"


class _OpenUnitInterval(constraints.Constraint):
    """The open unit interval 0 < value < 1, the support of the Beta density."""

    def check(self, value: torch.Tensor) -> torch.Tensor:
        return (value > 0) & (value < 1)

    def __repr__(self) -> str:
        return "OpenUnitInterval(0 < value < 1)"


class QuantizedUnitInterval(constraints.Constraint):
    """The grid {0, 1/n, 2/n, ..., 1} with n = 2**bits - 1: quantised data scaled to [0, 1].

    A value is accepted when it lies within ``tol`` bins of a grid point (the default 1e-3 bins
    covers the rounding of k/n in float32).
    """

    is_discrete = True

    def __init__(self, bits: int, tol: float = 1e-3) -> None:
        self.bits = int(bits)
        self.n = 2**self.bits - 1
        self.tol = float(tol)
        super().__init__()

    def check(self, value: torch.Tensor) -> torch.Tensor:
        scaled = value * self.n
        return (value >= 0) & (value <= 1) & ((scaled - torch.round(scaled)).abs() <= self.tol)

    def __repr__(self) -> str:
        return f"QuantizedUnitInterval(value = k/{self.n} for k = 0..{self.n})"


class UnitIntervalLevels(constraints.Constraint):
    """The grid {0, 1/n, 2/n, ..., 1} with n = levels - 1, for any number of levels >= 2.

    :class:`QuantizedUnitInterval` with the number of levels instead of bits. A value is accepted
    when it lies within ``tol`` bins of a grid point; the tolerance is raised to a few roundings of
    k/n in the value's dtype where that is larger (4 n eps: 1.2e-4 bins at 256 levels in float32,
    0.03 at 65536).
    """

    is_discrete = True

    def __init__(self, levels: int, tol: float = 1e-3) -> None:
        if int(levels) != levels or levels < 2:
            raise ValueError(f"UnitIntervalLevels: levels must be an integer >= 2, got {levels}")
        self.levels = int(levels)
        self.n = self.levels - 1
        self.tol = float(tol)
        super().__init__()

    def tolerance(self, dtype: torch.dtype) -> float:
        """The accepted distance to the grid, in bins, for values of ``dtype``."""
        eps = torch.finfo(dtype).eps if dtype.is_floating_point else 0.0
        return max(self.tol, 4 * self.n * eps)

    def check(self, value: torch.Tensor) -> torch.Tensor:
        scaled = value * self.n
        tol = self.tolerance(value.dtype) if isinstance(value, torch.Tensor) else self.tol
        return (value >= 0) & (value <= 1) & ((scaled - torch.round(scaled)).abs() <= tol)

    def __repr__(self) -> str:
        return f"UnitIntervalLevels(value = k/{self.n} for k = 0..{self.n})"


finite_real = _FiniteReal()
finite_positive = _FinitePositive()
unit_interval = _UnitInterval()
open_unit_interval = _OpenUnitInterval()


def broadcast_params(owner: str, **params: object) -> tuple[torch.Tensor, ...]:
    """``torch.distributions.utils.broadcast_all`` with a ``ValueError`` naming ``owner`` and the shapes.

    Plain numbers become tensors of the dtype and device of the first tensor argument
    (or of the default dtype when there is none).
    """
    from torch.distributions.utils import broadcast_all

    try:
        return tuple(broadcast_all(*params.values()))
    except (RuntimeError, ValueError) as err:
        shapes = ", ".join(
            f"{k} {tuple(v.shape) if isinstance(v, torch.Tensor) else '(number)'}" for k, v in params.items()
        )
        raise ValueError(f"{owner}: the parameters must broadcast to one shape, got {shapes}") from err


def _register_transforms() -> None:
    """``biject_to`` and ``transform_to`` for vaelib's continuous constraints, as torch registers its own:
    the identity onto the finite reals, ``exp`` onto the positive numbers, the logistic sigmoid onto the
    unit interval (closed or open: the sigmoid of a finite number lies strictly inside)."""
    from torch.distributions import transforms
    from torch.distributions.constraint_registry import biject_to, transform_to

    for registry in (biject_to, transform_to):
        registry.register(_FiniteReal)(lambda constraint: transforms.identity_transform)
        registry.register(_FinitePositive)(lambda constraint: transforms.ExpTransform())
        registry.register(_UnitInterval)(lambda constraint: transforms.SigmoidTransform())
        registry.register(_OpenUnitInterval)(lambda constraint: transforms.SigmoidTransform())


_register_transforms()
