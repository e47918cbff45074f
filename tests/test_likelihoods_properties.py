"""Property-based: no likelihood returns NaN or infinity in float32 for finite parameters and data.

The ranges are those where the exact answer is representable in float32: a Gaussian with
scale 1e-30 and error 1e30 has log-density -5e119, which no float32 can hold, so parameters span
the many decades a decoder can produce (1e-6..1e6 for scales, |loc| up to 1e4), not all of float32.
"""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from vaelib import likelihoods
from vaelib.likelihoods import Bernoulli, Beta, DiscretizedLogistic, Gaussian, Huber, Laplace

SETTINGS = settings(max_examples=60, derandomize=True, deadline=None)
N = 8


def _f32(lo: float, hi: float) -> st.SearchStrategy[torch.Tensor]:
    lo, hi = (float(torch.tensor(v, dtype=torch.float32)) for v in (lo, hi))  # bounds must be float32 numbers
    return st.lists(st.floats(lo, hi, width=32, allow_nan=False), min_size=N, max_size=N).map(
        lambda v: torch.tensor(v, dtype=torch.float32)
    )


def _positive32(lo_exp: float, hi_exp: float) -> st.SearchStrategy[torch.Tensor]:
    return _f32(lo_exp, hi_exp).map(lambda e: torch.pow(10.0, e))


def _finite(t: torch.Tensor) -> bool:
    return bool(torch.isfinite(t).all())


@SETTINGS
@given(x=_f32(-1e4, 1e4), loc=_f32(-1e4, 1e4), scale=_positive32(-6, 6))
def test_gaussian_and_laplace(x: torch.Tensor, loc: torch.Tensor, scale: torch.Tensor) -> None:
    assert _finite(Gaussian(loc, scale).log_prob(x))
    assert _finite(Laplace(loc, scale).log_prob(x))


@SETTINGS
@given(x=_f32(-1e4, 1e4), loc=_f32(-1e4, 1e4), scale=_positive32(-6, 6), delta=_positive32(-8, 4))
def test_huber(x: torch.Tensor, loc: torch.Tensor, scale: torch.Tensor, delta: torch.Tensor) -> None:
    p = Huber(loc, scale, delta)
    assert _finite(p.log_prob(x))
    assert _finite(p.variance) and _finite(p.entropy())


@SETTINGS
@given(x=_f32(0.0, 1.0), logits=_f32(-1e4, 1e4), binary=st.booleans())
def test_bernoulli(x: torch.Tensor, logits: torch.Tensor, binary: bool) -> None:
    x = torch.round(x) if binary else x
    assert _finite(Bernoulli(logits).log_prob(x))
    l = logits.clone().requires_grad_(True)
    Bernoulli(l).log_prob(x).sum().backward()
    assert _finite(l.grad)


@SETTINGS
@given(x=_f32(1e-30, 0.99999), a=_positive32(-3, 6), b=_positive32(-3, 6))
def test_beta(x: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> None:
    p = Beta(a, b)
    assert _finite(p.log_prob(x))
    assert _finite(p.mean) and _finite(p.variance)


@SETTINGS
@given(k=st.lists(st.integers(0, 255), min_size=N, max_size=N), loc=_f32(-1e3, 1e3), scale=_positive32(-8, 5))
def test_discretized_logistic(k: list[int], loc: torch.Tensor, scale: torch.Tensor) -> None:
    x = torch.tensor(k, dtype=torch.float32) / 255
    lp = DiscretizedLogistic(loc, scale).log_prob(x)
    assert _finite(lp) and bool((lp <= 0).all())


@SETTINGS
@given(raw=_f32(-200.0, 200.0), x=_f32(0.0, 1.0))
def test_heads_on_any_decoder_output(raw: torch.Tensor, x: torch.Tensor) -> None:
    """Softplus-floored scales and concentrations stay valid for any decoder output in float32."""
    x = torch.round(x * 255) / 255
    one = raw.view(1, N, 1, 1)
    two = torch.cat([raw, raw.flip(0)]).view(1, 2 * N, 1, 1)
    xs = x.view(1, N, 1, 1)
    cases = {
        "gaussian-pixel": two,
        "gaussian-image": torch.cat([one, one[:, :1]], 1),
        "bernoulli": one,
        "huber": one,
        "laplace": one,
        "beta": two,
        "logistic": two,
        "gaussian-optimal": one,
        "gaussian-optimal-pixel": one,
    }
    for name, params in cases.items():
        head = likelihoods.get(name, **({"eps": 1e-3} if name == "beta" else {}))
        assert _finite(head.nll(params, xs)), name
