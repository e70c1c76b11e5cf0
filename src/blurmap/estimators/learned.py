"""A learned sigma regressor (seed 002, done as a regression): a fixed pyramid of energies, then a small FCN.

The network's first stage is fixed, not learned. The image less its local mean is read at three
resolutions (full, half, and a quarter: the 4 px block grid), each re-blurred by a few px of its
own (LEVELS), so re-blurs reach 8 px at a fraction of the work of full-resolution filters. Per
4 x 4 block, the gradient and Laplacian energies of each are read as log ratios of one another
(so gain cancels exactly; see _ratios for which) beside the noise's share of each resolution,
block by block and pooled over about 16 px. A fully convolutional network on the 4 px grid
(a 1 x 1 layer, three 3 x 3 layers dilated 1, 2 and 4, a 1 x 1 output) then regresses, per
block, the natural log of sigma and the log variance of that estimate (trained by Gaussian
negative log likelihood, so its variance is an honest uncertainty). Last, a linear refinement
of the map (see refine) takes away the bias of the smoothing the features and the network
apply: peaks read low, troughs high, steep flanks low. Its weights ship in ``learned.npz``,
trained by ``training/train_learned.py`` with PyTorch (the refinement fitted there by least
squares on held-out images); inference here is numpy and scipy only.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from importlib import resources

import numpy as np
from scipy import ndimage as ndi

from ..registry import Estimator, register
from ._blas import one_blas_thread
from ._energy import block_noise, noise_energy
from ._filters import TRUNCATE, block_energies, gaussian
from ._grid import BLOCK, FLAT_VARIANCE, box2, cells_for, upsample, upsample_part
from ._noise_params import NOISE_MODEL, prepare_noise_model

__all__ = ["learned", "halo", "ESTIMATOR"]

# re-blurs (px of each resolution) of the image at full, half and quarter resolution; the last
# resolution is the 4 px block grid, so its 2 px re-blur is 8 full px (a re-blur of s px at one
# resolution is about one of s / 2 at the next, so each is read at the coarsest that holds it)
LEVELS = ((0.0, 0.7), (0.0, 0.7, 1.4), (0.0, 0.7, 1.4, 2.0))
LOCAL_MEAN = 4.0  # blocks (16 px); std of the Gaussian, on the block grid, of the local mean taken away first
POOL = 5  # blocks; width of the box (applied twice) of the pooled copy of every feature
_PAIRS = sum(len(scales) for scales in LEVELS)  # (resolution, re-blur) pairs
N_FEATURES = 2 * (2 * (_PAIRS - 1) + len(LEVELS))  # block and pooled: gradient ratios, curvature falls, noise shares
LOG_CLIP = (-20.0, 8.0)  # log ratios are clipped here: flat blocks give log(0)
NOISE_SHARE_MIN = -14.0  # log of noise over gradient energy; below it (60 dB under the signal) noise cannot matter
SIGMA_RANGE = (0.05, 20.0)  # px; the map is clipped to this
REFINE_WIDTHS = (8.0, 16.0, 32.0)  # px; the map less its Gaussian blur at each of these feeds the refinement
REFINE_SLOPE = 8.0  # px; Gaussian whose derivatives give the map's slope for the refinement
REFINE_TRUNCATE = 3.0  # the refinement's and the local mean's Gaussians are cut at this many standard deviations
CONV_SPAN = 4096  # samples of the flattened input each convolution step takes at once (see conv2d)
CONF_STD = 0.15  # predicted std of log sigma at which the confidence is 0.5
WEIGHTS = "learned.npz"


def halve(a: np.ndarray) -> np.ndarray:
    """Return the mean of each 2 x 2 block of `a` (both sides even), by strided adds (a reduction over a 2-long axis is slower)."""
    rows = a[0::2] + a[1::2]
    out = rows[:, 0::2] + rows[:, 1::2]
    out *= 0.25
    return out


def to_blocks(a: np.ndarray, factor: int) -> np.ndarray:
    """Return the mean of each `factor` x `factor` block of `a` (a power of two dividing both sides)."""
    while factor > 1:
        a, factor = halve(a), factor // 2
    return a


def less_local_mean(img: np.ndarray) -> np.ndarray:
    """Return the image (sides a multiple of BLOCK) less its local mean: its block grid blurred by LOCAL_MEAN blocks, interpolated.

    A gain that changes across the image adds to every gradient the local mean times the gain's
    slope: a smooth term no ratio of re-blurred energies can tell from texture. Taking the local
    mean away removes it and keeps the texture, whose energy lies far above the mean's frequencies.
    """
    mean = gaussian(to_blocks(img, BLOCK), LOCAL_MEAN, REFINE_TRUNCATE)
    return img - upsample(mean, img.shape)


def _log_ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """Return log(num / den), clipped to LOG_CLIP (both non-negative; 0 / 0 gives the lower clip)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.log(num) - np.log(den)
    return np.clip(np.nan_to_num(r, nan=LOG_CLIP[0], posinf=LOG_CLIP[1], neginf=LOG_CLIP[0]), *LOG_CLIP)


