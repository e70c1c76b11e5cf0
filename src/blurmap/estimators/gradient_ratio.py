"""Absolute, gain-invariant, noise-aware blur estimation from re-blur energy ratios.

The image is re-blurred with Gaussians of sigma s (0.7, 1.4 and 2.1 px). Where the image carries
blur sigma, re-blurring by s gives total blur t = sigma**2 + s**2 (+ the operators' own blur).
Ratios of local energies of the image and its re-blurred copies cancel contrast, so image gain
and offset drop out; what remains is sigma. Three kinds of evidence are read per 4 x 4 block
(see ``evidence``) and blended by their confidence (see ``blend``):

- curvature: Laplacian over gradient energy is gamma / t for any power-law spectrum, so its fall
  with re-blurring gives t with no spectral exponent to know; read from the image and again from
  a base pre-blurred by 0.7 px, where the Laplacian's noise is far smaller;
- gradient: the self-weighted energy sum(e**2) / sum(e) (e the squared gradient magnitude), which
  weights gradient peaks as Zhuo and Sim's edge-based ratio does, falls as t**-gamma, gamma
  fitted on dead leaves; robust to noise, but textures whose spectra fall otherwise read off.

White noise of variance v adds a known energy q(s) = v * sum of the operator's squared taps; its
exact expectation is removed (E[e] = u + q, E[e**2] = u2 + 4 q u + 2 q**2). Energies are averaged
over 4 x 4 blocks; pooling, the ratio inversion and the confidence-weighted fill run on that
coarse grid, and the maps are interpolated back to full resolution.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from ..registry import Estimator, Param, register
from ._energy import block_noise, laplacian_noise_energy, noise_energy
from ._filters import TRUNCATE, block_energies, gaussian, interp
from ._grid import BLOCK, box_size, upsample, weighted_mean
from ._noise_params import NOISE_MODEL, prepare_noise_model

__all__ = ["gradient_ratio", "halo", "evidence", "ESTIMATOR"]

SCALES = (0.7, 1.4)  # px; re-blur sigmas beyond the unblurred image
BASE = 0.7  # px; the pre-blurred base of the noise-resistant curvature evidence
BASE_SCALES = (1.4, 2.1)  # px; its re-blurs
EVIDENCE_SCALES = tuple(sorted({0.0, *SCALES, BASE, *BASE_SCALES}))  # px; every re-blur evidence() makes
GAMMA = 1.17  # energy exponent; fitted with T_DERIV on dead leaves by benchmarks/calibrate.py
T_DERIV = 0.24  # px**2; the derivative's own blur as seen on the pixel grid (1/3 in the continuum)
CURV_GAMMA = 1.03  # the curvature evidence's exponent: 1 in theory; fitted by calibrate.py
CURV_T = 0.06  # px**2; the operators' own blur in the curvature evidence, fitted by calibrate.py
BASE_GAMMA = 1.05  # the same for the curvature evidence read from the 0.7 px base (calibrate.py)
BASE_T = 0.09  # px**2; calibrate.py
SIGMA_GRID = np.linspace(0.0, 20.0, 4001)  # px; table used to invert the energy ratio
SNR_HALF = 4.0  # signal-to-noise energy ratio at which a scale gives half confidence
MIN_WEIGHT = 0.01  # pooled squared confidence below which sigma is unknown (NaN)


def model_log_ratio(sigma: np.ndarray, gamma: float, t_deriv: float, scales: tuple[float, ...],
                    base: float = 0.0) -> np.ndarray:
    """Return sum over re-blur scales of log(statistic at `base` / statistic at s) for a blur sigma (px)."""
    t = np.asarray(sigma, dtype=np.float64)[..., None] ** 2 + t_deriv + base**2
    s2 = np.asarray(scales) ** 2 - base**2
    return gamma * np.log((t + s2) / t).sum(axis=-1)


def invert_log_ratio(log_ratio: np.ndarray, gamma: float, t_deriv: float, scales: tuple[float, ...],
                     base: float = 0.0) -> np.ndarray:
    """Return the sigma (px) whose model log ratio is `log_ratio`, from a table (0 .. 20 px)."""
    table = model_log_ratio(SIGMA_GRID, gamma, t_deriv, scales, base)  # decreasing in sigma
    return interp(log_ratio, table[::-1], SIGMA_GRID[::-1])


def halo(params: Mapping) -> int:
    """Return the context (px, a multiple of 4) each side of a tile that the map depends on.

    Parameters
    ----------
    params : mapping
        Checked parameters; ``pooling_width`` and ``fill_reach`` (px) set the reach.

    Returns
    -------
    int
        px: the re-blurs and derivatives, then pooling, fill and interpolation on the 4 px grid.

    Examples
    --------
    >>> halo({"pooling_width": 16.0, "fill_reach": 32.0})
    68
    """
    full_res = int(TRUNCATE * max(SCALES + BASE_SCALES) + 0.5) + 1  # re-blur plus derivative, in full pixels
    coarse = -(-full_res // BLOCK)  # blocks touched by the full-resolution stage
    coarse += 2 * (box_size(params["pooling_width"]) // 2) + 2 * (box_size(params["fill_reach"]) // 2) + 1
    return BLOCK * (coarse + 1)


class Evidence(NamedTuple):
    """Per 4 x 4 block: three sums of log ratios over the re-blur scales, each with its confidence."""

    gradient: np.ndarray  # log of self-weighted gradient energy, unblurred over re-blurred
    gradient_conf: np.ndarray
    curvature: np.ndarray  # log of (Laplacian energy / gradient energy), unblurred over re-blurred
    curvature_conf: np.ndarray
    base_curvature: np.ndarray  # the same from a base pre-blurred by BASE px: far less noise
    base_curvature_conf: np.ndarray


def evidence(image: np.ndarray, noise: float = 0.0, shot_noise: float = 0.0,
             dark_level: float = 0.0, blurred: dict[float, np.ndarray] | None = None) -> Evidence:
    """Return the three kinds of blur evidence per 4 x 4 block, before pooling; 0 where undefined.

    Parameters
    ----------
    image : ndarray
        2-D float image; its top-left corner on the 4 px grid.
    noise, shot_noise, dark_level : float
        The noise model, variance noise**2 + shot_noise * (intensity - dark_level), image units;
        all 0 (the defaults) means a noise-free image.
    blurred : dict, optional
        The float32 image already re-blurred by some of EVIDENCE_SCALES (px -> array, as
        ``gaussian_filter(image, s, mode="reflect", truncate=4)`` gives): those are not computed again.

    Returns
    -------
    Evidence
        Per block, the gradient, curvature and base-curvature log ratios with their confidences.

    Notes
    -----
    Gradient: the self-weighted gradient energy falls as t**-GAMMA with the total blur t, GAMMA
    fitted on dead leaves; textures whose spectra fall otherwise read off by up to 25%.
    Curvature: under Gaussian blur the Laplacian energy is minus the t-derivative of the gradient
    energy, so for any power-law spectrum their ratio is gamma / t, and its fall with re-blurring
    gives t with no exponent to know. The Laplacian amplifies noise about 20 times, so its
    confidence drops first; read from a base already blurred by BASE px, its noise is some 100
    times smaller, at the price of less sensitivity to small sigma. Energies are not pooled beyond
    the block: a pooled energy is dominated by the sharper side of a window; the estimator
    averages this evidence linearly instead.

    Examples
    --------
    >>> from blurmap import synthetic
    >>> ev = evidence(synthetic.dead_leaves((64, 64), seed=1))
    >>> ev.gradient.shape
    (16, 16)
    """
    img = np.asarray(image, dtype=np.float32)
    floor, q_unit = block_noise(img, noise, shot_noise, dark_level)
    grad_stats, curv_stats, ratios, snrs = [], [], {}, {}
    grad_conf = np.ones_like(floor)
    curv_conf = np.ones_like(floor)
    for s in EVIDENCE_SCALES:
        if blurred is not None and s in blurred:
            g = blurred[s]
        else:
            g = gaussian(img, s) if s > 0 else img
        gradient_scale = s in (0.0,) + SCALES  # the gradient evidence's scales
        p1, p2, lap = block_energies(g, BLOCK, squares=gradient_scale)
        q = q_unit * noise_energy(s)
        s1 = np.maximum(p1 - q, 0.0)  # E[e] = u + q
        q_lap = q_unit * laplacian_noise_energy(s)
        lap = np.maximum(lap - q_lap, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratios[s] = np.where(s1 > 0, lap / s1, 0.0)
        snr = s1 / q
        snr_lap = lap / q_lap
        snrs[s] = snr / (SNR_HALF + snr) * snr_lap / (SNR_HALF + snr_lap)
        if gradient_scale:
            s2 = np.maximum(p2 - 4.0 * q * p1 + 2.0 * q * q, 0.0)  # E[e**2] = u2 + 4 q u + 2 q**2
            with np.errstate(divide="ignore", invalid="ignore"):
                grad_stats.append(np.where(s1 > 0, s2 / s1, 0.0))
            grad_conf *= snr / (SNR_HALF + snr)  # evidence at every scale must stand above its noise
            curv_stats.append(ratios[s])
            curv_conf *= snrs[s]
    base_stats = [ratios[s] for s in (BASE,) + BASE_SCALES]
    base_conf = np.prod([snrs[s] for s in (BASE,) + BASE_SCALES], axis=0)
    out = []
    for stats, conf in ((grad_stats, grad_conf), (curv_stats, curv_conf), (base_stats, base_conf)):
        m0 = stats[0]
        with np.errstate(divide="ignore", invalid="ignore"):
            log_ratio = sum(np.log(m0 / m) for m in stats[1:])
        valid = np.isfinite(log_ratio) & (m0 > 0)
        out += [np.where(valid, np.maximum(log_ratio, 0.0), 0.0), np.where(valid, conf, 0.0)]
    return Evidence(*out)


def _pooled_sigma(log_ratio: np.ndarray, conf: np.ndarray, pooling_width: float, gamma: float, t_deriv: float,
                  scales: tuple[float, ...] = SCALES, base: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Return (sigma px, pooled weight) of one kind of evidence, averaged over `pooling_width` px."""
    # squared confidences as weights let confident blocks outvote weak evidence
    pooled, weight = weighted_mean(log_ratio, conf * conf, box_size(pooling_width))
    return invert_log_ratio(pooled, gamma, t_deriv, scales, base), weight


