"""Laplacian-of-Gaussian scale selection (seed 000, answer 1), normalised per pixel and calibrated to px."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy import ndimage as ndi

from ..noise import impulse_response
from ..registry import Estimator, Param, register
from ._noise_params import NOISE_MODEL, prepare_noise_model

__all__ = ["log_scale", "halo", "ESTIMATOR"]

SCALES = 0.5 * 2.0 ** (np.arange(17) / 4)  # px; the geometric ladder of LoG scales, 0.5 .. 8
GAMMA = 0.5  # scale normalisation s**(2 GAMMA): on a 1/k**2 texture the energy then peaks at s = sigma
POWER = 3.0  # energies are raised to this power before averaging, so the peak, not the tails, decides
RHO = 8.0  # px; the local-energy window (at least the scale itself)
CONTRAST_SPREAD = 2.0  # times `pooling_sigma`: a pixel's weight is its edge energy against this neighbourhood's
MIN_WEIGHT = 0.02  # pooled weight below which sigma is unknown (NaN)
_TRUNCATE = 4.0

# Mean log scale (natural log of px) -> sigma (px), measured by benchmarks/calibrate_log.py on
# noise-free dead leaves (seeds 100-103), apart from the benchmark suite. Readings below the
# first knot are 0 px (below 0.3 px the ladder barely tells blurs apart); above the last, the ladder cannot tell, and they read as its last sigma.
CAL_SIGMA = (0.0, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0)
CAL_LOG_SCALE = (-0.559, -0.555, -0.513, -0.401, -0.269, -0.070, 0.082, 0.245, 0.392,
                 0.633, 0.828, 0.996, 1.249, 1.426, 1.555)


def _noise_gain(s: float) -> float:
    """Return the energy gain (dimensionless) of the scale-normalised discrete LoG at `s` px on white noise."""
    kernel = impulse_response(lambda d: s * s * ndi.laplace(ndi.gaussian_filter(d, s)), int(_TRUNCATE * s + 0.5) + 1)
    return float((kernel * kernel).sum())


_NOISE_GAINS = np.array([_noise_gain(s) for s in SCALES])


def halo(params: Mapping) -> int:
    """Return the context (px) each side of a tile: LoG, local energy, contrast weight and pooling reach.

    Parameters
    ----------
    params : mapping
        Checked parameters; ``pooling_sigma`` (px) sets the reach.

    Returns
    -------
    int
        px.

    Examples
    --------
    >>> halo({"pooling_sigma": 8.0})
    162
    """
    top = float(SCALES[-1])
    window = params["pooling_sigma"]
    reach = _TRUNCATE * (top + max(RHO, top) + CONTRAST_SPREAD * window + window) + 2
    return int(np.ceil(reach))


def scale_selection(image: np.ndarray, noise_var: np.ndarray | float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Return (each pixel's best scale as a mean natural log of px, NaN if none; its noise-free share in [0, 1]).

    The energy at scale s is s**(4 GAMMA) times the squared discrete LoG response (Gaussian of
    s px, then the 5-point Laplacian, which sums to zero even at small s), averaged over a
    Gaussian window of max(RHO, s) px, less the expected energy of the noise, floored at 0. The
    best scale is the mean log scale weighted by energy**POWER: per pixel, so the weights are a
    distribution over scales whatever the pixel's contrast. Accumulated scale by scale, so memory
    does not grow with the ladder.
    """
    img = np.asarray(image, dtype=np.float64)
    weight_sum = np.zeros(img.shape)
    weighted_log = np.zeros(img.shape)
    signal = np.zeros(img.shape)
    raw = np.zeros(img.shape)
    for s, gain in zip(SCALES, _NOISE_GAINS):
        response = ndi.laplace(ndi.gaussian_filter(img, s, mode="reflect"), mode="reflect")
        local = ndi.gaussian_filter(response * response, max(RHO, s), mode="reflect")
        norm = s ** (4 * GAMMA)
        energy = np.maximum(local - gain / s**4 * noise_var, 0.0) * norm
        raw += local * norm
        signal += energy
        weight = energy**POWER
        weight_sum += weight
        weighted_log += weight * np.log(s)
    with np.errstate(divide="ignore", invalid="ignore"):
        best = np.where(weight_sum > 0, weighted_log / weight_sum, np.nan)
        share = np.where(raw > 0, signal / raw, 0.0)
    return best, np.clip(share, 0.0, 1.0)


def to_sigma(log_scale: np.ndarray) -> np.ndarray:
    """Return sigma (px) for mean log scales, through the calibration table."""
    return np.interp(log_scale, CAL_LOG_SCALE, CAL_SIGMA)


