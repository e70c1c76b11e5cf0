"""Absolute, gain-invariant, noise-aware blur estimation from re-blur energy ratios.

The image is re-blurred with Gaussians of sigma s (0.7, 1.4 and 2.1 px). Where the image carries
blur sigma, re-blurring by s gives total blur t = sigma**2 + s**2 (+ the operators' own blur).
Ratios of local energies of the image and its re-blurred copies cancel contrast, so image gain
and offset drop out; what remains is sigma. Three kinds of evidence are read per 4 x 4 block
(see ``evidence``) and blended by their confidence (see ``sigma_from_evidence``):
- curvature: Laplacian over gradient energy is gamma / t for any power-law spectrum, so its fall
  with re-blurring gives t with no spectral exponent to know; read from the image and again from
  a base pre-blurred by 0.7 px, where the Laplacian's noise is far smaller;
- gradient: the self-weighted energy sum(e**2) / sum(e) (e the squared gradient magnitude), which
  weights gradient peaks as Zhuo and Sim's edge-based ratio does, falls as t**-gamma, gamma
  fitted on dead leaves; robust to noise, but textures whose spectra fall otherwise read off.
White noise of variance v adds a known energy q(s) = v * sum of the operator's squared taps; its
exact expectation is removed (E[e] = u + q, E[e**2] = u2 + 4 q u + 2 q**2).

Energies are averaged over 4 x 4 blocks; pooling, the ratio inversion and the confidence
weighted fill run on that coarse grid, and the maps are interpolated back to full resolution.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import numpy as np
from scipy import ndimage as ndi

from .noise import impulse_response

BLOCK = 4  # px; the coarse grid's step, also the alignment the dask engine keeps
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
_TRUNCATE = 4.0
SNR_HALF = 4.0  # signal-to-noise energy ratio at which a scale gives half confidence
RELATIVE_FLOOR = 1e-5  # noise floor relative to the local mean intensity
MIN_WEIGHT = 0.01  # pooled squared confidence below which sigma is unknown (NaN)


def _at(axis: int, start: int | None, stop: int | None) -> tuple[slice, slice]:
    """Return the index of rows (axis 0) or columns (axis 1) start:stop of a 2-D array."""
    return (slice(start, stop), slice(None)) if axis == 0 else (slice(None), slice(start, stop))


def _central_difference(g: np.ndarray, axis: int) -> np.ndarray:
    """Return (g[i+1] - g[i-1]) / 2 along `axis`, borders mirrored as scipy's "reflect" mode does."""
    d = np.empty_like(g)
    d[_at(axis, 1, -1)] = g[_at(axis, 2, None)] - g[_at(axis, None, -2)]
    d[_at(axis, 0, 1)] = g[_at(axis, 1, 2)] - g[_at(axis, 0, 1)]
    d[_at(axis, -1, None)] = g[_at(axis, -1, None)] - g[_at(axis, -2, -1)]
    d *= 0.5
    return d


def _gradient_energy(g: np.ndarray) -> np.ndarray:
    """Return the squared gradient magnitude of `g` by central differences (units**2 / px**2)."""
    gy = _central_difference(g, 0)
    e = gy * gy
    gx = _central_difference(g, 1)
    e += gx * gx
    return e


def _second_difference(g: np.ndarray, axis: int) -> np.ndarray:
    """Return g[i+1] - 2 g[i] + g[i-1] along `axis`, borders mirrored as scipy's "reflect" mode does."""
    d = np.empty_like(g)
    d[_at(axis, 1, -1)] = g[_at(axis, 2, None)] + g[_at(axis, None, -2)] - 2 * g[_at(axis, 1, -1)]
    d[_at(axis, 0, 1)] = g[_at(axis, 1, 2)] - g[_at(axis, 0, 1)]
    d[_at(axis, -1, None)] = g[_at(axis, -2, -1)] - g[_at(axis, -1, None)]
    return d


def _laplacian_energy(g: np.ndarray) -> np.ndarray:
    """Return the squared 5-point Laplacian of `g` (units**2 / px**4)."""
    lap = _second_difference(g, 0)
    lap += _second_difference(g, 1)
    return lap * lap


