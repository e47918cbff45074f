"""The regularised incomplete beta function in log space against mpmath at 50 digits: both tails,
concentrations from 1e-3 to 1e4, x from 1e-300 to 1 - 1e-16, float64 and float32, gradients, errors."""

from __future__ import annotations

import math
import random
import subprocess
import sys

import mpmath
import pytest
import torch

from vaelib.likelihoods import log_betainc, log_betainc_pair, log_betaincc
from vaelib.likelihoods import special

F64 = dict(dtype=torch.float64)
mp = mpmath.mpf


def _side(p: mpmath.mpf, q: mpmath.mpf, z: mpmath.mpf) -> mpmath.mpf:
    """I_z(p, q) for z below the switch point: mpmath.betainc, or, where its hypergeometric series does not
    converge (large concentrations), the positive-term form z^p (1-z)^q / (p B(p, q)) 2F1(p + q, 1; p + 1; z)."""
    try:
        return mpmath.betainc(p, q, 0, z, regularized=True)
    except (ValueError, mpmath.libmp.libhyper.NoConvergence):
        return mpmath.exp(p * mpmath.log(z) + q * mpmath.log1p(-z) - mpmath.log(p) - mpmath.log(mpmath.beta(p, q))) * mpmath.hyp2f1(p + q, 1, p + 1, z)


def ref_pair(a: float, b: float, x: float) -> tuple[mpmath.mpf, mpmath.mpf]:
    """(I_x(a, b), 1 - I_x(a, b)) to 50 digits, the smaller side computed directly."""
    a, b, x = mp(a), mp(b), mp(x)
    if x < (a + 1) / (a + b + 2):
        i = _side(a, b, x)
        return i, 1 - i
    c = _side(b, a, 1 - x)
    return 1 - c, c


def ref_logs(a: float, b: float, x: float) -> tuple[mpmath.mpf, mpmath.mpf]:
    """(log I, log(1 - I)) to 50 digits, also where one side is within 1e-50 of 1."""
    i, c = ref_pair(a, b, x)
    if i < c:
        return mpmath.log(i), mpmath.log1p(-i)
    return mpmath.log1p(-c), mpmath.log(c)


def _cases(seed: int, count: int) -> list[tuple[float, float, float]]:
    """Random (a, b, x): log-uniform concentrations in [1e-3, 1e4]; x in both far tails, near the mean, anywhere."""
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        a, b = 10 ** rng.uniform(-3, 4), 10 ** rng.uniform(-3, 4)
        r = rng.random()
        if r < 0.2:
            x = 10 ** rng.uniform(-300, -1)
        elif r < 0.4:
            x = 1 - 10 ** rng.uniform(-16, -1)
        elif r < 0.7:
            mean, sd = a / (a + b), math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))
            x = min(max(mean + rng.uniform(-6, 6) * sd, 1e-300), 1 - 1e-16)
        else:
            x = rng.random()
        rows.append((a, b, x))
    # a grid of the hard places: both concentrations from 1e-3 to 1e4, x at the switch point and in the tails
    for a in (1e-3, 0.1, 1.0, 10.0, 1e3, 1e4):
        for b in (1e-3, 0.1, 1.0, 10.0, 1e3, 1e4):
            sw = (a + 1) / (a + b + 2)
            for x in (1e-300, 1e-20, 0.5 * sw, sw, min(1.001 * sw, 1 - 1e-9), 0.5, 1 - 1e-10, 1 - 2.0**-53):
                rows.append((a, b, x))
    return rows


def _relative_errors(rows, log_i, log_c):
    """Relative errors of I and of 1 - I (each where above 1e-300), with the regime of each row."""
    out = []
    for (a, b, x), gi, gc in zip(rows, log_i.tolist(), log_c.tolist()):
        i, c = ref_pair(a, b, x)
        for got, ref, side in ((gi, i, "I"), (gc, c, "1-I")):
            if ref > mp("1e-300"):
                err = float(abs(mpmath.exp(mp(got)) - ref) / ref)
                out.append((err, side, float(ref), a, b, x))
    return out


