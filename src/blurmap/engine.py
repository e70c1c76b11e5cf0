"""The dask engine: one estimator over a numpy image whole, or over a dask image chunk by chunk."""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from functools import partial
from typing import NamedTuple

import numpy as np
from scipy import ndimage as ndi

from ._validate import MIN_SIDE, IntensityScale, as_2d_grey, intensity_scale, is_dask, normalised, to_grey
from .noise import SAMPLE, sample_origins, sample_regions
from .registry import Estimator, get

__all__ = ["estimate", "estimate_tiles", "tile_count", "TileProgress", "lazy_maps"]

DEFAULT_CHUNK = 1024  # px; chunk side used when a numpy image is computed tile by tile
THREAD_CHUNK = 2048  # px; tiles a large numpy image is cut into to keep every core busy (halos cost under 15%)
THREAD_CHUNK_HALOS = 8  # or this many halos a side, if more: a tile's halo then costs under a third of its work
SAMPLED_CHUNKS_MAX = 256 << 20  # bytes; a dask image whose noise samples lie in more chunks has them read before


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


class Prepared(NamedTuple):
    """An image ready for an estimator: the normalised float32 image, the estimator, its parameters, its other inputs.

    `params` are what the estimator computes with (in the normalised image's units); `reported`
    are the same in the image's own units, as a user gives and reads them.
    """

    image: object
    estimator: Estimator
    params: dict
    inputs: dict
    scale: IntensityScale
    reported: dict
    raw: tuple  # (grey image, scale), then (other image, its scale) per input: what a dask block normalises itself
    # (an in-memory image's first pair is the normalised image and None: its grey plane may have been scaled in place)


def prepare(image, method: str | None = None, *, reader=None, **params) -> Prepared:
    """Check everything, normalise the image's intensities, and fill image-wide parameters once, before any chunk.

    The image enters as (value - loc) / scale, loc and scale from the 0.1th and 99.9th percentiles
    of its sampled pixels, so that every estimator sees the same numbers whatever the image's gain
    and offset; another image a method needs is normalised by its own loc and scale. Parameters
    in image units are converted to the normalised units and back (see Param.scaling). A lazy
    image's samples are read once, from `reader` if given (as in ``lazy_maps``), else through dask.
    """
    est = get(method)
    arrays = {name: params.pop(name, None) for name in est.inputs}
    checked = est.check(params)
    grey = as_2d_grey(image)
    regions = None  # a lazy image is read once where the samples lie, the same pixels as its grey plane's
    if reader is not None:
        regions = [to_grey(w) for w in sample_regions(reader)]
    elif is_dask(grey):
        regions = sample_regions(grey)
    scale = intensity_scale(sample_regions(grey) if regions is None else regions)
    if is_dask(grey):
        img, raw = normalised(grey, scale), [(grey, scale)]
    else:  # a grey plane made here (from integers, RGB...) is scaled where it lies: one copy of the image, not two
        img = normalised(grey, scale, in_place=not np.may_share_memory(grey, image))
        raw = [(img, None)]
    other_scale = None
    for name, array in arrays.items():
        if array is None:
            raise TypeError(f"method {est.name!r} needs the image {name!r} (e.g. {name}=array)")
        other = as_2d_grey(array, name=name)
        if other.shape != img.shape:
            raise ValueError(f"{name} has shape {other.shape}, the image {img.shape}; they must agree")
        other_scale = intensity_scale(sample_regions(other), name=name)
        arrays[name] = normalised(other, other_scale)
        raw.append((other, other_scale))
    inner = _computed_params(est, checked, scale, img, None if regions is None else [normalised(r, scale)
                                                                                     for r in regions],
                             other_scale, arrays)
    return Prepared(img, est, inner, arrays, scale, _to_image(est, inner, scale, other_scale), tuple(raw))


