"""Measurements taken on a trained model when its run record is made (``vaelib.records``).

A record stores numbers, not weights, so everything a chapter reports about a trained model is
measured here, by name, at the end of the run, on the best-validation weights. Each probe is a
function ``probe(ctx) -> dict`` of a :class:`ProbeContext`; ``PROBES`` maps the names a spec's
``probes`` field may list to them. All of them are deterministic on a CPU: their noise comes from
generators with fixed seeds.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from typing import Any, Callable

import torch

from vaelib.data.types import ImageSet
from vaelib.elbo import kl_diag_gaussians, mc_kl
from vaelib.bounds import bits_per_dim, discrete_nll, iwae_bound
from vaelib.likelihoods import (
    BernoulliHead,
    Beta,
    BetaHead,
    DequantizedHead,
    DiscretizedHead,
    DiscretizedLogisticHead,
    DiscretizedLogisticMixtureHead,
    LearnedSigmaGaussian,
    NoDiscreteScale,
    cb_log_normalizer,
)
from vaelib.metrics import active_units, prior_hole_kl
from vaelib.models import MLPVAE

__all__ = ["ProbeContext", "PROBES", "names", "measure", "encode_uint8_images"]


@dataclass(frozen=True)
class ProbeContext:
    """What a probe may look at: the trained model and the data of its spec.

    ``test`` is the test split as the model saw it (after the spec's transform); ``clean_test``
    is the same images before the transform, in [0, 1]; ``scale`` is the factor the transform
    multiplied the pixels by (1 unless the transform is ``scale``).
    """

    model: MLPVAE
    train: ImageSet
    test: ImageSet
    clean_test: ImageSet
    scale: float


def _latent(ctx: ProbeContext) -> dict[str, Any]:
    """Per-dimension KL (test mean), variance of the posterior mean per dimension, and the spread of
    the reconstructions relative to that of the data (1: as varied as the digits, 0: one image)."""
    x = ctx.test.images
    mu, logvar = ctx.model.encode(x)
    per_dim = [kl_diag_gaussians(mu[:, k : k + 1], logvar[:, k : k + 1]).mean().item() for k in range(mu.shape[1])]
    recon = ctx.model.reconstruct(x)
    return {
        "kl_per_dim": per_dim,
        "mean_variance_per_dim": mu.var(0).tolist(),
        "reconstruction_spread": float(recon.std(0).mean() / x.std(0).mean()),
    }


def _elbo_estimators(ctx: ProbeContext, draws: int = 64, seed: int = 2024) -> dict[str, Any]:
    """Single-sample ELBO estimates with the Monte Carlo KL, Eq. (eq-elbo-mc), against the closed form,
    on common noise: mean difference (its expectation is zero), its standard error, and the mean
    per-image variance of each estimator over ``draws`` draws."""
    x = ctx.test.images
    g = torch.Generator().manual_seed(seed)
    mu, logvar = ctx.model.encode(x)
    est_mc, est_an = [], []
    for _ in range(draws):
        z = mu + torch.randn(mu.shape, generator=g) * torch.exp(0.5 * logvar)
        rec = ctx.model.head.nll(ctx.model.decode(z), x)
        est_mc.append(-(rec + mc_kl(mu, logvar, z)))
        est_an.append(-(rec + kl_diag_gaussians(mu, logvar)))
    mc, an = torch.stack(est_mc).double(), torch.stack(est_an).double()
    diff = mc - an
    return {
        "draws": int(diff.numel()),
        "mean_difference": diff.mean().item(),
        "standard_error": (diff.var(0).mean() / diff.numel()).sqrt().item(),
        "variance_mc": mc.var(0).mean().item(),
        "variance_analytic": an.var(0).mean().item(),
    }


def encoder_gradient_variance(model: MLPVAE, x: torch.Tensor, draws: int = 48, boot: int = 400, seed: int = 99) -> dict[str, float]:
    """Total variance of the encoder's minibatch gradient under the Monte Carlo and the closed-form KL
    (common noise), their ratio and a 95% bootstrap interval of the ratio."""
    params = [p for name, p in model.named_parameters() if name.startswith("encoder.")]
    grads: dict[str, list[torch.Tensor]] = {"analytic": [], "mc": []}
    g = torch.Generator().manual_seed(seed)
    with torch.enable_grad():
        for _ in range(draws):
            mu, logvar = model.encode(x)
            z = mu + torch.randn(mu.shape, generator=g) * torch.exp(0.5 * logvar)
            rec = model.head.nll(model.decode(z), x)
            for kind, kl_term in (("analytic", kl_diag_gaussians(mu, logvar)), ("mc", mc_kl(mu, logvar, z))):
                grad = torch.autograd.grad((rec + kl_term).mean(), params, retain_graph=True)
                grads[kind].append(torch.cat([t.flatten() for t in grad]).double())
    grams = {kind: torch.stack(v) @ torch.stack(v).T for kind, v in grads.items()}

    def total_variance(gram: torch.Tensor, idx: torch.Tensor) -> float:
        n = len(idx)
        return ((gram[idx, idx].sum() - gram[idx][:, idx].sum() / n) / (n - 1)).item()

    full = torch.arange(draws)
    gb = torch.Generator().manual_seed(seed + 1)
    ratios = []
    for _ in range(boot):
        idx = torch.randint(draws, (draws,), generator=gb)
        ratios.append(total_variance(grams["mc"], idx) / total_variance(grams["analytic"], idx))
    lo, hi = torch.tensor(ratios, dtype=torch.float64).quantile(torch.tensor([0.025, 0.975], dtype=torch.float64)).tolist()
    analytic, mc = total_variance(grams["analytic"], full), total_variance(grams["mc"], full)
    return {"analytic": analytic, "mc": mc, "ratio": mc / analytic, "ratio_low": lo, "ratio_high": hi}


def _encoder_gradients(ctx: ProbeContext) -> dict[str, float]:
    return encoder_gradient_variance(ctx.model, ctx.test.images[:128])


def _prior_hole(ctx: ProbeContext) -> dict[str, float]:
    """KL(p(z) || qbar(z)) on the test posteriors (:func:`vaelib.metrics.prior_hole_kl`)."""
    return {"kl": prior_hole_kl(ctx.model, ctx.test.images, generator=torch.Generator().manual_seed(3))}


def _reconstruction(ctx: ProbeContext) -> dict[str, Any]:
    """Reconstructions (decoder mean at the posterior mean) against the clean test images, in [0, 1] units.

    ``sse`` is the squared error summed over pixels (mean over images), ``mse``/``mae`` per pixel,
    ``background`` the mean reconstruction where the clean image is exactly 0, ``beyond_one`` the
    fraction of pixels whose reconstruction is more than 1 from the (transformed) input; ``calibration``
    groups pixels by reconstruction into ten bins of [0, 1] and gives the mean reconstruction and the
    mean clean pixel in each; ``histogram`` counts reconstructions in 50 bins of [0, 1].
    """
    recon = ctx.model.reconstruct(ctx.test.images) / ctx.scale
    clean = ctx.clean_test.images
    err = recon - clean
    edges = torch.linspace(0, 1, 11)
    group = torch.bucketize(recon.flatten(), edges[1:-1])
    pred, true = [], []
    for b in range(10):
        inside = group == b
        pred.append(recon.flatten()[inside].mean().item() if inside.any() else math.nan)
        true.append(clean.flatten()[inside].mean().item() if inside.any() else math.nan)
    return {
        "sse": (err**2).flatten(1).sum(1).mean().item(),
        "mse": (err**2).mean().item(),
        "mae": err.abs().mean().item(),
        "background": recon[clean == 0].mean().item(),
        "beyond_one": ((recon - ctx.test.images / ctx.scale).abs() > 1).float().mean().item(),
        "min": recon.min().item(),
        "max": recon.max().item(),
        "calibration": {"reconstruction": pred, "data": true},
        "histogram": torch.histc(recon.clamp(0, 1), bins=50, min=0, max=1).tolist(),
    }


def _bernoulli_terms(ctx: ProbeContext, draws: int = 8, seed: int = 5) -> dict[str, Any]:
    """For a Bernoulli head on grey-level images, Eq. (eq-bern-integral): per test image, the
    reconstruction term, the KL and the missing log-normaliser sum_j log C(l_j) under ``draws``
    posterior draws, against the entropy sum_j H(x_j) of the image; and the logits at the posterior mean."""
    x = ctx.test.images
    g = torch.Generator().manual_seed(seed)
    mu, logvar = ctx.model.encode(x)
    kl = kl_diag_gaussians(mu, logvar).double()
    rec = torch.zeros(x.shape[0], dtype=torch.float64)
    log_c = torch.zeros_like(rec)
    for _ in range(draws):
        z = mu + torch.randn(mu.shape, generator=g) * torch.exp(0.5 * logvar)
        logits = ctx.model.decode(z)
        rec += ctx.model.head.nll(logits, x).double() / draws
        log_c += cb_log_normalizer(logits.double()).flatten(1).sum(1) / draws
    x64 = x.double()
    entropy = (torch.special.entr(x64) + torch.special.entr(1 - x64)).flatten(1).sum(1)
    elbo = -(rec + kl)
    logits_mean = ctx.model.decode(mu)
    d_log2 = x[0].numel() * math.log(2.0)
    return {
        "rec": rec.mean().item(),
        "kl": kl.mean().item(),
        "elbo": elbo.mean().item(),
        "entropy": entropy.mean().item(),
        "log_c": log_c.mean().item(),
        "entropy_share_min": (entropy / rec).min().item(),
        "entropy_share_max": (entropy / rec).max().item(),
        "elbo_below_minus_entropy_everywhere": bool((elbo <= -entropy).all()),
        "log_c_above_d_log2_everywhere": bool((log_c >= d_log2).all()),
        "logit_min": logits_mean.min().item(),
        "logit_max": logits_mean.max().item(),
        "logit_median_background": logits_mean[x == 0].median().item(),
        "log_c_at_posterior_mean": cb_log_normalizer(logits_mean.double()).flatten(1).sum(1).mean().item(),
    }


def _stats(values: torch.Tensor, x: torch.Tensor, clean: torch.Tensor) -> dict[str, float]:
    finite = torch.isfinite(values)
    bg, ink = clean == 0, clean == 1
    v = torch.where(finite, values, torch.zeros_like(values))
    return {
        "background_mean": v[bg].mean().item(), "background_median": v[bg].median().item(),
        "ink_mean": v[ink].mean().item(), "ink_median": v[ink].median().item(),
        "sse": (v - x).pow(2).flatten(1).sum(1).mean().item(),
        "grey_fraction": ((v > 0.1) & (v < 0.9)).float().mean().item(),
        "undefined_fraction": (~finite).float().mean().item(),
    }


def _display_mode(dist: Any) -> torch.Tensor:
    """The value of highest density or mass, where the distribution defines one; for a Beta with a
    concentration at most 1 the boundary of higher density (0 where alpha < beta, 1 where alpha > beta)."""
    if isinstance(dist, Beta):
        a, b = dist.concentration1, dist.concentration0
        edge = torch.where(a < b, torch.zeros_like(a), torch.where(a > b, torch.ones_like(a), torch.full_like(a, math.nan)))
        return torch.where((a > 1) & (b > 1), (a - 1) / (a + b - 2), edge)
    return dist.mode


def _decoder_outputs(ctx: ProbeContext) -> dict[str, Any]:
    """What a figure of the decoder's output can show, at the posterior mean of each test image:
    the distribution's ``mean``, its ``parameter`` (lambda = sigmoid(logits) for the Bernoulli and the
    continuous Bernoulli, the mean otherwise) and its ``mode``. For each: the mean and median over
    background (clean pixel exactly 0) and ink (exactly 1) pixels, the summed squared error to the
    image, the fraction strictly inside (0.1, 0.9), and the fraction where it is undefined (counted
    as 0 in the rest). Also the median logit on background and ink, the data's grey fraction, and
    the first ten test images of each as 8-bit images."""
    x, clean = ctx.test.images, ctx.clean_test.images
    mu, _ = ctx.model.encode(x)
    params = ctx.model.decode(mu)
    head = ctx.model.head
    dist = head.distribution_given(params, x) if hasattr(head, "distribution_given") else head.distribution(params)
    mean = head.mean(params)
    shown = {"mean": mean, "parameter": dist.probs if hasattr(dist, "probs") else mean}
    try:
        shown["mode"] = _display_mode(dist)
    except NotImplementedError:
        pass
    if getattr(head, "eps", None) is not None and "mode" in shown:  # back through the Beta squeeze
        shown["mode"] = (shown["mode"] - head.eps) / (1 - 2 * head.eps)
    out: dict[str, Any] = {name: _stats(v, x, clean) for name, v in shown.items()}
    if hasattr(dist, "logits"):
        out["logit_background_median"] = dist.logits[clean == 0].median().item()
        out["logit_ink_median"] = dist.logits[clean == 1].median().item()
    out["data_grey_fraction"] = ((x > 0.1) & (x < 0.9)).float().mean().item()
    out["images"] = {name: encode_uint8_images(v[:10]) for name, v in shown.items()}
    return out


def encode_uint8_images(t: torch.Tensor) -> dict[str, Any]:
    """Images in [0, 1] as 8-bit pixels in base64 (NaN shown as mid-grey), the form records store."""
    pixels = (torch.nan_to_num(t, nan=0.5).clamp(0, 1) * 255).round().to(torch.uint8).contiguous()
    return {"shape": list(pixels.shape), "uint8_base64": base64.b64encode(pixels.numpy().tobytes()).decode()}


def _sigma_used(ctx: ProbeContext) -> dict[str, Any]:
    """The noise scale each Gaussian head uses on the test images, at the posterior mean: per image the
    mean standard deviation over pixels (``sigma_per_image``) and the RMSE of the reconstruction
    (``rmse_per_image``), their correlation, the median standard deviation on background (clean pixel
    0) and other pixels, and a learned scalar sigma. For a Beta head the precision alpha + beta instead
    (median on background and other pixels, largest on background). In the units the model saw."""
    x, clean = ctx.test.images, ctx.clean_test.images
    mu, _ = ctx.model.encode(x)
    params = ctx.model.decode(mu)
    head = ctx.model.head
    recon = head.mean(params)
    out: dict[str, Any] = {"reconstruction_mean": (recon / ctx.scale).mean().item()}
    bg = clean == 0
    if isinstance(head, BetaHead):
        dist = head.distribution(params)
        precision = dist.concentration1 + dist.concentration0
        out.update({"precision_background_median": precision[bg].median().item(),
                    "precision_background_max": precision[bg].max().item(),
                    "precision_other_median": precision[~bg].median().item()})
        return out
    dist = head.distribution_given(params, x) if hasattr(head, "distribution_given") else head.distribution(params)
    std = dist.stddev.expand_as(x)
    sigma_img = std.flatten(1).mean(1)
    rmse_img = (recon - x).pow(2).flatten(1).mean(1).sqrt()
    out.update({
        "sigma_per_image": sigma_img.tolist(), "rmse_per_image": rmse_img.tolist(),
        "correlation": torch.corrcoef(torch.stack([sigma_img, rmse_img]))[0, 1].item(),
        "sigma_background_median": std[bg].median().item(), "sigma_other_median": std[~bg].median().item(),
    })
    if isinstance(head, LearnedSigmaGaussian):
        out["learned_sigma"] = head.sigma.item()
    return out


BPD_IMAGES, BPD_K, BPD_SEED = 200, 1000, 8  # the discrete bits/dim: first 200 test images, IWAE with k = 1000


def _bits_per_dim(ctx: ProbeContext) -> dict[str, Any]:
    """Test bits per dimension of the quantised data on a valid discrete scale, Eq. (eq-bits-per-dim):
    the IWAE-1000 bound of the exact pmf of the model's head (:func:`vaelib.bounds.discrete_nll`) on the
    first 200 test images, per-image values and their mean; for a continuous head also the "density
    at the pixels" figure, -IWAE-1000 of the density plus d log 255 (the midpoint rule, not a bound).
    A head with no discrete scale (a Bernoulli on grey images) records why instead.
    """
    x = ctx.test.images[:BPD_IMAGES]
    dims = x[0].numel()
    out: dict[str, Any] = {"k": BPD_K, "images": int(x.shape[0])}
    try:
        nll, info = discrete_nll(ctx.model, x, BPD_K, torch.Generator().manual_seed(BPD_SEED), fit_images=ctx.train.images)
    except NoDiscreteScale as exc:
        return {**out, "scale": None, "why": str(exc)}
    bpd = bits_per_dim(nll.double(), dims)
    out.update(info)
    out.update({"nll": nll.double().mean().item(), "bits_per_dim": bpd.mean().item(), "per_image": bpd.tolist()})
    discrete = (BernoulliHead, DequantizedHead, DiscretizedHead, DiscretizedLogisticHead, DiscretizedLogisticMixtureHead)
    if not isinstance(ctx.model.head, discrete):
        g = torch.Generator().manual_seed(BPD_SEED)
        density = torch.cat([iwae_bound(ctx.model, x[i : i + 50], BPD_K, g) for i in range(0, x.shape[0], 50)]).neg()
        out["density_bits_per_dim"] = bits_per_dim(density.double(), dims, 255.0).mean().item()
    return out


PROBES: dict[str, Callable[[ProbeContext], dict[str, Any]]] = {
    "latent": _latent,
    "elbo_estimators": _elbo_estimators,
    "encoder_gradients": _encoder_gradients,
    "prior_hole": _prior_hole,
    "reconstruction": _reconstruction,
    "bernoulli_terms": _bernoulli_terms,
    "decoder_outputs": _decoder_outputs,
    "sigma_used": _sigma_used,
    "bits_per_dim": _bits_per_dim,
}


def names() -> list[str]:
    """The probe names a spec may list."""
    return list(PROBES)


@torch.no_grad()
def measure(names_: tuple[str, ...], ctx: ProbeContext) -> dict[str, Any]:
    """Run the probes ``names_`` on ``ctx`` and return ``{name: result}``."""
    unknown = [n for n in names_ if n not in PROBES]
    if unknown:
        raise ValueError(f"unknown probe(s) {unknown}; choose from {', '.join(PROBES)}")
    ctx.model.eval()
    return {name: PROBES[name](ctx) for name in names_}
