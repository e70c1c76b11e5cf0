"""An npe2 reader for large TIFF and OME-Zarr files (opened lazily, as a multiscale layer) and for SEM TIFFs whose
metadata give the pixel size (laid with it as the layer's scale and units); other files are left to napari."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io import formats as io
from ..io.metadata import PixelGeometry, read_geometry

LARGE_PIXELS = 8192 * 8192  # px; TIFFs below this (without a pyramid or a pixel size) are left to napari's reader
SIZE_SOURCES = ("OME metadata", "Thermo Fisher / FEI tags", "Zeiss SmartSEM tags")  # geometry napari's reader ignores
DISPLAY_MIN = 1024  # px; a lazy display pyramid stops at the first level whose longer side is at most this


def _tiff_is_large(path: Path) -> bool:
    """Return whether a TIFF is large or pyramidal; reads only its header."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            return len(series.levels) > 1 or int(np.prod(series.shape[-2:] if series.shape[-1] > 4
                                                         else series.shape[-3:-1])) >= LARGE_PIXELS
    except Exception:  # not a TIFF tifffile can parse: napari's readers may know better
        return False


def _sem_geometry(path: Path) -> PixelGeometry | None:
    """Return the pixel size (and tilt) of a TIFF from its OME or SEM vendor metadata, or None."""
    found = read_geometry(path)
    return found if found is not None and found.source in SIZE_SOURCES else None


def _tiff_is_ours(path: Path) -> bool:
    """Return whether a TIFF is large, pyramidal, or says its pixel size in OME or SEM vendor tags."""
    return _tiff_is_large(path) or _sem_geometry(path) is not None


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


def display_levels(level0, axes: tuple[str, ...] = ("y", "x")) -> list:
    """Return a lazy display pyramid of a dask image or stack: every 2**k-th pixel along y and x, down to DISPLAY_MIN px."""
    y = axes.index("y")
    step = tuple(slice(None, None, 2) if i in (y, y + 1) else slice(None) for i in range(level0.ndim))
    levels = [level0]
    while max(levels[-1].shape[y:y + 2]) > DISPLAY_MIN:
        levels.append(levels[-1][step])
    return levels


def read(path) -> list[tuple]:
    """Return one lazy image layer: the file's own pyramid, or a strided display pyramid if it has none."""
    path = path[0] if isinstance(path, (list, tuple)) else path
    src = io.open_image(Path(path))
    levels = src.levels if len(src.levels) > 1 else display_levels(src.levels[0], src.axes)
    middle = tuple(n // 2 for n in src.stack_shape)  # a stack's middle plane sets the contrast
    smallest = np.asarray(levels[-1][middle], dtype=np.float64)  # a few megapixels at most
    finite = smallest[np.isfinite(smallest)]
    limits = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if limits[0] == limits[1]:
        limits = (limits[0], limits[0] + 1.0)
    lead = len(src.stack_shape)
    geometry = _sem_geometry(Path(path)) if Path(path).suffix.lower() in io.TIFF_SUFFIXES else None
    scale, unit = (tuple(src.scale), src.unit) if geometry is None else ((geometry.pixel_size,) * 2, geometry.unit)
    meta = {"name": src.name, "multiscale": len(levels) > 1, "contrast_limits": limits,
            "scale": (1.0,) * lead + scale, "axis_labels": src.axes[:lead + 2],
            "metadata": {"blurmap_source": str(path), "unit": unit}}
    if unit:
        meta["units"] = ("pixel",) * lead + (unit,) * 2
    if geometry is not None:  # the profile dock takes the stage tilt from here
        meta["metadata"]["blurmap_geometry"] = geometry._asdict()
    if len(levels) == 1 and int(np.prod(levels[0].shape)) < LARGE_PIXELS:
        return [(np.asarray(levels[0]), meta, "image")]  # small: whole, so napari never computes it on screen
    return [(levels if len(levels) > 1 else levels[0], meta, "image")]