def _computed_params(est: Estimator, checked: dict, scale: IntensityScale, image, regions: list | None,
                     other_scale: IntensityScale | None = None, inputs: dict | None = None) -> dict:
    """Return the parameters `est` computes with: `checked` (image units) in the normalised image's units, the
    image-wide ones (noise) filled by its preparation, from `regions` (the normalised image's noise samples) if given,
    else from `image` (only where the preparation samples it)."""
    inner = _to_normalised(est, checked, scale, other_scale)
    if est.prepare is not None:
        inner = est.prepare(image, inner, regions=regions, **(inputs or {}))
    return inner


def _to_normalised(est: Estimator, params: dict, scale: IntensityScale, other: IntensityScale | None) -> dict:
    """Return `params` (image units) as the normalised images see them (see Param.scaling)."""
    out = dict(params)
    for p in est.params:
        value = out.get(p.name)
        if not p.scaling or value is None:
            continue
        if p.scaling == "gain":  # image = gain * other + offset, both normalised by their own loc and scale
            out[p.name] = float(value * other.scale / scale.scale)
        elif p.scaling == "offset":
            if params.get("gain") is None:
                raise ValueError(f"give gain as well when you give {p.name} (in image units, it depends on the gain)")
            out[p.name] = float((value + params["gain"] * other.loc - scale.loc) / scale.scale)
        else:
            out[p.name] = float(scale.from_image(value, p.scaling))
    return out


def _to_image(est: Estimator, params: dict, scale: IntensityScale, other: IntensityScale | None) -> dict:
    """Return normalised `params` in image units: the inverse of _to_normalised."""
    out = dict(params)
    for p in est.params:
        value = out.get(p.name)
        if not p.scaling or value is None:
            continue
        if p.scaling == "gain":
            out[p.name] = float(value * scale.scale / other.scale)
        elif p.scaling == "offset":
            gain = params["gain"] * scale.scale / other.scale
            out[p.name] = float(value * scale.scale + scale.loc - gain * other.loc)
        else:
            out[p.name] = float(scale.to_image(value, p.scaling))
    return out


def run_tile(est: Estimator, tile: np.ndarray, params: dict, inputs: dict | None = None,
             block: tuple[slice, slice] | None = None) -> tuple[np.ndarray, ...]:
    """Return `est`'s maps (its outputs: sigma, ..., confidence) of the part `block` (all if None) of one float32 tile;
    unknown (NaN, confidence 0) near non-finite pixels.

    A NaN or infinite pixel (of the tile or of another input) is unknown: every map pixel whose
    halo reaches it is NaN with confidence 0, and every other pixel is what it would be whatever
    value the unknown pixel held (by the halo's definition). So unknown pixels stay local, and a
    tile gives the same numbers as the whole image.
    """
    inputs = inputs or {}
    block = block or (slice(None), slice(None))
    part = {"block": block} if est.crops else {}

    def maps_of(*args, **kwargs) -> tuple[np.ndarray, ...]:
        maps = tuple(est.func(*args, **kwargs, **part))
        return maps if est.crops else tuple(m[block] for m in maps)

    bad = ~np.isfinite(tile)
    for other in inputs.values():
        bad |= ~np.isfinite(other)
    if not bad.any():
        return maps_of(tile, **params, **inputs)
    shape = bad[block].shape
    if bad.all():
        return tuple(np.full(shape, np.nan, np.float32) for _ in est.outputs[:-1]) + (np.zeros(shape, np.float32),)

    def filled(a: np.ndarray) -> np.ndarray:  # any value serves: it reaches only pixels that are masked below
        return np.where(bad, np.float32(np.mean(a[~bad])), a).astype(np.float32)

    *maps, conf = maps_of(filled(tile), **params, **{k: filled(v) for k, v in inputs.items()})
    reach = est.halo_for(params)
    near = ndi.maximum_filter(bad, size=2 * reach + 1, mode="constant")[block]
    return tuple(np.where(near, np.nan, m).astype(np.float32) for m in maps) + (
        np.where(near, 0.0, conf).astype(np.float32),)


