"""Images larger than memory: a sigma map written chunk by chunk to OME-Zarr or TIFF, on threads or a cluster."""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from .. import __version__
from ..engine import DEFAULT_CHUNK, cores, lazy_maps
from ..registry import get_blind
from . import formats as io
from .metadata import read_geometry
from .pyramid import nanmean, pyramid_shapes

__all__ = ["estimate_file"]

TIFF_TILE = 256  # px; tile side of TIFF output
OME_UNITS = {"nm": "nanometer", "um": "micrometer"}  # blurmap.io.metadata's units as OME-NGFF names them
BAND_BLOCKS = 32  # blocks per core in each band computed at once on local threads
BLOCK_LEVELS = 2  # pyramid levels below full resolution that each block writes itself (its chunks a multiple of 4)
# Blosc LZ4 (level 1, byte shuffle): fast enough to cost less than the bytes it saves; zarr's
# default zstd is several times slower
_COMPRESSOR = {"id": "blosc", "cname": "lz4", "clevel": 1, "shuffle": 1}


class Stopped(Exception):
    """A stop asked for by a signal (see request_stop), raised where the run can stop cleanly."""

    def __init__(self, signum: int):
        super().__init__(f"stopped by signal {signum}")
        self.signum = signum


_STOP = threading.Event()
_STOP_SIGNAL: list[int] = []


def request_stop(signum: int, frame=None) -> None:
    """Ask the run in progress to stop at its next block (a signal handler: it only sets a flag).

    A run that stopped raises Stopped in its own thread at a point where no write is half done,
    so its cleanup removes everything it wrote; an exception raised straight from a signal
    handler could land inside one of zarr's calls, whose writes then go on after the cleanup.
    """
    _STOP_SIGNAL[:] = [signum]
    _STOP.set()


def _check_stop() -> None:
    if _STOP.is_set():
        raise Stopped(_STOP_SIGNAL[0] if _STOP_SIGNAL else 0)


class Progress:
    """A one-line progress bar with rate and ETA on a terminal (stderr); silent when not a terminal."""

    def __init__(self, total: int, pixels: int, label: str, stream=None, enabled: bool | None = None,
                 unit: str = "chunks"):
        self.total, self.pixels, self.label, self.unit = total, pixels, label, unit  # unit: "chunks", or "MP" counting px
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.done, self.start = 0, time.perf_counter()
        self._lock = threading.Lock()  # blocks finishing on several threads report at once

    def line(self) -> str:
        """Return the bar's text: share done, chunks, megapixels per second and time left."""
        elapsed = time.perf_counter() - self.start
        share = self.done / self.total if self.total else 1.0
        rate = share * self.pixels / 1e6 / elapsed if elapsed > 0 else 0.0
        left = elapsed * (1 - share) / share if share > 0 else float("nan")
        eta = time.strftime("%H:%M:%S", time.gmtime(left)) if np.isfinite(left) else "--:--:--"
        bar = "#" * int(30 * share)
        count = f"{self.done / 1e6:.1f}/{self.total / 1e6:.1f} MP" if self.unit == "MP" else \
            f"{self.done}/{self.total} chunks"
        return f"\r{self.label} [{bar:<30s}] {100 * share:5.1f}% {count} {rate:7.2f} MP/s ETA {eta}"

    def advance(self, n: int = 1) -> None:
        """Count `n` more chunks done and redraw."""
        with self._lock:
            self._advance(n)

    def _advance(self, n: int) -> None:
        self.done += n
        if self.enabled:
            self.stream.write(self.line())
            if self.done >= self.total:
                self.stream.write("\n")
            self.stream.flush()


def _halved(plane: np.ndarray) -> np.ndarray:
    """Return the 2 x 2 mean of a 2-D block (NaN ignored), an odd last row or column dropped."""
    h, w = plane.shape[0] // 2, plane.shape[1] // 2
    return nanmean(plane[:2 * h, :2 * w].reshape(h, 2, w, 2), axis=(1, 3))


