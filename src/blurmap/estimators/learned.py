"""A learned sigma regressor (seed 002, done as a regression): fixed scale-space energies, then a small FCN.

The network's first stage is fixed, not learned: per 4 x 4 block, the gradient and Laplacian
energies of the image less its local mean (see less_local_mean), re-blurred by SCALES px, read as
log ratios of one another (so gain cancels exactly; see _ratios for which) beside the noise's
share of them, block by block and pooled over about 16 px, and
gradient_ratio's three calibrated readings of sigma with their weights and its blend of them
(which the network learns to correct where a texture fools them). Filters a first convolution
layer would learn for this task look like these Gaussian derivatives; fixing them makes the map
invariant to gain by construction and costs a few separable passes. A fully
convolutional network of four layers on the 4 px grid then regresses, per block, the natural log
of sigma and the log variance of that estimate (trained by Gaussian negative log likelihood, so
its variance is an honest uncertainty). Last, a linear refinement of the map (see refine)
takes away the bias of the smoothing the features and the network apply: peaks read low, troughs
high, steep flanks low. Its weights ship in ``learned.npz``, trained by
``training/train_learned.py`` with PyTorch (the refinement fitted there by least squares on
held-out images); inference here is numpy and scipy only.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from importlib import resources

import numpy as np
from scipy import ndimage as ndi

from ..registry import Estimator, register
from . import gradient_ratio as _gr
from ._energy import TRUNCATE, block_noise, gradient_energy, laplacian_energy, noise_energy
from ._grid import BLOCK, block_mean, box2, upsample
from ._noise_params import NOISE_MODEL, prepare_noise_model

__all__ = ["learned", "halo", "ESTIMATOR"]

SCALES = (0.0, 0.7, 1.4, 2.1, 2.8, 4.0)  # px; re-blurs whose energies are the network's input
LOCAL_MEAN = 17  # px; width of the box (odd: centred; three passes, sigma 8.5 px) of the local mean taken away first
POOL = 5  # coarse px; width of the box (applied twice) of the pooled copy of every feature
N_EVIDENCE = 7  # gradient_ratio's three calibrated readings (log px), their weights, and its blend (log px)
_GR_DEFAULTS = _gr.ESTIMATOR.defaults()  # gradient_ratio's readings are taken at its own defaults
EVIDENCE_WIDTH, EVIDENCE_FILL, EVIDENCE_MAX = (_GR_DEFAULTS[k] for k in ("pooling_width", "fill_reach", "sigma_max"))
EVIDENCE_OFFSET = 0.1  # px added before the log, so that a zero reading (no evidence) stays finite
N_FEATURES = 2 * (2 * len(SCALES) - 1) + N_EVIDENCE  # block and pooled: 5 gradient ratios, 5 curvature falls, noise; readings
LOG_CLIP = (-20.0, 8.0)  # log ratios are clipped here: flat blocks give log(0)
NOISE_SHARE_MIN = -14.0  # log of noise over gradient energy; below it (60 dB under the signal) noise cannot matter
SIGMA_RANGE = (0.05, 20.0)  # px; the map is clipped to this
REFINE_WIDTHS = (8.0, 16.0, 32.0)  # px; the map less its Gaussian blur at each of these feeds the refinement
REFINE_SLOPE = 8.0  # px; Gaussian whose derivatives give the map's slope for the refinement
REFINE_TRUNCATE = 3.0  # the refinement's Gaussians are cut at this many standard deviations
CONF_STD = 0.15  # predicted std of log sigma at which the confidence is 0.5
WEIGHTS = "learned.npz"


def less_local_mean(img: np.ndarray) -> np.ndarray:
    """Return the image less its local mean (LOCAL_MEAN px box, three passes), image units.

    A gain that changes across the image adds to every gradient the local mean times the gain's
    slope: a smooth term no ratio of re-blurred energies can tell from texture. Taking the local
    mean away removes it and keeps the texture, whose energy lies far above the mean's frequencies.
    """
    mean = img
    for _ in range(3):
        mean = ndi.uniform_filter(mean, LOCAL_MEAN, mode="reflect")
    return img - mean


def _log_ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """Return log(num / den), clipped to LOG_CLIP (both non-negative; 0 / 0 gives the lower clip)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.log(num) - np.log(den)
    return np.clip(np.nan_to_num(r, nan=LOG_CLIP[0], posinf=LOG_CLIP[1], neginf=LOG_CLIP[0]), *LOG_CLIP)


