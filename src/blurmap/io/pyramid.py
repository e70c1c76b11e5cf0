"""Pyramids of maps: 2 x 2 means that ignore NaN, and a lazy multiscale sigma map for a viewer.

Every level of a pyramid here is an exact block mean of full resolution.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np

from ..engine import DEFAULT_CHUNK, lazy_maps

__all__ = ["SigmaPyramid", "halve"]

OVERVIEW_SIDE = 1024  # px; the overview is the first level whose longer side is at most this
PYRAMID_MIN = 256  # px; a written pyramid stops at the first level whose longer side is at most this


def pyramid_shapes(shape: tuple[int, int], smallest: int = PYRAMID_MIN) -> list[tuple[int, int]]:
    """Return the shapes of a 2 x 2 mean pyramid from `shape` down to a longer side of at most `smallest`."""
    shapes = [tuple(int(n) for n in shape)]
    while max(shapes[-1]) > smallest and min(shapes[-1]) >= 2:
        shapes.append(tuple(n // 2 for n in shapes[-1]))
    return shapes


def nanmean(a: np.ndarray, axis=None) -> np.ndarray:
    """Return the mean over `axis` ignoring NaN; NaN (quietly) where all are NaN."""
    if a.ndim == 4 and tuple(axis) == (1, 3) and a.shape[1] == a.shape[3] == 2:  # 2 x 2 blocks, the pyramid's case
        # by four strided adds, 20-30x faster than a reduction over axes 1 and 3
        parts = (a[:, 0, :, 0], a[:, 1, :, 0], a[:, 0, :, 1], a[:, 1, :, 1])
        total = (parts[0] + parts[1]) + (parts[2] + parts[3])
        if np.isfinite(total).all():
            return (total * 0.25).astype(np.float32)
        known = [np.isfinite(p) for p in parts]
        zeroed = [np.where(k, p, 0) for p, k in zip(parts, known)]
        count = (known[0].astype(np.int8) + known[1]) + (known[2].astype(np.int8) + known[3])
        with np.errstate(invalid="ignore", divide="ignore"):
            return (((zeroed[0] + zeroed[1]) + (zeroed[2] + zeroed[3])) / count).astype(np.float32)
    known = np.isfinite(a)  # any other layout (dask's coarsen also calls this on small arrays for its meta)
    count = known.sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (np.where(known, a, 0).sum(axis=axis) / count).astype(np.float32)


def halve(level):
    """Return the 2 x 2 mean of a 2-D dask array (NaN ignored; all-NaN blocks stay NaN).

    Parameters
    ----------
    level : dask array
        2-D; an odd last row or column is dropped.

    Returns
    -------
    dask array
        float32, half the size along each axis.

    Examples
    --------
    >>> import numpy as np, dask.array as da
    >>> a = np.array([[1.0, np.nan, 4.0, 4.0], [3.0, 2.0, 4.0, 4.0]], np.float32)
    >>> halve(da.from_array(a)).compute().tolist()
    [[2.0, 4.0]]
    """
    import dask.array as da

    return da.coarsen(nanmean, level, {0: 2, 1: 2}, trim_excess=True)


def progressive_order(rows: int, cols: int) -> list[tuple[int, int]]:
    """Return every (row, col) of a grid of chunks, coarse to fine: a chunk every 2**m first, then the gaps, halving.

    The first few chunks are spread over the whole image, so a partly filled overview already
    shows where the focal band lies and how blur changes across the image.
    """
    def rank(i: int, j: int) -> int:  # the largest m with both i and j multiples of 2**m (0 is a multiple of all)
        bits = 64 if (i | j) == 0 else ((i | j) & -(i | j)).bit_length() - 1
        return -bits

    return sorted(((i, j) for i in range(rows) for j in range(cols)), key=lambda p: (rank(*p), p))


class SigmaPyramid:
    """Lazy levels of the sigma map (full resolution first, each a dask array) and an overview filled chunk by chunk.

    Level k is the 2**k x 2**k mean of the full-resolution map (NaN ignored), so a region reads
    the same at every zoom; a level's chunk needs only the full-resolution chunks under it,
    which is what lets a viewer compute just what is on screen. Coarse levels are not estimated
    from a downsampled image: that cannot see blur below about a third of the downsampling
    factor (benchmarks/large.py measures the difference).

    Examples
    --------
    >>> from blurmap import synthetic
    >>> image = synthetic.sem_sample((300, 400), seed=1)[0]
    >>> pyramid = SigmaPyramid(image, None, {}, chunk=136, overview_side=100)
    >>> [level.shape for level in pyramid.levels]
    [(300, 400), (150, 200), (75, 100)]
    >>> *_, done = pyramid.fill_overview()
    >>> done == pyramid.n_chunks and bool((pyramid.overview > 0).any())
    True
    """

    def __init__(self, image, method: str | None, params: dict, chunk: int = DEFAULT_CHUNK,
                 overview_side: int | None = None):
        # the engine cuts a numpy image into chunks itself, after checking it whole (a constant image is refused)
        self.maps, self.params = lazy_maps(image, method, (chunk, chunk), **params)
        self.method = method
        self.levels = [self.maps[..., 0]]
        for _ in pyramid_shapes(self.maps.shape[:2], overview_side or OVERVIEW_SIDE)[1:]:
            self.levels.append(halve(self.levels[-1]))
        self.factor = 2 ** (len(self.levels) - 1)  # full-resolution px per overview px, along each axis
        self.overview = np.full(self.levels[-1].shape, np.nan, dtype=np.float32)
        if len(self.levels) > 1:
            self.levels[-1] = self.overview  # what the viewer shows zoomed out: filled as chunks complete
        self._sum = np.zeros(self.overview.size)
        self._count = np.zeros(self.overview.size)

    @property
    def n_chunks(self) -> int:
        """Return how many full-resolution chunks the overview needs (all of them)."""
        return int(self.maps.numblocks[0] * self.maps.numblocks[1])

    def _add(self, sigma: np.ndarray, y0: int, x0: int) -> None:
        """Add a full-resolution block at (y0, x0) to the overview's block sums; refresh the overview."""
        f = self.factor
        h, w = self.overview.shape
        ys = (y0 + np.arange(sigma.shape[0])) // f
        xs = (x0 + np.arange(sigma.shape[1])) // f
        keep_y, keep_x = ys < h, xs < w  # a last odd row or column is dropped, as halve does
        block = sigma[keep_y][:, keep_x]
        index = (ys[keep_y][:, None] * w + xs[keep_x][None, :]).ravel()
        known = np.isfinite(block).ravel()
        self._sum += np.bincount(index[known], weights=block.ravel()[known], minlength=self._sum.size)
        self._count += np.bincount(index[known], minlength=self._count.size)
        touched = np.unique(index)
        with np.errstate(invalid="ignore", divide="ignore"):
            self.overview.ravel()[touched] = self._sum[touched] / self._count[touched]

    def fill_overview(self) -> Iterator[int]:
        """Compute every full-resolution chunk once, coarse to fine over the image, a few at a time on all cores; yield chunks done."""
        import dask

        starts = [np.cumsum((0,) + c) for c in self.maps.chunks[:2]]
        places = progressive_order(*self.maps.numblocks[:2])
        batch = max(1, os.cpu_count() or 1)
        done = 0
        for k in range(0, len(places), batch):
            group = places[k:k + batch]
            blocks = dask.compute(*[self.maps.blocks[i, j] for i, j in group], scheduler="threads")
            for (i, j), block in zip(group, blocks):
                self._add(block[..., 0], int(starts[0][i]), int(starts[1][j]))
                done += 1
                yield done
