"""The sample data: a synthetic SEM micrograph of a tilted specimen and its true sigma map."""

from __future__ import annotations

from ..synthetic import sem_sample
from ._layers import COLORMAP


def tilted_specimen():
    """Return napari layer data: the micrograph and its ground-truth sigma map (px)."""
    image, sigma = sem_sample()
    return [
        (image, {"name": "SEM tilted specimen"}, "image"),
        (sigma, {"name": "SEM tilted specimen true sigma", "colormap": COLORMAP,
                 "contrast_limits": (0.0, float(sigma.max())), "visible": False,
                 "metadata": {"blurmap": {"unit": "px", "method": "ground truth"}}}, "image"),
    ]
