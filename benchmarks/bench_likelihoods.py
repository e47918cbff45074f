"""Forward + backward time of each vaelib NLL against the equivalent torch call, side by side.

Run:  OMP_NUM_THREADS=2 python benchmarks/bench_likelihoods.py [--repeats 30] [--rounds 5]

A 1024 x 784 float32 batch; argument validation off on both sides (except in the row that calls
the Bernoulli head with it on, as a direct call with torch's default does); each case is the
per-example NLL (summed over the 784 dimensions), then ``.sum().backward()``. The two sides of a row are
timed alternately, call by call, so that load on a shared machine hits both alike; the table
reports the median time of each side and the median over rounds of the per-round ratio of medians.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable

import torch
import torch.nn.functional as F

from vaelib.likelihoods import (
    DiscretizedLogistic,
    argument_validation,
    bernoulli_nll,
    beta_nll,
    cb_nll,
    gaussian_nll,
    get,
    huber_log_normalizer,
    huber_nll,
    laplace_nll,
    shared_optimal_sigma_nll,
)

N, D = 1024, 784


def _per_example(t: torch.Tensor) -> torch.Tensor:
    return t.flatten(1).sum(1)


def _naive_logistic(x: torch.Tensor, loc: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """The PixelCNN++ formula as usually written: log(sigmoid(b) - sigmoid(a)) with clamped edges."""
    hi = torch.where(x > 1 - 1e-3, torch.ones_like(x), torch.sigmoid((x + 0.5 / 255 - loc) / scale))
    lo = torch.where(x < 1e-3, torch.zeros_like(x), torch.sigmoid((x - 0.5 / 255 - loc) / scale))
    return -_per_example(torch.log((hi - lo).clamp_min(1e-12)))


def _unvalidated(fn: Callable[..., torch.Tensor], *args: torch.Tensor) -> torch.Tensor:
    """The call inside a training step: the trainer has checked its images once, before the first step."""
    with argument_validation(False):
        return fn(*args)


def _validated(fn: Callable[..., torch.Tensor], *args: torch.Tensor) -> torch.Tensor:
    with argument_validation(True):
        return fn(*args)


def cases() -> dict[str, tuple[Callable[..., torch.Tensor], Callable[..., torch.Tensor], list[torch.Tensor], str]]:
    gen = torch.Generator().manual_seed(0)
    x01 = torch.rand(N, D, generator=gen)
    xbin = torch.round(x01)
    x8 = torch.round(x01 * 255) / 255
    xin = 1e-3 + (1 - 2e-3) * x01
    loc = torch.rand(N, D, generator=gen)
    scale = torch.rand(N, D, generator=gen) * 0.5 + 0.05
    logits = torch.randn(N, D, generator=gen) * 3
    a = torch.rand(N, D, generator=gen) * 5 + 0.1
    b = torch.rand(N, D, generator=gen) * 5 + 0.1
    log_z = huber_log_normalizer(torch.tensor(1.0))
    bernoulli_head = get("bernoulli")
    return {
        "Gaussian (per-pixel sigma)": (
            lambda m, s: gaussian_nll(m, s, x01),
            lambda m, s: -_per_example(torch.distributions.Normal(m, s).log_prob(x01)),
            [loc, scale],
            "`distributions.Normal.log_prob`",
        ),
        "Gaussian (fixed sigma)": (
            lambda m: gaussian_nll(m, 0.1, x01),
            lambda m: -_per_example(torch.distributions.Normal(m, 0.1).log_prob(x01)),
            [loc],
            "`distributions.Normal.log_prob`",
        ),
        "Bernoulli (binary x)": (
            lambda l: bernoulli_nll(l, xbin),
            lambda l: _per_example(F.binary_cross_entropy_with_logits(l, xbin, reduction="none")),
            [logits],
            "`F.binary_cross_entropy_with_logits`",
        ),
        "Bernoulli (grey x)": (
            lambda l: bernoulli_nll(l, x01),
            lambda l: _per_example(F.binary_cross_entropy_with_logits(l, x01, reduction="none")),
            [logits],
            "`F.binary_cross_entropy_with_logits`",
        ),
        "Bernoulli head, as the trainer calls it": (
            lambda l: _unvalidated(bernoulli_head.nll, l, x01),
            lambda l: _per_example(F.binary_cross_entropy_with_logits(l, x01, reduction="none")),
            [logits],
            "`F.binary_cross_entropy_with_logits`",
        ),
        "Bernoulli head, called with validation on": (
            lambda l: _validated(bernoulli_head.nll, l, x01),
            lambda l: _per_example(F.binary_cross_entropy_with_logits(l, x01, reduction="none")),
            [logits],
            "`F.binary_cross_entropy_with_logits`",
        ),
        "Continuous Bernoulli": (
            lambda l: cb_nll(l, x01),
            lambda l: -_per_example(torch.distributions.ContinuousBernoulli(logits=l).log_prob(x01)),
            [logits],
            "`distributions.ContinuousBernoulli.log_prob`",
        ),
        "Huber (delta = 1)": (
            lambda m: huber_nll(m, 1.0, 1.0, x01),
            lambda m: _per_example(F.huber_loss(m, x01, reduction="none", delta=1.0)) + D * log_z,
            [loc],
            "`F.huber_loss` + d log Z",
        ),
        "Laplace": (
            lambda m, s: laplace_nll(m, s, x01),
            lambda m, s: -_per_example(torch.distributions.Laplace(m, s).log_prob(x01)),
            [loc, scale],
            "`distributions.Laplace.log_prob`",
        ),
        "Beta": (
            lambda u, v: beta_nll(u, v, xin),
            lambda u, v: -_per_example(torch.distributions.Beta(u, v).log_prob(xin)),
            [a, b],
            "`distributions.Beta.log_prob`",
        ),
        "Discretised logistic": (
            lambda m, s: -_per_example(DiscretizedLogistic(m, s).log_prob(x8)),
            lambda m, s: _naive_logistic(x8, m, s),
            [loc, scale * 0.1],
            "naive log(sigmoid - sigmoid)",
        ),
        "Gaussian, optimal shared sigma": (
            lambda m: shared_optimal_sigma_nll(m, x01),
            lambda m: 0.5 * D * (torch.log((x01 - m).pow(2).mean(1)) + 1 + 1.8378770664093453),
            [loc],
            "d/2 log MSE by hand",
        ),
    }


def time_once(fn: Callable[..., torch.Tensor], inputs: list[torch.Tensor]) -> float:
    args = [t.detach().clone().requires_grad_(True) for t in inputs]
    start = time.perf_counter()
    fn(*args).sum().backward()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="run only the rows whose name contains this text")
    parser.add_argument("--repeats", type=int, default=20, help="timed calls per side per round")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds per row")
    args = parser.parse_args()
    torch.distributions.Distribution.set_default_validate_args(False)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {N} x {D} float32, forward + backward\n")
    print("| likelihood | vaelib (ms) | torch (ms) | ratio | torch reference |")
    print("|---|---:|---:|---:|---|")
    for name, (ours, ref, inputs, ref_name) in cases().items():
        if args.only.lower() not in name.lower():
            continue
        for _ in range(3):  # warm-up
            time_once(ours, inputs)
            time_once(ref, inputs)
        t_ours: list[float] = []
        t_ref: list[float] = []
        ratios: list[float] = []
        for _ in range(args.rounds):
            a, b = [], []
            for _ in range(args.repeats):  # call by call, so that a change of load hits both sides
                a.append(time_once(ours, inputs))
                b.append(time_once(ref, inputs))
            t_ours += a
            t_ref += b
            ratios.append(statistics.median(a) / statistics.median(b))
        print(
            f"| {name} | {1e3 * statistics.median(t_ours):.2f} | {1e3 * statistics.median(t_ref):.2f} | "
            f"{statistics.median(ratios):.2f} | {ref_name} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
