"""The focal-profile dock: sigma against distance from the focal line, for the selected sigma layer."""

from __future__ import annotations

import napari
import numpy as np
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from napari.qt.threading import create_worker
from qtpy.QtWidgets import QLabel, QVBoxLayout, QWidget

from ..analysis.figures import profile_axes
from ..analysis.focal import FocalFit, focal, profile

CANVAS_MIN_HEIGHT = 260  # px


def focal_line_name(layer_name: str) -> str:
    """Return the name of the Shapes layer that shows a sigma layer's focal line."""
    return f"{layer_name} focal line"


def line_endpoints(shape: tuple[int, int], fit: FocalFit) -> np.ndarray:
    """Return the focal line's two end points (row, column) at the image's left and right edges."""
    w = shape[1]
    xs = np.array([0.0, w - 1.0])
    rows = fit.row_at_centre + np.tan(np.deg2rad(fit.angle_deg)) * (xs - (w - 1) / 2)
    return np.stack([rows, xs], axis=1)


def _fit(sigma: np.ndarray):
    """Return (focal fit, profile) of a sigma map (px), in a worker thread; a profile only where a band is found."""
    fit = focal(sigma)
    return fit, (profile(sigma, fit) if fit.found else None)


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
        layout = QVBoxLayout(self)
        layout.addWidget(self.canvas)
        layout.addWidget(self.status)
        napari_viewer.layers.selection.events.active.connect(self._on_active)
        self._on_active()

    def _on_active(self, *_) -> None:
        if self._busy:
            return
        layer = self._viewer.layers.selection.active
        meta = getattr(layer, "metadata", {}).get("blurmap") if layer is not None else None
        if meta is None or not isinstance(layer, napari.layers.Image) or layer.ndim != 2:
            return  # keep the last plot: a Shapes or source layer selected says nothing new
        if meta.get("unit") != "px":
            self.status.setText(f"{layer.name}: a relative score; the focal-plane model needs sigma in px")
            return
        self.show_layer(layer, meta.get("unit", "px"))

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
        worker = create_worker(_fit, sigma, _start_thread=False,
                               _connect={"errored": lambda err: self._fit_failed(request, layer, err)})
        worker.returned.connect(lambda result: self._show(request, layer, unit, sigma.shape, factor, *result))
        worker.start()
        self.worker = worker

    def _fit_failed(self, request, layer, err: Exception) -> None:
        if request is self._request:
            self.status.setText(f"{layer.name}: {err}")

    def _show(self, request, layer, unit: str, shape: tuple[int, int], factor: float, fit: FocalFit,
              prof) -> None:
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
        self.figure.clear()
        profile_axes(self.figure.add_subplot(), prof, fit, unit)
        self.canvas.draw_idle()
        note = f"; fitted on the overview, distances in its px ({factor:g} px each)" if factor != 1 else ""
        self.status.setText(f"{layer.name}: R² {fit.r_squared:.2f}, RMSE {fit.rmse:.2f} {unit}{note}")
        self._draw_line(layer, fit, shape, factor)

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
            shapes.scale = np.asarray(layer.scale) * factor
            shapes.translate = np.asarray(layer.translate) + np.asarray(layer.scale) * (factor - 1) / 2
        finally:
            self._busy = False
