"""An npe2 reader for large TIFF and OME-Zarr files: opened lazily, as a multiscale layer; small files are left to napari."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io import formats as io

LARGE_PIXELS = 8192 * 8192  # px; TIFFs below this (and without a pyramid) are left to napari's own reader
DISPLAY_MIN = 1024  # px; a lazy display pyramid stops at the first level whose longer side is at most this


def _tiff_is_ours(path: Path) -> bool:
    """Return whether a TIFF is large or pyramidal; reads only its header."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            return len(series.levels) > 1 or int(np.prod(series.shape[-2:] if series.shape[-1] > 4
                                                         else series.shape[-3:-1])) >= LARGE_PIXELS
    except Exception:  # not a TIFF tifffile can parse: napari's readers may know better
        return False


def _zarr_is_ours(path: Path) -> bool:
    """Return whether a Zarr store is an OME-Zarr image (its multiscales metadata napari's reader ignores)."""
    import zarr

    try:
        node = zarr.open(str(path), mode="r")
    except Exception:
        return False
    return isinstance(node, zarr.Group) and io.multiscales_entry(dict(node.attrs)) is not None


def get_reader(path):
    """Return a reader for one large TIFF or one OME-Zarr, or None so napari's own readers take the file."""
    if isinstance(path, (list, tuple)):
        if len(path) != 1:
            return None
        path = path[0]
    p = Path(path)
    if io.is_zarr(p):
        return read if _zarr_is_ours(p) else None
    if p.suffix.lower() in io.TIFF_SUFFIXES and p.is_file():
        return read if _tiff_is_ours(p) else None
    return None


def display_levels(level0) -> list:
    """Return a lazy display pyramid of a 2-D dask array: every 2**k-th pixel, down to DISPLAY_MIN px."""
    levels = [level0]
    while max(levels[-1].shape[:2]) > DISPLAY_MIN:
        levels.append(levels[-1][::2, ::2])
    return levels


def read(path) -> list[tuple]:
    """Return one lazy image layer: the file's own pyramid, or a strided display pyramid if it has none."""
    path = path[0] if isinstance(path, (list, tuple)) else path
    src = io.open_image(Path(path))
    levels = src.levels if len(src.levels) > 1 else display_levels(src.levels[0])
    smallest = np.asarray(levels[-1], dtype=np.float64)  # a few megapixels at most
    finite = smallest[np.isfinite(smallest)]
    limits = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if limits[0] == limits[1]:
        limits = (limits[0], limits[0] + 1.0)
    meta = {"name": src.name, "multiscale": len(levels) > 1, "contrast_limits": limits, "scale": src.scale,
            "metadata": {"blurmap_source": str(path), "unit": src.unit}}
    return [(levels if len(levels) > 1 else levels[0], meta, "image")]
