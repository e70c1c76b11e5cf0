"""An npe2 writer for sigma layers: the map, its confidence and its metadata, as OME-Zarr or TIFF."""

from __future__ import annotations

from pathlib import Path

from ..io.maps import write_map

NO_UNITS = ("pixel", "px", "", "None")  # napari's units that say no physical size


def write_sigma(path: str, data, meta: dict) -> list[str]:
    """Write one sigma layer (napari's single-layer writer); return the path written, or [] if it is not a sigma map.

    A lazy map (the multiscale layer of a large image) is refused with a message: its full
    resolution is written by ``blurmap estimate``, chunk by chunk, not from the GUI thread.
    """
    info = dict((meta.get("metadata") or {}).get("blurmap") or {})
    if not info:
        return []  # not a blurmap map: another writer may take it
    if info.get("pyramid") or meta.get("multiscale"):
        raise ValueError("this sigma layer is a lazy map of a large image: write it with `blurmap estimate "
                         f"{info.get('source', 'IMAGE')} OUTPUT.zarr`, chunk by chunk")
    confidence = info.pop("confidence", None)
    ndim = data.ndim
    units = [str(u) for u in (meta.get("units") or ())]
    unit = units[-1] if units and units[-1] not in NO_UNITS else None
    scale = tuple(float(v) for v in (meta.get("scale") or (1.0,) * ndim)[-2:])
    written = write_map(Path(path), data, confidence, info, scale=scale, unit=unit, overwrite=True)
    return [str(written)]
