"""How an image is cut into chunks: their sizes, on an estimator's grid, and the window each computes on with its halo."""

from __future__ import annotations

import numpy as np

DEFAULT_CHUNK = 1024  # px; chunk side used when a numpy image is computed tile by tile


def _axis_chunks(n: int, size: int, halo: int) -> tuple[int, ...]:
    """Return chunk sizes along an axis of n px: `size` each, a short last one merged into its neighbour."""
    if n <= size:
        return (n,)
    sizes = [size] * (n // size)
    rest = n - sum(sizes)
    if rest:
        if rest < halo:
            sizes[-1] += rest
        else:
            sizes.append(rest)
    return tuple(sizes)


def as_chunks(chunks) -> tuple[int, int] | None:
    """Return `chunks` (None, one int for both axes, or a pair) as a pair of positive ints, or raise a clear error."""
    if chunks is None:
        return None
    pair = (chunks, chunks) if isinstance(chunks, (int, np.integer)) else tuple(chunks)
    if len(pair) != 2 or not all(isinstance(c, (int, np.integer)) and not isinstance(c, bool) and c > 0 for c in pair):
        raise ValueError(f"chunks must be a positive whole number of px, or a pair of them, not {chunks!r}")
    return int(pair[0]), int(pair[1])


def plan_chunks(shape: tuple[int, int], requested: tuple[int, int], halo: int, align: int):
    """Return chunks the engine can use: at least twice the halo, on the estimator's grid of `align` px."""
    out = []
    for n, c in zip(shape, requested):
        size = max(int(c), 2 * halo, align)
        size = -(-size // align) * align
        out.append(_axis_chunks(int(n), size, halo))
    return tuple(out)


def _halo_window(ys: slice, xs: slice, halo: int, shape: tuple[int, int]) -> tuple[tuple[slice, slice], tuple[slice, slice]]:
    """Return the window of the block ys, xs and `halo` px around it, clipped at the image's edges (what each of
    ``_lazy``'s blocks computes on), and where the block lies within that window."""
    top, left = max(ys.start - halo, 0), max(xs.start - halo, 0)
    window = (slice(top, min(ys.stop + halo, shape[0])), slice(left, min(xs.stop + halo, shape[1])))
    return window, (slice(ys.start - top, ys.stop - top), slice(xs.start - left, xs.stop - left))
