"""Running an estimator over an image: whole, in tiles on every core, lazily with dask, or tile by tile with progress."""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from typing import NamedTuple

import numpy as np

from .._validate import MIN_SIDE, as_2d_grey, is_dask
from ..registry import get
from ._chunks import DEFAULT_CHUNK, as_chunks, plan_chunks
from ._graph import _lazy, _sampled_maps
from ._preparation import Prepared, prepare
from ._tile import _tile_with_halo, run_tile

THREAD_CHUNK = 2048  # px; tiles a large numpy image is cut into to keep every core busy (halos cost under 15%)
THREAD_CHUNK_HALOS = 8  # or this many halos a side, if more: a tile's halo then costs under a third of its work


def cores() -> int:
    """Return how many cores this process may use (its CPU affinity where the OS tells it)."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _threaded_chunks(prep: Prepared) -> tuple[int, int] | None:
    """Return the tile side to compute a numpy image on every core, or None if it is one tile (or one core)."""
    est = prep.estimator
    side = max(THREAD_CHUNK, THREAD_CHUNK_HALOS * est.halo_for(prep.params))
    plan = plan_chunks(prep.image.shape, (side, side), est.halo_for(prep.params), est.align_for(prep.params))
    return (side, side) if cores() > 1 and len(plan[0]) * len(plan[1]) > 1 else None


class _Tiles(NamedTuple):
    """An image's tiles (``_lazy``'s blocks) and the maps they are written into, one float32 array per output."""

    starts: tuple[np.ndarray, np.ndarray]  # px; where each row and column of tiles starts, and the image's side last
    halo: int  # px
    maps: dict  # output name -> (H, W) float32
    lazy: object  # the lazy maps a lazy image's tiles come from; None for an in-memory image

    def count(self) -> tuple[int, int]:
        """Return the rows and columns of tiles."""
        return len(self.starts[0]) - 1, len(self.starts[1]) - 1

    def fill(self, prep: Prepared, i: int, j: int) -> None:
        """Compute tile (i, j) and write it into the maps (each tile writes its own part: run it in any thread)."""
        ys, xs = (slice(int(s[k]), int(s[k + 1])) for s, k in zip(self.starts, (i, j)))
        if self.lazy is None:
            tile = _tile_with_halo(prep, ys, xs, self.halo)
        else:
            computed = self.lazy.blocks[i, j].compute(scheduler="sync")
            tile = [computed[..., k] for k in range(computed.shape[-1])]
        for array, part in zip(self.maps.values(), tile):
            array[ys, xs] = part


def _tiles(prep: Prepared, chunk: tuple[int, int]) -> _Tiles:
    """Return the tiles of `chunk` px (as ``_lazy`` plans them) of a prepared image, with empty maps to fill."""
    est, halo = prep.estimator, prep.estimator.halo_for(prep.params)
    plan = plan_chunks(prep.image.shape, chunk, halo, est.align_for(prep.params))
    in_memory = not is_dask(prep.image) and not any(is_dask(a) for a in prep.inputs.values())
    maps = {name: np.empty(prep.image.shape, dtype=np.float32) for name in est.outputs}
    return _Tiles(tuple(np.cumsum((0,) + c) for c in plan), halo, maps, None if in_memory else _lazy(prep, chunk))


def lazy_maps(image, method: str | None, chunks: tuple[int, int], *, reader=None, **params):
    """Return a lazy (H, W, outputs) float32 dask array of the estimator's outputs, and the parameters used.

    Parameters
    ----------
    image : array_like or dask array
        As for :func:`estimate`.
    method : str or None
        A registered estimator's name; the default if None.
    chunks : tuple of int
        px; the chunk size asked for (enlarged to twice the halo, on the estimator's grid).
    reader : object, optional
        Reads the same pixels as `image` as numpy (``reader[rows, cols]``, e.g.
        ``blurmap.io.Source.planes[0]``): each block then reads its own window with its halo, and
        no halo passes between blocks (so a cluster's workers share nothing); results are the same.
    **params
        The estimator's parameters.

    Returns
    -------
    maps : dask array
        (H, W, outputs) float32: sigma (px or score), any further outputs, and confidence last
        (``Estimator.outputs`` names them), computed chunk by chunk.
    params : dict
        The parameters used, image-wide ones (noise) filled.

    Examples
    --------
    >>> from blurmap import synthetic
    >>> image = synthetic.sem_sample((200, 260), seed=1)[0]
    >>> maps, used = lazy_maps(image, "gradient_ratio", (136, 136))
    >>> maps.shape, maps.numblocks, sorted(used)[:2]
    ((200, 260, 2), (1, 2, 1), ['dark_level', 'fill_reach'])
    """
    prep = prepare(image, method, reader=reader if is_dask(image) else None, **params)
    return _lazy(prep, as_chunks(chunks), reader), dict(prep.reported)


def estimate(image, method: str | None = None, *, return_confidence: bool = False, return_outputs: bool = False,
             chunks: tuple[int, int] | None = None, channel_axis: int | None = None, **params):
    """Return the sigma map of an image or a stack: per pixel, the Gaussian blur it carries, and its confidence if asked.

    Parameters
    ----------
    image : array_like or dask array
        A 2-D image of any real dtype; or a stack, with any number of leading axes (Z, T, ...)
        before the two image axes, each plane mapped as the 2-D call maps it (its own intensity
        normalisation and noise model); colour is read as luminance, its axis given by
        `channel_axis` (a 3-D array of 3 or 4 channels last is read as RGB(A) even without it,
        with a warning). numpy in, numpy out; a dask image gives lazy dask arrays computed chunk
        by chunk, each with its halo, one plane at a time; for a method with no other input image
        it is read only when they are computed, noise samples included (unless the chunks under
        those hold more than 256 MB, ``engine._graph.SAMPLED_CHUNKS_MAX``: they are then read first).
    method : str, optional
        A registered estimator's name (see :func:`blurmap.estimators`); the default is
        ``"learned"`` (``blurmap.registry.DEFAULT``).
    return_confidence : bool
        Also return the confidence map.
    return_outputs : bool
        Return every map the estimator makes, by name (``sigma``, ..., ``confidence``; see
        ``Estimator.outputs``): e.g. ``sigma_major``, ``sigma_minor`` and ``angle_deg`` of the
        directional method.
    chunks : tuple of int, optional
        px; rechunk a dask image (or cut a numpy one) to about this size, at least twice the
        estimator's halo and on its grid.
    channel_axis : int, optional
        The axis of colour channels (3 or 4: RGB or RGBA), if any.
    **params
        The estimator's parameters; those not given take the registry's defaults, and those
        that default to None (the noise model, a registration) are estimated from the image.
        Other images a method needs (``reference=``) are passed here too.

    Returns
    -------
    sigma : ndarray or dask array
        float32, the image's shape (less its channel axis): px of Gaussian sigma for "px" methods, a score for
        "relative" ones; NaN where nothing can be said (no texture within reach).
    confidence : ndarray or dask array
        float32 in [0, 1], only with ``return_confidence=True``.
    outputs : dict of str to ndarray or dask array
        Instead of the above, with ``return_outputs=True``: each output by name.

    Raises
    ------
    ValueError, TypeError
        For a bad image, an unknown method or parameter, or a value out of range, with a message
        that names it.

    Examples
    --------
    >>> import numpy as np, blurmap
    >>> from blurmap import synthetic
    >>> sharp = synthetic.dead_leaves((128, 128), seed=1)
    >>> image = blurmap.blur(sharp, synthetic.ramp(sharp.shape, 0.5, 3.0))
    >>> sigma, conf = blurmap.estimate(image, return_confidence=True)
    >>> sigma.shape, sigma.dtype
    ((128, 128), dtype('float32'))
    >>> bool(np.nanmedian(sigma[:, :32]) < np.nanmedian(sigma[:, -32:]))
    True
    >>> stack = np.stack([image, blurmap.blur(sharp, np.full(sharp.shape, 2.0))])  # (Z, Y, X)
    >>> maps = blurmap.estimate(stack)
    >>> maps.shape, bool(np.array_equal(maps[0], blurmap.estimate(image)))
    ((2, 128, 128), True)
    """
    if return_confidence and return_outputs:
        raise ValueError("ask for return_confidence or return_outputs (which holds the confidence), not both")
    if channel_axis is not None or _is_stack(image):
        maps = _estimate_stack(image, method, chunks, channel_axis, params)
    else:
        maps = _maps(image, method, chunks, params)
    if return_outputs:
        return maps
    return (maps["sigma"], maps["confidence"]) if return_confidence else maps["sigma"]


def _maps(image, method: str | None, chunks, params: dict) -> dict:
    """Return every output of one 2-D image's estimate, by name (sigma, ..., confidence)."""
    chunks = as_chunks(chunks)
    est = get(method)
    out = _sampled_maps(as_2d_grey(image), est, est.check(params), chunks) if is_dask(image) and not est.inputs else None
    if out is not None:  # prepared in the maps' own graph: nothing is read before their compute
        return {name: out[..., k] for k, name in enumerate(est.outputs)}
    prep = prepare(image, method, **params)
    names = prep.estimator.outputs
    if is_dask(prep.image) or any(is_dask(a) for a in prep.inputs.values()):
        out = _lazy(prep, chunks)
        return {name: out[..., k] for k, name in enumerate(names)}
    if chunks is not None or _threaded_chunks(prep) is not None:  # tiles on every core, with their halos
        tiles = _tiles(prep, chunks or _threaded_chunks(prep))
        ny, nx = tiles.count()
        with ThreadPoolExecutor(cores()) as pool:  # each tile written into the maps by its thread: nothing to join
            list(pool.map(lambda ij: tiles.fill(prep, *ij), [(i, j) for i in range(ny) for j in range(nx)]))
        return tiles.maps
    return dict(zip(names, run_tile(prep.estimator, prep.image, prep.params, prep.inputs)))


def _is_stack(image) -> bool:
    """Return whether `image` has axes before its two image axes (a 3-D array of 3 or 4 last is RGB, not a stack)."""
    ndim = getattr(image, "ndim", None)
    if ndim is None:
        ndim = np.ndim(image)
    shape = getattr(image, "shape", np.shape(image))
    return ndim > 3 or (ndim == 3 and shape[-1] not in (3, 4))


def _estimate_stack(image, method, chunks, channel_axis: int | None, params: dict) -> dict:
    """Map every plane of a stack as the 2-D call would, and stack each output back (lazily for dask)."""
    import warnings

    if not hasattr(image, "ndim") or not hasattr(image, "shape"):
        image = np.asarray(image)
    lazy = is_dask(image)
    if lazy:
        import dask.array as xp
    else:
        xp = np
    if channel_axis is not None:
        if not -image.ndim <= channel_axis < image.ndim:
            raise ValueError(f"channel_axis {channel_axis} is not an axis of an image of shape {tuple(image.shape)}")
        if image.shape[channel_axis] not in (3, 4):
            raise ValueError(f"channel_axis {channel_axis} has {image.shape[channel_axis]} channels; colour needs "
                             "3 (RGB) or 4 (RGBA)")
        image = xp.moveaxis(image, channel_axis, -1)
    lead = tuple(image.shape[:image.ndim - (3 if channel_axis is not None else 2)])
    plane = tuple(image.shape[len(lead):len(lead) + 2])
    if lead and min(plane) < MIN_SIDE:
        raise ValueError(f"image has shape {tuple(image.shape)}: a stack of {' x '.join(map(str, lead))} planes of "
                         f"{plane[0]} x {plane[1]} px, too small to map (at least {MIN_SIDE} x {MIN_SIDE} px); "
                         "for colour channels, give channel_axis")
    if not lead:  # one colour image, its channel axis said: no guess, no warning
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*treated as RGB", category=UserWarning)
            return _maps(image, method, chunks, params)
    est = get(method)
    others = {name: params.pop(name) for name in est.inputs if name in params}
    for name, other in others.items():
        if tuple(np.shape(other)) != tuple(image.shape):
            raise ValueError(f"{name} has shape {tuple(np.shape(other))}, the stack {tuple(image.shape)}; they "
                             "must agree")
    planes = []
    for index in np.ndindex(*lead):
        with warnings.catch_warnings():
            if channel_axis is not None:
                warnings.filterwarnings("ignore", message=".*treated as RGB", category=UserWarning)
            planes.append(_maps(image[index], method, chunks,
                                {**params, **{name: other[index] for name, other in others.items()}}))
    return {name: xp.stack([p[name] for p in planes]).reshape(lead + tuple(planes[0][name].shape))
            for name in est.outputs}


class TileProgress(NamedTuple):
    """Progress of :func:`estimate_tiles`: tiles done of total, the maps so far and the parameters used.

    Examples
    --------
    >>> import blurmap
    >>> from blurmap import synthetic
    >>> step = next(blurmap.estimate_tiles(synthetic.sem_sample((128, 128), seed=1)[0]))
    >>> step.done, step.total, step.sigma.shape
    (1, 1, (128, 128))
    """

    done: int
    total: int
    sigma: np.ndarray
    confidence: np.ndarray
    params: dict
    outputs: dict | None = None  # every output by name (sigma, ..., confidence), the same arrays


def tile_count(shape: tuple[int, int], method: str | None = None, *, chunk: int = DEFAULT_CHUNK,
               **params) -> int:
    """Return how many tiles :func:`estimate_tiles` computes for an image of this shape.

    Parameters
    ----------
    shape : tuple of int
        px; the image's (rows, columns).
    method : str, optional
        A registered estimator's name; the default if None.
    chunk : int
        px; the tile side asked for.
    **params
        The estimator's parameters (they set the halo, hence the smallest tile).

    Returns
    -------
    int
        The number of tiles.

    Examples
    --------
    >>> import blurmap
    >>> blurmap.tile_count((2048, 3000), chunk=1024)
    6
    """
    est = get(method)
    checked = est.check({k: v for k, v in params.items() if k not in est.inputs})
    plan = plan_chunks(tuple(shape[:2]), (chunk, chunk), est.halo_for(checked), est.align_for(checked))
    return len(plan[0]) * len(plan[1])


def estimate_tiles(image, method: str | None = None, *, chunk: int = DEFAULT_CHUNK,
                   **params) -> Iterator[TileProgress]:
    """Yield a TileProgress once per tile computed, so a caller can report progress and stop.

    Parameters
    ----------
    image : array_like or dask array
        As for :func:`estimate`.
    method : str, optional
        A registered estimator's name; the default if None.
    chunk : int
        px; the side of a tile (enlarged to twice the halo where needed).
    **params
        The estimator's parameters, as for :func:`estimate`.

    Yields
    ------
    TileProgress
        Tiles done and total, the sigma and confidence arrays (float32, filled in place as tiles
        complete, whole after the last yield) and the parameters used, image-wide ones filled.

    Returns
    -------
    None
        A generator; its maps equal :func:`estimate`'s.

    Examples
    --------
    >>> import blurmap
    >>> from blurmap import synthetic
    >>> image = synthetic.sem_sample((200, 260), seed=1)[0]
    >>> steps = list(blurmap.estimate_tiles(image, chunk=136))
    >>> steps[-1].done == steps[-1].total == blurmap.tile_count(image.shape, chunk=136)
    True
    """
    prep = prepare(image, method, **params)
    tiles = _tiles(prep, (chunk, chunk))  # a lazy image's tiles come through its graph
    maps = tiles.maps
    sigma, conf = maps["sigma"], maps["confidence"]
    ny, nx = tiles.count()
    todo = [(i, j) for i in range(ny) for j in range(nx)]
    workers = cores()
    with ThreadPoolExecutor(workers) as pool:  # a tile per core at a time, in order, each yielded as it ends
        running, done = {}, 0
        try:
            while todo or running:
                while todo and len(running) < workers:
                    i, j = todo.pop(0)
                    running[pool.submit(tiles.fill, prep, i, j)] = (i, j)
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    running.pop(future)
                    future.result()
                    done += 1
                    yield TileProgress(done, ny * nx, sigma, conf, prep.reported, maps)
        finally:  # closed early (cancelled): start no further tile; those running end with the pool
            for future in running:
                future.cancel()
