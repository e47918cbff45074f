"""Figures shared by the chapters: image grids, training curves and displayed equations."""

from __future__ import annotations

from typing import Any, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = ["image_grid", "show_images", "show_rows", "plot_history", "show_equation"]


def image_grid(images: torch.Tensor, ncol: int = 8, pad: int = 1) -> np.ndarray:
    """Tile (N, C, H, W) images in [0, 1] into one (rows*H, ncol*W[, C]) array, clipped to [0, 1]."""
    if images.ndim != 4:
        raise ValueError(f"image_grid: images must have shape (N, C, H, W), got {tuple(images.shape)}")
    imgs = images.detach().float().cpu().clamp(0, 1).numpy()
    n, c, h, w = imgs.shape
    nrow = -(-n // ncol)
    grid = np.ones((c, nrow * (h + pad) - pad, ncol * (w + pad) - pad), dtype=np.float32)
    for i in range(n):
        r, k = divmod(i, ncol)
        grid[:, r * (h + pad) : r * (h + pad) + h, k * (w + pad) : k * (w + pad) + w] = imgs[i]
    return grid[0] if c == 1 else grid.transpose(1, 2, 0)


def show_images(images: torch.Tensor, ax: Axes, title: str = "", ncol: int = 8) -> None:
    """Draw an image grid on ``ax`` without ticks; grey images use a fixed [0, 1] grey scale."""
    grid = image_grid(images, ncol=ncol)
    ax.imshow(grid, cmap="gray" if grid.ndim == 2 else None, vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_title(title, fontsize=10)
    ax.set_axis_off()


def show_rows(rows: Sequence[tuple[str, torch.Tensor]], ncol: int = 10, height: float = 1.2) -> Figure:
    """One labelled image row per (label, images) pair, stacked vertically."""
    fig, axes = plt.subplots(len(rows), 1, figsize=(ncol * 0.75, height * len(rows) + 0.3), squeeze=False)
    for ax, (label, images) in zip(axes[:, 0], rows):
        show_images(images[:ncol], ax, title=label, ncol=ncol)
    fig.tight_layout()
    return fig


def plot_history(histories: dict[str, object], key: str = "elbo", ax: Axes | None = None) -> Axes:
    """Plot ``key`` of several :class:`vaelib.history.History` objects against the epoch."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.2))
    for label, history in histories.items():
        ax.plot(getattr(history, "epoch"), getattr(history, key), label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel(key)
    ax.legend(fontsize=8)
    return ax


def show_equation(lhs: str, rhs: Any, relation: str = "=") -> None:
    r"""Display the equation ``lhs relation rhs`` in a notebook, with ``lhs`` exactly as written.

    ``lhs`` is LaTeX and is used verbatim. ``rhs`` is a SymPy expression, printed by ``sympy.latex``,
    or a string of LaTeX, used verbatim. ``relation`` goes between them (``=``, ``\le``, ``\approx``
    ...). The result is one ``IPython.display.Math`` object.

    Why not ``display(sympy.Eq(sympy.Symbol(lhs), rhs))``: SymPy's printer parses a Symbol's name for
    subscripts and superscripts, splitting it at ``_`` and ``^``, so the name is not printed as
    written: ``Symbol(r"\partial_\sigma (-\log p)")`` prints as ``\partial_{\sigma (-\log p)}``
    and ``Symbol(r"H_\delta(r)")`` as ``H_{\delta(r)}``. A LaTeX left-hand side must therefore not go
    through a Symbol.

    SymPy and IPython are imported when the function is called: they are not part of vaelib's core
    install.
    """
    from IPython.display import Math, display

    if isinstance(rhs, str):
        rhs_tex = rhs
    else:
        import sympy

        rhs_tex = sympy.latex(rhs)
    display(Math(f"{lhs} {relation} {rhs_tex}"))
