"""The re-blur error curve (seed 000, answer 4): per tile, error against re-blur radius; its knee."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from ._grid import expand_cells

STEP = 4  # px; tiles are centred on this grid (the engine keeps chunk origins on it)
_TRUNCATE = 4.0


def halo(tile: int = 64, radius_max: int = 20) -> int:
    """Return the context (px) each side of a chunk: the largest re-blur's reach plus half a tile."""
    reach = int(_TRUNCATE * radius_max + 0.5) + tile // 2 + STEP
    return STEP * -(-reach // STEP)


def tile_variance(img: np.ndarray, tile: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (variance, image units**2; mean, image units) of the tile centred on each STEP px grid point."""
    mean = ndi.uniform_filter(img, tile, mode="reflect")
    var = ndi.uniform_filter((img - mean) ** 2, tile, mode="reflect")
    return var[::STEP, ::STEP], mean[::STEP, ::STEP]


def error_curves(image: np.ndarray, tile: int = 64, radius_max: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Return (RMS error over the tile's std against re-blurs of 1 .. radius_max px, dimensionless; tile variance).

    Shape (radius_max, rows, columns) on the STEP px grid: tile centres at multiples of STEP.
    The re-blur is a Gaussian of the radius as sigma over the whole tile's context, so tile borders
    do not count as edges. Flat tiles give NaN.
    """
    img = np.asarray(image, dtype=np.float64)
    var, mean = tile_variance(img, tile)
    textured = var > (1e-6 * np.abs(mean)) ** 2 + 1e-300
    curves = np.empty((radius_max,) + var.shape)
    for k, r in enumerate(range(1, radius_max + 1)):
        diff = img - ndi.gaussian_filter(img, float(r), mode="reflect", truncate=_TRUNCATE)
        curves[k] = ndi.uniform_filter(diff * diff, tile, mode="reflect")[::STEP, ::STEP]
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


def reblur_curve(image: np.ndarray, *, tile: int = 64, radius_max: int = 20,
                 noise: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Return (knee of the re-blur error curve, px of re-blur radius, higher is blurrier; confidence in [0, 1]).

    A relative score, not sigma: the knee grows with the blur (about 2 px of knee per px of sigma
    on dead leaves) but also with the texture's own scale. Tiles of `tile` px slide on a 4 px grid;
    each pixel takes the knee of the tile centred on its 4 x 4 cell. NaN on flat tiles. Confidence is
    var / (var + noise**2) of the tile. The top-left corner must lie on the 4 px grid.
    """
    img = np.asarray(image, dtype=np.float64)
    curves, var = error_curves(img, tile, radius_max)
    score = knee(curves)
    conf = var / (var + noise**2 + 1e-300)
    return expand_cells(score, STEP, img.shape), expand_cells(conf, STEP, img.shape)
