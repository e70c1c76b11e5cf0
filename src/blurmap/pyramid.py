"""A sigma map of a large image as a lazy multiscale pyramid whose every level is an exact block mean of full resolution."""

from __future__ import annotations

import os
from typing import Iterator

import numpy as np

from .engine import DEFAULT_CHUNK, lazy_maps
from .io import halve, pyramid_shapes

OVERVIEW_SIDE = 1024  # px; the overview is the first level whose longer side is at most this


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
