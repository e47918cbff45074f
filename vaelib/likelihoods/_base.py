"""What every vaelib distribution shares: parameter broadcasting, ``expand`` and clear shape errors."""

from __future__ import annotations

import contextlib
import math
from numbers import Real
from typing import Any, ClassVar, Iterator, TypeVar

import torch
from torch.distributions import Distribution

from vaelib.likelihoods.constraints import broadcast_params

__all__ = [
    "ElementwiseDistribution",
    "argument_validation",
    "per_example_sum",
    "check_batched",
    "check_finite",
    "exact_softplus",
]

_D = TypeVar("_D", bound="ElementwiseDistribution")


def check_finite(owner: str, name: str, t: object) -> None:
    """A ``ValueError`` naming ``owner``, the argument, the first NaN or infinite entry and its index."""
    if not (isinstance(t, torch.Tensor) and t.is_floating_point()):
        if isinstance(t, Real) and not math.isfinite(float(t)):
            raise ValueError(f"{owner}: {name} is {float(t)}; it must be finite")
        return
    bad = ~torch.isfinite(t)
    if bad.any():
        index = tuple(int(i) for i in bad.nonzero()[0].tolist())
        raise ValueError(f"{owner}: {name} contains {t[index].item()} at index {index} (shape {tuple(t.shape)}, "
                         f"{int(bad.sum())} non-finite entries); it must be finite")


@contextlib.contextmanager
def argument_validation(enabled: bool) -> Iterator[None]:
    """Turn torch's default argument validation on or off inside the block, and restore it after.

    It governs every distribution built with ``validate_args=None``, vaelib's and torch's alike.
    The trainer checks its images once with validation on and runs its steps with it off, so that
    a step does not rescan data that cannot have changed.
    """
    previous = Distribution._validate_args
    Distribution.set_default_validate_args(enabled)
    try:
        yield
    finally:
        Distribution.set_default_validate_args(previous)


class ElementwiseDistribution(Distribution):
    """A distribution with scalar events whose parameters broadcast to the batch shape.

    Subclasses list their tensor parameters in ``_param_names`` (in constructor order) and any
    non-tensor settings in ``_static_names``; they call :meth:`_init_params` from ``__init__``.
    """

    _param_names: ClassVar[tuple[str, ...]] = ()
    _static_names: ClassVar[tuple[str, ...]] = ()

    def _init_params(self, validate_args: bool | None, **params: Any) -> None:
        if validate_args if validate_args is not None else Distribution._validate_args:
            for name, value in params.items():  # before torch's constraint check, which never says NaN
                check_finite(type(self).__name__, name, value)
        tensors = broadcast_params(type(self).__name__, **params)
        # the arguments as given (a number stays a number): parameter-only terms such as log scale
        # are computed once on these and broadcast, instead of once per data element
        self._raw_params = dict(params)
        for name, t in zip(params, tensors):
            setattr(self, name, t)
        if all(isinstance(v, Real) for v in params.values()):
            batch_shape = torch.Size()
        else:
            batch_shape = tensors[0].size()
        Distribution.__init__(self, batch_shape, validate_args=validate_args)

    def expand(self: _D, batch_shape: torch.Size, _instance: _D | None = None) -> _D:
        new = self._get_checked_instance(type(self), _instance)
        batch_shape = torch.Size(batch_shape)
        for name in self._param_names:
            setattr(new, name, getattr(self, name).expand(batch_shape))
        for name in self._static_names:
            setattr(new, name, getattr(self, name))
        new._raw_params = dict(getattr(self, "_raw_params", {}))
        Distribution.__init__(new, batch_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def _validate_sample(self, value: torch.Tensor) -> None:
        check_finite(type(self).__name__, "value", value)
        if isinstance(value, torch.Tensor):
            try:
                torch.broadcast_shapes(value.shape, self.batch_shape)
            except RuntimeError:
                raise ValueError(
                    f"{type(self).__name__}: value of shape {tuple(value.shape)} does not broadcast with the "
                    f"batch shape {tuple(self.batch_shape)}"
                ) from None
        super()._validate_sample(value)


def per_example_sum(owner: str, log_prob: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``-log_prob`` summed over all but the first dimension, checking that ``x`` kept its shape."""
    if log_prob.shape != x.shape:
        raise ValueError(
            f"{owner}: the parameters must broadcast to x {tuple(x.shape)} without changing its shape, "
            f"got {tuple(log_prob.shape)}"
        )
    # sum, then negate: the negation costs one pass over N numbers rather than over the data
    nll = -(log_prob.flatten(1).sum(1) if log_prob.ndim > 1 else log_prob)
    if not torch.isfinite(nll).all():  # N numbers checked; the data are scanned only on a failure
        check_finite(owner, "x", x)
        first = int((~torch.isfinite(nll)).nonzero()[0, 0]) if nll.ndim else 0
        raise ValueError(f"{owner}: the NLL of example {first} is {nll.flatten()[first].item()}: a parameter is not "
                         "finite or x lies outside the support")
    return nll


def check_batched(owner: str, x: torch.Tensor) -> None:
    """A functional NLL needs a batch dimension to sum within.

    The messages name ``x`` as the last positional argument: the functional NLLs take the
    distribution's parameters first and the data last, so a call with the data first and a number
    last fails here rather than silently.
    """
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{owner}: x (the data, which come after the parameters) must be a tensor, got {type(x).__name__}")
    if x.ndim < 1:
        raise ValueError(f"{owner}: x (the data, which come after the parameters) must have a batch dimension, "
                         f"got shape {tuple(x.shape)}")


def exact_softplus(t: torch.Tensor) -> torch.Tensor:
    """log(1 + exp(t)) to full relative accuracy in the dtype of ``t``, as one fused kernel.

    ``torch.nn.functional.softplus`` returns t itself above its threshold; the default threshold
    (20) costs exp(-20) ~ 2e-9 of accuracy in float64, so float64 uses 40 (error exp(-40) ~ 4e-18).
    """
    return torch.nn.functional.softplus(t, threshold=40.0 if t.dtype == torch.float64 else 20.0)
