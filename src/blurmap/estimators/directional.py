"""Directional blur: per pixel, the major and minor sigma of an elliptical Gaussian and the angle of its major axis.

A Gaussian of covariance C blurs the image, along the direction phi, by the variance
sigma_n(phi)**2 = a + r cos(2 (phi - theta)), with a = (major**2 + minor**2) / 2,
r = (major**2 - minor**2) / 2 and theta the major axis. The image is filtered into eight bands
of frequency directions (DIRECTIONS, 22.5 degrees apart; each band's response cos**ANGULAR of a
frequency's angle to its direction, weighted as a gradient and as a Laplacian, made by compact
kernels), each at two re-blurs (EVIDENCE_SCALES); how much a band's curvature (Laplacian over
gradient energy, 1 / (sigma_n**2 + s**2) for any power-law spectrum) falls from one re-blur to
the other gives the blur along its direction whatever the texture's spectrum there (read from
CALIBRATION, measured on round blur of the development textures). Per 4 px block, a, r cos 2
theta and r sin 2 theta are fitted to the eight readings by weighted least squares (weights:
each band's evidence over its noise, and its share of the block's energy), with a ridge on the
anisotropy (ISOTROPY_PRIOR) so that a texture offering one direction only reads round; the
readings overstate r by MODULATION. The shape so found (major over minor, the angle) is scaled
by the round blur the ``learned`` estimator reads, which on elliptical blur is close to the
minor sigma (ROUND_READS). ISOTROPY_PRIOR, MODULATION and SHARE_HALF were chosen on the
directional benchmark's development seeds (``benchmarks/directional.py --seeds dev``); its
evaluation seeds give the figures reported.

Angles are degrees in [0, 180): 0 along image rows (to the right), counter-clockwise as
displayed. Where the blur is round (major over minor below ROUND_RATIO) the angle is unknown (NaN).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache

import numpy as np

from ..registry import Estimator, Param, register
from ._energy import block_noise
from ._grid import BLOCK, block_mean, box2, box_size, upsample
from ._noise_params import NOISE_MODEL, prepare_noise_model
from .gradient_ratio import SNR_HALF
from .learned import halo as learned_halo
from .learned import learned

__all__ = ["directional", "halo", "ESTIMATOR"]

DIRECTIONS = tuple(22.5 * k for k in range(8))  # degrees; the directions sigma_n is read along
ANGULAR = 8  # a direction's band: cos**ANGULAR of the frequency's angle to it (energy: twice that power)
KERNEL_RADIUS = 24  # px; the directional kernels' reach
KERNEL_TAPER = 10.0  # px; the Gaussian that cuts them there
MODULATION = 1.2  # the directions' readings overstate r this many times (directional benchmark, dev seeds)
ISOTROPY_PRIOR = 0.3  # ridge on the anisotropy, relative to the summed weight of the readings
SHARE_HALF = 0.1  # a direction with this share of the block's strongest direction's energy counts half
MIN_CONFIDENCE = 0.05  # a block's best direction below this: nothing known there
ROUND_READS = 0.75  # a round estimator reads elliptical blur as minor * sqrt(1 + ROUND_READS (1 - minor / major))
MAX_SHARE = 0.9  # r at most this share of a: the minor sigma at least a third of the round one
ROUND_RATIO = 1.15  # major / minor below this is round: the angle is unknown there
EVIDENCE_SCALES = (1.0, 3.0)  # px; a base blurred by 1 px (far less noise) and its re-blur
# (sigma px, the log of a direction's curvature fall at that round blur): benchmarks/calibrate_directional.py
CALIBRATION = ((0.2, 2.4892), (0.3, 2.4832), (0.4, 2.4282), (0.5, 2.3263), (0.6, 2.2241), (0.7, 2.1310),
               (0.85, 1.9890), (1, 1.8477), (1.2, 1.6592), (1.4, 1.4847), (1.7, 1.2389), (2, 1.0302), (2.4, 0.7980),
               (2.8, 0.6181), (3.4, 0.4228), (4, 0.3033), (4.8, 0.2068), (5.6, 0.1535), (6.8, 0.1176), (8, 0.0999),
               (10, 0.0860))


def halo(params: Mapping) -> int:
    """Return the context (px, a multiple of 4) each side of a tile that the maps depend on.

    Parameters
    ----------
    params : mapping
        Checked parameters; ``pooling_width`` (px) sets the bands' reach.

    Returns
    -------
    int
        px: the directional kernels, pooling and interpolation on the 4 px grid, or the ``learned``
        estimator's reach, whichever is larger.

    Examples
    --------
    >>> halo({"pooling_width": 32.0})
    244
    """
    full_res = KERNEL_RADIUS + 1
    coarse = -(-full_res // BLOCK)
    coarse += 2 * (box_size(params["pooling_width"]) // 2) + 1
    return max(BLOCK * (coarse + 1), learned_halo())


@cache
def direction_kernel(direction: float, s: float, order: int = 1) -> np.ndarray:
    """Return the band kernel of one direction (degrees) and re-blur `s` (px), weighted as a derivative of `order`.

    Its Fourier response is cos(psi - direction)**ANGULAR x (2 pi rho)**order x
    exp(-2 pi**2 s**2 rho**2), psi the frequency's angle as displayed: a band of directions around
    `direction`, weighted as a gradient (order 1) or a Laplacian (order 2), of the image re-blurred
    by s. Made on a fine frequency grid, cut to a (2 KERNEL_RADIUS + 1) px square and tapered by
    a Gaussian of KERNEL_TAPER px, so it reaches KERNEL_RADIUS px and no further.
    """
    size = 4 * (2 * KERNEL_RADIUS + 1)
    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.fftfreq(size)[None, :]
    rho = np.hypot(fy, fx)
    psi = np.arctan2(-fy, fx)
    response = np.cos(psi - np.deg2rad(direction)) ** ANGULAR * np.exp(-2 * np.pi**2 * s * s * rho * rho) * (2 * np.pi * rho) ** order
    kernel = np.fft.fftshift(np.real(np.fft.ifft2(response)))
    c = size // 2
    kernel = kernel[c - KERNEL_RADIUS:c + KERNEL_RADIUS + 1, c - KERNEL_RADIUS:c + KERNEL_RADIUS + 1]
    yy, xx = np.mgrid[-KERNEL_RADIUS:KERNEL_RADIUS + 1, -KERNEL_RADIUS:KERNEL_RADIUS + 1]
    return (kernel * np.exp(-0.5 * (yy * yy + xx * xx) / KERNEL_TAPER**2)).astype(np.float32)


def _band_filter(padded: np.ndarray):
    """Return f(kernel): `padded` (reflected by KERNEL_RADIUS px each side) correlated with a direction kernel, cut
    back to the image; the padded image's Fourier transform is taken once for all the kernels."""
    from scipy import fft

    n = 2 * KERNEL_RADIUS + 1
    size = [fft.next_fast_len(m + n - 1, real=True) for m in padded.shape]
    spectrum = fft.rfft2(padded, size)
    h, w = (m - n + 1 for m in padded.shape)

    def correlate(kernel: np.ndarray) -> np.ndarray:
        full = fft.irfft2(spectrum * fft.rfft2(kernel[::-1, ::-1], size), size)
        return full[n - 1:n - 1 + h, n - 1:n - 1 + w]

    return correlate