def _regime(side: str, ref: float, a: float, b: float) -> str:
    if ref < 1e-3:
        return f"tail of {side}"
    if min(a, b) < 1:
        return "bulk, a concentration below 1"
    if max(a, b) >= 1e3:
        return "bulk, a concentration >= 1e3"
    return "bulk"


# the bounds asserted, about twice the measured maxima (seed 0): bulk 5.5e-15, concentrations >= 1e3
# 1.6e-13, a concentration below 1 3.6e-13, tail of 1 - I 8.7e-13, tail of I 5.0e-12. The largest
# errors are where the directly computed side is close to 1 (a concentration below 1 in the fraction's
# frame), so that the other side is 1 - e^L: its relative error is the absolute error of L, a few 1e-16
# from the terms of the prefactor and the fraction, over 1 - e^L
BOUNDS = {
    "tail of I": 1e-11,
    "tail of 1-I": 2e-12,
    "bulk": 1.5e-14,
    "bulk, a concentration below 1": 8e-13,
    "bulk, a concentration >= 1e3": 4e-13,
}


def test_float64_relative_accuracy_per_regime() -> None:
    rows = _cases(0, 250)
    a, b, x = (torch.tensor(col, **F64) for col in zip(*rows))
    log_i, log_c = log_betainc_pair(a, b, x)
    worst: dict[str, tuple[float, tuple]] = {}
    for err, side, ref, aa, bb, xx in _relative_errors(rows, log_i, log_c):
        name = _regime(side, ref, aa, bb)
        if err > worst.get(name, (-1.0, ()))[0]:
            worst[name] = (err, (side, ref, aa, bb, xx))
    assert set(worst) == set(BOUNDS)  # every regime is exercised
    assert min(r[2] for r in rows) == 1e-300 and max(r[2] for r in rows) == 1 - 2.0**-53
    for name, (err, where) in worst.items():
        assert err <= BOUNDS[name], (name, err, where)


def test_deep_tails_down_to_1e_300_and_their_complements() -> None:
    """I ~ 1e-300 and 1 - I ~ 1e-300 (through log_betaincc) keep their relative accuracy."""
    cases = [(2.0, 3.0, 1e-150), (0.5, 5.0, 1e-300), (0.5, 0.5, 1e-300), (3.0, 2.0, 1 - 1e-16), (1e4, 1e4, 0.3), (1e4, 1e4, 0.7)]
    a, b, x = (torch.tensor(col, **F64) for col in zip(*cases))
    log_i, log_c = log_betainc(a, b, x), log_betaincc(a, b, x)
    for (aa, bb, xx), gi, gc in zip(cases, log_i.tolist(), log_c.tolist()):
        i, c = ref_pair(aa, bb, xx)
        small, got = (i, gi) if i < c else (c, gc)
        assert small < 1e-30
        assert abs(mp(got) - mpmath.log(small)) <= 1e-13 * abs(mpmath.log(small)), (aa, bb, xx)
        big, got_big = (c, gc) if i < c else (i, gi)
        assert abs(mp(got_big) - mpmath.log(big)) <= 1e-15  # log of a number within 1e-30 of 1


def test_float32_is_the_rounding_of_the_float64_value() -> None:
    rows = [r for r in _cases(1, 80) if r[2] <= 1 - 2.0**-24]
    # float32 inputs: the reference is computed at the float32 values themselves
    a32, b32, x32 = (torch.tensor(col, dtype=torch.float32) for col in zip(*rows))
    x32 = torch.where(x32 == 1, torch.tensor(1 - 2.0**-24), x32)
    x32 = torch.where(x32 == 0, torch.tensor(1e-45), x32)
    log_i, log_c = log_betainc_pair(a32, b32, x32)
    assert log_i.dtype == log_c.dtype == torch.float32
    worst = 0.0
    for aa, bb, xx, gi, gc in zip(a32.tolist(), b32.tolist(), x32.tolist(), log_i.tolist(), log_c.tolist()):
        for got, lref in zip((gi, gc), ref_logs(aa, bb, xx)):
            if abs(lref) > torch.finfo(torch.float32).tiny:  # log(1 - 1e-50) is not a normal float32 number
                worst = max(worst, float(abs(mp(got) - lref) / abs(lref)))
    assert worst <= 2.0**-24 * 1.01  # the float32 rounding of log I (or of log(1 - I)): half an ulp


