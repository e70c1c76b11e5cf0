"""The dock widgets: pick an image layer, an estimator and its parameters, run in a thread.

One widget class serves every estimator: ``SigmaMapWidget`` offers them all, and
``dock_class(method)`` makes the dock of one estimator alone, for the per-estimator entries of
the manifest (``blurmap.plugin._docks`` resolves their names). The widgets call the core and
nothing else.
"""

from __future__ import annotations

import threading
from functools import cache

import napari
import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, FloatSpinBox, Label, PushButton, create_widget
from napari.qt.threading import create_worker
from napari.utils import progress
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import QTimer

from .. import engine
from .._validate import check_2d
from ..io.pyramid import SigmaPyramid
from ..registry import DEFAULT, Param, estimators, get
from ._layers import LATER_MS, contrast_limits, display, in_length, show_outputs, show_sigma, show_sigma_pyramid

LARGE_PIXELS = 4096 * 4096  # px; above this (or for a multiscale layer) the map is a lazy multiscale layer
REDRAW_MS = 250  # a lazy map is redrawn at most this often while tiles land in the background
LAY_WAIT_S = 2.0  # s; the overview waits at most this long for the GUI thread to lay its layer (see _compute_pyramid)

_BIG = 1e9  # spin-box bound standing for "no upper limit"


def _param_widgets(param: Param) -> list:
    """Return the widgets that edit one estimator parameter (a spin box, and an auto box if nullable)."""
    step = 1 if param.kind is int else 0.5 if param.unit == "px" else 1e-4
    words = param.name.replace("_", " ")
    spin = FloatSpinBox(name=param.name, label=f"{words} ({param.unit})" if param.unit else words,
                        min=param.minimum if param.minimum is not None else -_BIG,
                        max=param.maximum if param.maximum is not None else _BIG,
                        step=step, value=param.default if param.default is not None else 0.0,
                        tooltip=param.doc)
    if not param.nullable:
        return [spin]
    auto = CheckBox(name=f"{param.name}_auto", text=f"estimate {words} from the image", value=True,
                    tooltip=f"ticked: {words} is worked out from the image once, before any tile")
    spin.enabled = False
    auto.changed.connect(lambda checked: setattr(spin, "enabled", not checked))
    return [auto, spin]


def _median_words(est, median: float, source=None) -> str:
    """Return the status line's summary of a map from its median: sigma in px (and in the source layer's length unit),
    or the score and what it means."""
    if est.units == "px":
        return f"median sigma {median:.2f} px" + (in_length(median, source) if source is not None else "")
    return f"median score {median:.3g} ({est.label().split('(', 1)[1]}"


def _compute(data, method: str, params: dict):
    """Run one estimator tile by tile, yielding after each tile; return the last TileProgress and its display.

    The display (median, limits, axes: see _layers.display) reads every pixel, so it is worked out
    here too. Bad input found only while computing (a constant image) raises here, in the worker,
    and reaches the widget through the worker's error signal.
    """
    last = None
    for last in engine.estimate_tiles(data, method, **params):
        yield last.done
    return None if last is None else (last, display(method, last.outputs))


def _compute_pyramid(data, method: str, params: dict, on_ready, laid: threading.Event):
    """Prepare the lazy pyramid (noise estimate, registration) and yield it, then fill its overview chunk by chunk.

    Yields the SigmaPyramid once, then the number of chunks done after each; returns the pyramid.
    `on_ready` is called from background threads whenever a tile lands. The overview starts once
    the GUI thread has laid the layer (`laid` set), or after LAY_WAIT_S: napari builds a layer's
    visuals and controls in Python on that thread, and with the overview's tiles competing for
    the interpreter the same work took twice as long.
    """
    pyramid = SigmaPyramid(data, method, params, on_ready=on_ready)
    yield pyramid
    laid.wait(LAY_WAIT_S)
    yield from pyramid.fill_overview()
    return pyramid


