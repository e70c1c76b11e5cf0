"""Laplacian-of-Gaussian scale selection (seed 000, answer 1), normalised per pixel and calibrated to px."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from .noise import impulse_response

SCALES = 0.5 * 2.0 ** (np.arange(17) / 4)  # px; the geometric ladder of LoG scales, 0.5 .. 8
GAMMA = 0.5  # scale normalisation s**(2 GAMMA): on a 1/k**2 texture the energy then peaks at s = sigma
POWER = 3.0  # energies are raised to this power before averaging, so the peak, not the tails, decides
RHO = 8.0  # px; the local-energy window (at least the scale itself)
CONTRAST_WINDOW = 2.0  # times `window`: a pixel's weight is its edge energy against this neighbourhood's
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


def halo(window: float = 8.0) -> int:
    """Return the context (px) each side of a tile: LoG, local energy, contrast weight and pooling reach."""
    top = float(SCALES[-1])
    reach = _TRUNCATE * (top + max(RHO, top) + CONTRAST_WINDOW * window + window) + 2
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


def pooled_log_scale(image: np.ndarray, window: float = 8.0, noise: float = 0.0, shot_noise: float = 0.0,
                     dark_level: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Return (pooled mean log scale, natural log of px, NaN where unknown; confidence in [0, 1]).

    Each pixel's energies are normalised to a distribution over scales before any pooling, so a
    few strong edges or a bright region do not outweigh the rest. A pixel's weight in the pooling
    (a Gaussian of `window` px) is its noise-free share squared times its edge energy against its
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
    around = ndi.gaussian_filter(edge, CONTRAST_WINDOW * window, mode="reflect")
    with np.errstate(divide="ignore", invalid="ignore"):
        weight = share**2 * np.where(edge > 0, edge / (edge + around), 0.0)
    weight = np.where(np.isfinite(scale), weight, 0.0)
    num = ndi.gaussian_filter(np.nan_to_num(scale) * weight, window, mode="reflect")
    den = ndi.gaussian_filter(weight, window, mode="reflect")
    known = den > MIN_WEIGHT
    with np.errstate(divide="ignore", invalid="ignore"):
        pooled = np.where(known, num / np.where(known, den, 1.0), np.nan)
        conf = np.where(known, ndi.gaussian_filter(share**2, window, mode="reflect"), 0.0)
    return pooled, conf


def log_scale(image: np.ndarray, *, window: float = 8.0, noise: float = 0.0, shot_noise: float = 0.0,
              dark_level: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Return (sigma map in px, confidence in [0, 1]) from LoG scale selection on a 2-D float tile.

    The pooled mean log scale (see pooled_log_scale) is read as sigma through the calibration
    table CAL_LOG_SCALE -> CAL_SIGMA. NaN where no texture is within reach.
    """
    pooled, conf = pooled_log_scale(image, window, noise, shot_noise, dark_level)
    return to_sigma(pooled).astype(np.float32), conf.astype(np.float32)