def test_closed_forms_and_symmetry() -> None:
    x = torch.tensor([1e-12, 0.001, 0.25, 0.5, 0.75, 0.999], **F64)
    assert torch.allclose(log_betainc(1.0, 1.0, x), torch.log(x), rtol=1e-14, atol=0)
    a = torch.tensor(3.7, **F64)
    assert torch.allclose(log_betainc(a, 1.0, x), a * torch.log(x), rtol=1e-14, atol=0)  # x^a
    assert torch.allclose(log_betaincc(1.0, a, x), a * torch.log1p(-x), rtol=1e-14, atol=0)  # (1 - x)^b
    # 1 - I_x(a, b) = I_{1-x}(b, a) (1 - x is exact for these x)
    b = torch.tensor(0.3, **F64)
    assert torch.allclose(log_betaincc(a, b, x[2:]), log_betainc(b, a, 1 - x[2:]), rtol=1e-14, atol=1e-300)
    # the pair is one evaluation of two consistent values
    li, lc = log_betainc_pair(a, b, x)
    assert torch.allclose(torch.exp(li) + torch.exp(lc), torch.ones_like(x), rtol=0, atol=4e-16)


def test_endpoints_and_broadcasting() -> None:
    li, lc = log_betainc_pair(torch.tensor([[2.0], [0.5]], **F64), 3.0, torch.tensor([0.0, 1.0, 0.5], **F64))
    assert li.shape == lc.shape == (2, 3)
    assert (li[:, 0] == -math.inf).all() and (lc[:, 0] == 0).all()
    assert (li[:, 1] == 0).all() and (lc[:, 1] == -math.inf).all()
    assert log_betainc(2.0, 3.0, 0.5).dtype == torch.get_default_dtype()
    assert float(log_betainc(2.0, 3.0, torch.tensor(0.5, **F64)).exp()) == pytest.approx(11 / 16, rel=1e-15)


def test_large_concentrations_converge_within_the_adaptive_budget() -> None:
    """1e6: the fraction needs ~0.55 sqrt(1e6) terms at the switch point; the budget is 100 + 2 sqrt(max)."""
    a = torch.tensor([1e6, 1e6, 1e6], **F64)
    b = torch.tensor([1e6, 2e6, 1e6], **F64)
    x = torch.tensor([0.5, 1 / 3, 0.4995], **F64)
    log_i = log_betainc(a, b, x)
    assert log_i[0].item() == pytest.approx(-math.log(2), rel=1e-12)  # I_{1/2}(a, a) = 1/2
    for (aa, bb, xx), g in zip(zip(a.tolist(), b.tolist(), x.tolist()), log_i.tolist()):
        # mpmath's series do not converge here: quadrature of the density over a window of 40 standard
        # deviations below x (the mass further down is below e^-800)
        aa, bb, xx = mp(aa), mp(bb), mp(xx)
        mean, sd = aa / (aa + bb), mpmath.sqrt(aa * bb / ((aa + bb) ** 2 * (aa + bb + 1)))
        log_b = mpmath.log(mpmath.beta(aa, bb))
        density = lambda t: mpmath.exp((aa - 1) * mpmath.log(t) + (bb - 1) * mpmath.log1p(-t) - log_b)  # noqa: E731
        i = mpmath.quad(density, [mean - 40 * sd, mean - 10 * sd, mean - 3 * sd, mean - sd, xx])
        assert float(abs(mpmath.exp(mp(g)) - i) / i) < 1e-11


def test_gradient_in_x_is_the_density() -> None:
    a, b = torch.tensor([0.3, 2.0, 50.0], **F64), torch.tensor([4.0, 0.02, 70.0], **F64)
    x = torch.tensor([0.01, 0.9, 0.41], **F64, requires_grad=True)
    gi, = torch.autograd.grad(log_betainc(a, b, x).sum(), x)
    gc, = torch.autograd.grad(log_betaincc(a, b, x).sum(), x)
    for j in range(3):
        aa, bb, xx = float(a[j]), float(b[j]), float(x[j].detach())
        i, c = ref_pair(aa, bb, xx)
        dens = mp(xx) ** (aa - 1) * (1 - mp(xx)) ** (bb - 1) / mpmath.beta(aa, bb)
        assert float(abs(gi[j].item() - dens / i) / (dens / i)) < 1e-12
        assert float(abs(gc[j].item() + dens / c) / (dens / c)) < 1e-12