@lru_cache(maxsize=None)
def _white_noise_energy(s: float, energy) -> float:
    """Return what `energy` of unit-variance white noise re-blurred by s px sums to."""
    reach = int(_TRUNCATE * max(s, 1.0) + 4)
    g = impulse_response(lambda d: ndi.gaussian_filter(d, s, truncate=_TRUNCATE) if s > 0 else d, reach)
    return float(energy(g).sum())


def laplacian_noise_energy(s: float) -> float:
    """Return the Laplacian energy that unit-variance white noise leaves after a re-blur by s px."""
    return _white_noise_energy(s, _laplacian_energy)


def noise_energy(s: float) -> float:
    """Return the gradient energy that unit-variance white noise leaves after a re-blur by s px."""
    return _white_noise_energy(s, _gradient_energy)


def _block_mean(a: np.ndarray, dtype=np.float64) -> np.ndarray:
    """Return the mean of each 4 x 4 block of `a` (in `dtype`); a partial last block is mirrored."""
    h, w = a.shape
    ph, pw = (-h) % BLOCK, (-w) % BLOCK
    if ph or pw:
        a = np.pad(a, ((0, ph), (0, pw)), mode="symmetric")
    hb, wb = a.shape[0] // BLOCK, a.shape[1] // BLOCK
    return a.reshape(hb, BLOCK, wb, BLOCK).mean(axis=(1, 3), dtype=dtype)


def _box2(a: np.ndarray, size: int) -> np.ndarray:
    """Return `a` smoothed by two passes of a `size`-wide box on each axis (a triangle window)."""
    for axis in (0, 1):
        for _ in range(2):
            a = ndi.uniform_filter1d(a, size, axis=axis, mode="reflect")
    return a


def _box_size(px: float) -> int:
    """Return the odd box width, in coarse pixels, of a window of about `px` full pixels."""
    return 2 * int(round(px / (2 * BLOCK))) + 1


def model_log_ratio(sigma: np.ndarray, gamma: float = GAMMA, t_deriv: float = T_DERIV,
                    scales: tuple[float, ...] = SCALES, base: float = 0.0) -> np.ndarray:
    """Return sum over re-blur scales of log(statistic at `base` / statistic at s) for a blur sigma (px)."""
    t = np.asarray(sigma, dtype=np.float64)[..., None] ** 2 + t_deriv + base**2
    s2 = np.asarray(scales) ** 2 - base**2
    return gamma * np.log((t + s2) / t).sum(axis=-1)


def invert_log_ratio(log_ratio: np.ndarray, gamma: float = GAMMA, t_deriv: float = T_DERIV,
                     scales: tuple[float, ...] = SCALES, base: float = 0.0) -> np.ndarray:
    """Return the sigma (px) whose model log ratio is `log_ratio`, from a table (0 .. 20 px)."""
    table = model_log_ratio(SIGMA_GRID, gamma, t_deriv, scales, base)  # decreasing in sigma
    return np.interp(log_ratio, table[::-1], SIGMA_GRID[::-1])


