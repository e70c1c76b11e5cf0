"""Regenerate the README's pictures: the demo's overlay PNG and a napari screenshot.

    xvfb-run -a python docs/make_images.py      # (or on a desktop: python docs/make_images.py)

Writes docs/images/overlay.png (what `blurmap demo` writes) and docs/images/napari.png (the Sigma
map and Focal profile docks on the sample micrograph, as a user sees them).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

IMAGES = Path(__file__).resolve().parent / "images"


def overlay() -> Path:
    """Run the demo as a user would and keep its overlay."""
    from blurmap.cli import main
    from blurmap.registry import DEFAULT

    with tempfile.TemporaryDirectory() as tmp:
        assert main(["demo", tmp]) == 0
        target = IMAGES / "overlay.png"
        shutil.copyfile(Path(tmp) / f"overlay_{DEFAULT}.png", target)
    return target


def screenshot() -> Path:
    """Open the sample in napari, run the Sigma map dock, show the focal profile, and take a screenshot."""
    import napari
    from qtpy.QtCore import QCoreApplication, QEventLoop, QTimer

    from blurmap.registry import DEFAULT

    viewer = napari.Viewer(show=True)
    viewer.window.resize(1400, 820)
    viewer.open_sample("napari-blurmap", "tilted_specimen")
    _, widget = viewer.window.add_plugin_dock_widget("napari-blurmap", "Sigma map")
    widget.image.value = viewer.layers["SEM tilted specimen"]
    widget.run()
    loop = QEventLoop()
    timer = QTimer()
    timer.timeout.connect(lambda: loop.quit() if widget.run_button.enabled else None)
    timer.start(100)
    loop.exec_()
    _, dock = viewer.window.add_plugin_dock_widget("napari-blurmap", "Focal profile")
    viewer.layers.selection.active = viewer.layers[f"SEM tilted specimen sigma ({DEFAULT})"]
    viewer.reset_view()
    while "fitting" in dock.status.text() or dock.fit is None:  # the fit runs in a worker
        QCoreApplication.processEvents()
    for _ in range(50):
        QCoreApplication.processEvents()
    target = IMAGES / "napari.png"
    viewer.screenshot(str(target), canvas_only=False)
    viewer.close()
    return target


def main() -> int:
    IMAGES.mkdir(exist_ok=True)
    for made in (overlay(), screenshot()):
        print(f"wrote {made}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