def test_gradient_in_the_concentrations_against_mpmath() -> None:
    """Forward-mode derivative of the continued fraction (not a finite difference), against mpmath.diff."""
    cases = [(0.5, 3.0, 0.2), (2.0, 5.0, 0.6), (1e-3, 1e-3, 0.3), (40.0, 60.0, 0.35), (1e3, 2e3, 0.34), (3.0, 0.01, 0.999)]
    a, b, x = (torch.tensor(col, **F64, requires_grad=True) for col in zip(*cases))
    li, lc = log_betainc_pair(a, b, x)
    gia, gib = torch.autograd.grad(li.sum(), (a, b), retain_graph=True)
    gca, gcb = torch.autograd.grad(lc.sum(), (a, b))
    with mpmath.workdps(40):
        for j, (aa, bb, xx) in enumerate(cases):
            def log_i(s: mpmath.mpf, t: mpmath.mpf) -> mpmath.mpf:
                i, c = ref_pair(s, t, xx)
                return mpmath.log(i)

            def log_c(s: mpmath.mpf, t: mpmath.mpf) -> mpmath.mpf:
                i, c = ref_pair(s, t, xx)
                return mpmath.log(c)

            refs = (
                (gia[j], mpmath.diff(lambda s: log_i(s, bb), aa)),
                (gib[j], mpmath.diff(lambda t: log_i(aa, t), bb)),
                (gca[j], mpmath.diff(lambda s: log_c(s, bb), aa)),
                (gcb[j], mpmath.diff(lambda t: log_c(aa, t), bb)),
            )
            for got, ref in refs:
                assert float(abs(got.item() - ref)) <= 1e-12 * max(1.0, float(abs(ref))), (aa, bb, xx, got.item(), float(ref))


def test_gradcheck_float64() -> None:
    a = torch.tensor([1e-3, 0.5, 2.0, 10.0, 1e3, 3.0], **F64, requires_grad=True)
    b = torch.tensor([1e-3, 5.0, 2.0, 1e4, 1e3, 0.1], **F64, requires_grad=True)
    x = torch.tensor([0.2, 0.1, 0.5, 0.001, 0.5, 0.97], **F64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b, x: log_betainc_pair(a, b, x), (a, b, x))


@pytest.mark.parametrize(
    "args, match",
    [
        ((0.0, 1.0, 0.5), r"log_betainc: a must satisfy 0 < a < inf, got 0.0"),
        ((1.0, -2.0, 0.5), r"log_betainc: b must satisfy 0 < b < inf, got -2.0"),
        ((math.inf, 1.0, 0.5), r"log_betainc: a must satisfy 0 < a < inf, got inf"),
        ((1.0, math.nan, 0.5), r"log_betainc: b must satisfy 0 < b < inf, got nan"),
        ((1.0, 1.0, 1.5), r"log_betainc: x must satisfy 0 <= x <= 1, got 1.5"),
        ((1.0, 1.0, math.nan), r"log_betainc: x must satisfy 0 <= x <= 1, got nan"),
    ],
)
def test_bad_input_is_a_value_error_naming_the_argument(args: tuple, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        log_betainc(*(torch.tensor([1.0, v], **F64) for v in args))


def test_a_fraction_that_does_not_converge_raises_instead_of_returning_nan(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(special, "_iteration_budget", lambda p, q: 2)
    with pytest.raises(RuntimeError, match=r"log_betainc: the continued fraction did not converge in 2 terms.*a=100\.0"):
        log_betainc(torch.tensor([100.0], **F64), torch.tensor([100.0], **F64), torch.tensor([0.49], **F64))


def test_importing_the_likelihoods_does_not_import_scipy() -> None:
    code = "import sys, vaelib.likelihoods; sys.exit(int(any(m == 'scipy' or m.startswith('scipy.') for m in sys.modules)))"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