def _compute_stack(data, lead: tuple[int, ...], method: str, params: dict, on_screen):
    """Map a stack's planes one by one, the plane on screen first; yield (index, sigma, confidence, display top) for
    each; return the median of all their known sigma (None if none).

    `on_screen()` returns the index of the plane the viewer shows, asked again before each plane:
    when the user moves the dims slider, that plane is the next one computed.
    """
    units = get(method).units
    todo, finite = list(np.ndindex(lead)), []
    while todo:
        wanted = on_screen()
        index = wanted if wanted in todo else todo[0]
        todo.remove(index)
        sigma, confidence = engine.estimate(np.asarray(data[index]), method, return_confidence=True, **params)
        yield index, sigma, confidence, contrast_limits(sigma, units)[1]
        finite.append(sigma[np.isfinite(sigma)])
    known = np.concatenate(finite)
    return float(np.median(known)) if known.size else None


class SigmaMapWidget(Container):
    """Estimate a sigma map of the chosen image layer and lay it over that layer."""

    METHOD: str | None = None  # the one estimator a dock of dock_class() offers; None offers them all

    def __init__(self, napari_viewer: napari.viewer.Viewer):
        super().__init__(labels=True)
        self._viewer = napari_viewer
        method = self.METHOD
        self._fixed = method is not None
        self.image = create_widget(annotation=napari.layers.Image, label="image", name="image")
        self.method = ComboBox(name="method", label="estimator", choices=list(estimators()),
                               value=method or DEFAULT, visible=not self._fixed)
        self.limits = Label(name="limits", label=" ", value="")  # where the chosen estimator stops meaning anything
        self.limits.native.setWordWrap(True)
        self.inputs = Container(name="inputs", label=" ", labels=True)  # other images the method needs
        self.params = Container(name="params", label=" ", labels=True)
        self.run_button = PushButton(name="run", text="Run",
                                     tooltip="estimate the map in a worker thread; the viewer stays responsive")
        self.cancel_button = PushButton(name="cancel", text="Cancel", enabled=False)
        self.status = Label(name="status", value="")
        self.status.native.setWordWrap(True)  # a long message wraps instead of widening the dock
        self.extend([self.image, self.method, self.limits, self.inputs, self.params, self.run_button, self.cancel_button,
                     self.status])
        self.worker = None
        self._colour_note = ""  # said after the result when the layer was RGB
        self.pyramid_layer = None
        self.stack_layer = None  # the map of the last stack, filled plane by plane
        self._planes_done = 0
        self._pyramid = None
        self._stale = False  # set from background threads when a tile of the lazy map lands
        self._overview_progress = None  # the progress bar of a lazy map's overview (see _run_pyramid)
        self._steps_done = 0
        self._redraw = QTimer()
        self._redraw.setInterval(REDRAW_MS)
        self._redraw.timeout.connect(self._redraw_if_stale)
        napari_viewer.layers.events.removed.connect(self._layer_removed)
        self.method.changed.connect(self._rebuild_params)
        self.run_button.changed.connect(self.run)
        self.cancel_button.changed.connect(self.cancel)
        self._rebuild_params()

    def _rebuild_params(self, *_) -> None:
        """Show the parameters, and pickers for the other images, of the selected estimator."""
        est = get(self.method.value)
        self.method.tooltip = f"{est.title} ({est.units}): {est.description}"  # what the chosen estimator does
        self.limits.value = f"Limits: {est.limits}" if est.limits else ""
        self.limits.visible = bool(est.limits)
        self.params.clear()
        for param in est.params:
            self.params.extend(_param_widgets(param))
        self.inputs.clear()
        for name in est.inputs:
            self.inputs.append(create_widget(annotation=napari.layers.Image, label=name, name=name))
        self.inputs.visible = bool(est.inputs)
        self.inputs.reset_choices()

    def param_values(self) -> dict:
        """Return the parameters as set in the widget (None where "estimate" is ticked)."""
        values = {}
        for param in get(self.method.value).params:
            if param.nullable and self.params[f"{param.name}_auto"].value:
                values[param.name] = None
            else:
                values[param.name] = self.params[param.name].value
        return values

    def run(self, *_) -> None:
        """Check the inputs, then compute the sigma map in a worker thread with a progress bar."""
        layer = self.image.value
        if layer is None:
            self._fail("choose an image layer first")
            return
        method = self.method.value
        data = layer.data[0] if layer.multiscale else layer.data
        params = self.param_values()
        lead = tuple(data.shape[:data.ndim - 2 - bool(layer.rgb)])  # a stack's leading axes (Z, T, ...)
        try:  # fail here, on the GUI thread, with a message; pixels are read (NaN) in the worker
            get(method).check(params)
            if lead and (layer.multiscale or get(method).inputs):
                raise ValueError(f"layer {layer.name!r} is a {'multiscale ' * layer.multiscale}stack of shape "
                                 f"{tuple(data.shape)}: the widget maps stacks of in-memory planes with a blind "
                                 "estimator; for others, use blurmap estimate (the CLI) and open its OME-Zarr")
            shape = check_2d(data[(0,) * len(lead)], name=f"layer {layer.name!r}")
            for name in get(method).inputs:
                other = self.inputs[name].value
                if other is None:
                    raise ValueError(f"choose the {name} layer")
                if other is layer:
                    raise ValueError(f"the {name} layer must differ from the image layer")
                params[name] = other.data[0] if other.multiscale else other.data
                other_shape = check_2d(params[name], name=f"the {name} layer")
                if other_shape != shape:
                    raise ValueError(f"the {name} layer is {other_shape}, the image {shape}: "
                                     "they must have the same shape")
        except (TypeError, ValueError) as err:
            self._fail(str(err))
            return
        self._colour_note = ""
        if layer.rgb:  # RGB(A) channels last
            self._colour_note = "; RGB read as luminance (0.2126 R + 0.7152 G + 0.0722 B)"
            show_info(f"blurmap: layer {layer.name!r} is RGB: it is read as luminance (0.2126 R + 0.7152 G + 0.0722 B)")
        if lead:
            self._run_stack(layer, data, lead, method, params)
            return
        if int(np.prod(shape)) > LARGE_PIXELS or layer.multiscale:
            self._run_pyramid(layer, data, method, params)
            return
        total = engine.tile_count(data.shape[:2], method, **params)
        self.status.value = f"computing {method} on {layer.name} ..."
        self.worker = create_worker(_compute, data, method, params, _connect={"errored": self._errored}, _start_thread=False,
                                    _progress={"total": total, "desc": f"blurmap: {method}"})
        self.worker.returned.connect(self._if_current(lambda result: self._done(layer, method, result)))
        self._start()

    def _if_current(self, slot):
        """Return `slot` guarded: it runs only while the worker it was made for is still this widget's worker.

        A cancelled worker finishes its tile in the background; what it returns then is dropped.
        """
        worker = self.worker
        return lambda *args: slot(*args) if worker is self.worker else None

    def _start(self) -> None:
        """Connect the worker's finished signal, disable Run and start it (its errors go to _errored)."""
        self.worker.finished.connect(self._if_current(self._finished))
        self.run_button.enabled = False
        self.cancel_button.enabled = True
        self.worker.start()

    def _errored(self, err: Exception) -> None:
        """Report an error the worker raised: bad input says what is wrong; anything else is a bug, with its type."""
        self._fail(str(err) if isinstance(err, (TypeError, ValueError)) else f"{type(err).__name__}: {err}")

    def _run_pyramid(self, layer, data, method: str, params: dict) -> None:
        """Lay a lazy multiscale map over a large image as soon as it is prepared; fill its overview in a worker thread.

        Finer levels are computed by napari for what is on screen; every level is the exact block
        mean of the full-resolution map, so zooming never changes what a region reads.
        """
        self._close_pyramid()
        self.status.value = f"computing the overview of {method} on {layer.name} ..."
        total = engine.tile_count(data.shape[:2], method, **params)
        self._close_progress()
        self._laid = threading.Event()
        self.worker = create_worker(_compute_pyramid, data, method, params, self._mark_stale, self._laid,
                                    _connect={"errored": self._errored}, _start_thread=False)
        # napari's progress bar repaints the whole window at once, the canvas with it, whenever its value moves:
        # moved with every chunk, it drew the map's new texture there, on top of the redraw that made it (0.45 s
        # stalls at 32768 px). It moves on the redraw timer instead, just before the redraw (see _redraw_if_stale)
        self._overview_progress = progress(total=total + 1, desc=f"blurmap: {method} overview")
        self._steps_done = 0
        self.worker.yielded.connect(self._if_current(lambda value: self._pyramid_step(layer, value)))
        self.worker.returned.connect(self._if_current(self._pyramid_done))
        self._start()

    def _run_stack(self, layer, data, lead: tuple[int, ...], method: str, params: dict) -> None:
        """Lay an empty (NaN) map stack over a stack layer at once; fill it plane by plane in a worker, the plane on screen first."""
        est = get(method)
        shape = tuple(data.shape[:len(lead) + 2])
        sigma, confidence = np.full(shape, np.nan, np.float32), np.full(shape, np.nan, np.float32)
        self.stack_layer = show_sigma(self._viewer, layer, sigma, confidence, method, est.units,
                                      {k: v for k, v in params.items() if v is not None})
        self.status.value = f"computing {method} on {layer.name}, {int(np.prod(lead))} planes, the one on screen first ..."
        self.worker = create_worker(_compute_stack, data, lead, method, params, lambda: self._on_screen(layer, lead),
                                    _connect={"errored": self._errored}, _start_thread=False,
                                    _progress={"total": int(np.prod(lead)), "desc": f"blurmap: {method} planes"})
        self.worker.yielded.connect(self._if_current(lambda value: self._plane_done(self.stack_layer, est, value)))
        self.worker.returned.connect(self._if_current(lambda median: self._stack_done(self.stack_layer, est, layer,
                                                                                      median)))
        self._planes_done = 0
        self._start()

    def _on_screen(self, layer, lead: tuple[int, ...]) -> tuple[int, ...]:
        """Return the index of the stack plane the viewer shows (read from a worker: a few attribute reads)."""
        point = self._viewer.dims.point[-layer.ndim:]
        index = np.round(np.asarray(layer.world_to_data(point))[:len(lead)]).astype(int)
        return tuple(int(np.clip(i, 0, n - 1)) for i, n in zip(index, lead))

    def _plane_done(self, layer, est, value) -> None:
        """Put one plane's map into the stack layer and redraw it; the first plane sets the display range."""
        index, sigma, confidence, high = value  # high: the plane's display top, from the worker
        layer.data[index] = sigma
        layer.metadata["blurmap"]["confidence"][index] = confidence
        self._planes_done += 1
        if self._planes_done == 1 or high > layer.contrast_limits[1]:  # the display range grows to take in each plane
            layer.contrast_limits_range = (0.0, high)
            layer.contrast_limits = (0.0, high)
        layer.refresh()
        self.status.value = f"plane {', '.join(map(str, index))} done ({self._planes_done} of {layer.data[..., 0, 0].size})"

    def _stack_done(self, layer, est, source, median: float | None) -> None:
        if self._planes_done < layer.data[..., 0, 0].size:
            return  # cancelled or failed: the status says so
        self.status.value = (f"{_median_words(est, median, source)} over {self._planes_done} planes"
                             if median is not None else "no texture found: sigma unknown everywhere") + self._colour_note
        show_info(f"blurmap: {self.status.value}")

    def _pyramid_step(self, source, value) -> None:
        """Add the lazy layer when the worker has prepared it; redraw it as overview chunks land."""
        self._steps_done += 1  # the preparation, then one per chunk
        if isinstance(value, SigmaPyramid):
            self._pyramid = value
            # the layer is laid in a turn of the event loop of its own, its colour bar in another (show_sigma_pyramid):
            # napari builds both in Python on this thread, and together with a redraw they made one long stall
            QTimer.singleShot(LATER_MS, lambda: self._lay_pyramid(source, value))

    def _lay_pyramid(self, source, pyramid: SigmaPyramid) -> None:
        """Add the lazy layer of `pyramid` unless another run has replaced it since; then let its overview start."""
        if pyramid is self._pyramid:
            self.pyramid_layer = show_sigma_pyramid(self._viewer, source, pyramid)
            self._laid.set()
            self._redraw.start()

    def _mark_stale(self) -> None:
        """Say that a tile has landed (called from a background thread; the GUI thread redraws, see _redraw_if_stale)."""
        self._stale = True

    def _redraw_if_stale(self) -> None:
        """Redraw the lazy map if tiles have landed since the last redraw: reading it never waits, so neither does this.

        The overview's progress bar moves first: its repaint then finds nothing new to draw, and the
        redraw's own paint comes in a later turn of the event loop.
        """
        bar = self._overview_progress
        if bar is not None and bar.n < self._steps_done:
            bar.update(self._steps_done - bar.n)
        if self._stale and self.pyramid_layer is not None:
            self._stale = False
            self.pyramid_layer.refresh()

    def _close_pyramid(self) -> None:
        """Stop the lazy map's background threads and its redraws."""
        self._redraw.stop()
        if self._pyramid is not None:
            self._pyramid.close()
        self._pyramid = self.pyramid_layer = None

    def _layer_removed(self, event) -> None:
        if self.pyramid_layer is not None and event.value is self.pyramid_layer:
            self._close_pyramid()

    def _pyramid_done(self, result) -> None:
        if result is None or self.pyramid_layer is None:
            return
        est = get(result.method)
        limits = contrast_limits(result.overview, est.units)
        self.pyramid_layer.contrast_limits_range = limits
        self.pyramid_layer.contrast_limits = limits
        self._stale = True
        finite = result.overview[np.isfinite(result.overview)]
        self.status.value = (f"{_median_words(est, float(np.median(finite)), self.pyramid_layer)} (overview)"
                             if finite.size
                             else "no texture found: sigma unknown everywhere")
        show_info(f"blurmap: {self.status.value}")

    def cancel(self, *_) -> None:
        """Stop the running computation; Run is ready again at once and nothing more is added.

        The worker stops after the tile in progress, in the background: what it makes is dropped.
        A lazy map already laid keeps the tiles it has and computes no more.
        """
        if self.worker is not None:
            self.worker.quit()
            self.worker = None
            self._close_pyramid()  # a lazy map keeps what it has; no tile is started after this
            self.status.value = "cancelled"
            self._finished()

    def _done(self, source, method: str, result) -> None:
        if result is None:  # quit before the first tile
            return
        result, shown = result
        est = get(method)
        if shown["median"] is None:  # an all-unknown layer says nothing: add none, and say why
            self._fail(f"{method} knows nothing anywhere in {source.name!r}: no texture within its reach "
                       f"({est.halo_for(result.params)} px), or NaN pixels within it; nothing added")
            return
        params = {k: v for k, v in result.params.items() if k not in est.inputs}
        layer = show_sigma(self._viewer, source, result.sigma, result.confidence, method, est.units, params,
                           shown["limits"])
        self.status.value = _median_words(est, shown["median"], source) + self._colour_note
        if est.extra_outputs:  # a method with more maps: a layer each (and axes, for an ellipse)
            layer.metadata["blurmap"]["outputs"] = {k: result.outputs[k] for k in est.extra_outputs}
            added = show_outputs(self._viewer, source, result.outputs, method, params, shown)
            self._viewer.layers.selection.active = layer
            if shown["ratio"] is not None:
                self.status.value += f"; major / minor {shown['ratio']:.2f} (median)"
            self.status.value += f"; {len(added)} more layers: " + ", ".join(a.name for a in added)
        show_info(f"blurmap: {self.status.value}")

    def _fail(self, message: str) -> None:
        self.status.value = f"error: {message}"
        show_error(f"blurmap: {message}")

    def _finished(self) -> None:
        self.run_button.enabled = True
        self.cancel_button.enabled = False
        self._close_progress()

    def _close_progress(self) -> None:
        """Bring a lazy map's overview progress bar up to what was done, and close it."""
        bar, self._overview_progress = self._overview_progress, None
        if bar is not None:
            bar.update(max(self._steps_done - bar.n, 0))
            bar.close()


@cache
def dock_class(method: str) -> type[SigmaMapWidget]:
    """Return the dock widget class of one registered estimator: a SigmaMapWidget that offers it alone.

    napari instantiates it with the viewer, as any dock widget class; made once per method.
    """
    est = get(method)
    return type(f"{est.name}_dock", (SigmaMapWidget,),
                {"METHOD": est.name, "__module__": __name__, "__doc__": f"The dock widget of {est.title} alone."})
