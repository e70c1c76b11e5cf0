"""Image minus its re-blurred copy (seed 000, answer 3), normalised and smoothed edge-preservingly."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi


def halo(radius: float = 2.0, window: float = 16.0, iterations: int = 20) -> int:
    """Return the context (px) each side of a tile: re-blur, contrast window and diffusion reach."""
    return int(4.0 * radius + 0.5) + 1 + int(window) + iterations + 1


def perona_malik(a: np.ndarray, iterations: int, kappa: float, step: float = 0.2) -> np.ndarray:
    """Return `a` after `iterations` steps of Perona-Malik diffusion (conductance exp(-(d/kappa)**2))."""
    a = a.copy()
    for _ in range(iterations):
        p = np.pad(a, 1, mode="edge")
        flux = np.zeros_like(a)
        for d in (p[:-2, 1:-1] - a, p[2:, 1:-1] - a, p[1:-1, :-2] - a, p[1:-1, 2:] - a):
            flux += np.exp(-(d / kappa) ** 2) * d
        a += step * flux
    return a


def difference(image: np.ndarray, *, radius: float = 2.0, window: float = 16.0, iterations: int = 20,
               noise: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Return (detail score, dimensionless, higher is sharper; confidence in [0, 1]).

    |image - blur(image, radius)| is the detail a re-blur removes: much where the image is sharp,
    little where it is already blurred. It is divided by the local standard deviation over a
    `window` px box, so gain and offset cancel, then smoothed by Perona-Malik diffusion, which
    evens out texture without smearing the borders between sharp and blurred regions.
    """
    img = np.asarray(image, dtype=np.float64)
    detail = np.abs(img - ndi.gaussian_filter(img, radius, mode="reflect"))
    size = 2 * int(window) + 1
    mean = ndi.uniform_filter(img, size, mode="reflect")
    # squared deviation from the local mean, smoothed: E[x**2] - E[x]**2 cancels catastrophically
    # under a large offset; a floor of 1e-6 of the local intensity marks exactly flat areas
    var = ndi.uniform_filter((img - mean) ** 2, size, mode="reflect")
    textured = var > (1e-6 * np.abs(mean)) ** 2 + 1e-300
    local_detail = ndi.uniform_filter(detail, size, mode="reflect")
    with np.errstate(divide="ignore", invalid="ignore"):
        score = np.where(textured, local_detail / np.sqrt(var), np.nan)
    score = perona_malik(np.nan_to_num(score), iterations, kappa=0.05)
    score = np.where(textured, score, np.nan)
    conf = var / (var + noise**2 + 1e-300)
    return score.astype(np.float32), conf.astype(np.float32)
