"""A sigma map held in memory, saved to OME-Zarr or TIFF with its metadata: whole, or not at all."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .. import __version__
from . import formats as io
from .pyramid import nanmean, pyramid_shapes
from .stream import _move_into_place, _remove, check_replaceable

__all__ = ["write_map"]

MAX_WRITE_PIXELS = 16384 * 16384  # px; a larger map is a lazy one: it is written by `blurmap estimate`, chunk by chunk


def _halved(a: np.ndarray) -> np.ndarray:
    """Return the 2 x 2 mean over the last two axes (NaN ignored), an odd last row or column dropped."""
    h, w = a.shape[-2] // 2, a.shape[-1] // 2
    lead = a.shape[:-2]
    flat = a[..., :2 * h, :2 * w].reshape((-1, 2 * h, 2 * w))
    return np.stack([nanmean(p.reshape(h, 2, w, 2), axis=(1, 3)) for p in flat]).reshape(lead + (h, w))


def write_map(path: Path | str, sigma, confidence=None, meta: dict | None = None, *,
              scale: tuple[float, float] = (1.0, 1.0), unit: str | None = None,
              axes: tuple[str, ...] | None = None, overwrite: bool = False) -> Path:
    """Write a sigma map (2-D or a stack) and its confidence as an OME-Zarr pyramid or a TIFF, with its metadata.

    Written under a hidden temporary name beside `path` and moved into place when whole; an
    existing file is replaced only with `overwrite` and only if blurmap wrote it.

    Parameters
    ----------
    path : str or Path
        ``NAME.zarr`` (OME-Zarr: sigma at the root, levels of 2 x 2 means, confidence in a
        ``confidence`` group) or ``NAME.tif`` (sigma, then confidence, as two series).
    sigma : array_like
        The map, px or score; (H, W) or with leading stack axes. NaN is unknown.
    confidence : array_like, optional
        Its confidence, 0 to 1, the same shape.
    meta : dict, optional
        What the map is (method, units, label, params, source): stored as the ``blurmap``
        attributes (Zarr) or the JSON description (TIFF), with the version.
    scale : tuple of float
        The size of a pixel along y, x, in `unit`.
    unit : str, optional
        An OME-NGFF space unit ("nanometer", "micrometer", ...), if known.
    axes : tuple of str, optional
        The names of the axes (y, x last); z, t, ... before them for a stack by default.
    overwrite : bool
        Replace a map blurmap wrote before.

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    ValueError, FileExistsError
        A shape that is not a map's, a confidence of another shape, a map larger than
        MAX_WRITE_PIXELS (write it with ``blurmap estimate``), a suffix other than .zarr or .tif,
        an existing file not blurmap's or not to be replaced.

    Examples
    --------
    >>> import tempfile, numpy as np, zarr
    >>> from pathlib import Path
    >>> path = Path(tempfile.mkdtemp()) / "map.zarr"
    >>> _ = write_map(path, np.ones((64, 80), np.float32), meta={"method": "learned"}, scale=(5.0, 5.0),
    ...               unit="nanometer")
    >>> root = zarr.open_group(str(path), mode="r")
    >>> root["0"].shape, root.attrs["blurmap"]["method"], root.attrs["multiscales"][0]["axes"][-1]["unit"]
    ((64, 80), 'learned', 'nanometer')
    """
    path = Path(path)
    sigma = np.asarray(sigma, dtype=np.float32)
    if sigma.ndim < 2:
        raise ValueError(f"a map has at least two axes (y, x), not shape {sigma.shape}")
    if sigma.size > MAX_WRITE_PIXELS:
        raise ValueError(f"the map holds {sigma.size} px: too large to write from memory; write it with "
                         "blurmap estimate, chunk by chunk")
    confidence = None if confidence is None else np.asarray(confidence, dtype=np.float32)
    if confidence is not None and confidence.shape != sigma.shape:
        raise ValueError(f"the confidence is {confidence.shape}, the map {sigma.shape}: they must match")
    axes = tuple(axes) if axes else io.stack_axes(sigma.ndim - 2) + ("y", "x")
    if len(axes) != sigma.ndim or axes[-2:] != ("y", "x"):
        raise ValueError(f"axes {axes} do not name a map of shape {sigma.shape} ending in y, x")
    if path.suffix.lower() not in (".zarr", ".tif", ".tiff"):
        raise ValueError(f"a map is saved as .zarr (OME-Zarr) or .tif, not {path.name!r}")
    check_replaceable(path, overwrite, how="overwrite=True")
    meta = {**(meta or {}), "blurmap_version": __version__}
    text = io.describe(meta)  # refuses metadata JSON cannot hold before anything is written
    tmp = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        if path.suffix.lower() == ".zarr":
            _write_zarr(tmp, sigma, confidence, meta, scale, unit, axes)
        else:
            _write_tiff(tmp, sigma, confidence, text)
        _move_into_place(tmp, path)
    except BaseException:
        _remove(tmp)
        raise
    return path


def _write_zarr(tmp: Path, sigma: np.ndarray, confidence, meta: dict, scale, unit, axes) -> None:
    import zarr

    root = zarr.open_group(str(tmp), mode="w", zarr_format=2)
    groups = [(root, sigma, meta)]
    if confidence is not None:
        groups.append((root.create_group("confidence"), confidence,
                       {**meta, "label": "confidence, 0 to 1", "value_unit": None}))
    shapes = pyramid_shapes(sigma.shape[-2:])
    lead = sigma.shape[:-2]
    for group, data, attrs in groups:
        level = data
        for k in range(len(shapes)):
            chunks = (1,) * len(lead) + tuple(min(512, n) for n in level.shape[-2:])
            group.create_array(str(k), shape=level.shape, chunks=chunks, dtype="float32", fill_value=np.nan)[...] = level
            if k + 1 < len(shapes):
                level = _halved(level)
        group.attrs.update({"multiscales": [io.ome_multiscales(attrs.get("label", "sigma"), len(shapes), scale, unit,
                                                               axes)], "blurmap": attrs})


def _write_tiff(tmp: Path, sigma: np.ndarray, confidence, description: str) -> None:
    """Write sigma, then its confidence, each a series of its own (tifffile's shaped metadata keeps them apart)."""
    import tifffile

    with tifffile.TiffWriter(tmp, bigtiff=sigma.nbytes > 2**31) as tif:
        tif.write(sigma, photometric="minisblack", description=description, compression="zlib",
                  tile=(256, 256) if min(sigma.shape[-2:]) >= 256 else None, metadata={})
        if confidence is not None:
            tif.write(confidence, photometric="minisblack", description="confidence, 0 to 1", compression="zlib",
                      tile=(256, 256) if min(sigma.shape[-2:]) >= 256 else None, metadata={})
