from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch

from vaelib import plotting
from vaelib.train import History


def test_image_grid_places_every_image() -> None:
    images = torch.arange(6, dtype=torch.float32).view(6, 1, 1, 1) / 10
    grid = plotting.image_grid(images.expand(6, 1, 2, 2), ncol=4, pad=1)
    assert grid.shape == (2 * 2 + 1, 4 * 2 + 3)
    assert grid[0, 0] == pytest.approx(0.0)
    assert grid[3, 3] == pytest.approx(0.5)  # sixth image: row 1, column 1
    assert grid[3, 9] == 1.0  # empty slots are white


def test_image_grid_colour_and_clipping() -> None:
    images = torch.full((2, 3, 4, 4), 2.0)
    images[:, 1] = -1.0
    grid = plotting.image_grid(images, ncol=2)
    assert grid.shape == (4, 9, 3)
    assert np.all(grid[:, :4, 0] == 1.0) and np.all(grid[:, :4, 1] == 0.0)
    with pytest.raises(ValueError, match="image_grid"):
        plotting.image_grid(torch.zeros(4, 4))


def test_figures_draw() -> None:
    fig = plotting.show_rows([("a", torch.rand(10, 1, 28, 28)), ("b", torch.rand(10, 1, 28, 28))], ncol=5)
    assert len(fig.axes) == 2 and fig.axes[1].get_title() == "b"
    h = History(epoch=[1, 2], elbo=[-3.0, -2.0])
    ax = plotting.plot_history({"run": h})
    assert ax.lines[0].get_ydata().tolist() == [-3.0, -2.0]


def _shown_equation(monkeypatch: pytest.MonkeyPatch, *args: object) -> object:
    """Call show_equation and return the one object it displayed."""
    ipython_display = pytest.importorskip("IPython.display")
    shown: list[object] = []
    monkeypatch.setattr(ipython_display, "display", lambda *objs, **_: shown.extend(objs))
    plotting.show_equation(*args)
    assert len(shown) == 1
    return shown[0]


def test_show_equation_keeps_the_left_hand_side(monkeypatch: pytest.MonkeyPatch) -> None:
    sp = pytest.importorskip("sympy")
    ipython_display = pytest.importorskip("IPython.display")
    sigma, x, mu = sp.symbols("sigma x mu", positive=True)
    lhs = r"\partial_\sigma (-\log p)"
    math = _shown_equation(monkeypatch, lhs, (sigma**2 - (x - mu) ** 2) / sigma**3)
    assert isinstance(math, ipython_display.Math)
    assert math.data == lhs + " = " + sp.latex((sigma**2 - (x - mu) ** 2) / sigma**3)
    assert math.data.startswith(r"\partial_\sigma (-\log p) = ")
    assert r"\partial_{\sigma" not in math.data  # what sp.Eq(sp.Symbol(lhs), ...) prints
    assert math._repr_latex_() == "$\\displaystyle " + math.data + "$"


def test_show_equation_string_rhs_and_relation(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("sympy")
    math = _shown_equation(monkeypatch, r"H_\delta(r)", r"\tfrac12 r^2", r"\le")
    assert math.data == r"H_\delta(r) \le \tfrac12 r^2"
    math = _shown_equation(monkeypatch, r"\sigma|_{d = 784}", 3)
    assert math.data == r"\sigma|_{d = 784} = 3"