def pooled_log_scale(image: np.ndarray, pooling_sigma: float, noise: float = 0.0, shot_noise: float = 0.0,
                     dark_level: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Return (pooled mean log scale, natural log of px, NaN where unknown; confidence in [0, 1]).

    Each pixel's energies are normalised to a distribution over scales before any pooling, so a
    few strong edges or a bright region do not outweigh the rest. A pixel's weight in the pooling
    (a Gaussian of `pooling_sigma` px) is its noise-free share squared times its edge energy against its
    neighbourhood's, capped: flat areas, which see only distant structure at large scales, count
    little. Noise variance is noise**2 + shot_noise * (local mean - dark_level). Pixels with too
    little weight within reach are NaN.
    """
    img = np.asarray(image, dtype=np.float64)
    local_mean = ndi.gaussian_filter(img, RHO, mode="reflect")
    noise_var = noise**2 + shot_noise * np.maximum(local_mean - dark_level, 0.0)
    scale, share = scale_selection(img, noise_var)
    grad = ndi.gaussian_gradient_magnitude(img, 1.0, mode="reflect")
    edge = ndi.gaussian_filter(grad * grad, 2.0, mode="reflect")
    around = ndi.gaussian_filter(edge, CONTRAST_SPREAD * pooling_sigma, mode="reflect")
    with np.errstate(divide="ignore", invalid="ignore"):
        weight = share**2 * np.where(edge > 0, edge / (edge + around), 0.0)
    weight = np.where(np.isfinite(scale), weight, 0.0)
    num = ndi.gaussian_filter(np.nan_to_num(scale) * weight, pooling_sigma, mode="reflect")
    den = ndi.gaussian_filter(weight, pooling_sigma, mode="reflect")
    known = den > MIN_WEIGHT
    with np.errstate(divide="ignore", invalid="ignore"):
        pooled = np.where(known, num / np.where(known, den, 1.0), np.nan)
        conf = np.where(known, ndi.gaussian_filter(share**2, pooling_sigma, mode="reflect"), 0.0)
    return pooled, conf


def log_scale(image: np.ndarray, *, pooling_sigma: float, noise: float, shot_noise: float,
              dark_level: float) -> tuple[np.ndarray, np.ndarray]:
    """Return the sigma map (px) and confidence of a 2-D float tile by LoG scale selection.

    Call it through ``blurmap.estimate(image, "log")``, which checks the parameters and
    estimates the noise model.

    Parameters
    ----------
    image : ndarray
        2-D float32 tile.
    pooling_sigma : float
        px; std of the Gaussian window the per-pixel scales are pooled over.
    noise, shot_noise, dark_level : float
        The noise variance noise**2 + shot_noise * (local mean - dark_level), image units.

    Returns
    -------
    sigma : ndarray
        float32, px, read through the calibration table CAL_LOG_SCALE -> CAL_SIGMA (0 .. 6 px);
        NaN where no texture is within reach.
    confidence : ndarray
        float32 in [0, 1]: the pooled noise-free share of the LoG energy, squared.

    References
    ----------
    .. [1] T. Lindeberg, "Feature detection with automatic scale selection", International
       Journal of Computer Vision 30(2), 79-116, 1998.

    Examples
    --------
    >>> import blurmap
    >>> from blurmap import synthetic
    >>> sharp = synthetic.dead_leaves((128, 128), seed=1)
    >>> image = blurmap.blur(sharp, np.full(sharp.shape, 2.0))
    >>> sigma = blurmap.estimate(image, "log", noise=0, shot_noise=0)
    >>> bool(abs(np.nanmedian(sigma) - 2.0) < 0.5)
    True
    """
    pooled, conf = pooled_log_scale(image, pooling_sigma, noise, shot_noise, dark_level)
    return to_sigma(pooled).astype(np.float32), conf.astype(np.float32)


ESTIMATOR = register(Estimator(
    name="log",
    title="LoG scale selection",
    func=log_scale,
    units="px",
    params=(
        Param("pooling_sigma", 8.0, 4.0, 64.0, "px",
              "std of the Gaussian pooling window; larger is steadier, less local"),
        *NOISE_MODEL,
    ),
    halo_formula=halo,
    description=("Seed 000's answer 1: scale-normalised Laplacian-of-Gaussian energies over a ladder of "
                 "scales 0.5 .. 8 px, each pixel's best scale from their weighted average, normalised per "
                 "pixel before pooling (no strong edge or bright region dominates), noise removed, read "
                 "as px through a table measured on dead leaves. Reads 0 .. 6 px."),
    prepare=prepare_noise_model,
))
