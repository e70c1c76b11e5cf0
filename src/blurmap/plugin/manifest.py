"""The napari manifest, generated from the registry: ``python -m blurmap.plugin.manifest`` rewrites napari.yaml.

Every estimator gets a dock widget of its own, listed in the Plugins menu and in the blurmap
submenu of Layers > Measure, beside the combined *Sigma map* dock, the *Focal profile* dock and
the *Focus series* dock.
A test checks that the shipped ``napari.yaml`` is what this module makes, so the manifest is
never edited by hand.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..registry import estimators

__all__ = ["manifest", "main"]

PLUGIN = "napari-blurmap"
SUBMENU = f"{PLUGIN}.measure"
PATH = Path(__file__).resolve().parents[1] / "napari.yaml"
_HEADER = "# Generated from the registry by `python -m blurmap.plugin.manifest`: do not edit by hand.\n"


def _widget(key: str, python_name: str, title: str, display_name: str) -> tuple[dict, dict]:
    """Return (command, widget contribution) of one dock widget."""
    command = {"id": f"{PLUGIN}.{key}", "python_name": python_name, "title": title}
    return command, {"command": command["id"], "display_name": display_name}


def manifest() -> dict:
    """Return the manifest as a plain dict, in the order napari.yaml holds it.

    Returns
    -------
    dict
        npe2's manifest schema: commands, widgets, reader, writer, sample data, a submenu and menus.

    Examples
    --------
    >>> m = manifest()
    >>> m["name"], m["contributions"]["widgets"][0]["display_name"]
    ('napari-blurmap', 'Sigma map')
    """
    docks = [_widget("sigma_map_widget", "blurmap.plugin._widget:SigmaMapWidget", "Sigma map (all estimators)",
                     "Sigma map")]
    for est in estimators().values():
        docks.append(_widget(f"{est.name}_widget", f"blurmap.plugin._docks:{est.name}_dock",
                             f"{est.title} ({est.units})", est.title))
    docks.append(_widget("focal_profile_widget", "blurmap.plugin._profile:FocalProfileDock",
                         "Focal profile of the selected sigma layer", "Focal profile"))
    docks.append(_widget("focus_series_widget", "blurmap.plugin._focus:FocusSeriesDock",
                         "Focus series to a height map and an all-in-focus image", "Focus series"))
    commands = [c for c, _ in docks] + [
        {"id": f"{PLUGIN}.get_reader", "python_name": "blurmap.plugin._reader:get_reader",
         "title": "Open a large TIFF or an OME-Zarr lazily"},
        {"id": f"{PLUGIN}.tilted_specimen", "python_name": "blurmap.plugin._sample:tilted_specimen",
         "title": "Load the synthetic SEM micrograph of a tilted specimen"},
        {"id": f"{PLUGIN}.write_sigma", "python_name": "blurmap.plugin._writer:write_sigma",
         "title": "Save a sigma map with its confidence and metadata (OME-Zarr or TIFF)"},
    ]
    return {
        "name": PLUGIN,
        "display_name": "blurmap",
        "visibility": "public",
        "categories": ["Measurement", "Image Processing"],
        "contributions": {
            "commands": commands,
            "widgets": [w for _, w in docks],
            "readers": [{"command": f"{PLUGIN}.get_reader", "accepts_directories": True,
                         "filename_patterns": ["*.tif", "*.tiff", "*.btf", "*.tf8", "*.zarr"]}],
            "writers": [{"command": f"{PLUGIN}.write_sigma", "layer_types": ["image"],
                         "filename_extensions": [".zarr", ".tif", ".tiff"],
                         "display_name": "blurmap sigma map (OME-Zarr or TIFF, with confidence)"}],
            "sample_data": [{"key": "tilted_specimen", "display_name": "SEM tilted specimen (with true sigma)",
                             "command": f"{PLUGIN}.tilted_specimen"}],
            "submenus": [{"id": SUBMENU, "label": "blurmap"}],
            "menus": {"napari/layers/measure": [{"submenu": SUBMENU}],
                      SUBMENU: [{"command": c["id"]} for c, _ in docks]},
        },
    }


def text() -> str:
    """Return napari.yaml's text: the header, then the manifest as YAML."""
    import yaml

    return _HEADER + yaml.safe_dump(manifest(), sort_keys=False, width=120)


def main(argv: list[str] | None = None) -> int:
    """Write the manifest to the package's napari.yaml (or to the path given).

    Parameters
    ----------
    argv : list of str, optional
        One path to write to instead.

    Returns
    -------
    int
        0.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> path = Path(tempfile.mkdtemp()) / "napari.yaml"
    >>> main([str(path)])  # doctest: +ELLIPSIS
    wrote ...napari.yaml
    0
    """
    target = Path(argv[0]) if argv else PATH
    target.write_text(text())
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
