"""One tile's maps: an estimator run on a float32 tile, unknown near its non-finite pixels."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from ..registry import Estimator
from ._chunks import _halo_window
from ._preparation import Prepared


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


def _tile_with_halo(prep: Prepared, ys: slice, xs: slice, halo: int) -> list[np.ndarray]:
    """Return the maps (sigma, ..., confidence) of the block ys, xs of an in-memory prepared image, computed on it and
    its halo: ``_lazy``'s block, without building a dask graph for it."""
    window, block = _halo_window(ys, xs, halo, prep.image.shape)
    return list(run_tile(prep.estimator, prep.image[window], prep.params, {k: a[window] for k, a in prep.inputs.items()},
                         block=block))
