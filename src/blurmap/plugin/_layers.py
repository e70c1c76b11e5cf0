"""How a sigma map becomes a napari layer: name, placement, colours and metadata."""

from __future__ import annotations

import numpy as np
from qtpy.QtCore import QTimer

from ..registry import get

COLORMAP = "magma"  # perceptually uniform; dark = sharp, bright = blurred
UNIT_WORDS = {"nanometer": "nm", "micrometer": "µm", "millimeter": "mm", "angstrom": "Å"}  # napari's units, short


def pixel_size(layer) -> tuple[float, str]:
    """Return the layer's pixel size along its columns and that length's unit (napari's scale and units); 1 px if none."""
    unit = str(getattr(layer, "units", ("pixel",))[-1])
    if unit in ("pixel", "px", ""):
        return 1.0, "px"
    return float(layer.scale[-1]), UNIT_WORDS.get(unit, unit)


def in_length(median_px: float, layer) -> str:
    """Return ' = <median> <unit> (where the pixel size came from)' for a sigma in px over `layer`, or '' without a unit."""
    size, unit = pixel_size(layer)
    if unit == "px":
        return ""
    geometry = getattr(layer, "metadata", {}).get("blurmap_geometry") or {}
    where = geometry.get("source", "the layer's scale and units")
    return f" = {median_px * size:.3g} {unit} (pixel size {size:g} {unit}, from {where})"


def layer_name(source: str, method: str) -> str:
    """Return the name of the map layer computed from layer `source` with `method`: says sigma or relative."""
    if get(method).units == "px":
        return f"{source} sigma ({method})"
    return f"{source} {method} (relative)"


def contrast_limits(sigma: np.ndarray, units: str) -> tuple[float, float]:
    """Return display limits: 0 to the 99.5th percentile of the finite values (px or score)."""
    finite = sigma[np.isfinite(sigma)]
    high = float(np.percentile(finite, 99.5)) if finite.size else 1.0
    if units == "px":
        high = max(np.ceil(high * 2) / 2, 0.5)  # round up to half a pixel
    return 0.0, high if high > 0 else 1.0


def _placement(source) -> dict:
    """Return the source layer's scale, units, translate, rotate and shear: a map laid with them lies exactly over it."""
    return {"scale": source.scale, "units": source.units, "translate": source.translate, "rotate": source.rotate,
            "shear": source.shear}


def _metadata(source, method: str, units: str, params: dict, confidence, **extra) -> dict:
    """Return the map layer's metadata: method, parameters used, unit and label, source, confidence."""
    est = get(method)
    return {"blurmap": {"method": method, "params": dict(params), "unit": units, "label": est.label(),
                        "source": source.name, "confidence": confidence,
                        "higher_is_sharper": units == "relative" and est.higher_is_sharper, **extra}}


LATER_MS = 50  # ms; GUI work split in parts waits this long between them, so input and redraws get in between


def _only_colorbar(viewer, layer) -> None:
    """Show `layer`'s colour bar and hide every other map's: bars side by side do not say whose they are."""
    for other in viewer.layers:
        if other is not layer and "blurmap" in getattr(other, "metadata", {}) and hasattr(other, "colorbar"):
            other.colorbar.visible = False
    layer.colorbar.visible = True


def show_sigma(viewer, source, sigma: np.ndarray, confidence: np.ndarray, method: str, units: str,
               params: dict, limits: tuple[float, float] | None = None):
    """Add the sigma map over `source` in `viewer`, or update the layer a previous run made.

    `limits` (display range, from :func:`display` in a worker) are worked out here if not given.
    """
    name = layer_name(source.name, method)
    placement = _placement(source)
    metadata = _metadata(source, method, units, params, confidence)
    limits = contrast_limits(sigma, units) if limits is None else limits
    if name in viewer.layers:
        layer = viewer.layers[name]
        layer.data = sigma
        for key, value in placement.items():
            setattr(layer, key, value)
        layer.contrast_limits_range = limits
        layer.contrast_limits = limits
        layer.metadata = metadata
    else:
        layer = viewer.add_image(sigma, name=name, colormap=COLORMAP, contrast_limits=limits,
                                 blending="translucent", opacity=0.7, metadata=metadata, **placement)
    _only_colorbar(viewer, layer)
    return layer


def show_sigma_pyramid(viewer, source, pyramid):
    """Add a lazy multiscale sigma layer over `source` (a large image); its overview fills as it is computed."""
    est = get(pyramid.method)
    name = layer_name(source.name, est.name)
    if name in viewer.layers:
        viewer.layers.remove(name)
    metadata = _metadata(source, est.name, est.units, pyramid.params, None, pyramid=True)
    limits = (0.0, 4.0) if est.units == "px" else (0.0, 1.0)  # until the overview is known; never computed here
    multiscale = len(pyramid.levels) > 1
    data = pyramid.levels if multiscale else pyramid.levels[0]
    layer = viewer.add_image(data, multiscale=multiscale, name=name, colormap=COLORMAP, contrast_limits=limits,
                             blending="translucent", opacity=0.7, metadata=metadata, **_placement(source))
    # the colour bar's visuals and text are built on the GUI thread too (0.1 s): later, so that adding, drawing and
    # the bar are three short stalls rather than one long one
    QTimer.singleShot(LATER_MS, lambda: _only_colorbar(viewer, layer) if layer in viewer.layers else None)
    return layer


