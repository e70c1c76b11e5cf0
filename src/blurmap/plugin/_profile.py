"""The focal-profile dock: sigma against distance from the focal line, for the selected sigma layer; for a
stack's map, its focus-quality curve (median sigma and quartiles against the plane)."""

from __future__ import annotations

from dataclasses import replace

import napari
import numpy as np
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from napari.qt.threading import create_worker
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QDoubleSpinBox, QHBoxLayout, QLabel, QPushButton, QSpinBox, QVBoxLayout, QWidget

from ..analysis.figures import plane_axes, profile_axes
from ..analysis.focal import FocalFit, focal, profile
from ..analysis.optics import tilt_optics
from ..analysis.summary import TILE, plane_curve, tile_table
from ._layers import pixel_size

CANVAS_MIN_HEIGHT = 260  # px
PLANES_AGAIN_MS = 1000  # a stack's curve is redrawn this often while its planes are still being computed


def focal_line_name(layer_name: str) -> str:
    """Return the name of the Shapes layer that shows a sigma layer's focal line."""
    return f"{layer_name} focal line"


def line_endpoints(shape: tuple[int, int], fit: FocalFit) -> np.ndarray:
    """Return the focal line's two end points (row, column) at the image's left and right edges."""
    w = shape[1]
    xs = np.array([0.0, w - 1.0])
    rows = fit.row_at_centre + np.tan(np.deg2rad(fit.angle_deg)) * (xs - (w - 1) / 2)
    return np.stack([rows, xs], axis=1)


def tiles_name(layer_name: str) -> str:
    """Return the name of the Points layer that holds a sigma layer's per-tile table."""
    return f"{layer_name} tiles"


def _tile_points(sigma: np.ndarray, confidence, tile: int, pixel: tuple[float, str], limits: tuple[float, float]):
    """Return (tile centres, features table, face colours) of a map's per-tile table, in a worker thread."""
    from matplotlib import colormaps
    from matplotlib.colors import to_rgba

    from ..analysis.figures import UNKNOWN_COLOUR

    conf = np.ones_like(sigma) if confidence is None else confidence
    rows = tile_table(sigma, conf, tile, *(pixel if pixel[1] != "px" else (None, None)))
    features = {key: np.array([row[key] for row in rows]) for key in rows[0]}
    centres = np.stack([features["centre_y_px"], features["centre_x_px"]], axis=1)
    low, high = limits
    shade = np.clip((features["median_px"] - low) / max(high - low, 1e-12), 0, 1)
    colours = colormaps["magma"](np.nan_to_num(shade))
    colours[~np.isfinite(features["median_px"])] = to_rgba(UNKNOWN_COLOUR)
    return centres, features, colours


def _fit(sigma: np.ndarray, others: dict | None = None):
    """Return (focal fit, profile, {name: profile of each other map}) of a sigma map (px), in a worker thread.

    Profiles only where a band is found; `others` are further maps of the same shape (a
    directional method's major and minor sigma), profiled against the same line.
    """
    fit = focal(sigma)
    if not fit.found:
        return fit, None, {}
    return fit, profile(sigma, fit), {name: profile(np.asarray(m, dtype=np.float64), fit)
                                      for name, m in (others or {}).items()}


