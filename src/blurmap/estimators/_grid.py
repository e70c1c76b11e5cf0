"""The coarse grids estimators pool on: 4 px blocks, box windows over them, and interpolation back.

Shared by every estimator that works on blocks (private to ``blurmap.estimators``). Block
origins lie on the image's top-left corner; the engine keeps chunk origins on the same grid.
"""

from __future__ import annotations

import numpy as np

from ._filters import block_sums, box2, interpolate  # box2: the triangle window every block estimator pools with

BLOCK = 4  # px; the coarse grid's step, also the alignment the engine keeps for these estimators
# a local variance below this is flat: the engine normalises intensities to about 0 .. 1, so this is a
# std of 1e-4 of the image's range (under an 8-bit step), where ratios to the variance still keep
# the running sums' rounding (about 1e-16) far below 1e-4 of their value
FLAT_VARIANCE = 1e-8


def block_mean(a: np.ndarray, dtype=np.float64) -> np.ndarray:
    """Return the mean of each BLOCK x BLOCK block of `a` (summed in float64, returned as `dtype`); a partial last block is mirrored."""
    return (block_sums(a, BLOCK) / (BLOCK * BLOCK)).astype(dtype, copy=False)


def box_size(px: float) -> int:
    """Return the odd box width, in blocks, of a window about `px` full pixels wide."""
    return 2 * int(round(px / (2 * BLOCK))) + 1


WEIGHT_EPS = 1e-14  # mean weights (confidences squared, in [0, 1]) below this, 100 times the residues, are none


def weighted_mean(values: np.ndarray, weight: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (weighted local mean of `values`, local mean of `weight`) over a `size`-block triangle window.

    The box filters keep running sums, whose rounding leaves residues of about 1e-16 where the
    weight is truly 0; dividing by those would read noise as a mean (and differ from tile to tile),
    so a mean weight below WEIGHT_EPS counts as none: mean 0, weight 0.
    """
    den = box2(weight, size)
    some = den > WEIGHT_EPS
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(some, box2(weight * values, size) / den, 0.0)
    return mean, np.where(some, den, 0.0)


def _samples(pixels: range, m: int, first: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return, for each px along an axis, the two of its m blocks whose centres it lies between (counted from block
    `first`) and the second's weight."""
    u = (np.arange(pixels.start, pixels.stop) + 0.5) / BLOCK - 0.5
    j0 = np.clip(np.floor(u).astype(int), 0, m - 1)
    return j0 - first, np.clip(j0 + 1, 0, m - 1) - first, np.clip(u - j0, 0.0, 1.0)


def upsample(coarse: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Return `coarse` (one value per block) linearly interpolated to full `shape` (float32), block centres kept."""
    m_rows, m_columns = np.shape(coarse)
    return interpolate(coarse, _samples(range(shape[0]), m_rows), _samples(range(shape[1]), m_columns))


def cells_for(pixels: slice, cells: int, reach: int = 0) -> slice:
    """Return the blocks, of a grid of `cells`, that ``upsample`` reads for the px `pixels` (start and stop given), and
    `reach` blocks more each side, clipped to the grid."""
    return slice(max(pixels.start // BLOCK - 1 - reach, 0), min(-(-pixels.stop // BLOCK) + 1 + reach, cells))


def upsample_part(part: np.ndarray, cells: tuple[slice, slice], pixels: tuple[slice, slice],
                  grid: tuple[int, int]) -> np.ndarray:
    """Return ``upsample(coarse, shape)[pixels]`` from ``part = coarse[cells]`` alone (`grid`: coarse's shape), the
    same numbers; `cells` must hold the blocks those px lean on (``cells_for`` gives them)."""
    rows, columns = (_samples(range(p.start, p.stop), m, c.start) for p, m, c in zip(pixels, grid, cells))
    return interpolate(part, rows, columns)


def expand_cells(coarse: np.ndarray, cell: int, shape: tuple[int, int]) -> np.ndarray:
    """Return `coarse` (one value per `cell` x `cell` px from the top-left corner) repeated to `shape`, float32."""
    out = np.repeat(np.repeat(np.asarray(coarse, dtype=np.float32), cell, axis=0), cell, axis=1)
    return out[:shape[0], :shape[1]]