def _ratios(grad: list[list[np.ndarray]], lap: list[list[np.ndarray]], noise: np.ndarray) -> list[np.ndarray]:
    """Return the gain-free channels: log(G / G_00) and the fall of log(L / G) from the first pair; each resolution's noise share.

    ``grad[k][i]`` is the gradient energy at resolution k, re-blur i. The curvature L / G is gamma / t
    for a power-law spectrum, gamma set by the texture (thin lines give three times an edge's); only its
    changes are free of gamma, so its level at full resolution, no re-blur, is left out: a network given
    it learns the gamma of its training textures. ``noise`` is the full-resolution noise variance; halving
    the resolution quarters it.
    """
    g00, c00 = grad[0][0], _log_ratio(lap[0][0], grad[0][0])
    ratios, falls, shares = [], [], []
    for k, (gs, ls) in enumerate(zip(grad, lap)):
        for i, (g, lp) in enumerate(zip(gs, ls)):
            if k or i:
                ratios.append(_log_ratio(g, g00))
                falls.append(_log_ratio(lp, g) - c00)
        shares.append(np.maximum(_log_ratio(noise * (noise_energy(0.0) / 4**k), gs[0]), NOISE_SHARE_MIN))
    return ratios + falls + shares


def features(image: np.ndarray, noise: float = 0.0, shot_noise: float = 0.0,
             dark_level: float = 0.0) -> np.ndarray:
    """Return the network's input, (N_FEATURES, ceil(h/4), ceil(w/4)) float32, one per 4 x 4 block.

    The noise variance is noise**2 + shot_noise * (local mean - dark_level) in image units. The
    top-left corner of `image` must lie on the global 4 px grid (the engine sees to it); a partial
    last block is mirrored.
    """
    return _features(image, noise, shot_noise, dark_level)[0]


def _features(image: np.ndarray, noise: float, shot_noise: float, dark_level: float) -> tuple[np.ndarray, np.ndarray]:
    """Return the features and, per block, whether anything varies within the pooled window (see textured)."""
    img = np.asarray(image, dtype=np.float32)
    h, w = img.shape
    img = np.pad(img, ((0, (-h) % BLOCK), (0, (-w) % BLOCK)), mode="symmetric")
    floor, variance = block_noise(img, noise, shot_noise, dark_level)
    floor, variance = floor.astype(np.float32), variance.astype(np.float32)
    level = less_local_mean(img)
    grad, lap = [], []
    for k, scales in enumerate(LEVELS):
        if k:
            level = halve(level)
        gs, ls = [], []
        for s in scales:
            g = gaussian(level, s) if s > 0 else level
            energy, _, curvature = block_energies(g, BLOCK >> k)
            gs.append(energy.astype(np.float32) + floor)
            ls.append(curvature.astype(np.float32) + floor)
        grad.append(gs)
        lap.append(ls)
    block = _ratios(grad, lap, variance)
    pooled_grad = [[box2(g, POOL) for g in gs] for gs in grad]
    pooled = _ratios(pooled_grad, [[box2(lp, POOL) for lp in ls] for ls in lap], box2(variance, POOL))
    return np.stack(block + pooled).astype(np.float32), textured(pooled_grad, box2(floor, POOL))


