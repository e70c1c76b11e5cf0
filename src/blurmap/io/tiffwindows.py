"""Windows of a TIFF read straight from its tiles or strips, each thread with its own open file.

tifffile's Zarr store sends every read through zarr's one event-loop thread, which serialises the
reads of all the threads estimating blocks. A window here reads
the bytes of each tile or strip it touches with ``os.pread`` (no shared file position, so threads
read at once) and decodes them with tifffile's own decoder for the page (any compression, predictor,
byte order or bit depth tifffile reads). Uncompressed pixels stored row after row (one strip, or
strips one after another, as most microscopes write them) need no decoding: a window reads its
rows' bytes, whole or only its columns' where the rows are long, so any window costs what it
holds. A level this cannot read directly (separate sample planes, volumes, several pages in one
series level) is read through tifffile's Zarr store.
"""

from __future__ import annotations

import math
import os
import threading

import numpy as np

__all__ = []

_OPEN = threading.local()  # each thread's open TIFFs: {path: _OpenTiff}
_MAX_OPEN = 4  # per thread
_CALL_BYTES = 65536  # a read call costs about as much as copying this many bytes more: rows are read whole below it


class Segments:
    """One TIFF page's pixels as windows `(rows, cols)` read from its tiles or strips: a (h, w) or (h, w, samples) array."""

    def __init__(self, page, fd: int, path: str):
        _, _, self.height, self.width, self.samples = page.shaped
        if page.is_tiled:
            self.tile = (page.tilelength, page.tilewidth)
        else:
            self.tile = (min(page.rowsperstrip or self.height, self.height), self.width)
        self.columns = math.ceil(self.width / self.tile[1])  # segments in a row of the grid
        self.offsets, self.counts = page.dataoffsets, page.databytecounts
        self.decode, self.jpegtables = page.decode, page.jpegtables
        self.fill, self.dtype = page.nodata, np.dtype(page.dtype)
        self.fd, self.path = fd, path
        self.shape = (self.height, self.width) + ((self.samples,) if self.samples > 1 else ())
        # uncompressed rows one after another (as most microscopes write): a window reads its rows' bytes alone
        self.contiguous = bool(page.is_final) and int(self.offsets[0]) > 0
        self.stored = self.dtype.newbyteorder(page.parent.byteorder)

    def window(self, rows: tuple[int, int], cols: tuple[int, int]) -> np.ndarray:
        """Return pixels [y0:y1, x0:x1] (both within the page) in the page's own dtype."""
        (y0, y1), (x0, x1), (th, tw) = rows, cols, self.tile
        out = np.empty((y1 - y0, x1 - x0, self.samples), self.stored if self.contiguous else self.dtype)
        if out.size == 0:
            return out.reshape(out.shape[:2] + self.shape[2:]).astype(self.dtype)
        if self.contiguous:
            return self._read_rows(out, y0, x0).astype(self.dtype, copy=False).reshape(out.shape[:2] + self.shape[2:])
        for r in range(y0 // th, (y1 - 1) // th + 1):
            for c in range(x0 // tw, (x1 - 1) // tw + 1):
                index = r * self.columns + c
                offset, count = int(self.offsets[index]), int(self.counts[index])
                data = None
                if offset and count:
                    data = os.pread(self.fd, count, offset)
                    if len(data) < count:
                        raise ValueError(f"{self.path} is truncated: tile or strip {index} ends past the file")
                segment, (_, _, y, x, _), _shape = self.decode(data, index, jpegtables=self.jpegtables)
                ys, ye, xs, xe = max(y0, y), min(y1, y + th), max(x0, x), min(x1, x + tw)
                if segment is None:  # a tile the writer left out
                    out[ys - y0:ye - y0, xs - x0:xe - x0] = self.fill
                else:
                    out[ys - y0:ye - y0, xs - x0:xe - x0] = segment[0, ys - y:ye - y, xs - x:xe - x]
        return out.reshape(out.shape[:2] + self.shape[2:])

    def _read_rows(self, out: np.ndarray, y0: int, x0: int) -> np.ndarray:
        """Fill `out` (rows, cols, samples) from contiguous rows starting at pixel (y0, x0): the whole rows at once
        unless they hold more than _CALL_BYTES outside the window, else each row's own bytes."""
        pixel = self.samples * self.stored.itemsize
        row = self.width * pixel
        start = int(self.offsets[0]) + y0 * row
        whole = (self.width - out.shape[1]) * pixel <= _CALL_BYTES
        if whole:
            block = np.empty((out.shape[0], self.width, self.samples), self.stored)
            parts = [memoryview(block).cast("B")]
        else:
            start += x0 * pixel
            parts = [memoryview(out[i]).cast("B") for i in range(out.shape[0])]
        for i, part in enumerate(parts):
            if os.preadv(self.fd, [part], start + i * row) < part.nbytes:
                raise ValueError(f"{self.path} is truncated: its pixels end past the file")
        if whole:
            out[...] = block[:, x0:x0 + out.shape[1]]
        return out


def _segments(tif, key: str | None, fd: int, path: str) -> Segments | None:
    """Return a direct reader of level `key` of the TIFF's first series, or None when it is not one plain 2-D page."""
    series = tif.series[0]
    level = series.levels[int(key or 0)]
    if len(level.pages) != 1 or not hasattr(level.pages[0], "shaped"):
        return None
    page = level.pages[0]
    if page.shaped[:2] != (1, 1):  # separate sample planes or a volume
        return None
    reader = Segments(page, fd, path)
    shape = tuple(level.shape)
    while len(shape) > len(reader.shape) and shape[0] == 1:
        shape = shape[1:]
    return reader if shape == reader.shape and np.dtype(level.dtype) == reader.dtype else None


class _OpenTiff:
    """One thread's open TIFF: its file, tifffile's parse of it, and a reader per level."""

    def __init__(self, path: str, stamp: tuple):
        import tifffile

        self.path, self.stamp = path, stamp
        self.tif = tifffile.TiffFile(path)
        # its own descriptor: closed with it, also when a finished thread's objects are collected
        self.fd = self.tif.filehandle.fileno()
        self.readers: dict = {}  # key -> Segments, or the Zarr node of a level read through tifffile's store
        self.nodes: dict = {}  # key -> Zarr node of tifffile's store
        self.store = None

    def reader(self, key: str | None):
        """Return the reader of level `key`: Segments when the level allows it, else its Zarr node."""
        if key not in self.readers:
            segments = _segments(self.tif, key, self.fd, self.path)
            self.readers[key] = segments if segments is not None else self.node(key)
        return self.readers[key]

    def node(self, key: str | None):
        """Return the Zarr node of tifffile's store for `key` (None: the store's root, the group of levels or the array)."""
        import zarr

        if key not in self.nodes:
            if self.store is None:
                self.store = self.tif.aszarr()
            root = zarr.open(self.store, mode="r")
            self.nodes[key] = root if key is None else root[key]
        return self.nodes[key]

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
        self.tif.close()


def open_tiff(path: str) -> _OpenTiff:
    """Return this thread's open TIFF at `path`, opened anew when the file changed (mtime, size or inode)."""
    info = os.stat(path)
    stamp = (info.st_mtime_ns, info.st_size, info.st_ino)
    cache = _OPEN.__dict__.setdefault("files", {})
    entry = cache.get(path)
    if entry is not None and entry.stamp == stamp:
        return entry
    if entry is not None or len(cache) >= _MAX_OPEN:
        cache.pop(path if entry is not None else next(iter(cache))).close()
    cache[path] = _OpenTiff(path, stamp)
    return cache[path]


def _bounds(index, n: int) -> tuple[int, int] | None:
    """Return the [start, stop) an int or unit-step slice picks from `n`, or None for anything else."""
    if isinstance(index, (int, np.integer)):
        i = range(n)[index]
        return i, i + 1
    if isinstance(index, slice) and index.step in (None, 1):
        start, stop, _ = index.indices(n)
        return start, max(start, stop)
    return None


def read(path: str, key: str | None, shape: tuple[int, ...], index: tuple) -> np.ndarray:
    """Return `level[index]` of level `key` of the TIFF at `path` (its full shape `shape`) as numpy."""
    opened = open_tiff(path)
    reader = opened.reader(key)
    index = index if isinstance(index, tuple) else (index,)
    if isinstance(reader, Segments) and len(index) <= len(shape) and not any(i is Ellipsis for i in index):
        index = index + (slice(None),) * (len(shape) - len(index))
        lead = len(shape) - len(reader.shape)  # singleton axes before the page's
        rows, cols = _bounds(index[lead], shape[lead]), _bounds(index[lead + 1], shape[lead + 1])
        if rows is not None and cols is not None:
            window = reader.window(rows, cols).reshape((1,) * lead + (rows[1] - rows[0], cols[1] - cols[0])
                                                       + reader.shape[2:])
            local = tuple(0 if isinstance(i, (int, np.integer)) else slice(None) for i in index[lead:lead + 2])
            return np.asarray(window[index[:lead] + local + index[lead + 2:]])
    if isinstance(reader, Segments):  # an index a window cannot take (steps, arrays): tifffile's store
        reader = opened.node(key)
    return np.asarray(reader[index])
