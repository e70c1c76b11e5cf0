"""How long napari's GUI thread stalls while the Sigma map dock fills a lazy map of a large dask layer.

    xvfb-run -a -s "-screen 0 1600x1000x24" python benchmarks/gui_stalls.py [--side 12000] [--method gradient_ratio]
                                                                             [--seconds 20]

A dask layer of --side px a side (the SEM sample, tiled) in a 1600 x 1000 window; Run in the
dock; two seconds after the sigma layer appears, the view zooms in six times, so that napari picks
a finer level than the overview. A 20 ms timer on the GUI thread counts its ticks: a gap between
two ticks is a stall. Prints when the layer appeared, the longest stall and how many passed 0.5 s,
the level shown, over --seconds after Run (then the run is cancelled) or until the overview is
whole. vispy renders the colour bar's glyphs once a session (0.3-0.7 s on the GUI thread, whatever
the plugin); the source layer's colour bar is shown once before timing, so that cost is not counted.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--side", type=int, default=12000)
    parser.add_argument("--method", default="gradient_ratio")
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    import dask.array as da
    import napari
    from qtpy.QtCore import QTimer
    from qtpy.QtWidgets import QApplication

    from blurmap import synthetic

    base, _ = synthetic.sem_sample((1000, 1000), seed=3)
    n = -(-args.side // 1000)
    data = da.tile(da.from_array(base, chunks=1000), (n, n))[:args.side, :args.side]
    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1600, 1000)
    source = viewer.add_image(data, name="big", contrast_limits=(0, 1))
    app = QApplication.instance()
    source.colorbar.visible = True  # vispy's glyphs, once a session: not the plugin's cost
    for _ in range(20):
        app.processEvents()
        time.sleep(0.05)
    source.colorbar.visible = False
    _, widget = viewer.window.add_plugin_dock_widget("napari-blurmap", "Sigma map")
    widget.image.value = source
    widget.method.value = args.method
    ticks = []
    timer = QTimer()
    timer.setInterval(20)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    start = time.perf_counter()
    widget.run()
    name, shown, zoomed = f"big sigma ({args.method})", None, False
    while time.perf_counter() - start < args.seconds:
        app.processEvents()
        time.sleep(0.005)
        if shown is None and name in viewer.layers:
            shown = time.perf_counter() - start
        if shown is not None and not zoomed and time.perf_counter() - start > shown + 2:
            viewer.camera.zoom *= 6
            zoomed = True
        if shown is not None and widget.run_button.enabled:
            break
    elapsed = time.perf_counter() - start
    level = viewer.layers[name].data_level if name in viewer.layers else None
    filled = widget.run_button.enabled
    widget.cancel()
    gaps = np.diff([start] + ticks)
    print(f"{args.side} x {args.side} px dask layer, {args.method}: sigma layer after {shown:.2f} s; over "
          f"{elapsed:.1f} s ({'overview whole' if filled else 'then cancelled'}), longest GUI stall "
          f"{gaps.max():.3f} s, {int((gaps > 0.5).sum())} over 0.5 s; level shown {level} of "
          f"{len(viewer.layers[name].data) - 1}")
    viewer.close()


if __name__ == "__main__":
    main()
