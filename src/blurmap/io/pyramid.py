"""Pyramids of maps: 2 x 2 means that ignore NaN, and a lazy multiscale sigma map for a viewer.

Every level of a pyramid here is an exact block mean of full resolution.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Iterator

import numpy as np

from ..engine import DEFAULT_CHUNK, cores, lazy_maps
from ..registry import get

__all__ = ["SigmaPyramid", "PyramidLevel", "halve"]

OVERVIEW_SIDE = 1024  # px; the overview is the first level whose longer side is at most this
KEEP_LEVEL = 3  # levels 2**3 = 8 x coarser and beyond are kept whole once computed (under 1/48 of the map's bytes)
FINE_CACHE_BYTES = 256 << 20  # the finer levels of the most recent tiles kept, at most
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
        total = parts[0] + parts[1]
        total += parts[2] + parts[3]
        if np.isfinite(total).all():
            total *= 0.25  # in its own precision, in place: float32 from a float32 map, without a copy
            return total.astype(np.float32, copy=False)
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
    """The sigma map's pyramid for a viewer: every level served at once, from what is computed; the rest in the background.

    Level k is the 2**k x 2**k mean of the full-resolution map (NaN ignored), so a region reads
    the same at every zoom. Tiles of the full-resolution map are computed by background threads
    (one per core), each once for every level at once: those a viewer asks for first, then the
    rest coarse to fine over the image (see fill_overview). Indexing a level never waits: what is
    not computed yet reads NaN (shown transparent) and is queued, and `on_ready` is called from a
    background thread when a tile lands. Levels of KEEP_FACTOR and coarser (and the overview) are
    numpy arrays filled in place; finer ones are served from the most recent tiles
    (FINE_CACHE_BYTES), recomputed if asked again after they were dropped. Coarse levels are not
    estimated from a downsampled image: that cannot see blur below about a third of the
    downsampling factor (benchmarks/large.py measures the difference).

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
    >>> pyramid.close()
    """

    def __init__(self, image, method: str | None, params: dict, chunk: int = DEFAULT_CHUNK,
                 overview_side: int | None = None, on_ready=None):
        est = get(method)
        shape = tuple(image.shape[:2])
        self.shapes = pyramid_shapes(shape, overview_side or OVERVIEW_SIDE)
        self.factor = 2 ** (len(self.shapes) - 1)  # full-resolution px per overview px, along each axis
        # tiles on the coarsest level's grid, so that no pixel of any level straddles two tiles
        checked = est.check({k: v for k, v in params.items() if k not in est.inputs})
        step = np.lcm(self.factor, est.align_for(checked))
        side = -(-max(chunk, 2 * est.halo_for(checked)) // step) * step
        self.maps, self.params = lazy_maps(image, method, (side, side), **params)
        self.method = method
        self.starts = [np.cumsum((0,) + c) for c in self.maps.chunks[:2]]
        self.keep_from = min(KEEP_LEVEL, len(self.shapes) - 1)  # levels from here on are numpy arrays, filled in place
        self._whole = [np.full(s, np.nan, np.float32) for s in self.shapes[self.keep_from:]]
        self.levels = [PyramidLevel(self, k) for k in range(self.keep_from)] + self._whole
        self.overview = self._whole[-1]
        self.on_ready = on_ready
        self._fine: OrderedDict = OrderedDict()  # (i, j) -> that tile's blocks of levels 0 .. keep_from - 1
        self._fine_bytes = 0
        self._done: set = set()
        self._queued: deque = deque()
        self._wanted: set = set()  # the tiles in _queued
        self._running: set = set()
        self._lock = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._closed = False
        self.error: BaseException | None = None

    @property
    def n_chunks(self) -> int:
        """Return how many full-resolution tiles the map has (the overview needs them all)."""
        return int(self.maps.numblocks[0] * self.maps.numblocks[1])

    def tiles_of(self, level: int, rows: slice, cols: slice) -> list[tuple[int, int]]:
        """Return the tiles (i, j) under rows and cols (slices without step) of level `level`."""
        f = 2 ** level
        found = []
        for axis, sl in enumerate((rows, cols)):
            edges = self.starts[axis] // f
            first = int(np.searchsorted(edges, sl.start, side="right")) - 1
            last = int(np.searchsorted(edges, max(sl.stop, sl.start + 1), side="left"))
            found.append(range(max(first, 0), min(last, len(edges) - 1)))
        return [(i, j) for i in found[0] for j in found[1]]

    def read(self, level: int, rows: slice, cols: slice) -> np.ndarray:
        """Return rows x cols (slices without step) of a fine level from the tiles in memory, NaN elsewhere; queue those missing."""
        out = np.full((rows.stop - rows.start, cols.stop - cols.start), np.nan, np.float32)
        f = 2 ** level
        missing = []
        with self._lock:
            for i, j in self.tiles_of(level, rows, cols):
                blocks = self._fine.get((i, j))
                if blocks is None:
                    missing.append((i, j))
                    continue
                self._fine.move_to_end((i, j))
                y0, x0 = int(self.starts[0][i]) // f, int(self.starts[1][j]) // f
                block = blocks[level]
                ys = slice(max(rows.start, y0), min(rows.stop, y0 + block.shape[0]))
                xs = slice(max(cols.start, x0), min(cols.stop, x0 + block.shape[1]))
                if ys.start < ys.stop and xs.start < xs.stop:
                    out[ys.start - rows.start:ys.stop - rows.start, xs.start - cols.start:xs.stop - cols.start] = \
                        block[ys.start - y0:ys.stop - y0, xs.start - x0:xs.stop - x0]
        if missing:
            self.request(missing)
        return out

    def request(self, tiles: list[tuple[int, int]]) -> None:
        """Queue `tiles` before any other (what a viewer shows comes first) and start the background threads."""
        with self._lock:
            for tile in reversed(tiles):
                if tile in self._running:
                    continue
                if tile in self._wanted:  # queued behind others: brought to the front
                    self._queued.remove(tile)
                self._wanted.add(tile)
                self._queued.appendleft(tile)
            self._start()
            self._lock.notify_all()

    def _start(self) -> None:
        """Start one background thread per core, once (under the lock)."""
        if not self._threads and not self._closed:
            for _ in range(cores()):
                thread = threading.Thread(target=self._work, daemon=True, name="blurmap-pyramid")
                thread.start()
                self._threads.append(thread)

    def _work(self) -> None:
        """Compute queued tiles until closed: each one's full-resolution block, then every level's from it."""
        while True:
            with self._lock:
                while not self._queued and not self._closed:
                    self._lock.wait()
                if self._closed:
                    return
                tile = self._queued.popleft()
                self._wanted.discard(tile)
                if tile in self._fine or (tile in self._done and self.keep_from == 0):
                    continue
                self._running.add(tile)
            try:
                block = np.asarray(self.maps.blocks[tile].compute(scheduler="sync"))[..., 0]
            except BaseException as err:  # reported to whoever waits (fill_overview), never lost in a thread
                with self._lock:
                    self.error = err
                    self._closed = True
                    self._running.discard(tile)
                    self._lock.notify_all()
                return
            self._store(tile, block)
            if self.on_ready is not None:
                self.on_ready()

    def _store(self, tile: tuple[int, int], block: np.ndarray) -> None:
        """Keep a computed tile: its coarse levels into the whole arrays, its fine ones among the recent tiles."""
        i, j = tile
        fine = []
        for k in range(len(self.shapes)):
            if k:
                block = nanmean(block[:block.shape[0] // 2 * 2, :block.shape[1] // 2 * 2].reshape(
                    block.shape[0] // 2, 2, block.shape[1] // 2, 2), axis=(1, 3))
            if k < self.keep_from:
                fine.append(block)
                continue
            y0, x0 = int(self.starts[0][i]) >> k, int(self.starts[1][j]) >> k
            level = self._whole[k - self.keep_from]
            h, w = min(block.shape[0], level.shape[0] - y0), min(block.shape[1], level.shape[1] - x0)
            level[y0:y0 + h, x0:x0 + w] = block[:h, :w]
        with self._lock:
            if fine:
                self._fine[tile] = fine
                self._fine_bytes += sum(b.nbytes for b in fine)
                while self._fine_bytes > FINE_CACHE_BYTES and len(self._fine) > 1:
                    _, dropped = self._fine.popitem(last=False)
                    self._fine_bytes -= sum(b.nbytes for b in dropped)
            self._done.add(tile)
            self._running.discard(tile)
            self._lock.notify_all()

    def fill_overview(self) -> Iterator[int]:
        """Compute every tile once, coarse to fine over the image, on every core; yield how many are done, as they land.

        Tiles a viewer asks for meanwhile go first. Closing the generator (a cancelled run)
        closes the pyramid: no tile is started after it.
        """
        self.request([])
        with self._lock:
            for tile in progressive_order(*self.maps.numblocks[:2]):
                if tile not in self._done and tile not in self._wanted and tile not in self._running:
                    self._wanted.add(tile)
                    self._queued.append(tile)
            self._lock.notify_all()
        seen = 0
        try:
            while True:
                with self._lock:
                    while len(self._done) == seen and self.error is None and not self._closed:
                        self._lock.wait()
                    done, error = len(self._done), self.error
                if error is not None:
                    raise error
                if done == seen:  # closed from elsewhere
                    return
                seen = done
                yield done
                if done == self.n_chunks:
                    return
        except GeneratorExit:
            self.close()
            raise

    def close(self) -> None:
        """Stop the background threads after the tiles they are computing; queue nothing more."""
        with self._lock:
            self._closed = True
            self._queued.clear()
            self._lock.notify_all()


class PyramidLevel:
    """A fine level of a SigmaPyramid as an array napari can index: never waits (see SigmaPyramid.read).

    Parameters
    ----------
    pyramid : SigmaPyramid
        The pyramid it belongs to.
    level : int
        Its level: each of its pixels is the mean of 2**level x 2**level full-resolution pixels.

    Examples
    --------
    >>> from blurmap import synthetic
    >>> image = synthetic.sem_sample((300, 400), seed=1)[0]
    >>> pyramid = SigmaPyramid(image, "gradient_ratio", {}, chunk=136, overview_side=100)
    >>> level = pyramid.levels[1]
    >>> level.shape, level[10:20, 30:50].shape, bool(np.isnan(level[10:20, 30:50]).all())  # nothing computed yet
    ((150, 200), (10, 20), True)
    >>> pyramid.close()
    """

    def __init__(self, pyramid: SigmaPyramid, level: int):
        self._pyramid = pyramid
        self._level = level
        self.shape = pyramid.shapes[level]
        self.dtype = np.dtype(np.float32)
        self.ndim = 2

    @property
    def size(self) -> int:
        """Return the number of pixels."""
        return int(np.prod(self.shape))

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key) -> np.ndarray:
        key = key if isinstance(key, tuple) else (key,)
        key = key + (slice(None),) * (2 - len(key))
        bounds, picks = [], []
        for index, n in zip(key, self.shape):
            if isinstance(index, (int, np.integer)):
                i = int(index) + (n if index < 0 else 0)
                if not 0 <= i < n:
                    raise IndexError(f"index {index} out of range for a level of {n}")
                bounds.append(slice(i, i + 1))
                picks.append(0)
            elif isinstance(index, slice):
                start, stop, step = index.indices(n)
                if step < 1:
                    raise IndexError("a pyramid level reads forward only")
                stop = max(stop, start)
                bounds.append(slice(start, stop))
                picks.append(slice(None, None, step))
            else:
                raise IndexError(f"a pyramid level takes integers and slices, not {type(index).__name__}")
        return self._pyramid.read(self._level, *bounds)[tuple(picks)]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self[:, :]
        return out if dtype is None else out.astype(dtype)