def textured(pooled_grad: list[list[np.ndarray]], floor: np.ndarray) -> np.ndarray:
    """Return per block whether the image varies within the pooled window at any resolution.

    Textureless means a gradient energy above the floor of at most FLAT_VARIANCE per px**2 at
    every resolution (intensities normalised to about 0 .. 1: a change under 1e-4 of the range
    per px, far below an 8-bit step): there no blur can be read, and the map is NaN. A strongly
    defocused but not flat area still varies, and gets an estimate (with its confidence).
    """
    energy = sum((gs[0] - floor) / 4.0**k for k, gs in enumerate(pooled_grad))  # per full px**2
    return energy > FLAT_VARIANCE


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
    """Return the convolution (cross-correlation) of x (in, h, w) with weight (out, in, k, k), reflected borders.

    The output is computed on the padded width (its extra columns dropped), where each tap is a
    shift of the padded, flattened input. CONV_SPAN samples at a time, the k * k shifted pieces
    are stacked and the layer is one matrix product over all of them, so the piece's input and
    products stay in cache.
    """
    c, h, w = x.shape
    out_c, in_c, k, _ = weight.shape
    if in_c != c:
        raise ValueError(f"layer expects {in_c} channels, got {c}")
    pad = dilation * (k // 2)
    if not pad:
        return (weight[:, :, 0, 0] @ x.reshape(c, h * w) + bias[:, None]).reshape(out_c, h, w)
    mode = "symmetric" if min(h, w) <= pad else "reflect"  # reflection needs more rows than it mirrors
    x = np.pad(x, ((0, 0), (pad, pad), (pad, pad)), mode=mode).reshape(c, -1)
    wp = w + 2 * pad
    span = (h - 1) * wp + w
    starts = [dilation * (dy * wp + dx) for dy in range(k) for dx in range(k)]
    stacked_weight = np.ascontiguousarray(weight.transpose(0, 2, 3, 1).reshape(out_c, k * k * c))
    out = np.empty((out_c, h * wp), dtype=np.float32)
    pieces = np.empty((k * k, c, min(span, CONV_SPAN)), dtype=np.float32)
    for lo in range(0, span, CONV_SPAN):
        n = min(span, lo + CONV_SPAN) - lo
        stack = pieces[:, :, :n] if n == pieces.shape[-1] else np.empty((k * k, c, n), dtype=np.float32)
        for i, start in enumerate(starts):
            stack[i] = x[:, start + lo:start + lo + n]
        np.matmul(stacked_weight, stack.reshape(k * k * c, n), out=out[:, lo:lo + n])
    out[:, :span] += bias[:, None]  # the last 2 * pad samples are never written: left as np.empty made them
    return out.reshape(out_c, h, wp)[:, :, :w]


def network(feats: np.ndarray, weights: dict[str, np.ndarray]) -> np.ndarray:
    """Return the network's output (2, h, w): natural log of sigma (px) and the log variance of that log."""
    x = ((feats - weights["mean"][:, None, None]) / weights["std"][:, None, None]).astype(np.float32)
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


def _reach(sigma: float) -> int:
    """Return the reach (samples) of a Gaussian re-blur of sigma samples cut at TRUNCATE, plus the second difference."""
    return int(TRUNCATE * sigma + 0.5) + 1


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
    244
    """
    local_mean = int(REFINE_TRUNCATE * LOCAL_MEAN + 0.5) + 2  # blocks: its Gaussian, then the interpolation
    # each resolution's re-blurs and differences, in full px (each of its samples spans 2**k), then blocks
    filters = max(-(-(2**k * (_reach(max(scales)) + 1)) // BLOCK) for k, scales in enumerate(LEVELS))
    coarse = local_mean + filters + 2 * (POOL // 2) + network_reach(weights or load_weights()) + refine_reach()
    return BLOCK * (coarse + 2)  # + interpolation and one block to spare


def network_reach(weights: dict[str, np.ndarray]) -> int:
    """Return how far (blocks) the network's output at a block reads its input: each layer's dilated half kernel."""
    return sum(d * (w.shape[-1] // 2) for w, _, d in layer_specs(weights))


def refine_reach() -> int:
    """Return how far (blocks) ``refine`` reads the map around a block: its widest Gaussian, cut at REFINE_TRUNCATE."""
    return -(-int(REFINE_TRUNCATE * max(REFINE_WIDTHS + (REFINE_SLOPE,))) // BLOCK)


def learned(image: np.ndarray, *, noise: float, shot_noise: float, dark_level: float,
            block: tuple[slice, slice] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Return the sigma map (px) and confidence of a 2-D float tile, regressed by the shipped network.

    Call it through ``blurmap.estimate(image, "learned")``, which checks the parameters and
    estimates the noise model.

    Parameters
    ----------
    image : ndarray
        2-D float32 tile; its top-left corner on the global 4 px grid (the engine sees to it).
    noise, shot_noise, dark_level : float
        The noise variance noise**2 + shot_noise * (local mean - dark_level), image units.
    block : tuple of slice, optional
        The part of the tile (rows, columns) whose maps are wanted; the whole tile if None. The
        network and the refinement then run only where that part reads them: the same numbers.

    Returns
    -------
    sigma : ndarray
        float32, px, the shape of the tile (or of `block`), within SIGMA_RANGE; NaN where nothing
        varies within reach (see textured).
    confidence : ndarray
        float32 in [0, 1]: 1 / (1 + (s / CONF_STD)**2), s the network's predicted standard
        deviation of log sigma, so 0.5 where it expects a 15% error (before ``refine``).

    References
    ----------
    .. [1] A. Patro, "Blur kernel estimation using deep learning" (seed 002): patch classification
       of sigma, here done as a fully convolutional regression.
    .. [2] A. Kendall and Y. Gal, "What uncertainties do we need in Bayesian deep learning for
       computer vision?", NeurIPS 2017 (the log-variance output and its likelihood).
    .. [3] P. J. Burt and E. H. Adelson, "The Laplacian pyramid as a compact image code", IEEE
       Trans. Communications 31 (1983) (reading large scales at reduced resolution).

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
    feats, varies = _features(image, noise, shot_noise, dark_level)
    grid = feats.shape[1:]
    pixels = tuple(slice(*part.indices(n)[:2]) for part, n in zip(block or (slice(None), slice(None)), np.shape(image)))
    # the blocks upsampling reads; the refinement's reach around them; the network's around that
    cells = [cells_for(p, n) for p, n in zip(pixels, grid)]
    refined = [cells_for(p, n, refine_reach()) for p, n in zip(pixels, grid)]
    read = [cells_for(p, n, refine_reach() + network_reach(weights)) for p, n in zip(pixels, grid)]
    with one_blas_thread():  # the engine runs a tile per core already
        out = network(feats[:, read[0], read[1]], weights)[:, _within(refined[0], read[0]), _within(refined[1], read[1])]
    sigma = np.clip(refine(np.exp(out[0]), weights["refine"]), *SIGMA_RANGE)
    std = np.exp(0.5 * np.clip(out[1], -20.0, 20.0))
    conf = 1.0 / (1.0 + (std / CONF_STD) ** 2)
    inside = (_within(cells[0], refined[0]), _within(cells[1], refined[1]))
    varies = varies[cells[0], cells[1]]
    sigma, conf = np.where(varies, sigma[inside], np.nan), np.where(varies, conf[inside], 0.0)
    return upsample_part(sigma, cells, pixels, grid), upsample_part(conf, cells, pixels, grid)


def _within(inner: slice, outer: slice) -> slice:
    """Return where `inner` lies within `outer` (both on the same axis, `inner` inside)."""
    return slice(inner.start - outer.start, inner.stop - outer.start)


ESTIMATOR = register(Estimator(
    name="learned",
    title="Learned regressor",
    func=learned,
    units="px",
    params=NOISE_MODEL,
    halo_formula=halo,
    align=BLOCK,
    description=("Seed 002 as a regression: a small fully convolutional network on the 4 px grid, fed "
                 "gain-free log ratios of gradient and Laplacian energies of the image at full, half and "
                 "quarter resolution, re-blurred up to 8 px, and the noise's share, regresses log sigma "
                 "and its variance (the confidence). Trained on synthetic data apart from every benchmark "
                 "(training/train_learned.py); numpy inference."),
    prepare=prepare_noise_model,
    crops=True,
))