def _ratios(grad: list[np.ndarray], lap: list[np.ndarray], noise: np.ndarray) -> list[np.ndarray]:
    """Return the gain-free channels: log(G_s / G_0) and the fall of log(L_s / G_s) from s = 0, for s > 0; log(noise / G_0).

    The curvature L / G is gamma / t for a power-law spectrum, gamma set by the texture (thin
    lines give three times an edge's); only its fall with re-blurring is free of gamma, so its
    level at s = 0 is left out: a network given it learns the gamma of its training textures.
    """
    curvature = [_log_ratio(lp, g) for lp, g in zip(lap, grad)]
    return ([_log_ratio(g, grad[0]) for g in grad[1:]] + [c - curvature[0] for c in curvature[1:]]
            + [np.maximum(_log_ratio(noise, grad[0]), NOISE_SHARE_MIN)])


def features(image: np.ndarray, noise: float = 0.0, shot_noise: float = 0.0,
             dark_level: float = 0.0) -> np.ndarray:
    """Return the network's input, (N_FEATURES, ceil(h/4), ceil(w/4)) float32, one per 4 x 4 block: log ratios, then readings.

    The noise variance is noise**2 + shot_noise * (local mean - dark_level) in image units. The
    top-left corner of `image` must lie on the global 4 px grid (the engine sees to it).
    """
    img = np.asarray(image, dtype=np.float32)
    floor, q_unit = block_noise(img, noise, shot_noise, dark_level)
    grad, lap, blurred = [], [], {}
    src = less_local_mean(img)
    for s in SCALES:
        g = ndi.gaussian_filter(src, s, mode="reflect", truncate=TRUNCATE) if s > 0 else src
        if s in _gr.EVIDENCE_SCALES:  # kept for gradient_ratio's readings (only those: each is an image's worth)
            blurred[s] = g
        grad.append(block_mean(gradient_energy(g)) + floor)
        lap.append(block_mean(laplacian_energy(g)) + floor)
    q0 = q_unit * noise_energy(0.0)
    block = _ratios(grad, lap, q0)
    pooled = _ratios([box2(g, POOL) for g in grad], [box2(lp, POOL) for lp in lap], box2(q0, POOL))
    readings = _evidence(img, noise, shot_noise, dark_level, blurred)
    return np.concatenate([np.stack(block + pooled), readings]).astype(np.float32)


def _evidence(img: np.ndarray, noise: float, shot_noise: float, dark_level: float,
              blurred: dict[float, np.ndarray]) -> np.ndarray:
    """Return gradient_ratio's readings per block: each kind of evidence's sigma (log px) and weight, then their blend (log px).

    `blurred` holds the re-blurs ``features`` made already (gradient_ratio's scales are among them).
    """
    pooled = _gr.readings(_gr.evidence(img, noise, shot_noise, dark_level, blurred), EVIDENCE_WIDTH)
    blend, _ = _gr.blend(pooled, EVIDENCE_FILL, EVIDENCE_MAX)
    out = []
    for sigma, weight in pooled:
        out += [np.log(np.minimum(sigma, EVIDENCE_MAX) + EVIDENCE_OFFSET), np.clip(weight, 0.0, 1.0)]
    out.append(np.log(np.nan_to_num(blend, nan=EVIDENCE_MAX) + EVIDENCE_OFFSET))  # NaN: no texture within reach
    return np.stack(out)


@cache
def load_weights() -> dict[str, np.ndarray]:
    """Return the network's arrays (feature mean and std, conv weights and biases) from the shipped .npz."""
    with resources.files(__package__).joinpath(WEIGHTS).open("rb") as f, np.load(f) as data:
        return {k: data[k] for k in data.files}