def _window_block(*, reader, shape: tuple[int, int], halo: int, method: str, params: dict, scale: IntensityScale,
                  block_info=None) -> np.ndarray:
    """Return one block's (h, w, outputs) float32 maps (sigma, ..., confidence), its window and halo read straight from
    `reader`."""
    (y0, y1), (x0, x1) = block_info[None]["array-location"][:2]
    window, block = _halo_window(slice(y0, y1), slice(x0, x1), halo, shape)
    tile = normalised(to_grey(np.asarray(reader[window])), scale)  # as prepare() normalised the whole image
    return np.stack(run_tile(get(method), tile, params, block=block), axis=-1)


def _halo_window(ys: slice, xs: slice, halo: int, shape: tuple[int, int]) -> tuple[tuple[slice, slice], tuple[slice, slice]]:
    """Return the window of the block ys, xs and `halo` px around it, clipped at the image's edges (what each of
    ``_lazy``'s blocks computes on), and where the block lies within that window."""
    top, left = max(ys.start - halo, 0), max(xs.start - halo, 0)
    window = (slice(top, min(ys.stop + halo, shape[0])), slice(left, min(xs.stop + halo, shape[1])))
    return window, (slice(ys.start - top, ys.stop - top), slice(xs.start - left, xs.stop - left))


def _tile_with_halo(prep: Prepared, ys: slice, xs: slice, halo: int) -> list[np.ndarray]:
    """Return the maps (sigma, ..., confidence) of the block ys, xs of an in-memory prepared image, computed on it and
    its halo: ``_lazy``'s block, without building a dask graph for it."""
    window, block = _halo_window(ys, xs, halo, prep.image.shape)
    return list(run_tile(prep.estimator, prep.image[window], prep.params, {k: a[window] for k, a in prep.inputs.items()},
                         block=block))


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


def _lazy(prep: Prepared, chunks: tuple[int, int] | None, reader=None):
    """Return a lazy (H, W, outputs) float32 dask array of the estimator's outputs (sigma, ..., confidence), chunk by chunk.

    With `reader` (an object whose [rows, cols] gives the image's own pixels as numpy, e.g.
    io.Source.planes), each block is one task that reads its window and halo itself: no halo is
    exchanged between blocks, so a cluster's workers share nothing, and the results are the same.
    """
    import dask.array as da

    est, params = prep.estimator, prep.params
    # each block normalises its own tile (no normalised copy is held between tasks); scale None: normalised already
    (img, _), *others = prep.raw
    scales = [scale for _, scale in prep.raw]
    halo = est.halo_for(params)
    if not is_dask(img):
        img = da.from_array(img, chunks=chunks or (DEFAULT_CHUNK, DEFAULT_CHUNK), name=False)  # no hash of the pixels
    requested = chunks or tuple(c[0] for c in img.chunks)
    plan = plan_chunks(img.shape, requested, halo, est.align_for(params))
    if reader is not None and not prep.inputs:
        return da.map_blocks(_window_block, reader=reader, shape=img.shape, halo=halo, method=est.name,
                             params=dict(params), scale=prep.scale, chunks=plan + ((len(est.outputs),),),
                             dtype=np.float32,
                             meta=np.empty((0, 0, 0), dtype=np.float32))
    arrays = [img] + [da.asarray(other) for other, _ in others]
    arrays = [a.rechunk(plan) if a.chunks != plan else a for a in arrays]
    return _neighbourhood_maps(arrays, est.name, dict(params), list(prep.inputs), scales, halo, len(est.outputs))


