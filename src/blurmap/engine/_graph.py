"""The dask graphs of a lazy image's maps: a task per block, with its chunk and its neighbours, or its own window."""

from __future__ import annotations

from functools import partial

import numpy as np

from .._validate import IntensityScale, is_dask, normalised, normalised_samples, to_grey
from ..noise import SAMPLE, sample_origins
from ..registry import Estimator, get
from ._chunks import DEFAULT_CHUNK, _halo_window, plan_chunks
from ._preparation import Prepared, _computed_params
from ._tile import run_tile

SAMPLED_CHUNKS_MAX = 256 << 20  # bytes; a dask image whose noise samples lie in more chunks has them read before


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


def _window_block(*, reader, shape: tuple[int, int], halo: int, method: str, params: dict, scale: IntensityScale,
                  block_info=None) -> np.ndarray:
    """Return one block's (h, w, outputs) float32 maps (sigma, ..., confidence), its window and halo read straight from
    `reader`."""
    (y0, y1), (x0, x1) = block_info[None]["array-location"][:2]
    window, block = _halo_window(slice(y0, y1), slice(x0, x1), halo, shape)
    tile = normalised(to_grey(np.asarray(reader[window])), scale)  # as prepare() normalised the whole image
    return np.stack(run_tile(get(method), tile, params, block=block), axis=-1)


def _neighbourhood_maps(arrays: list, method: str, params: dict | None, names: list[str], scales: list | None,
                        halo: int, outputs: int, prepared: tuple[str, dict] | None = None):
    """Return the lazy (H, W, outputs) maps of `arrays` (the image, then the other inputs `names`, chunked alike), one
    task per block that takes the chunks its window and halo lie in (its own and up to eight neighbours) whole and
    copies its window out of them once (dask's overlap would slice each neighbour in a task and join the slices in
    another).

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
            window, _ = _halo_window(slice(*location[0]), slice(*location[1]), halo, image.shape)
            rows, cols = (_covering(s, w.start, w.stop) for s, w in zip(starts, window))
            where = {"location": location, "shape": image.shape, "halo": halo, "method": method,
                     "rows": [r for _, r in rows], "cols": [c for _, c in cols]}
            keys = [(a.name, y, x) for a in arrays for y, _ in rows for x, _ in cols]
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
        samples[(f"{name}-sample", k)] = (partial(_window, rows=[r for _, r in rows], cols=[c for _, c in cols]), *keys)
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


def _window(*pieces: np.ndarray, rows: list[slice], cols: list[slice]) -> np.ndarray:
    """Return the window that `pieces` (the chunks ``_covering`` gives, row-major over len(rows) x len(cols)) hold, each
    cut by its slices."""
    parts = [[pieces[i * len(cols) + j][r, c] for j, c in enumerate(cols)] for i, r in enumerate(rows)]
    return parts[0][0] if len(pieces) == 1 else np.block(parts)


def _prepared(*windows: np.ndarray, method: str, checked: dict) -> tuple[dict, IntensityScale]:
    """Return (the parameters to compute with, the intensity scale) from a lazy image's noise samples: ``prepare``'s
    work on them, as a task of the maps' graph."""
    scale, regions = normalised_samples(list(windows))
    return _computed_params(get(method), checked, scale, None, regions), scale


def _prepared_block_maps(prepared: tuple[dict, IntensityScale], *pieces: np.ndarray, **where) -> np.ndarray:
    """Return ``_block_maps`` of a plane whose parameters and intensity scale `prepared` holds (``_prepared``'s)."""
    params, scale = prepared
    return _block_maps(*pieces, params=params, names=[], scales=[scale], **where)


def _block_maps(*pieces: np.ndarray, location, shape: tuple[int, int], halo: int, method: str, params: dict,
                names: list[str], scales: list, rows: list[slice], cols: list[slice]) -> np.ndarray:
    """Return one block's (h, w, outputs) float32 maps from the chunks its window lies in (per array, those `rows` and
    `cols` cut, in ``_window``'s order), each array's window normalised by its scale."""
    n = len(rows) * len(cols)
    tiles = [_window(*pieces[n * k:n * k + n], rows=rows, cols=cols) for k in range(len(scales))]
    tiles = [t if sc is None else normalised(t, sc) for t, sc in zip(tiles, scales)]
    _, block = _halo_window(slice(*location[0]), slice(*location[1]), halo, shape)
    return np.stack(run_tile(get(method), tiles[0], params, dict(zip(names, tiles[1:])), block=block), axis=-1)