def layer_specs(weights: dict[str, np.ndarray]) -> list[tuple[np.ndarray, np.ndarray, int]]:
    """Return (weight (out, in, k, k), bias, dilation) of each conv layer, in order."""
    n = int(weights["n_layers"])
    return [(weights[f"w{i}"], weights[f"b{i}"], int(weights[f"dilation{i}"])) for i in range(n)]


def conv2d(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, dilation: int = 1) -> np.ndarray:
    """Return the convolution (cross-correlation) of x (in, h, w) with weight (out, in, k, k), reflected borders."""
    c, h, w = x.shape
    out_c, in_c, k, _ = weight.shape
    if in_c != c:
        raise ValueError(f"layer expects {in_c} channels, got {c}")
    pad = dilation * (k // 2)
    if pad:
        if min(h, w) <= pad:  # reflection needs more rows than it mirrors
            x = np.pad(x, ((0, 0), (pad, pad), (pad, pad)), mode="symmetric")
        else:
            x = np.pad(x, ((0, 0), (pad, pad), (pad, pad)), mode="reflect")
    out = np.empty((out_c, h * w), dtype=np.float32)
    out[:] = bias[:, None]
    for dy in range(k):
        for dx in range(k):
            tap = x[:, dy * dilation:dy * dilation + h, dx * dilation:dx * dilation + w].reshape(c, h * w)
            out += weight[:, :, dy, dx] @ tap
    return out.reshape(out_c, h, w)


def network(feats: np.ndarray, weights: dict[str, np.ndarray]) -> np.ndarray:
    """Return the network's output (2, h, w): natural log of sigma (px) and the log variance of that log."""
    x = (feats - weights["mean"][:, None, None]) / weights["std"][:, None, None]
    x = x.astype(np.float32)
    specs = layer_specs(weights)
    for i, (w, b, d) in enumerate(specs):
        x = conv2d(x, w, b, d)
        if i < len(specs) - 1:
            np.maximum(x, 0.0, out=x)
    return x


def refinement_terms(sigma: np.ndarray) -> np.ndarray:
    """Return the refinement's inputs (len(REFINE_WIDTHS) + 1, h, w) in px from a map on the 4 px grid (px).

    First the map less its Gaussian blur at each of REFINE_WIDTHS (px): a map smoothed by the
    estimator loses its peaks and troughs in proportion to these. Then its squared slope over its
    value, (d sigma / dx)**2 / sigma (px): where blur changes across a pooling window, the sharper
    part's larger energy wins and the window reads low, by about its width squared times this.
    """
    def blurred(order: tuple[int, int], width: float) -> np.ndarray:
        return ndi.gaussian_filter(sigma, width / BLOCK, order=order, mode="reflect", truncate=REFINE_TRUNCATE)

    means = {w: blurred((0, 0), w) for w in {*REFINE_WIDTHS, REFINE_SLOPE}}  # each blur once (the slope's is a width's)
    terms = [sigma - means[w] for w in REFINE_WIDTHS]
    dy, dx = blurred((1, 0), REFINE_SLOPE) / BLOCK, blurred((0, 1), REFINE_SLOPE) / BLOCK  # px per px
    terms.append((dy * dy + dx * dx) / np.maximum(means[REFINE_SLOPE], SIGMA_RANGE[0]))
    return np.stack(terms)


def refine(sigma: np.ndarray, coef: np.ndarray) -> np.ndarray:
    """Return the map (px, 4 px grid) plus the fitted combination coef of its refinement_terms.

    Every term is zero on a constant map, so a uniform blur reads as the network read it.
    """
    return sigma + np.tensordot(coef.astype(np.float32), refinement_terms(sigma), axes=1)


def halo(params: Mapping | None = None, weights: dict[str, np.ndarray] | None = None) -> int:
    """Return the context (px, a multiple of 4) each side of a tile: filters, pooling, the network, interpolation.

    Parameters
    ----------
    params : mapping, optional
        Checked parameters (the noise model: it does not change the reach).
    weights : dict, optional
        The network's arrays; the shipped ones by default.

    Returns
    -------
    int
        px.

    Examples
    --------
    >>> halo()
    204
    """
    full_res = int(TRUNCATE * max(SCALES) + 0.5) + 1  # re-blur plus the derivatives, in full pixels
    coarse = -(-full_res // BLOCK) + 2 * (POOL // 2)  # blocks touched, then the pooled copy's two box passes
    # or gradient_ratio's readings, if they reach further: its halo less its interpolation block and spare
    coarse = max(coarse, _gr.halo(_GR_DEFAULTS) // BLOCK - 2)
    coarse += -(-3 * (LOCAL_MEAN // 2) // BLOCK)  # both read the image less its local mean
    coarse += sum(d * (w.shape[-1] // 2) for w, _, d in layer_specs(weights or load_weights()))
    coarse += -(-int(REFINE_TRUNCATE * max(REFINE_WIDTHS + (REFINE_SLOPE,))) // BLOCK)  # the refinement's reach
    return BLOCK * (coarse + 2)  # + interpolation and one block to spare


def learned(image: np.ndarray, *, noise: float, shot_noise: float,
            dark_level: float) -> tuple[np.ndarray, np.ndarray]:
    """Return the sigma map (px) and confidence of a 2-D float tile, regressed by the shipped network.

    Call it through ``blurmap.estimate(image, "learned")``, which checks the parameters and
    estimates the noise model.

    Parameters
    ----------
    image : ndarray
        2-D float32 tile; its top-left corner on the global 4 px grid (the engine sees to it).
    noise, shot_noise, dark_level : float
        The noise variance noise**2 + shot_noise * (local mean - dark_level), image units.

    Returns
    -------
    sigma : ndarray
        float32, px, the tile's shape, within SIGMA_RANGE.
    confidence : ndarray
        float32 in [0, 1]: 1 / (1 + (s / CONF_STD)**2), s the network's predicted standard
        deviation of log sigma, so 0.5 where it expects a 15% error (before ``refine``).

    References
    ----------
    .. [1] A. Patro, "Blur kernel estimation using deep learning" (seed 002): patch classification
       of sigma, here done as a fully convolutional regression.
    .. [2] A. Kendall and Y. Gal, "What uncertainties do we need in Bayesian deep learning for
       computer vision?", NeurIPS 2017 (the log-variance output and its likelihood).

    Examples
    --------
    >>> import blurmap
    >>> from blurmap import synthetic
    >>> sharp = synthetic.dead_leaves((128, 128), seed=1)
    >>> image = blurmap.blur(sharp, np.full(sharp.shape, 2.0))
    >>> sigma = blurmap.estimate(image, "learned", noise=0, shot_noise=0, dark_level=0)
    >>> bool(abs(np.median(sigma) - 2.0) < 0.3)
    True
    """
    weights = load_weights()
    out = network(features(image, noise, shot_noise, dark_level), weights)
    sigma = np.clip(refine(np.exp(out[0]), weights["refine"]), *SIGMA_RANGE)
    std = np.exp(0.5 * np.clip(out[1], -20.0, 20.0))
    conf = 1.0 / (1.0 + (std / CONF_STD) ** 2)
    shape = np.shape(image)
    return upsample(sigma, shape), upsample(conf, shape)


ESTIMATOR = register(Estimator(
    name="learned",
    title="Learned regressor",
    func=learned,
    units="px",
    params=NOISE_MODEL,
    halo_formula=halo,
    align=BLOCK,
    description=("Seed 002 as a regression: a small fully convolutional network on the 4 px grid, fed "
                 "gain-free log ratios of gradient and Laplacian energies over re-blurs of 0 .. 4 px and "
                 "the noise's share, regresses log sigma and its variance (the confidence). Trained on "
                 "synthetic data apart from the benchmark (training/train_learned.py); numpy inference."),
    prepare=prepare_noise_model,
))