def _neighbourhood_maps(arrays: list, method: str, params: dict | None, names: list[str], scales: list | None,
                        halo: int, outputs: int, prepared: tuple[str, dict] | None = None):
    """Return the lazy (H, W, outputs) maps of `arrays` (the image, then the other inputs `names`, chunked alike), one
    task per block that takes its chunk and its eight neighbours (clipped at the grid's edges) whole and copies its
    window out of them once (dask's overlap would slice each neighbour in a task and join the slices in another).

    The graph is written out (``HighLevelGraph.from_collections``): views of the chunk grid would add a task per
    neighbour and block. `scales` normalise each array's window (None: normalised already). With `prepared` (a key
    and the tasks it needs), each block takes the parameters and the image's scale from that key's result instead.
    """
    import dask.array as da
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    image = arrays[0]
    name = f"{method}-maps-{tokenize([a.name for a in arrays], method, params, scales, halo, prepared and prepared[0])}"
    (ny, nx), starts = image.numblocks, [np.cumsum((0,) + c) for c in image.chunks]
    graph = dict(prepared[1]) if prepared else {}
    for i in range(ny):
        for j in range(nx):
            location = tuple((int(s[k]), int(s[k + 1])) for s, k in zip(starts, (i, j)))
            around = [(min(max(i + dy, 0), ny - 1), min(max(j + dx, 0), nx - 1)) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
            where = {"location": location, "shape": image.shape, "halo": halo, "method": method}
            keys = [(a.name, *ij) for a in arrays for ij in around]
            if prepared:
                graph[(name, i, j, 0)] = (partial(_prepared_block_maps, **where), prepared[0], *keys)
            else:
                graph[(name, i, j, 0)] = (partial(_block_maps, **where, params=params, names=names, scales=scales), *keys)
    layers = HighLevelGraph.from_collections(name, graph, dependencies=arrays)
    return da.Array(layers, name, chunks=image.chunks + ((outputs,),), meta=np.empty((0, 0, 0), dtype=np.float32))


def _sampled_maps(grey, est: Estimator, checked: dict, chunks: tuple[int, int] | None):
    """Return the lazy (H, W, outputs) maps of a dask grey plane whose preparation is a task of the same graph, or None
    where its noise samples lie in chunks of more than SAMPLED_CHUNKS_MAX bytes.

    ``prepare`` reads a lazy image's noise samples in a computation of their own, then fits the
    intensity scale and the noise model on one core before the first block can start. Here each
    sample is a task that cuts its window out of the chunks the blocks read too (each chunk is read
    once), one task fits the scale and the parameters from them (``_prepared``), and every block
    task takes its result: the same numbers as ``prepare`` then ``_lazy``. A chunk under a sample
    is then held from the start until the blocks that read it are done, hence the limit.
    """
    from dask.base import tokenize

    halo = est.halo_for(checked)
    plan = plan_chunks(grey.shape, chunks or tuple(c[0] for c in grey.chunks), halo, est.align_for(checked))
    img = grey.rechunk(plan) if grey.chunks != plan else grey
    starts = [np.cumsum((0,) + c) for c in img.chunks]
    name = f"{est.name}-prepared-{tokenize(img.name, est.name, checked)}"
    samples, under = {}, set()
    for k, (y, x) in enumerate(sample_origins(tuple(img.shape))):
        rows, cols = (_covering(s, a, min(a + SAMPLE, int(s[-1]))) for s, a in zip(starts, (y, x)))
        keys = [(img.name, i, j) for i, _ in rows for j, _ in cols]
        samples[(f"{name}-sample", k)] = (partial(_sample_window, rows=[r for _, r in rows], cols=[c for _, c in cols]),
                                          *keys)
        under.update(keys)
    held = sum(int(img.chunks[0][i]) * int(img.chunks[1][j]) for _, i, j in under) * img.dtype.itemsize
    if held > SAMPLED_CHUNKS_MAX:
        return None
    samples[name] = (partial(_prepared, method=est.name, checked=checked), *samples)
    return _neighbourhood_maps([img], est.name, None, [], None, halo, len(est.outputs), prepared=(name, samples))


def _covering(starts: np.ndarray, begin: int, end: int) -> list[tuple[int, slice]]:
    """Return the chunks (index, the slice within it) that px [begin, end) of an axis whose chunks start at `starts`
    (the axis's length last) lie in."""
    first, last = np.searchsorted(starts, begin, side="right") - 1, np.searchsorted(starts, end, side="left") - 1
    return [(int(i), slice(max(begin - int(starts[i]), 0), min(end, int(starts[i + 1])) - int(starts[i])))
            for i in range(first, last + 1)]


def _sample_window(*pieces: np.ndarray, rows: list[slice], cols: list[slice]) -> np.ndarray:
    """Return the window that `pieces` (chunks, row-major over len(rows) x len(cols)) hold, each cut by its slices."""
    parts = [[pieces[i * len(cols) + j][r, c] for j, c in enumerate(cols)] for i, r in enumerate(rows)]
    return parts[0][0] if len(pieces) == 1 else np.block(parts)


def _prepared(*windows: np.ndarray, method: str, checked: dict) -> tuple[dict, IntensityScale]:
    """Return (the parameters to compute with, the intensity scale) from a lazy image's noise samples: ``prepare``'s
    work on them, as a task of the maps' graph."""
    scale = intensity_scale(list(windows))
    return _computed_params(get(method), checked, scale, None, [normalised(w, scale) for w in windows]), scale


def _prepared_block_maps(prepared: tuple[dict, IntensityScale], *pieces: np.ndarray, **where) -> np.ndarray:
    """Return ``_block_maps`` of a plane whose parameters and intensity scale `prepared` holds (``_prepared``'s)."""
    params, scale = prepared
    return _block_maps(*pieces, params=params, names=[], scales=[scale], **where)


def _block_maps(*pieces: np.ndarray, location, shape: tuple[int, int], halo: int, method: str, params: dict,
                names: list[str], scales: list) -> np.ndarray:
    """Return one block's (h, w, outputs) float32 maps from its chunk and its neighbours' (nine per array, in
    ``_window``'s order), each array's window normalised by its scale."""
    tiles = [_window(pieces[9 * k:9 * k + 9], location, halo, shape) for k in range(len(scales))]
    tiles = [t if sc is None else normalised(t, sc) for t, sc in zip(tiles, scales)]
    _, block = _halo_window(slice(*location[0]), slice(*location[1]), halo, shape)
    return np.stack(run_tile(get(method), tiles[0], params, dict(zip(names, tiles[1:])), block=block), axis=-1)


def _window(pieces, location, halo: int, shape: tuple[int, int]) -> np.ndarray:
    """Return the window ``_halo_window`` gives the block at `location` ((y0, y1), (x0, x1), px), copied out of the
    chunks around it: (dy, dx) in row-major order over {-1, 0, 1}**2, the block's own at the centre, a chunk beyond the
    grid's edges its nearest; a neighbour must hold `halo` px or more."""
    (y0, y1), (x0, x1) = location
    (rows, cols), _ = _halo_window(slice(y0, y1), slice(x0, x1), halo, shape)
    heights = (y0 - rows.start, y1 - y0, rows.stop - y1)  # px taken from the neighbours above, the block, below
    widths = (x0 - cols.start, x1 - x0, cols.stop - x1)
    out = np.empty((rows.stop - rows.start, cols.stop - cols.start), dtype=pieces[4].dtype)
    top = 0
    for r, h in enumerate(heights):
        left = 0
        for c, w in enumerate(widths):
            piece = pieces[3 * r + c]
            ys = slice(piece.shape[0] - h, None) if r == 0 else slice(0, h)
            xs = slice(piece.shape[1] - w, None) if c == 0 else slice(0, w)
            if h and w:
                out[top:top + h, left:left + w] = piece[ys, xs]
            left += w
        top += h
    return out


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
        those hold more than ``engine.SAMPLED_CHUNKS_MAX``, 256 MB: they are then read first).
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
