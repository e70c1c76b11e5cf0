"""Local energies of finite differences, and what white noise adds to them (private to ``blurmap.estimators``)."""

from __future__ import annotations

from functools import cache

import numpy as np
from scipy import ndimage as ndi

from ..noise import impulse_response
from ._filters import TRUNCATE
from ._grid import block_mean

RELATIVE_FLOOR = 1e-5  # noise floor relative to the local mean intensity


def _at(axis: int, start: int | None, stop: int | None) -> tuple[slice, slice]:
    """Return the index of rows (axis 0) or columns (axis 1) start:stop of a 2-D array."""
    return (slice(start, stop), slice(None)) if axis == 0 else (slice(None), slice(start, stop))


def central_difference(g: np.ndarray, axis: int) -> np.ndarray:
    """Return (g[i+1] - g[i-1]) / 2 along `axis`, borders mirrored as scipy's "reflect" mode does."""
    d = np.empty_like(g)
    d[_at(axis, 1, -1)] = g[_at(axis, 2, None)] - g[_at(axis, None, -2)]
    d[_at(axis, 0, 1)] = g[_at(axis, 1, 2)] - g[_at(axis, 0, 1)]
    d[_at(axis, -1, None)] = g[_at(axis, -1, None)] - g[_at(axis, -2, -1)]
    d *= 0.5
    return d


def gradient_energy(g: np.ndarray) -> np.ndarray:
    """Return the squared gradient magnitude of `g` by central differences (units**2 / px**2)."""
    gy = central_difference(g, 0)
    e = gy * gy
    gx = central_difference(g, 1)
    e += gx * gx
    return e


def second_difference(g: np.ndarray, axis: int) -> np.ndarray:
    """Return g[i+1] - 2 g[i] + g[i-1] along `axis`, borders mirrored as scipy's "reflect" mode does."""
    d = np.empty_like(g)
    d[_at(axis, 1, -1)] = g[_at(axis, 2, None)] + g[_at(axis, None, -2)] - 2 * g[_at(axis, 1, -1)]
    d[_at(axis, 0, 1)] = g[_at(axis, 1, 2)] - g[_at(axis, 0, 1)]
    d[_at(axis, -1, None)] = g[_at(axis, -2, -1)] - g[_at(axis, -1, None)]
    return d


def laplacian_energy(g: np.ndarray) -> np.ndarray:
    """Return the squared 5-point Laplacian of `g` (units**2 / px**4)."""
    lap = second_difference(g, 0)
    lap += second_difference(g, 1)
    return lap * lap


@cache
def _white_noise_energy(s: float, energy) -> float:
    """Return what `energy` of unit-variance white noise re-blurred by s px sums to."""
    reach = int(TRUNCATE * max(s, 1.0) + 4)
    g = impulse_response(lambda d: ndi.gaussian_filter(d, s, truncate=TRUNCATE) if s > 0 else d, reach)
    return float(energy(g).sum())


def laplacian_noise_energy(s: float) -> float:
    """Return the Laplacian energy that unit-variance white noise leaves after a re-blur by s px."""
    return _white_noise_energy(s, laplacian_energy)


def noise_energy(s: float) -> float:
    """Return the gradient energy that unit-variance white noise leaves after a re-blur by s px."""
    return _white_noise_energy(s, gradient_energy)


def block_noise(img: np.ndarray, noise: float, shot_noise: float,
                dark_level: float) -> tuple[np.ndarray, np.ndarray]:
    """Return (energy floor, noise variance) per block, image units squared.

    The variance is noise**2 + shot_noise * (block mean - dark_level). The floor, 1e-5 of the
    local intensity squared, is far below any real image's quantisation, and keeps round-off
    residues of exactly flat areas from counting; the variance never falls below it.
    """
    local_mean = block_mean(img)
    floor = (RELATIVE_FLOOR * np.abs(local_mean)) ** 2 + 1e-30
    return floor, np.maximum(noise * noise + shot_noise * np.maximum(local_mean - dark_level, 0.0), floor)