def direction_energies(image: np.ndarray, noise: float, shot_noise: float, dark_level: float,
                       pooling_width: float) -> tuple[np.ndarray, np.ndarray]:
    """Return per block each direction's curvature fall between the EVIDENCE_SCALES, and its confidence.

    A band's curvature is its Laplacian-weighted energy over its gradient-weighted energy (noise
    removed, pooled): for any power-law spectrum it is proportional to 1 / (sigma_n**2 + s**2),
    so its fall from one re-blur s to the other depends on the blur along the direction and not
    on how the texture's spectrum falls there (lines and fibres have spectra unlike dead leaves').
    Returns (the natural log of that fall, confidence), each (..., directions): the confidence
    is the weakest energy's evidence over its noise, times the direction's share of the block's
    gradient energy.
    """
    img = np.asarray(image, dtype=np.float32)
    _, q_unit = block_noise(img, noise, shot_noise, dark_level)
    band = _band_filter(np.pad(img, KERNEL_RADIUS, mode="symmetric"))  # scipy's "reflect", as every filter here
    size = box_size(pooling_width)
    noise_unit = box2(q_unit, size)  # the noise variance pooled as the energies are; each band scales it

    def energy(direction: float, s: float, order: int) -> tuple[np.ndarray, np.ndarray]:
        kernel = direction_kernel(direction, s, order)
        gain = float((kernel * kernel).sum())  # a band's energy of unit white noise
        pooled = box2(np.maximum(block_mean(band(kernel) ** 2) - q_unit * gain, 0.0), size)
        return pooled, pooled / np.maximum(noise_unit * gain, 1e-30)

    falls, snrs, gradient = [], [], []
    (s1, s2) = EVIDENCE_SCALES
    for d in DIRECTIONS:
        (g1, _), (l1, _), (g2, _), (l2, snr) = (energy(d, s, order) for s in (s1, s2) for order in (1, 2))
        with np.errstate(divide="ignore", invalid="ignore"):
            falls.append(np.log((l1 * g2) / (g1 * l2)))
        snrs.append(snr)  # the Laplacian band at the larger re-blur holds the least evidence
        gradient.append(g1)
    fall, snr, gradient = (np.stack(v, axis=-1) for v in (falls, snrs, gradient))
    conf = snr / (SNR_HALF + snr)
    with np.errstate(divide="ignore", invalid="ignore"):  # a direction the texture hardly holds says little
        share = np.nan_to_num(gradient / gradient.max(axis=-1, keepdims=True))
    return fall, conf * share / (SHARE_HALF + share) * (1 + SHARE_HALF)


