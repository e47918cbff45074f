"""A run directory written by ``python -m vaelib train``, read back as a model.

The directory holds ``run.json`` (the settings: dataset, likelihood and its arguments, latent size,
hidden layers, split) and ``checkpoint.pt`` (the weights, including those of the best validation
epoch). :func:`load_run` rebuilds the model from the settings and loads those best weights.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from vaelib import likelihoods
from vaelib.checkpoint import load
from vaelib.models import MLPVAE

__all__ = ["RUN_FILE", "CHECKPOINT_FILE", "build_model", "load_run"]

RUN_FILE, CHECKPOINT_FILE = "run.json", "checkpoint.pt"


def build_model(settings: dict[str, Any], image_shape: tuple[int, int, int]) -> MLPVAE:
    """The untrained :class:`~vaelib.models.MLPVAE` that ``settings`` (a ``run.json``) describe."""
    head = likelihoods.get(settings["likelihood"], **settings["likelihood_args"])
    return MLPVAE(image_shape, settings["latent_dim"], head, hidden=tuple(settings["hidden"]))


def load_run(out: str | Path, device: torch.device | str = "cpu") -> tuple[MLPVAE, dict[str, Any]]:
    """The trained model of the run in ``out`` (best-validation weights, in eval mode, on ``device``)
    and its settings. A directory without ``run.json`` and ``checkpoint.pt`` is a ``FileNotFoundError``."""
    out = Path(out)
    run_file, ckpt_file = out / RUN_FILE, out / CHECKPOINT_FILE
    if not run_file.is_file() or not ckpt_file.is_file():
        raise FileNotFoundError(f"load_run: {str(out)!r} holds no run ({RUN_FILE} and {CHECKPOINT_FILE} are needed)")
    settings = json.loads(run_file.read_text())
    from vaelib import data  # the image shape of the dataset

    shape = settings.get("image_shape") or data.load(settings["dataset"]).test.image_shape
    model = build_model(settings, tuple(shape))
    state = load(ckpt_file)
    model.load_state_dict(state.get("best_state") or state["model"])
    return model.to(device).eval(), settings