def _put(array, origin: tuple[int, int], plane: np.ndarray) -> None:
    """Write `plane` into a 2-D float32 Zarr array at `origin`; as one encoded chunk file when it is exactly one chunk.

    A block of the map is one chunk of its level, so it is compressed here, on the calling thread,
    and written as one file (Zarr v2 layout: "<row>.<col>", edge chunks padded with the fill value).
    Through zarr's API every write passes one event-loop thread: on two cores that cost a sixth of a run.
    Any other store or shape goes through zarr.
    """
    import numcodecs
    from zarr.storage import LocalStore

    (cy, cx), (y0, x0) = array.chunks, origin
    h, w = plane.shape
    whole = y0 % cy == 0 and x0 % cx == 0 and h <= cy and w <= cx
    edge_ok = (h == cy or y0 + h == array.shape[0]) and (w == cx or x0 + w == array.shape[1])
    if not (isinstance(array.store, LocalStore) and array.metadata.zarr_format == 2 and whole and edge_ok):
        array[y0:y0 + h, x0:x0 + w] = plane
        return
    chunk = np.full((cy, cx), array.fill_value, np.float32)
    chunk[:h, :w] = plane
    sep = array.metadata.dimension_separator
    key = sep.join(str(i) for i in getattr(array, "index", ()) + (y0 // cy, x0 // cx))  # a stack's chunks are 1 plane deep
    path = Path(array.store.root) / array.path / key
    path.write_bytes(numcodecs.get_codec(dict(_COMPRESSOR)).encode(chunk))


class PlaneOf:
    """One plane of a stack's Zarr array (chunks one plane deep), written as `_put` writes a 2-D array."""

    def __init__(self, array, index: tuple[int, ...]):
        self.array, self.index = array, tuple(int(i) for i in index)
        self.shape, self.chunks = tuple(array.shape[len(self.index):]), tuple(array.chunks[len(self.index):])
        self.store, self.metadata, self.path, self.fill_value = array.store, array.metadata, array.path, array.fill_value

    def __getitem__(self, key) -> np.ndarray:
        return self.array[self.index + (key if isinstance(key, tuple) else (key,))]

    def __setitem__(self, key, value) -> None:
        self.array[self.index + (key if isinstance(key, tuple) else (key,))] = value


class Targets:
    """The Zarr arrays one plane's blocks write into: its level 0 and levels 1..`ahead` of each output.

    `levels` (per output, its pyramid's arrays) may be a ``concurrent.futures.Future`` of
    ``(groups, levels)`` while they are being created: a block then computes first and waits for
    them only to write.
    """

    def __init__(self, levels, index: tuple[int, ...], ahead: int):
        self.levels, self.index, self.ahead = levels, index, ahead

    def arrays(self) -> tuple[list, list]:
        """Return (the level-0 array of each output, the arrays of levels 1..ahead of each output)."""
        levels = self.levels.result()[1] if isinstance(self.levels, Future) else self.levels
        return ([_in_plane(lv[0], self.index) for lv in levels],
                [[_in_plane(a, self.index) for a in lv[1:self.ahead + 1]] for lv in levels])


def _in_plane(array, index: tuple[int, ...]):
    """Return plane `index` of a stack's Zarr array (a PlaneOf it), or a 2-D array itself (index ())."""
    return PlaneOf(array, index) if index else array


def _put_coarser(plane: np.ndarray, level, origin: tuple[int, int], pick: bool) -> np.ndarray:
    """Write the 2 x 2 mean of `plane` (every other pixel if `pick`: an angle, which a mean would wrap wrongly), a region
    of the level below whose top-left is 2 * `origin`, into `level` at `origin` (cut to its shape); return what was
    written."""
    plane = plane[::2, ::2] if pick else _halved(plane)
    h, w = level.shape
    plane = plane[:min(plane.shape[0], h - origin[0]), :min(plane.shape[1], w - origin[1])]
    _put(level, origin, plane)
    return plane


def _write_coarse(levels: list[list], first: int, indices: list[tuple[int, ...]], picks: tuple[int, ...]) -> None:
    """Write levels `first`, `first` + 1... of each output's pyramid (`levels`, per output), each from the level before,
    one task per chunk of it and plane of the stack (`indices`) on local threads.

    Each task reads its chunk's region of the level below in one call (zarr's per-call cost made
    64 small reads a chunk take 0.4 s); a dask graph and its scheduler cost more than these
    levels' work (a run's coarsest levels are small).
    """
    def write(job) -> None:
        below, level, (y, x), pick = job
        _check_stop()
        cy, cx = level.chunks
        _put_coarser(np.asarray(below[2 * y:2 * (y + cy), 2 * x:2 * (x + cx)]), level, (y, x), pick)

    with ThreadPoolExecutor(cores()) as pool:
        for k in range(first, len(levels[0])):
            list(pool.map(write, _coarse_jobs(levels, k, indices, picks)))  # raises the first failure, once the rest ran


def _coarse_jobs(levels: list[list], k: int, indices: list[tuple[int, ...]], picks: tuple[int, ...]):
    """Yield (the level below, level `k`, a chunk's origin in it, whether to pick) for each chunk of level `k` of each
    output and plane."""
    for index in indices:
        for p, pyramid in enumerate(levels):
            below, level = _in_plane(pyramid[k - 1], index), _in_plane(pyramid[k], index)
            for y in range(0, level.shape[0], level.chunks[0]):
                for x in range(0, level.shape[1], level.chunks[1]):
                    yield below, level, (y, x), p in picks


def _write_block(block: np.ndarray, targets: Targets, notify=None, picks: tuple[int, ...] = (),
                 block_info=None) -> np.ndarray:
    """Write a computed block's planes into the level-0 Zarr arrays of `targets` and their 2 x 2, 4 x 4... means into its
    coarser levels; return a 1 x 1 tag.

    A plane in `picks` (an angle, which a mean would wrap wrongly) takes every other pixel instead
    of means. Blocks start on multiples of 2**ahead (the engine's chunks are), so each block owns its
    region of those levels too: no two blocks write the same Zarr chunk.
    """
    _check_stop()
    full, coarse = targets.arrays()
    (y0, y1), (x0, x1) = block_info[0]["array-location"][:2]
    planes = [block] if block.ndim == 2 else [block[..., k] for k in range(block.shape[-1])]
    for p, (plane, target, levels) in enumerate(zip(planes, full, coarse, strict=True)):
        _put(target, (y0, x0), plane)
        for k, level in enumerate(levels, start=1):
            plane = _put_coarser(plane, level, (y0 >> k, x0 >> k), p in picks)
    if notify is not None:
        notify()
    return np.ones((1, 1), dtype=np.int8)


def _write_lazy(lazy, targets: Targets, client, progress: Progress, picks: tuple[int, ...] = ()) -> None:
    """Compute `lazy` block by block into the Zarr arrays of `targets` (on threads, a band of block rows at a time); each
    block is one step of `progress`."""
    import dask.array as da

    drop = (2,) if lazy.ndim == 3 else ()
    chunks = tuple((1,) * n for n in lazy.numblocks[:2])
    meta = np.empty((0, 0), np.int8)
    if client is not None:
        from distributed import as_completed

        tags = da.map_blocks(_write_block, lazy, targets=targets, picks=picks, drop_axis=drop, dtype=np.int8,
                             chunks=chunks, meta=meta)
        futures = client.compute(tags.to_delayed().ravel().tolist())
        try:
            for future in as_completed(futures):
                future.result()  # raise a worker's error here
                progress.advance()
                _check_stop()
        except BaseException:
            _settle(client, futures, tags.name)
            raise
        return
    # the blocks report themselves: dask fuses task names, so a scheduler callback cannot tell them
    tags = da.map_blocks(_write_block, lazy, targets=targets, notify=progress.advance, picks=picks,
                         drop_axis=drop, dtype=np.int8, chunks=chunks, meta=meta)
    # a band of block rows at a time, enough blocks to keep every core busy: the graph, and what the
    # scheduler holds (input chunks read ahead, halos waiting for their neighbours), stay the size
    # of a band whatever the image; each band re-reads only its neighbours' halo rows
    workers = cores()
    rows = max(1, -(-BAND_BLOCKS * workers // tags.numblocks[1]))
    # a pool of our own, so that on a failure the blocks still running can be waited for before the
    # caller removes the partial output (dask raises the first error while other threads still write)
    pool = ThreadPoolExecutor(workers)
    try:
        for i in range(0, tags.numblocks[0], rows):
            _check_stop()
            tags.blocks[i:i + rows].compute(scheduler="threads", num_workers=workers, pool=pool)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _settle(client, futures: list, name: str, timeout: float = 600.0) -> None:
    """Cancel `futures` and wait until no task of the layer `name` still executes on a worker (a cancelled task runs on).

    The executing tasks' keys are those of fused tasks (the maps' task and the write's, one name), not the futures' keys.
    """
    client.cancel(futures)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        keys = [key for stacks in client.call_stack().values() for key in stacks]
        if not any(name in str(key[0] if isinstance(key, tuple) else key) for key in keys):
            return
        time.sleep(0.1)


def check_paths(source: Path, output: Path, overwrite: bool) -> None:
    """Refuse to write over the input, into it, onto a link, or over an existing file that is not a blurmap output.

    An existing output is replaced only with `overwrite`, and only if blurmap wrote it (its
    metadata says so): a user's own folder or TIFF of that name is never deleted.
    """
    src, out = source.resolve(), output.resolve()
    if out == src or src in out.parents or out in src.parents:
        raise ValueError(f"the output {output} would overwrite or sit inside the input {source}; choose another path")
    if output.suffix.lower() not in io.TIFF_SUFFIXES + (".zarr",):
        raise ValueError(f"the output must end in .zarr (OME-Zarr) or .tif/.tiff, not {output.name!r}")
    check_replaceable(output, overwrite)
    if not output.parent.is_dir():
        raise FileNotFoundError(f"the output's folder {output.parent} does not exist")


def check_replaceable(output: Path, overwrite: bool, how: str = "--overwrite") -> None:
    """Refuse an output that is a link, exists without `overwrite` (`how` names the option), or is not blurmap's."""
    if output.is_symlink():
        raise ValueError(f"the output {output} is a symbolic link; give the path it stands for")
    if output.exists() and not overwrite:
        raise FileExistsError(f"{output} exists; pass {how} to replace it")
    if output.exists() and not is_blurmap_output(output):
        raise FileExistsError(f"{output} exists and is not a map blurmap wrote; it will not be replaced, even with "
                              f"{how}: choose another name")


def is_blurmap_output(path: Path) -> bool:
    """Return whether `path` is a map blurmap wrote: an OME-Zarr with blurmap's attributes, or a TIFF with its description."""
    import json

    try:
        if path.is_dir():
            import zarr

            return "blurmap" in dict(zarr.open_group(str(path), mode="r").attrs)
        import tifffile

        with tifffile.TiffFile(path) as tif:
            return "blurmap_version" in json.loads(tif.pages[0].description or "{}")
    except Exception:  # not Zarr, not a TIFF, no JSON: not ours
        return False


def _pid_alive(pid: int) -> bool:
    """Return whether a process `pid` runs on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it runs, as another user
        return True
    return True


def _owner(path: Path) -> int | None:
    """Return the PID a partial output or lock names (".NAME.partial-PID...", or the lock's text), or None."""
    try:
        text = path.read_text().strip() if path.is_file() and path.name.endswith(".lock") else path.name
        return int(text.rsplit("-", 1)[-1].split(".")[0]) if not text.isdigit() else int(text)
    except (ValueError, OSError):
        return None


def remove_leftovers(output: Path) -> list[Path]:
    """Remove what runs that were killed left beside `output` (partial outputs, old copies, locks); return them.

    Only leftovers whose process no longer runs are removed: a run still going keeps its own.
    """
    removed = []
    for pattern in (f".{output.name}.partial-*", f".{output.name}.old-*", f".{output.name}.lock"):
        for path in output.parent.glob(pattern):
            pid = _owner(path)
            if pid is not None and not _pid_alive(pid):
                _remove(path)
                removed.append(path)
    return removed


def claim(output: Path) -> Path:
    """Claim `output` for this process with a lock file beside it (created atomically); return the lock.

    Raises FileExistsError when another running blurmap process holds it: two runs never write the
    same output, and the later one says so instead of replacing the earlier one's.
    """
    lock = output.with_name(f".{output.name}.lock")
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        pid = _owner(lock)
        raise FileExistsError(f"another blurmap run (pid {pid}) is writing {output}; wait for it, or choose "
                              "another name") from None
    with os.fdopen(fd, "w") as f:
        f.write(str(os.getpid()))
    return lock


def _move_into_place(tmp: Path, output: Path) -> None:
    """Replace `output` by `tmp` with renames on one file system: a reader sees the old or the new, never half."""
    old = None
    if output.exists():
        old = output.with_name(f".{output.name}.old-{os.getpid()}")
        os.replace(output, old)
    os.replace(tmp, output)
    if old is not None:
        shutil.rmtree(old) if old.is_dir() else old.unlink()


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink()


def _write_zarr(tmp: Path, maps: list, src: io.Source, chunk: tuple[int, int], meta: dict, client,
                progress) -> int:
    """Write a pyramid of each output (sigma at the root; confidence and any others in groups named for them) as an
    OME-Zarr group at `tmp`; return the number of levels.

    `maps` holds (plane index, lazy maps) for each plane of the source: one pair, index (), for a
    2-D image; the arrays keep the source's stack axes before y, x, one plane per chunk.
    """
    lead = src.stack_shape
    est = get_blind(meta["method"])
    outputs = est.outputs  # sigma, ..., confidence: the root holds sigma, a group each other
    shapes = pyramid_shapes(maps[0][1].shape[:2])
    ahead = 0  # as many levels as the blocks' starts allow (a chunk that is a multiple of 2**ahead)
    while ahead < min(BLOCK_LEVELS, len(shapes) - 1) and all(c % 2 ** (ahead + 1) == 0 for c in chunk):
        ahead += 1
    # levels 1..ahead are written by the blocks of level 0, each into chunks of its own (2**k times smaller)
    level_chunks = [(chunk[0] >> k, chunk[1] >> k) if k <= ahead else chunk for k in range(len(shapes))]
    with ThreadPoolExecutor(1) as creator:
        # creating the group and its arrays costs tens of ms (zarr's per-call cost): local blocks compute meanwhile
        created = creator.submit(_create_levels, tmp, outputs, lead, shapes, level_chunks)
        levels = created if client is None else created.result()[1]  # for a cluster: arrays that travel to its workers
        picks = tuple(k for k, output in enumerate(outputs) if output.endswith("_deg"))  # angles: no means of them
        for index, lazy in maps:
            _write_lazy(lazy, Targets(levels, index, ahead), client, progress, picks)
        groups, levels = created.result()
    _write_coarse(levels, ahead + 1, [index for index, _ in maps], picks)  # on local threads, also for a cluster
    name = meta["method"]
    for output, group in zip(outputs, groups):
        title = output.removesuffix("_deg").replace("_", " ")
        unit = est.output_unit(output)
        extra = {} if output == "sigma" else {
            "label": "confidence, 0 to 1" if output == "confidence" else f"{title} ({unit})",
            "value_unit": unit if unit in ("px", "deg") else None}
        group.attrs.update({"multiscales": [io.ome_multiscales(f"{title} ({name})", len(shapes), src.scale, src.unit,
                                                               src.axes)], "blurmap": {**meta, **extra}})
    return len(shapes)


def _create_levels(tmp: Path, outputs: tuple[str, ...], lead: tuple[int, ...], shapes: list,
                   level_chunks: list) -> tuple[list, list[list]]:
    """Create the OME-Zarr group at `tmp` and each output's pyramid (float32, NaN fill, one stack plane per chunk): sigma
    at the root, each other output in a group named for it; return the groups and the arrays, per output."""
    import zarr

    root = zarr.open_group(str(tmp), mode="w", zarr_format=2)
    groups = [root] + [root.create_group(name) for name in outputs[1:]]
    return groups, [[group.create_array(str(k), shape=lead + s, chunks=(1,) * len(lead) + tuple(
        max(1, min(c, n)) for c, n in zip(level_chunks[k], s)), dtype="float32", fill_value=np.nan,
        compressors=_COMPRESSOR) for k, s in enumerate(shapes)] for group in groups]


def _write_tiff(path: Path, store: Path, description: str) -> None:
    """Write level 0 of the sigma pyramid in `store` as a tiled BigTIFF with its pyramid as SubIFDs, tile by tile."""
    import tifffile
    import zarr

    root = zarr.open_group(str(store), mode="r")
    n = len(root.attrs["multiscales"][0]["datasets"])

    def tiles(level):
        h, w = level.shape
        for y in range(0, h, TIFF_TILE):
            rows = level[y:y + TIFF_TILE, :]
            for x in range(0, w, TIFF_TILE):
                tile = np.full((TIFF_TILE, TIFF_TILE), np.nan, np.float32)
                part = rows[:, x:x + TIFF_TILE]
                tile[:part.shape[0], :part.shape[1]] = part
                yield tile

    with tifffile.TiffWriter(path, bigtiff=True) as tif:
        for k in range(n):
            level = root[str(k)]
            tif.write(tiles(level), shape=level.shape, dtype="float32", tile=(TIFF_TILE, TIFF_TILE),
                      subifds=n - 1 if k == 0 else None, subfiletype=1 if k else 0,
                      description=description if k == 0 else None, compression="zlib")


def estimate_file(source: Path, output: Path, method: str | None = None, params: dict | None = None, *,
                  chunk: int = DEFAULT_CHUNK, client=None, overwrite: bool = False,
                  progress: bool | None | object = None) -> dict:
    """Write the sigma map of a (large) image file to OME-Zarr or TIFF, chunk by chunk; return what was done.

    Written under a hidden temporary name beside `output` (`.NAME.partial-PID`) and moved into place
    when whole, so no file stands under the final name that is not whole; `output` is claimed first
    with a lock file (`.NAME.lock`), so a second run writing the same output refuses. What a killed
    run left is removed by the next run (and listed in the result's ``removed_leftovers``); it is
    not resumed. An existing output is replaced only with `overwrite` and only if blurmap wrote it.

    Parameters
    ----------
    source : Path
        The image file (anything :func:`blurmap.io.open_image` reads).
    output : Path
        ``NAME.zarr`` (an OME-Zarr pyramid of sigma, with a confidence image) or ``NAME.tif``.
    method : str, optional
        A registered estimator that needs no other image; the default if None.
    params : dict, optional
        Its parameters.
    chunk : int
        px; the block side (rounded up to a multiple of 4).
    client : dask.distributed.Client, optional
        Run on its cluster; local threads if None.
    overwrite : bool
        Replace an existing `output`.
    progress : bool or None, or an object with ``advance()`` and ``total``
        None draws a bar on a terminal only, False never, True always; an object is told the
        number of blocks (``total``) and advanced once per block (a bar across files).

    Returns
    -------
    dict
        The metadata written beside the map (method, units, label, parameters used, source,
        version) and the output, shape, levels, chunks, seconds and megapixels per second.

    Examples
    --------
    >>> import tempfile, tifffile
    >>> from pathlib import Path
    >>> from blurmap import synthetic
    >>> folder = Path(tempfile.mkdtemp())
    >>> tifffile.imwrite(folder / "sem.tif", synthetic.sem_sample((200, 240), seed=1)[0])
    >>> done = estimate_file(folder / "sem.tif", folder / "sem.zarr", progress=False)
    >>> done["method"], done["shape"], (folder / "sem.zarr").is_dir()
    ('learned', [200, 240], True)
    """
    est = get_blind(method)
    params = dict(params or {})
    chunk += -chunk % 2**BLOCK_LEVELS  # each block owns its region of the levels it writes
    check_paths(source, output, overwrite)
    _STOP.clear()
    removed = remove_leftovers(output)
    lock = claim(output)
    try:
        done = _estimate_claimed(source, output, est, params, chunk, client, progress)
    finally:
        lock.unlink(missing_ok=True)
    return {**done, "removed_leftovers": [str(p) for p in removed]}


def _estimate_claimed(source: Path, output: Path, est, params: dict, chunk: int, client, progress) -> dict:
    """Do estimate_file's work once the output is claimed."""
    src = io.open_image(source)
    if src.unit is None:  # a TIFF whose vendor tags (or resolution) give the pixel size: the map keeps it
        found = read_geometry(source)
        if found is not None:
            src = src._replace(scale=(found.pixel_size,) * 2, unit=OME_UNITS.get(found.unit, found.unit))
    image = src.levels[0]
    lead = src.stack_shape
    if lead and output.suffix.lower() != ".zarr":
        raise ValueError(f"{source} is a stack of {' x '.join(map(str, lead))} planes ({', '.join(src.axes)}): its "
                         f"maps are written as OME-Zarr with the same axes; name the output {output.stem}.zarr")
    start = time.perf_counter()
    maps, used = [], []
    for index in np.ndindex(lead):  # () once for a 2-D image
        # each block reads its own window from the file (checks parameters before any writing)
        reader = src.planes[0].at(index) if src.planes else None
        lazy, plane_used = lazy_maps(image[index], est.name, (chunk, chunk), reader=reader, **params)
        maps.append((index, lazy))
        used.append(plane_used)
    lazy = maps[0][1]
    zarr_chunk = (lazy.chunks[0][0], lazy.chunks[1][0])  # chunk starts are multiples of it: no two share a chunk
    meta = {"method": est.name, "units": est.units, "label": est.label(), "params": used[0], "asked": params,
            "value_unit": "px" if est.units == "px" else None, "source": str(source), "blurmap_version": __version__}
    if lead:  # each plane has its own noise model: its parameters are listed in plane order
        meta.update(axes=list(src.axes), plane_params=used)
    io.describe(meta)  # refuses, before anything is written, metadata that would not be valid JSON
    blocks = sum(m.numblocks[0] * m.numblocks[1] for _, m in maps)
    if progress is None or isinstance(progress, bool):
        bar = Progress(blocks, int(np.prod(image.shape[:len(lead) + 2])), f"blurmap {est.name}", enabled=progress)
    else:  # a share of a bar across files (see blurmap.io.batch): told how many blocks this file has
        bar = progress
        bar.total = blocks
    tmp = output.with_name(f".{output.name}.partial-{os.getpid()}")
    store = tmp if output.suffix.lower() == ".zarr" else output.with_name(f"{tmp.name}.zarr")
    try:
        n_levels = _write_zarr(store, maps, src, zarr_chunk, meta, client, bar)
        if store != tmp:
            _write_tiff(tmp, store, io.describe(meta))
            _remove(store)
        _move_into_place(tmp, output)
    except BaseException:
        _remove(store)
        _remove(tmp)
        raise
    seconds = time.perf_counter() - start
    pixels = int(np.prod(image.shape[:len(lead) + 2]))
    return {**meta, "output": str(output), "shape": list(image.shape[:len(lead) + 2]), "levels": n_levels,
            "chunks": bar.total, "seconds": round(seconds, 2),
            "megapixels_per_second": round(pixels / 1e6 / seconds, 3)}
