"""What a model must provide for vaelib's trainer, bounds and metrics: the VAE protocol.

Any :class:`torch.nn.Module` works that has

* ``encode(x) -> (mu, logvar)``: the diagonal-Gaussian posterior q(z | x), each of shape (N, latent_dim);
* ``decode(z) -> params``: the decoder output that the head turns into p(x | z);
* ``head``: a :class:`vaelib.likelihoods.LikelihoodHead` (``head.nll(params, x) -> (N,)``, ``head.mean(params)``);
* ``latent_dim``: the number of latent dimensions (int); the prior is N(0, I).

:class:`vaelib.models.MLPVAE` is one. :func:`check_vae` names what a model lacks, and
:func:`reconstruct` and :func:`sample` are the figures every chapter shows, for any such model.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

__all__ = ["VAE", "check_vae", "reconstruct", "sample", "BOUNDS_NEED"]


@runtime_checkable
class VAE(Protocol):
    """The interface of :mod:`vaelib.protocol`."""

    latent_dim: int

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...

    def decode(self, z: torch.Tensor) -> torch.Tensor: ...


BOUNDS_NEED = ("encode", "decode", "head")  # what a bound or an evaluation needs
_PIECES = {
    "encode": "encode(x) -> (mu, logvar)",
    "decode": "decode(z) -> head parameters",
    "head": "head, a vaelib.likelihoods.LikelihoodHead",
    "latent_dim": "latent_dim, an int",
}


def check_vae(model: object, caller: str, needs: tuple[str, ...] = tuple(_PIECES)) -> None:
    """Raise a ``TypeError`` that names every piece of the protocol ``model`` lacks (of those ``caller`` ``needs``)."""
    missing = [desc for name, desc in _PIECES.items() if name in needs and not hasattr(model, name)]
    head = getattr(model, "head", None)
    if "head" in needs and head is not None and not (callable(getattr(head, "nll", None)) and callable(getattr(head, "mean", None))):
        missing.append("a head with nll(params, x) and mean(params) (a vaelib.likelihoods.LikelihoodHead)")
    for name in ("encode", "decode"):
        if name in needs and hasattr(model, name) and not callable(getattr(model, name)):
            missing.append(f"{name} must be callable")
    if "latent_dim" in needs and hasattr(model, "latent_dim") and not isinstance(getattr(model, "latent_dim"), int):
        missing.append(f"latent_dim must be an int, got {type(getattr(model, 'latent_dim')).__name__}")
    if not isinstance(model, torch.nn.Module):
        missing.append("it must be a torch.nn.Module")
    if missing:
        raise TypeError(f"{caller}: {type(model).__name__} does not implement the VAE protocol of vaelib.protocol; "
                        f"it lacks: {'; '.join(missing)}")


@torch.no_grad()
def reconstruct(model: VAE, x: torch.Tensor) -> torch.Tensor:
    """Mean of p(x | z = posterior mean), the usual reconstruction figure."""
    mu, _ = model.encode(x)
    return model.head.mean(model.decode(mu))  # type: ignore[attr-defined]


@torch.no_grad()
def sample(model: VAE, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Means of p(x | z) for ``n`` draws of z from the standard-normal prior (drawn on the CPU)."""
    device = next(model.parameters()).device  # type: ignore[attr-defined]
    z = torch.randn(n, model.latent_dim, generator=generator, device="cpu").to(device)
    return model.head.mean(model.decode(z))  # type: ignore[attr-defined]