class FocalProfileDock(QWidget):
    """Plot the focal profile of the selected sigma layer and draw its focal line over the image."""

    def __init__(self, napari_viewer: napari.viewer.Viewer):
        super().__init__()
        self._viewer = napari_viewer
        self._busy = False
        self.fit: FocalFit | None = None
        self.layer_name: str | None = None
        self.worker = None  # the last fit's worker
        self._request = None  # the selection whose fit is awaited
        self.figure = Figure(figsize=(5, 3.2), layout="constrained")
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(CANVAS_MIN_HEIGHT)  # docked under another dock, it must not collapse
        self.status = QLabel("select a sigma layer")
        self.status.setWordWrap(True)
        self.tilt = QDoubleSpinBox()
        self.tilt.setRange(0.0, 89.9)
        self.tilt.setDecimals(1)
        self.tilt.setSuffix(" deg stage tilt")
        self.tilt.setSpecialValueText("stage tilt unknown (set it for the beam's convergence and depth of field)")
        self.tilt.setToolTip("the specimen's tilt: with the layer's pixel size (its scale and units), the focal "
                             "fit gives the beam's convergence semi-angle and the depth of field")
        self.tilt.valueChanged.connect(self._say_fit)
        self.optics = None  # the last fit's optics, when the tilt is set
        self._factor = 1.0  # full-resolution px per px of the map the last fit was made on
        self._pixel = (1.0, "px")  # the last layer's pixel size and its unit
        self._said = ""  # what the status says of the fit itself
        self.tile = QSpinBox()
        self.tile.setRange(8, 8192)
        self.tile.setValue(TILE)
        self.tile.setSuffix(" px tiles")
        self.tiles_button = QPushButton("Add tile table")
        self.tiles_button.setToolTip("a Points layer at the tile centres whose features table holds each tile's "
                                     "median and quartiles of sigma (px, and in the layer's unit), confidence and "
                                     "share unknown; napari's Features table widget shows it")
        self.tiles_button.clicked.connect(self.add_tiles)
        self.tiles_status = QLabel("")  # what the tile table did: apart from the fit's status, which a fit rewrites
        self.tiles_status.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.canvas)
        layout.addWidget(self.tilt)
        row = QHBoxLayout()
        row.addWidget(self.tile)
        row.addWidget(self.tiles_button)
        layout.addLayout(row)
        layout.addWidget(self.tiles_status)
        layout.addWidget(self.status)
        napari_viewer.layers.selection.events.active.connect(self._on_active)
        self._on_active()

    def _on_active(self, *_) -> None:
        if self._busy:
            return
        layer = self._viewer.layers.selection.active
        meta = getattr(layer, "metadata", {}).get("blurmap") if layer is not None else None
        if meta is None or not isinstance(layer, napari.layers.Image) or layer.multiscale and layer.ndim != 2:
            return  # keep the last plot: a Shapes or source layer selected says nothing new
        self._tilt_from_source(meta)
        if layer.ndim > 2:
            self.show_stack(layer, meta.get("unit", "px"))
            return
        if meta.get("unit") != "px":
            self.status.setText(f"{layer.name}: a relative score; the focal-plane model needs sigma in px")
            return
        self.show_layer(layer, meta.get("unit", "px"))

    def add_tiles(self, *_) -> None:
        """Add (or update) the per-tile table of the selected 2-D sigma layer as a Points layer, computed in a worker."""
        layer = self._viewer.layers.selection.active
        meta = getattr(layer, "metadata", {}).get("blurmap") if layer is not None else None
        if meta is None or meta.get("unit") != "px" or layer.ndim != 2 or layer.multiscale:
            self.tiles_status.setText("select a 2-D sigma layer in px for its tile table (for a large image's lazy map: "
                                "blurmap profile IMAGE OUT --table)")
            return
        pixel, tile = pixel_size(layer), self.tile.value()
        self.tiles_status.setText(f"{layer.name}: tiles of {tile} px ...")
        worker = create_worker(_tile_points, layer.data, meta.get("confidence"), tile, pixel,
                               tuple(layer.contrast_limits), _start_thread=False,
                               _connect={"errored": lambda err: self.tiles_status.setText(f"{layer.name}: {err}")})
        worker.returned.connect(lambda result: self._show_tiles(layer, tile, *result))
        worker.start()
        self.worker = worker

    def _show_tiles(self, layer, tile: int, centres, features: dict, colours) -> None:
        if layer not in self._viewer.layers:
            return
        name = tiles_name(layer.name)
        if name in self._viewer.layers:
            self._viewer.layers.remove(name)
        self._busy = True  # adding a layer selects it; keep the sigma layer selected
        try:
            self._viewer.add_points(centres, features=features, face_color=colours, size=tile / 3, name=name,
                                    border_width=0, scale=layer.scale, translate=layer.translate,
                                    units=layer.units, text={"string": "{median_px:.2f}", "size": 8,
                                                             "color": "white"})
            self._viewer.layers.selection.active = layer
        finally:
            self._busy = False
        self.tiles_status.setText(f"{layer.name}: {len(centres)} tiles of {tile} px in {name!r}; its features table "
                            "holds the statistics (napari's Features table widget shows it)")

    def _tilt_from_source(self, meta: dict) -> None:
        """Set the stage tilt from the source layer's SEM metadata (the blurmap reader's), if known and not yet set."""
        source = meta.get("source")
        layer = self._viewer.layers[source] if source in self._viewer.layers else None
        tilt = (getattr(layer, "metadata", {}).get("blurmap_geometry") or {}).get("tilt_deg")
        if tilt and self.tilt.value() == 0:
            self.tilt.setValue(float(tilt))
            self.tilt.setToolTip(f"stage tilt from {source}'s metadata ({layer.metadata['blurmap_geometry']['source']})")

    def show_stack(self, layer, unit: str) -> None:
        """Plot a stack map's focus-quality curve, computed in a worker; again each second while planes are missing."""
        self._request = request = object()
        self.fit = None
        worker = create_worker(plane_curve, layer.data, _start_thread=False,
                               _connect={"errored": lambda err: self._fit_failed(request, layer, err)})
        worker.returned.connect(lambda curve: self._show_curve(request, layer, unit, curve))
        worker.start()
        self.worker = worker

    def _show_curve(self, request, layer, unit: str, curve: dict) -> None:
        if request is not self._request or layer not in self._viewer.layers:
            return
        self.layer_name = layer.name
        pixel = pixel_size(layer)
        self.figure.clear()
        plane_axes(self.figure.add_subplot(), curve, unit, pixel)
        self.canvas.draw_idle()
        done = int(np.sum(curve["unknown"] < 1))
        best = int(np.nanargmin(curve["median"])) if done else None
        text = f"{layer.name}: {done} of {curve['plane'].size} planes mapped"
        if best is not None:
            median = curve["median"][best]
            physical = f" = {median * pixel[0]:.3g} {pixel[1]}" if unit == "px" and pixel[1] != "px" else ""
            text += f"; sharpest plane {best}, median {median:.2f} {unit}{physical}"
        self.status.setText(text)
        if done < curve["plane"].size:  # planes still coming: look again soon, if this layer is still the one shown
            QTimer.singleShot(PLANES_AGAIN_MS, lambda: self.show_stack(layer, unit) if request is self._request
                              and layer in self._viewer.layers else None)

    def show_layer(self, layer, unit: str) -> None:
        """Fit the focal line of a sigma layer in a worker, then plot its profile and draw the line.

        The fit takes a second or more on a large map, so it never runs on the GUI thread; a layer
        selected while an earlier fit runs makes that fit's result stale (it is dropped).
        """
        # a large map's layer is a lazy pyramid: fit its overview (computed), never its full resolution
        sigma = np.array(layer.data[-1] if layer.multiscale else layer.data, dtype=np.float64)
        factor = layer.data[0].shape[-1] / sigma.shape[-1] if layer.multiscale else 1.0
        self._request = request = object()
        self.status.setText(f"{layer.name}: fitting the focal line ...")
        extra = layer.metadata["blurmap"].get("outputs") or {}
        others = {name.replace("sigma_", "") + " sigma": extra[name] for name in ("sigma_major", "sigma_minor")
                  if name in extra and not layer.multiscale}
        worker = create_worker(_fit, sigma, others, _start_thread=False,
                               _connect={"errored": lambda err: self._fit_failed(request, layer, err)})
        worker.returned.connect(lambda result: self._show(request, layer, unit, sigma.shape, factor, *result))
        worker.start()
        self.worker = worker

    def _fit_failed(self, request, layer, err: Exception) -> None:
        if request is self._request:
            self.status.setText(f"{layer.name}: {err}")

    def _show(self, request, layer, unit: str, shape: tuple[int, int], factor: float, fit: FocalFit,
              prof, others: dict) -> None:
        """Show a fit the worker made, unless another layer was selected meanwhile."""
        if request is not self._request or layer not in self._viewer.layers:
            return
        self.layer_name = layer.name
        if not fit.found:  # nothing to draw: say so, and take away a line drawn before
            self.fit = None
            self.figure.clear()
            self.canvas.draw_idle()
            self.status.setText(f"{layer.name}: {fit.reason}")
            name = focal_line_name(layer.name)
            if name in self._viewer.layers:
                self._viewer.layers.remove(name)
            return
        self.fit = fit
        self._factor = factor
        self._pixel = pixel_size(layer)
        self.figure.clear()
        profile_axes(self.figure.add_subplot(), prof, fit, unit, self._pixel, others)
        self.canvas.draw_idle()
        note = f"; fitted on the overview, distances in its px ({factor:g} px each)" if factor != 1 else ""
        self._said = f"{layer.name}: R² {fit.r_squared:.2f}, RMSE {fit.rmse:.2f} {unit}{note}"
        self._say_fit()
        self._draw_line(layer, fit, shape, factor)

    def _say_fit(self, *_) -> None:
        """Say the last fit, and its optics if the stage tilt is set (quick: no refit)."""
        if self.fit is None:
            return
        self.optics = None
        text = self._said
        if self.tilt.value() > 0:
            size, unit = self._pixel
            per_px = replace(self.fit, gradient=self.fit.gradient / self._factor)  # per full-resolution px
            self.optics = o = tilt_optics(per_px, size, self.tilt.value(), unit)
            text += (f"; beam convergence semi-angle {o.convergence_mrad:.2f} mrad, depth of field "
                     f"{o.depth_of_field:.4g} {unit} (sigma at most {o.sigma_limit_px:g} px)")
        self.status.setText(text)

    def _draw_line(self, layer, fit: FocalFit, shape: tuple[int, int], factor: float = 1.0) -> None:
        name = focal_line_name(layer.name)
        line = line_endpoints(shape, fit)
        self._busy = True  # adding a layer selects it; keep the sigma layer selected
        try:
            if name in self._viewer.layers:
                shapes = self._viewer.layers[name]
                shapes.data = [line]
            else:
                shapes = self._viewer.add_shapes([line], shape_type="line", name=name, edge_color="cyan",
                                                 edge_width=3)
                self._viewer.layers.selection.active = layer
            shapes.visible = layer.visible  # the line shows with its sigma layer, and hides with it
            layer.events.visible.connect(lambda event, shapes=shapes, layer=layer: setattr(shapes, "visible",
                                                                                           layer.visible))
            # an overview pixel is the mean of factor x factor pixels: its centre lies (factor - 1) / 2 further
            shapes.units = layer.units  # layers in other units would make napari drop units for all
            shapes.scale = np.asarray(layer.scale) * factor
            shapes.translate = np.asarray(layer.translate) + np.asarray(layer.scale) * (factor - 1) / 2
        finally:
            self._busy = False