def halo(window: float = 16.0, fill: float = 32.0) -> int:
    """Return the context (px, a multiple of 4) each side of a tile that the estimate depends on."""
    full_res = int(_TRUNCATE * max(SCALES + BASE_SCALES) + 0.5) + 1  # re-blur plus derivative, in full pixels
    coarse = -(-full_res // BLOCK)  # blocks touched by the full-resolution stage
    coarse += 2 * (_box_size(window) // 2) + 2 * (_box_size(fill) // 2) + 1  # pooling, fill, interp
    return BLOCK * (coarse + 1)


def _upsample(coarse: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Return `coarse` (one value per 4 x 4 block) linearly interpolated to full `shape` (float32)."""
    out = np.asarray(coarse, dtype=np.float32)
    for axis, n in enumerate(shape):
        m = out.shape[axis]
        u = (np.arange(n) + 0.5) / BLOCK - 0.5
        j0 = np.clip(np.floor(u).astype(int), 0, m - 1)
        j1 = np.clip(j0 + 1, 0, m - 1)
        w = np.clip(u - j0, 0.0, 1.0).astype(np.float32)
        shape_w = [1, 1]
        shape_w[axis] = n
        w = w.reshape(shape_w)
        low = np.take(out, j0, axis=axis)
        out = low + (np.take(out, j1, axis=axis) - low) * w
    return out


def block_noise(img: np.ndarray, noise: float, shot_noise: float,
                dark_level: float) -> tuple[np.ndarray, np.ndarray]:
    """Return (energy floor, noise variance) per 4 x 4 block, image units squared.

    The variance is noise**2 + shot_noise * (block mean - dark_level). The floor, 1e-5 of the
    local intensity squared, is far below any real image's quantisation, and keeps round-off
    residues of exactly flat areas from counting; the variance never falls below it.
    """
    local_mean = _block_mean(img)
    floor = (RELATIVE_FLOOR * np.abs(local_mean)) ** 2 + 1e-30
    return floor, np.maximum(noise * noise + shot_noise * np.maximum(local_mean - dark_level, 0.0), floor)


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

    `blurred` may hold the float32 image already re-blurred by some of the scales (px -> array,
    as ``gaussian_filter(image, s, mode="reflect", truncate=4)`` gives): those are not computed again.

    Gradient: the self-weighted gradient energy falls as t**-GAMMA with the total blur t, GAMMA
    fitted on dead leaves; textures whose spectra fall otherwise read off by up to 25%.
    Curvature: under Gaussian blur the Laplacian energy is minus the t-derivative of the gradient
    energy, so for any power-law spectrum (edges, dead leaves, natural textures alike) their ratio
    is gamma / t, and its fall with re-blurring gives t with no exponent to know. It needs the
    Laplacian, which amplifies noise about 20 times, so its confidence drops first; read from a
    base already blurred by BASE px (re-blurs BASE_SCALES), the Laplacian's noise is some 100 times
    smaller, at the price of less sensitivity to small sigma.
    Energies are not pooled beyond the block: where blur varies within a window, a pooled
    energy is dominated by the sharper side (it has more energy) and reads the window sharp;
    the estimator averages this evidence linearly instead.
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
            g = ndi.gaussian_filter(img, s, mode="reflect", truncate=_TRUNCATE) if s > 0 else img
        e = _gradient_energy(g)
        p1 = _block_mean(e)
        q = q_unit * noise_energy(s)
        s1 = np.maximum(p1 - q, 0.0)  # E[e] = u + q
        q_lap = q_unit * laplacian_noise_energy(s)
        lap = np.maximum(_block_mean(_laplacian_energy(g)) - q_lap, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratios[s] = np.where(s1 > 0, lap / s1, 0.0)
        snr = s1 / q
        snr_lap = lap / q_lap
        snrs[s] = snr / (SNR_HALF + snr) * snr_lap / (SNR_HALF + snr_lap)
        if s in (0.0,) + SCALES:  # the gradient evidence's scales
            s2 = np.maximum(_block_mean(e * e) - 4.0 * q * p1 + 2.0 * q * q, 0.0)  # E[e**2] = u2 + 4 q u + 2 q**2
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


def _weighted_mean(values: np.ndarray, weight: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (weighted local mean of `values`, local mean of `weight`) over a triangle window."""
    den = _box2(weight, size)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(den > 0, _box2(weight * values, size) / den, 0.0)
    return mean, den


def _pooled_sigma(log_ratio: np.ndarray, conf: np.ndarray, window: float, gamma: float, t_deriv: float,
                  scales: tuple[float, ...] = SCALES, base: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Return (sigma px, pooled weight) of one kind of evidence, averaged over `window` px."""
    # squared confidences as weights let confident blocks outvote weak evidence
    pooled, weight = _weighted_mean(log_ratio, conf * conf, _box_size(window))
    return invert_log_ratio(pooled, gamma, t_deriv, scales, base), weight


def _fill(sigma: np.ndarray, weight: np.ndarray, fill: float) -> tuple[np.ndarray, np.ndarray]:
    """Return (sigma filled by normalised convolution, NaN out of reach of evidence; confidence)."""
    filled, den = _weighted_mean(sigma, weight, _box_size(fill))
    return np.where(den > MIN_WEIGHT, filled, np.nan), np.sqrt(np.clip(den, 0.0, 1.0))


def component_sigma(log_ratio: np.ndarray, conf: np.ndarray, window: float = 16.0, fill: float = 32.0,
                    sigma_max: float = 10.0, gamma: float = GAMMA, t_deriv: float = T_DERIV,
                    scales: tuple[float, ...] = SCALES, base: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Return (sigma in px, confidence) on the 4 px grid from one kind of evidence alone."""
    sigma, weight = _pooled_sigma(log_ratio, conf, window, gamma, t_deriv, scales, base)
    return _fill(np.minimum(sigma, sigma_max), weight, fill)


def sigma_from_evidence(ev: Evidence, window: float = 16.0, fill: float = 32.0,
                        sigma_max: float = 10.0) -> tuple[np.ndarray, np.ndarray]:
    """Return (sigma in px, confidence) on the 4 px grid: curvature evidence where it is strong.

    Each kind of evidence is pooled and turned into sigma by its own calibrated model. The
    curvature evidence from the unblurred image takes the share its pooled weight gives it; the
    one from the pre-blurred base, of what is left, its share; the robust gradient ratio the rest.
    Clean regions get the exponent-free estimate, noisy ones the base's, the noisiest the gradient's.
    """
    return blend(readings(ev, window), fill, sigma_max)


def readings(ev: Evidence, window: float = 16.0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Return (sigma in px, pooled weight) on the 4 px grid of the gradient, curvature and base-curvature evidence, in order."""
    return [_pooled_sigma(ev.gradient, ev.gradient_conf, window, GAMMA, T_DERIV),
            _pooled_sigma(ev.curvature, ev.curvature_conf, window, CURV_GAMMA, CURV_T),
            _pooled_sigma(ev.base_curvature, ev.base_curvature_conf, window, BASE_GAMMA, BASE_T, BASE_SCALES, BASE)]


def blend(pooled: list[tuple[np.ndarray, np.ndarray]], fill: float = 32.0,
          sigma_max: float = 10.0) -> tuple[np.ndarray, np.ndarray]:
    """Return (sigma in px, confidence) on the 4 px grid from the three readings, as ``sigma_from_evidence`` describes."""
    (sigma_g, weight_g), (sigma_c, weight_c), (sigma_b, weight_b) = pooled
    share_c = np.clip(weight_c, 0.0, 1.0)
    share_b = np.clip(weight_b, 0.0, 1.0) * (1 - share_c)
    sigma = share_c * sigma_c + share_b * sigma_b + (1 - share_c - share_b) * sigma_g
    return _fill(np.minimum(sigma, sigma_max), np.maximum(np.maximum(weight_g, weight_c), weight_b), fill)


def gradient_ratio(image: np.ndarray, *, window: float = 16.0, fill: float = 32.0,
                   noise: float = 0.0, shot_noise: float = 0.0, dark_level: float = 0.0,
                   sigma_max: float = 10.0) -> tuple[np.ndarray, np.ndarray]:
    """Return (sigma map in px, confidence in [0, 1]) for a 2-D float image tile.

    `window` (px) is the pooling window, `fill` (px) the reach of the confidence-weighted fill,
    the noise variance is noise**2 + shot_noise * (local mean - dark_level) in image units, `sigma_max`
    (px) the largest blur reported. Pixels with no texture within reach are NaN, confidence 0.
    The top-left corner of `image` must lie on the global 4 px grid (the engine sees to it).
    """
    sigma, conf = sigma_from_evidence(evidence(image, noise, shot_noise, dark_level), window, fill, sigma_max)
    shape = np.shape(image)
    return _upsample(sigma, shape), _upsample(conf, shape)
