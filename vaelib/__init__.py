"""vaelib: reconstruction likelihoods, ELBO estimators and training for variational autoencoders.

Every function cites the equation of the book that derives it, as ``Eq. (eq-...)``.
"""

from __future__ import annotations

from vaelib.device import cpu_numerics, default_device, one_thread, seed_everything

__version__ = "0.1.0"

__all__ = ["default_device", "seed_everything", "one_thread", "cpu_numerics", "load_run", "__version__"]


def __getattr__(name: str) -> object:
    if name == "load_run":  # imported on first use: it needs the models and likelihoods
        from vaelib.runs import load_run

        return load_run
    raise AttributeError(f"module 'vaelib' has no attribute {name!r}")
