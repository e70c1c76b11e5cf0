"""The re-blur error curve (seed 000, answer 4): per patch, error against re-blur radius; its knee."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy import ndimage as ndi

from ..registry import Estimator, Param, register
from ._grid import FLAT_VARIANCE, expand_cells
from ._noise_params import WHITE_NOISE, prepare_white_noise

__all__ = ["reblur_curve", "halo", "ESTIMATOR"]

STEP = 4  # px; patches are centred on this grid (the engine keeps chunk origins on it)
_TRUNCATE = 4.0


def halo(params: Mapping) -> int:
    """Return the context (px) each side of a chunk: the largest re-blur's reach plus half a patch.

    Parameters
    ----------
    params : mapping
        Checked parameters; ``patch_size`` and ``reblur_max`` (px) set the reach.

    Returns
    -------
    int
        px.

    Examples
    --------
    >>> halo({"patch_size": 64, "reblur_max": 20})
    116
    """
    reach = int(_TRUNCATE * params["reblur_max"] + 0.5) + params["patch_size"] // 2 + STEP
    return STEP * -(-reach // STEP)


def patch_variance(img: np.ndarray, patch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (variance, image units**2; mean, image units) of the patch centred on each STEP px grid point."""
    mean = ndi.uniform_filter(img, patch_size, mode="reflect")
    var = np.maximum(ndi.uniform_filter((img - mean) ** 2, patch_size, mode="reflect"), 0.0)
    return var[::STEP, ::STEP], mean[::STEP, ::STEP]


def error_curves(image: np.ndarray, patch_size: int, reblur_max: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (RMS error over the patch's std against re-blurs of 1 .. reblur_max px, dimensionless; patch variance).

    Shape (reblur_max, rows, columns) on the STEP px grid: patch centres at multiples of STEP.
    The re-blur is a Gaussian of the radius as sigma over the whole patch's context, so patch borders
    do not count as edges. Flat patches give NaN.
    """
    img = np.asarray(image, dtype=np.float64)
    var, mean = patch_variance(img, patch_size)
    textured = var > (1e-6 * np.abs(mean)) ** 2 + FLAT_VARIANCE
    curves = np.empty((reblur_max,) + var.shape)
    for k, r in enumerate(range(1, reblur_max + 1)):
        diff = img - ndi.gaussian_filter(img, float(r), mode="reflect", truncate=_TRUNCATE)
        # a running sum of squares can come out a hair below 0 where they are all 0: that is 0, not NaN
        curves[k] = np.maximum(ndi.uniform_filter(diff * diff, patch_size, mode="reflect")[::STEP, ::STEP], 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(textured, np.sqrt(curves / var), np.nan), var


def knee(curves: np.ndarray) -> np.ndarray:
    """Return the knee (px of re-blur radius) of each curve: where the best two-line fit's lines cross.

    `curves` is (radii 1 .. K, ...). For each split b (3 .. K-2 points on the left) a line is fitted
    to radii 1..b+1 and another to b+1..K by least squares; the split with the smallest total
    squared residual wins, and its lines' crossing, clipped to [1, K], is the knee.
    """
    k = curves.shape[0]
    x = np.arange(1.0, k + 1.0)
    y = curves.reshape(k, -1)
    best_sse = np.full(y.shape[1], np.inf)
    best_knee = np.full(y.shape[1], np.nan)
    for b in range(2, k - 2):
        left, right = slice(0, b + 1), slice(b, k)
        p1 = _line(x[left], y[left])
        p2 = _line(x[right], y[right])
        sse = _sse(x[left], y[left], p1) + _sse(x[right], y[right], p2)
        with np.errstate(divide="ignore", invalid="ignore"):
            cross = (p2[1] - p1[1]) / (p1[0] - p2[0])
        better = sse < best_sse
        best_sse[better] = sse[better]
        best_knee[better] = cross[better]
    best_knee[~np.isfinite(best_sse)] = np.nan
    return np.clip(best_knee, 1.0, float(k)).reshape(curves.shape[1:])


def _line(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (slope, intercept) of the least-squares line through each column of y against x."""
    xm = x.mean()
    dx = x - xm
    slope = (dx[:, None] * (y - y.mean(axis=0))).sum(axis=0) / (dx * dx).sum()
    return slope, y.mean(axis=0) - slope * xm


def _sse(x: np.ndarray, y: np.ndarray, line: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Return the sum of squared residuals of each column of y about its line."""
    return ((line[0] * x[:, None] + line[1] - y) ** 2).sum(axis=0)


def reblur_curve(image: np.ndarray, *, patch_size: int, reblur_max: int,
                 noise: float) -> tuple[np.ndarray, np.ndarray]:
    """Return the knee of the re-blur error curve (px of re-blur radius, higher is blurrier) and its confidence.

    A relative score, not sigma: the knee grows with the blur (about 2 px of knee per px of sigma
    on dead leaves) but also with the texture's own scale. Patches of `patch_size` px slide on a
    4 px grid; each pixel takes the knee of the patch centred on its 4 x 4 cell. Call it through
    ``blurmap.estimate(image, "reblur_curve")``.

    Parameters
    ----------
    image : ndarray
        2-D float32 tile; its top-left corner on the 4 px grid.
    patch_size : int
        px; side of the patch each curve is measured over.
    reblur_max : int
        px; the largest re-blur radius of the curve, which runs from 1 px.
    noise : float
        Noise std, image units.

    Returns
    -------
    score : ndarray
        float32, px of re-blur radius, relative; NaN on flat patches.
    confidence : ndarray
        float32 in [0, 1]: var / (var + noise**2) of the patch.

    Examples
    --------
    >>> import blurmap
    >>> from blurmap import synthetic
    >>> sharp = synthetic.dead_leaves((160, 160), seed=1)
    >>> a = blurmap.estimate(blurmap.blur(sharp, np.full(sharp.shape, 1.0)), "reblur_curve", noise=0)
    >>> b = blurmap.estimate(blurmap.blur(sharp, np.full(sharp.shape, 3.0)), "reblur_curve", noise=0)
    >>> bool(np.nanmedian(a) < np.nanmedian(b))
    True
    """
    img = np.asarray(image, dtype=np.float64)
    curves, var = error_curves(img, patch_size, reblur_max)
    score = knee(curves)
    conf = var / (var + noise**2 + 1e-300)
    return expand_cells(score, STEP, img.shape), expand_cells(conf, STEP, img.shape)


ESTIMATOR = register(Estimator(
    name="reblur_curve",
    title="Re-blur error curve knee",
    func=reblur_curve,
    units="relative",
    params=(
        Param("patch_size", 64, 16, 256, "px", "side of the patch each curve is measured over; patches slide "
              "on a 4 px grid", kind=int),
        Param("reblur_max", 20, 6, 40, "px", "largest re-blur radius of the curve (from 1 px)", kind=int),
        WHITE_NOISE,
    ),
    halo_formula=halo,
    align=STEP,
    description=("Seed 000's answer 4: per patch, the RMS error between the patch and its re-blurs of radius "
                 "1 .. 20 px; the knee where the best two-line fit's lines cross. Higher is blurrier, in px "
                 "of re-blur radius; a relative score (it also grows with the texture's own scale)."),
    limits=('A relative score: |Spearman| with sigma 0.40-0.77 on the stress benchmark, lowest under brightness '
            'ramps (0.40) and shot noise (0.52); it ranks blur within one texture, never across textures or '
            'brightness: use a px estimator to compare regions.'),
    prepare=prepare_white_noise,
))
