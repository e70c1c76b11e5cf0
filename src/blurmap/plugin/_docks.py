"""The per-estimator dock widgets, by name, for the manifest: ``blurmap.plugin._docks:<method>_dock``.

The manifest (generated from the registry by ``python -m blurmap.plugin.manifest``) names one
dock per estimator; each resolves here to ``dock_class(method)``, so no estimator needs a class
or a line of its own.
"""

from __future__ import annotations

from ..registry import estimators
from ._widget import SigmaMapWidget, dock_class

SUFFIX = "_dock"


def __getattr__(name: str) -> type[SigmaMapWidget]:
    method = name.removesuffix(SUFFIX)
    if name.endswith(SUFFIX) and method in estimators():
        return dock_class(method)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
