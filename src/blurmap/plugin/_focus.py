"""The focus-series dock: a 3-D image layer (Z, Y, X) of one field at known focus steps to a height map and an all-in-focus image."""

from __future__ import annotations

import napari
import numpy as np
from magicgui.widgets import ComboBox, Container, FloatSpinBox, Label, PushButton, create_widget
from napari.qt.threading import create_worker
from napari.utils.notifications import show_error, show_info

from ..analysis.focus_series import FITS, focus_series

UNITS = ("nm", "um", "mm")  # the focus step's unit, as napari spells it


class FocusSeriesDock(Container):
    """Fit a focus series in a worker; lay its height map (in the step's unit) and its all-in-focus image."""

    def __init__(self, napari_viewer: napari.viewer.Viewer):
        super().__init__(labels=True)
        self._viewer = napari_viewer
        self.image = create_widget(annotation=napari.layers.Image, label="focus series (Z, Y, X)", name="image")
        self.z_step = FloatSpinBox(name="z_step", label="focus step", value=1.0, min=1e-6, max=1e6, step=0.1,
                                   tooltip="the focus change between planes; heights come in its unit, from the first "
                                           "plane")
        self.unit = ComboBox(name="unit", label="unit", choices=list(UNITS), value="um")
        self.fit = ComboBox(name="fit", label="fit", choices=list(FITS), value="sigma",
                            tooltip="sigma: each plane mapped by the default estimator (robust to noise); relative: "
                                    "the blur between adjacent planes, a few px of reach (height steps keep their "
                                    "edges; for clean series)")
        self.run_button = PushButton(name="run", text="Run",
                                     tooltip="map every plane and fit each pixel's best focus, in a worker thread")
        self.status = Label(name="status", value="")
        self.status.native.setWordWrap(True)
        self.extend([self.image, self.z_step, self.unit, self.fit, self.run_button, self.status])
        self.worker = None
        self.run_button.changed.connect(self.run)

    def run(self, *_) -> None:
        """Check the layer on the GUI thread, then fit in a worker; the viewer stays responsive."""
        layer = self.image.value
        if layer is None or layer.ndim != 3 or layer.rgb or layer.multiscale:
            self._fail("choose a 3-D image layer: the same field at one focus position per plane")
            return
        if layer.data.shape[0] < 3:
            self._fail(f"{layer.name} has {layer.data.shape[0]} planes; a focus series needs at least 3")
            return
        step, unit = float(self.z_step.value), self.unit.value
        self.run_button.enabled = False
        self.status.value = f"mapping {layer.data.shape[0]} planes of {layer.name} ..."
        # the layer's data as it is (a dask stack is read in the worker, never on the GUI thread)
        self.worker = create_worker(focus_series, layer.data, step, fit=self.fit.value, _start_thread=False,
                                    _connect={"errored": self._errored})
        self.worker.returned.connect(lambda fit: self._done(layer, unit, fit))
        self.worker.finished.connect(lambda: setattr(self.run_button, "enabled", True))
        self.worker.start()

    def _errored(self, err: Exception) -> None:
        self._fail(str(err) if isinstance(err, (TypeError, ValueError)) else f"{type(err).__name__}: {err}")

    def _fail(self, message: str) -> None:
        self.status.value = f"error: {message}"
        show_error(f"blurmap: {message}")

    def _done(self, source, unit: str, fit) -> None:
        placement = {"scale": source.scale[-2:], "translate": source.translate[-2:], "units": source.units[-2:]}
        known = np.isfinite(fit.height)
        limits = (float(np.nanmin(fit.height)), float(np.nanmax(fit.height))) if known.any() else (0.0, 1.0)
        if limits[0] == limits[1]:
            limits = (limits[0], limits[0] + fit.z_step)
        for name, data, extra in (  # the composite below, the height map over it
                (f"{source.name} all in focus", fit.all_in_focus, {"colormap": "gray"}),
                (f"{source.name} height ({unit})", fit.height,
                 {"colormap": "viridis", "contrast_limits": limits, "opacity": 0.6, "blending": "translucent"})):
            if name in self._viewer.layers:
                self._viewer.layers.remove(name)
            layer = self._viewer.add_image(data, name=name, metadata={"blurmap": {"focus_series": True, "unit": unit,
                                                                                 "z_step": fit.z_step}},
                                           **placement, **extra)
        layer.colorbar.visible = True  # the height map's
        self.status.value = (f"height of best focus {limits[0]:.3g} .. {limits[1]:.3g} {unit} from the first plane; "
                             f"{100 * (1 - known.mean()):.1f}% unknown (best focus beyond the series)")
        show_info(f"blurmap: {self.status.value}")