def direction_variances(fall: np.ndarray) -> np.ndarray:
    """Return sigma_n**2 (px**2) along each direction from its curvature's fall with re-blurring (the CALIBRATION table).

    The fall (a natural log) decreases as the blur along the direction grows: log((sigma**2 +
    s2**2) / (sigma**2 + s1**2)) in theory; the table holds it as measured on round blur of
    textures of the development seeds (the kernels' own blur and taper included), read backwards
    here. No evidence (0 / 0) reads as the table's largest blur.
    """
    table = np.asarray(CALIBRATION)  # (sigma px, log fall), falling as sigma grows
    sigma = np.interp(np.nan_to_num(fall, nan=table[-1, 1]), table[::-1, 1], table[::-1, 0])
    return sigma**2


def fit_ellipse(variances: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (a, b, c) per block: sigma_n(phi)**2 = a + (b cos 2 phi + c sin 2 phi) / MODULATION, fitted to the readings.

    Weighted least squares over DIRECTIONS ((..., directions) arrays) with a ridge ISOTROPY_PRIOR x
    (summed weight) on b and c, so that readings in one direction alone give a round blur;
    the readings overstate the modulation MODULATION times.
    """
    phi = np.deg2rad(np.asarray(DIRECTIONS))
    basis = np.stack([np.ones_like(phi), np.cos(2 * phi), np.sin(2 * phi)])  # (3, K)
    normal = np.einsum("...k,ik,jk->...ij", weights, basis, basis)
    total = weights.sum(axis=-1)
    normal[..., 1, 1] += ISOTROPY_PRIOR * total
    normal[..., 2, 2] += ISOTROPY_PRIOR * total
    normal[total <= 0] = np.eye(3)
    rhs = np.einsum("...k,ik,...k->...i", weights, basis, variances)
    a, b, c = np.moveaxis(np.linalg.solve(normal, rhs[..., None])[..., 0], -1, 0)
    return a, b / MODULATION, c / MODULATION


def directional(image: np.ndarray, *, pooling_width: float, noise: float, shot_noise: float, dark_level: float,
                sigma_max: float) -> tuple[np.ndarray, ...]:
    """Return the round-equivalent sigma, major and minor sigma (px), the major axis's angle (degrees) and the confidence.

    The defaults of every parameter live in the registry record ``ESTIMATOR``; call this through
    ``blurmap.estimate(image, "directional", return_outputs=True)``.

    Parameters
    ----------
    image : ndarray
        2-D float32 tile; its top-left corner on the global 4 px grid.
    pooling_width : float
        px; width of the window each direction's evidence is averaged over.
    noise, shot_noise, dark_level : float
        The noise variance noise**2 + shot_noise * (local mean - dark_level), image units.
    sigma_max : float
        px; the largest blur reported.

    Returns
    -------
    sigma : ndarray
        px; sqrt((major**2 + minor**2) / 2), the round Gaussian of the same second moment.
    sigma_major, sigma_minor : ndarray
        px; NaN where no texture is within reach.
    angle_deg : ndarray
        Degrees in [0, 180), 0 along rows, counter-clockwise as displayed; NaN where the blur is
        round (major / minor below ROUND_RATIO) or unknown.
    confidence : ndarray
        In [0, 1] (the round blur's, from ``learned``).

    References
    ----------
    .. [1] S. Zhuo and T. Sim, "Defocus map estimation from a single image", Pattern
       Recognition 44(9), 1852-1858, 2011 (the re-blur ratio, here per direction band).
    .. [2] W. T. Freeman and E. H. Adelson, "The design and use of steerable filters", IEEE
       Trans. PAMI 13(9), 891-906, 1991 (oriented bands; the doubled-angle fit).

    Examples
    --------
    >>> import numpy as np, blurmap
    >>> from blurmap import synthetic
    >>> sharp = synthetic.dead_leaves((192, 192), seed=1)
    >>> image = blurmap.blur_elliptical(sharp, 3.0, 1.0, 30.0)
    >>> maps = blurmap.estimate(image, "directional", return_outputs=True, noise=0, shot_noise=0)
    >>> sorted(maps)
    ['angle_deg', 'confidence', 'sigma', 'sigma_major', 'sigma_minor']
    >>> bool(np.nanmedian(maps["sigma_major"]) > 1.2 * np.nanmedian(maps["sigma_minor"]))
    True
    >>> bool(abs(np.nanmedian(maps["angle_deg"]) - 30.0) < 5.0)  # degrees, counter-clockwise from the rows
    True
    """
    round_sigma, confidence = learned(image, noise=noise, shot_noise=shot_noise, dark_level=dark_level)
    fall, weights = direction_energies(image, noise, shot_noise, dark_level, pooling_width)
    a, b, c = fit_ellipse(direction_variances(fall), weights * weights)
    shape = np.shape(image)
    known = (weights.max(axis=-1) > MIN_CONFIDENCE) & (a > 0)
    with np.errstate(divide="ignore", invalid="ignore"):  # the anisotropy r / a as a doubled-angle vector
        cos2, sin2 = (upsample(np.where(known, v / a, 0.0), shape) for v in (b, c))
    share = np.minimum(np.hypot(cos2, sin2), MAX_SHARE)  # 0 round, towards 1 a line
    ratio = np.sqrt((1 + share) / (1 - share))  # major / minor
    minor = round_sigma / np.sqrt(1 + ROUND_READS * (1 - 1 / ratio))
    major = np.minimum(ratio * minor, sigma_max)
    minor = np.minimum(minor, major)
    angle = np.mod(np.rad2deg(0.5 * np.arctan2(sin2, cos2)), 180.0)
    with np.errstate(invalid="ignore"):
        angle = np.where(np.isfinite(major) & (ratio >= ROUND_RATIO), angle, np.nan).astype(np.float32)
    sigma = np.sqrt((major**2 + minor**2) / 2)
    return sigma, major, minor, angle, confidence


ESTIMATOR = register(Estimator(
    name="directional",
    title="Directional re-blur ratio (astigmatism)",
    func=directional,
    units="px",
    params=(
        Param("pooling_width", 32.0, 8.0, 128.0, "px", "width of each direction's pooling window; larger is steadier"),
        *NOISE_MODEL,
        Param("sigma_max", 10.0, 1.0, 20.0, "px", "largest blur reported"),
    ),
    halo_formula=halo,
    align=BLOCK,
    description=("Elliptical blur per pixel: how eight bands of frequency directions fall with re-blurring gives "
                 "the blur along each, fitted by the ellipse's doubled-angle harmonics and scaled by the learned "
                 "estimator's round blur; gives the major and minor sigma (px), the major axis's angle (degrees, "
                 "0 along rows, counter-clockwise) and the round-equivalent sigma."),
    limits=("on the directional benchmark's evaluation seeds the elongation is under-read (major sigma 0.46-0.64 px "
            "RMSE, minor 0.25-0.32 px, angle within 4-7 degrees); texture oriented one way (strokes, fibres) reads "
            "1.16 times elongated along it"),
    prepare=prepare_noise_model,
    outputs=("sigma", "sigma_major", "sigma_minor", "angle_deg", "confidence"),
))
