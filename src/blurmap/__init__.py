"""blurmap: how blurred is each part of an image? Sigma maps (px) of the local Gaussian blur.

The core is pure functions, arrays in and arrays out; ``blurmap.plugin`` holds everything that
touches napari. Start with :func:`estimate`.
"""

__version__ = "0.2.0"  # the one place the version is written (pyproject reads it)

from . import estimators as _estimators  # noqa: F401  (registers every estimator)
from .analysis.focal import FocalFit, HoughLine, Profile, focal, hough_focal_line, profile
from .analysis.optics import TiltOptics, defocus_map
from .engine import estimate, estimate_tiles, tile_count
from .forward import blur, blur_elliptical
from .noise import estimate_noise
from .registry import Estimator, Param, estimators

__all__ = ["estimate", "estimate_tiles", "tile_count", "focal", "FocalFit", "profile", "Profile", "HoughLine",
           "hough_focal_line", "TiltOptics", "defocus_map", "estimators", "blur", "blur_elliptical", "estimate_noise", "Estimator",
           "Param"]
