"""The forward model: a spatially varying Gaussian blur, each output pixel with its own sigma."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from ._validate import as_2d_float

_FIRST_LEVEL = 0.2  # px; below it a Gaussian is within 0.1% of the identity on a pixel grid
RATIO = 1.2  # ladder step; interpolation error is < 0.5% of the image range (tests/test_forward.py)


def ladder(sigma_max: float, first: float = _FIRST_LEVEL, ratio: float = RATIO) -> np.ndarray:
    """Return the blur levels (px) used to interpolate any sigma in [0, sigma_max]: 0, then geometric."""
    levels = [0.0, first]
    while levels[-1] < sigma_max:
        levels.append(levels[-1] * ratio)
    return np.asarray(levels)


def blur(image, sigma_map) -> np.ndarray:
    """Blur `image` so that each output pixel carries the Gaussian blur `sigma_map` gives it (px).

    Output pixel p is sum_q G(q - p; sigma(p)) image(q), the "gather" form of a spatially varying
    Gaussian, with borders reflected as in ``scipy.ndimage``. It is evaluated exactly at a ladder
    of uniform blurs (0, 0.2 px, then steps of 20%) and interpolated per pixel between the two
    neighbouring levels, linearly in the variance sigma**2, along which a Gaussian blur evolves
    smoothly (the heat equation). Unlike mixing a minimum and a maximum blur, no frequency of the
    sharper level leaks through beyond the interpolation error, which stays under 0.5% of the
    image range. The reference method inverts exactly this model. Returns float32 in the units
    of `image`.
    """
    img = as_2d_float(image)
    img = np.asarray(img, dtype=np.float64)
    smap = np.asarray(sigma_map, dtype=np.float64)
    if smap.shape != img.shape:
        raise ValueError(f"sigma_map has shape {smap.shape}, image has {img.shape}; they must agree")
    if not np.isfinite(smap).all() or (smap < 0).any():
        raise ValueError("sigma_map must be finite and non-negative (px)")
    levels = ladder(float(smap.max()))
    t_levels = levels**2
    t = smap**2
    out = img.copy()  # sigma == 0 pixels keep their value
    below = img
    for k in range(1, len(levels)):
        above = ndi.gaussian_filter(img, levels[k], mode="reflect", truncate=4.0)
        sel = (t > t_levels[k - 1]) & (t <= t_levels[k])
        if sel.any():
            a = (t[sel] - t_levels[k - 1]) / (t_levels[k] - t_levels[k - 1])
            out[sel] = (1.0 - a) * below[sel] + a * above[sel]
        below = above
    return out.astype(np.float32)
