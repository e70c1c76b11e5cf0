"""The dask engine: one estimator over a numpy image whole, or over a dask image chunk by chunk."""

from __future__ import annotations

from typing import Iterator, NamedTuple

import numpy as np

from ._validate import as_2d_float
from .registry import Estimator, get

DEFAULT_CHUNK = 1024  # px; chunk side used when a numpy image is computed tile by tile


def _is_dask(a) -> bool:
    return type(a).__module__.startswith("dask")


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


def plan_chunks(shape: tuple[int, int], requested: tuple[int, int], est: Estimator, halo: int):
    """Return chunks the engine can use: at least twice the halo, on the estimator's grid (px)."""
    out = []
    for n, c in zip(shape, requested):
        size = max(int(c), 2 * halo, est.align)
        size = -(-size // est.align) * est.align
        out.append(_axis_chunks(int(n), size, halo))
    return tuple(out)


def prepare(image, method: str | None = None, **params):
    """Return (float32 image, estimator, checked parameters with image-wide values filled in)."""
    est = get(method)
    checked = est.check(params)
    img = as_2d_float(image)
    if isinstance(img, np.ndarray):
        if img.max() == img.min():
            raise ValueError("the image is constant: it holds no texture, so its blur cannot be measured")
    if est.prepare is not None:
        checked = est.prepare(img, checked)
    return img, est, checked


def _lazy(img, est: Estimator, params: dict, chunks: tuple[int, int] | None):
    """Return a lazy (H, W, 2) float32 dask array of sigma and confidence computed chunk by chunk."""
    import dask.array as da

    halo = est.halo_for(params)
    if not _is_dask(img):
        img = da.from_array(img, chunks=chunks or (DEFAULT_CHUNK, DEFAULT_CHUNK))
    requested = chunks or tuple(c[0] for c in img.chunks)
    plan = plan_chunks(img.shape, requested, est, halo)
    if img.chunks != plan:
        img = img.rechunk(plan)

    def block(tile: np.ndarray) -> np.ndarray:
        sigma, conf = est.func(tile, **params)
        return np.stack([sigma, conf], axis=-1)

    # an axis held in one chunk has no neighbour to borrow from
    depth = {axis: halo if len(img.chunks[axis]) > 1 else 0 for axis in (0, 1)}
    padded = da.overlap.overlap(img, depth=depth, boundary="none")
    out = padded.map_blocks(block, new_axis=2, chunks=padded.chunks + ((2,),), dtype=np.float32,
                            meta=np.empty((0, 0, 0), dtype=np.float32))
    return da.overlap.trim_internal(out, {**depth, 2: 0}, boundary="none")


def estimate(image, method: str | None = None, *, return_confidence: bool = False,
             chunks: tuple[int, int] | None = None, **params):
    """Return the sigma map (float32, px for "px" methods) of a 2-D image, and its confidence if asked.

    A numpy image gives numpy arrays computed at once; a dask image gives lazy dask arrays
    computed chunk by chunk with each chunk's halo. `chunks` (px) rechunks a dask image.
    Parameters not given take the estimator's defaults (see ``blurmap.estimators()``).
    """
    img, est, checked = prepare(image, method, **params)
    if _is_dask(img):
        out = _lazy(img, est, checked, chunks)
        sigma, conf = out[..., 0], out[..., 1]
    else:
        sigma, conf = est.func(img, **checked)
    return (sigma, conf) if return_confidence else sigma


class TileProgress(NamedTuple):
    """Progress of ``estimate_tiles``: tiles done of total, the maps so far and the parameters used."""

    done: int
    total: int
    sigma: np.ndarray
    confidence: np.ndarray
    params: dict


def tile_count(shape: tuple[int, int], method: str | None = None, *, chunk: int = DEFAULT_CHUNK,
               **params) -> int:
    """Return how many tiles ``estimate_tiles`` computes for an image of this shape."""
    est = get(method)
    checked = est.check(params)
    plan = plan_chunks(tuple(shape[:2]), (chunk, chunk), est, est.halo_for(checked))
    return len(plan[0]) * len(plan[1])


def estimate_tiles(image, method: str | None = None, *, chunk: int = DEFAULT_CHUNK,
                   **params) -> Iterator[TileProgress]:
    """Yield a TileProgress once per tile computed, so a caller can report progress and stop.

    The arrays are filled in place as tiles complete and are whole after the last yield.
    Results equal ``estimate``'s; `params` holds image-wide values worked out (e.g. noise).
    """
    img, est, checked = prepare(image, method, **params)
    lazy = _lazy(img, est, checked, (chunk, chunk))
    sigma = np.empty(img.shape, dtype=np.float32)
    conf = np.empty(img.shape, dtype=np.float32)
    ny, nx = lazy.numblocks[:2]
    starts = [np.cumsum((0,) + c) for c in lazy.chunks[:2]]
    for i in range(ny):
        for j in range(nx):
            tile = lazy.blocks[i, j].compute(scheduler="threads")
            ys = slice(starts[0][i], starts[0][i + 1])
            xs = slice(starts[1][j], starts[1][j + 1])
            sigma[ys, xs] = tile[..., 0]
            conf[ys, xs] = tile[..., 1]
            yield TileProgress(i * nx + j + 1, ny * nx, sigma, conf, checked)
