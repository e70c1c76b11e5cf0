"""The noise-model parameters several estimators share, and the image-wide estimate that fills them.

Private to ``blurmap.estimators``: each estimator that models noise lists these records among
its parameters and names one of the ``prepare_*`` functions as its preparation.
"""

from __future__ import annotations

import numpy as np

from ..noise import estimate_noise, estimate_noise_model
from ..registry import Param

# signal-dependent noise: variance noise**2 + shot_noise * (intensity - dark_level)
NOISE_MODEL = (
    Param("noise", None, 0.0, None, "image units",
          "std of signal-independent noise; None estimates it from the image, 0 means none", nullable=True,
          scaling="spread"),
    Param("shot_noise", None, 0.0, None, "image units",
          "shot-noise variance per unit of intensity above dark_level; None estimates it, 0 means none",
          nullable=True, scaling="spread"),
    Param("dark_level", None, None, None, "image units", "intensity at which shot noise vanishes; None estimates it",
          nullable=True, scaling="level"),
)
WHITE_NOISE = Param("noise", None, 0.0, None, "image units", "noise std, for the confidence; None estimates it",
                    nullable=True, scaling="spread")
_NOISE_NAMES = tuple(p.name for p in NOISE_MODEL)


def prepare_noise_model(image, params: dict, regions: list | None = None) -> dict:
    """Return `params` with the noise-model values left None filled from one image-wide estimate (from `regions` if read)."""
    if all(params[k] is not None for k in _NOISE_NAMES):
        return params
    a, b, dark = estimate_noise_model(image, regions=regions)
    estimated = {"noise": float(np.sqrt(a)), "shot_noise": b, "dark_level": dark}
    return {**params, **{k: estimated[k] for k in _NOISE_NAMES if params[k] is None}}


def prepare_white_noise(image, params: dict, regions: list | None = None) -> dict:
    """Return `params` with noise=None filled by one image-wide estimate of white noise (from `regions` if read)."""
    if params["noise"] is None:
        params = dict(params, noise=estimate_noise(image, regions=regions))
    return params