def _fill(sigma: np.ndarray, weight: np.ndarray, fill_reach: float) -> tuple[np.ndarray, np.ndarray]:
    """Return (sigma filled by normalised convolution, NaN out of reach of evidence; confidence)."""
    filled, den = weighted_mean(sigma, weight, box_size(fill_reach))
    return np.where(den > MIN_WEIGHT, filled, np.nan), np.sqrt(np.clip(den, 0.0, 1.0))


def component_sigma(log_ratio: np.ndarray, conf: np.ndarray, pooling_width: float, fill_reach: float,
                    sigma_max: float, gamma: float, t_deriv: float, scales: tuple[float, ...] = SCALES,
                    base: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Return (sigma in px, confidence) on the 4 px grid from one kind of evidence alone (for calibration)."""
    sigma, weight = _pooled_sigma(log_ratio, conf, pooling_width, gamma, t_deriv, scales, base)
    return _fill(np.minimum(sigma, sigma_max), weight, fill_reach)


def readings(ev: Evidence, pooling_width: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """Return (sigma in px, pooled weight) on the 4 px grid of the gradient, curvature and base-curvature evidence, in order."""
    return [_pooled_sigma(ev.gradient, ev.gradient_conf, pooling_width, GAMMA, T_DERIV),
            _pooled_sigma(ev.curvature, ev.curvature_conf, pooling_width, CURV_GAMMA, CURV_T),
            _pooled_sigma(ev.base_curvature, ev.base_curvature_conf, pooling_width, BASE_GAMMA, BASE_T,
                          BASE_SCALES, BASE)]


def blend(pooled: list[tuple[np.ndarray, np.ndarray]], fill_reach: float,
          sigma_max: float) -> tuple[np.ndarray, np.ndarray]:
    """Return (sigma in px, confidence) on the 4 px grid from the three readings: curvature evidence where it is strong.

    Each kind of evidence is pooled and turned into sigma by its own calibrated model. The
    curvature evidence from the unblurred image takes the share its pooled weight gives it; the
    one from the pre-blurred base, of what is left, its share; the robust gradient ratio the rest.
    Clean regions get the exponent-free estimate, noisy ones the base's, the noisiest the gradient's.
    """
    (sigma_g, weight_g), (sigma_c, weight_c), (sigma_b, weight_b) = pooled
    share_c = np.clip(weight_c, 0.0, 1.0)
    share_b = np.clip(weight_b, 0.0, 1.0) * (1 - share_c)
    sigma = share_c * sigma_c + share_b * sigma_b + (1 - share_c - share_b) * sigma_g
    return _fill(np.minimum(sigma, sigma_max), np.maximum(np.maximum(weight_g, weight_c), weight_b), fill_reach)


def gradient_ratio(image: np.ndarray, *, pooling_width: float, fill_reach: float, noise: float,
                   shot_noise: float, dark_level: float, sigma_max: float) -> tuple[np.ndarray, np.ndarray]:
    """Return the sigma map (px) and confidence of a 2-D float tile, from re-blur energy ratios.

    The defaults of every parameter live in the registry record ``ESTIMATOR``; call this through
    ``blurmap.estimate(image, "gradient_ratio", ...)``, which checks them and estimates the noise.

    Parameters
    ----------
    image : ndarray
        2-D float32 tile; its top-left corner on the global 4 px grid (the engine sees to it).
    pooling_width : float
        px; width of the triangle window the evidence is averaged over.
    fill_reach : float
        px; how far the confidence-weighted fill reaches into textureless areas.
    noise, shot_noise, dark_level : float
        The noise variance noise**2 + shot_noise * (local mean - dark_level), image units.
    sigma_max : float
        px; the largest blur reported.

    Returns
    -------
    sigma : ndarray
        float32, px, the tile's shape; NaN where no texture is within reach.
    confidence : ndarray
        float32 in [0, 1]; 0 where sigma is NaN.

    References
    ----------
    .. [1] S. Zhuo and T. Sim, "Defocus map estimation from a single image", Pattern
       Recognition 44(9), 1852-1858, 2011.
    .. [2] A. Karaali and C. R. Jung, "Edge-based defocus blur estimation with adaptive scale
       selection", IEEE Trans. Image Processing 27(3), 1126-1137, 2018.

    Examples
    --------
    >>> import blurmap
    >>> from blurmap import synthetic
    >>> sharp = synthetic.dead_leaves((128, 128), seed=1)
    >>> image = blurmap.blur(sharp, np.full(sharp.shape, 2.0))
    >>> sigma = blurmap.estimate(image, "gradient_ratio", noise=0, shot_noise=0)
    >>> bool(abs(np.nanmedian(sigma) - 2.0) < 0.3)
    True
    """
    ev = evidence(image, noise, shot_noise, dark_level)
    sigma, conf = blend(readings(ev, pooling_width), fill_reach, sigma_max)
    shape = np.shape(image)
    return upsample(sigma, shape), upsample(conf, shape)


ESTIMATOR = register(Estimator(
    name="gradient_ratio",
    title="Re-blur gradient ratio",
    func=gradient_ratio,
    units="px",
    params=(
        Param("pooling_width", 16.0, 8.0, 128.0, "px", "width of the pooling window; larger is steadier, less local"),
        Param("fill_reach", 32.0, 4.0, 256.0, "px", "reach of the confidence-weighted fill into textureless areas"),
        *NOISE_MODEL,
        Param("sigma_max", 10.0, 1.0, 20.0, "px", "largest blur reported"),
    ),
    halo_formula=halo,
    align=BLOCK,
    description=("Absolute Gaussian sigma from energy ratios of the image and its re-blurred copies: "
                 "Laplacian over gradient energy (no spectral exponent to know; also from a 0.7 px base, "
                 "for noise) and self-weighted gradient energy (robust), blended by confidence, each "
                 "calibrated on dead leaves; invariant to gain and offset, noise removed, NaN where no "
                 "texture is in reach."),
    prepare=prepare_noise_model,
))
