"""blurmap: how blurred is each part of an image? Sigma maps (px) of the local Gaussian blur."""

from .engine import estimate, estimate_tiles, tile_count
from .focal import FocalFit, Profile, focal, hough_focal_line, profile
from .forward import blur
from .noise import estimate_noise
from .registry import Estimator, Param, estimators

__all__ = ["estimate", "estimate_tiles", "tile_count", "focal", "FocalFit", "profile", "Profile", "hough_focal_line", "estimators", "blur", "estimate_noise", "Estimator", "Param"]
__version__ = "0.1.0"
