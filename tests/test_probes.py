"""The probes that chapters 5 and 7 read from run records: what a decoder displays (mean, parameter,
mode) and the noise scale each Gaussian head uses."""

from __future__ import annotations

import base64
import math

import pytest
import torch

from vaelib import likelihoods
from vaelib.data import ImageSet
from vaelib.likelihoods import Beta, ContinuousBernoulli, cb_mean
from vaelib.models import MLPVAE
from vaelib.probes import PROBES, ProbeContext, _display_mode


def _context(head_name: str, **head_args: float) -> ProbeContext:
    torch.manual_seed(0)
    images = torch.rand(12, 1, 4, 4)
    images[:, :, 0] = 0.0  # background pixels
    images[:, :, 1] = 1.0  # ink pixels
    data = ImageSet(images, torch.zeros(12, dtype=torch.long), "toy")
    model = MLPVAE((1, 4, 4), 2, likelihoods.get(head_name, **head_args), hidden=(8,)).eval()
    return ProbeContext(model=model, train=data, test=data, clean_test=data, scale=1.0)


def _decode(entry: dict) -> torch.Tensor:
    raw = torch.frombuffer(bytearray(base64.b64decode(entry["uint8_base64"])), dtype=torch.uint8)
    return raw.view(*entry["shape"]).float() / 255


@torch.no_grad()
def test_decoder_outputs_of_a_continuous_bernoulli_separate_mean_parameter_and_mode() -> None:
    ctx = _context("cb")
    out = PROBES["decoder_outputs"](ctx)
    x = ctx.test.images
    logits = ctx.model.decode(ctx.model.encode(x)[0])
    mean, lam = cb_mean(logits), torch.sigmoid(logits)
    assert out["mean"]["sse"] == pytest.approx((mean - x).pow(2).flatten(1).sum(1).mean().item(), rel=1e-6)
    assert out["parameter"]["sse"] == pytest.approx((lam - x).pow(2).flatten(1).sum(1).mean().item(), rel=1e-6)
    assert out["parameter"]["background_mean"] == pytest.approx(lam[x == 0].mean().item(), rel=1e-6)
    assert out["mode"]["background_mean"] == pytest.approx((logits[x == 0] > 0).float().mean().item(), abs=1e-7)
    assert out["logit_ink_median"] == pytest.approx(logits[x == 1].median().item())
    assert set(out["images"]) == {"mean", "parameter", "mode"}
    assert torch.allclose(_decode(out["images"]["parameter"]), lam[:10], atol=0.5 / 255 + 1e-6)


@torch.no_grad()
def test_decoder_outputs_of_a_bernoulli_have_the_mean_equal_to_the_parameter() -> None:
    out = PROBES["decoder_outputs"](_context("bernoulli"))
    assert out["mean"] == out["parameter"]
    assert 0.0 <= out["data_grey_fraction"] <= 1.0


def test_the_mode_of_a_beta_is_interior_or_at_the_boundary_of_higher_density() -> None:
    a = torch.tensor([3.0, 0.5, 2.0, 0.5, 1.0])
    b = torch.tensor([2.0, 2.0, 0.5, 0.5, 1.0])
    mode = _display_mode(Beta(a, b))
    assert mode[:4].tolist()[0] == pytest.approx(2 / 3)
    assert mode[1:3].tolist() == [0.0, 1.0]
    assert math.isnan(mode[3].item()) and math.isnan(mode[4].item())


def test_continuous_bernoulli_mode_follows_the_sign_of_the_logit() -> None:
    mode = ContinuousBernoulli(torch.tensor([-3.0, 1e-6, 0.0, 40.0])).mode
    assert mode[[0, 1, 3]].tolist() == [0.0, 1.0, 1.0] and math.isnan(mode[2].item())
    # the density is monotone: the mode has the highest log-density on a grid of [0, 1]
    grid = torch.linspace(0, 1, 101)
    for eta in (-3.0, 2.0):
        lp = ContinuousBernoulli(torch.tensor(eta)).log_prob(grid)
        assert grid[lp.argmax()].item() == ContinuousBernoulli(torch.tensor(eta)).mode.item()


@torch.no_grad()
def test_sigma_used_reports_the_sigma_of_each_kind_of_head() -> None:
    fixed = PROBES["sigma_used"](_context("gaussian", sigma=0.3))
    assert all(s == pytest.approx(0.3) for s in fixed["sigma_per_image"])
    learned = PROBES["sigma_used"](_context("gaussian-learned", sigma=0.7))
    assert learned["learned_sigma"] == pytest.approx(0.7)
    optimal = PROBES["sigma_used"](_context("gaussian-optimal", sigma_min=1e-6))
    # the per-image optimal sigma is the image's RMSE (Eq. (eq-sigma-shared-opt))
    assert optimal["sigma_per_image"] == pytest.approx(optimal["rmse_per_image"], rel=1e-5)
    assert optimal["correlation"] == pytest.approx(1.0, abs=1e-5)
    batch = PROBES["sigma_used"](_context("gaussian-optimal-batch", sigma_min=1e-6))
    rmse = torch.tensor(batch["rmse_per_image"])
    assert batch["sigma_per_image"] == pytest.approx([rmse.pow(2).mean().sqrt().item()] * len(rmse), rel=1e-5)
    beta = PROBES["sigma_used"](_context("beta", eps=1e-3))
    assert beta["precision_background_max"] >= beta["precision_background_median"] > 0


def test_the_batch_optimal_sigma_head_is_the_optimal_head_over_the_batch() -> None:
    head = likelihoods.get("gaussian-optimal-batch")
    ref = likelihoods.get("gaussian-optimal", over="batch")
    x, mu = torch.rand(5, 1, 3, 3), torch.rand(5, 1, 3, 3)
    assert torch.equal(head.nll(mu, x), ref.nll(mu, x))
    with pytest.raises(TypeError):
        likelihoods.get("gaussian-optimal-batch", over="image")