VECTOR_SPACING = 24  # px of the image between the axes drawn over a directional map (at least 12 across it)
AXIS_GAIN = 3.0  # an axis's length over the grid step, per unit of 1 - minor / major


def axis_vectors(major: np.ndarray, minor: np.ndarray, angle_deg: np.ndarray, spacing: int) -> np.ndarray:
    """Return napari Vectors data drawing the major axis on a grid: (N, 2, 2) start and projection (row, column).

    Each line is centred on its grid point, along the axis (0 degrees along rows, counter-clockwise
    as displayed), its length AXIS_GAIN x `spacing` x (1 - minor / major), at most 0.9 `spacing`:
    none where the blur is round.
    """
    rows, cols = np.meshgrid(np.arange(spacing // 2, major.shape[0], spacing),
                             np.arange(spacing // 2, major.shape[1], spacing), indexing="ij")
    rows, cols = rows.ravel(), cols.ravel()
    a, big, small = angle_deg[rows, cols], major[rows, cols], minor[rows, cols]
    keep = np.isfinite(a) & np.isfinite(big) & np.isfinite(small) & (big > 0)
    rows, cols, a, big, small = rows[keep], cols[keep], a[keep], big[keep], small[keep]
    length = spacing * np.minimum(AXIS_GAIN * (1 - small / big), 0.9)
    theta = np.deg2rad(a)
    step = np.stack([-np.sin(theta), np.cos(theta)], axis=1) * length[:, None]
    start = np.stack([rows, cols], axis=1) - step / 2
    return np.stack([start, step], axis=1).astype(np.float32)


AXIS_OUTPUTS = ("sigma_major", "sigma_minor", "angle_deg")  # outputs that together draw the blur's axes


def display(method: str, maps: dict) -> dict:
    """Return what laying a finished map needs that reads its pixels: run it in a worker, never on the GUI thread.

    Parameters
    ----------
    method : str
        The estimator.
    maps : dict
        Its outputs by name (sigma, ..., confidence).

    Returns
    -------
    dict
        ``median`` of the known sigma (None if none is known), ``limits`` (display range of
        sigma), ``extra_limits`` (of the further outputs in the map's unit), ``axes`` (Vectors
        data of the major axis when the outputs make an ellipse, else None), ``spacing`` (px of
        its grid) and ``ratio`` (median major / minor, or None).
    """
    est = get(method)
    sigma = maps["sigma"]
    finite = sigma[np.isfinite(sigma)]
    same_unit = [np.ravel(maps[n]) for n in est.extra_outputs if est.output_unit(n) == est.units and n in maps]
    out = {"median": float(np.median(finite)) if finite.size else None, "limits": contrast_limits(sigma, est.units),
           "extra_limits": contrast_limits(np.concatenate(same_unit), est.units) if same_unit else (0.0, 1.0),
           "axes": None, "spacing": None, "ratio": None}
    if all(name in maps for name in AXIS_OUTPUTS):
        major, minor = maps["sigma_major"], maps["sigma_minor"]
        out["spacing"] = spacing = max(4, min(VECTOR_SPACING, min(major.shape) // 12))
        out["axes"] = axis_vectors(major, minor, maps["angle_deg"], spacing)
        known = np.isfinite(major) & np.isfinite(minor) & (minor > 0)
        out["ratio"] = float(np.median(major[known] / minor[known])) if known.any() else None
    return out


def show_outputs(viewer, source, outputs: dict, method: str, params: dict, shown: dict) -> list:
    """Add a layer over `source` for each output beyond sigma and confidence, and the axes if they make an ellipse.

    Each further output (``Estimator.extra_outputs``) is a hidden image layer named for it, in its
    unit (an angle with a cyclic colour map over 0-180 degrees); when the outputs hold a major and
    minor sigma and an angle, a Vectors layer draws the major axis on a grid. `shown` is what
    :func:`display` worked out in the worker. Layers of an earlier run of the same method over the
    same source are replaced. Returns the layers added.
    """
    est = get(method)
    placement = _placement(source)
    added = []
    for name in est.extra_outputs:
        unit = est.output_unit(name)
        look = {"colormap": "twilight", "contrast_limits": (0.0, 180.0)} if unit == "deg" else \
            {"colormap": COLORMAP, "contrast_limits": shown["extra_limits"]}
        title = f"{source.name} {name} ({method})"
        if title in viewer.layers:
            viewer.layers.remove(title)
        added.append(viewer.add_image(outputs[name], name=title, blending="translucent", opacity=0.7, visible=False,
                                      metadata=_metadata(source, method, unit, params, outputs["confidence"],
                                                         output=name), **look, **placement))
    if shown["axes"] is not None:
        spacing = shown["spacing"]
        title = f"{source.name} astigmatism axes ({method})"
        if title in viewer.layers:
            viewer.layers.remove(title)
        added.append(viewer.add_vectors(shown["axes"], name=title, edge_color="cyan",
                                        edge_width=max(1.0, spacing / 12), vector_style="line",
                                        metadata={"blurmap_axes": {"spacing_px": spacing}}, **placement))
    return added
