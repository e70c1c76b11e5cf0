"""The focal line's geometry: each pixel's signed distance from it (shared by the focal fit, the optics and the
astigmatism summary)."""

from __future__ import annotations

import numpy as np

__all__ = ["distance_map"]


def distance_map(shape: tuple[int, int], fit) -> np.ndarray:
    """Return each pixel's signed distance (px) from the fitted focal line.

    Parameters
    ----------
    shape : tuple of int
        px; the map's (rows, columns).
    fit : FocalFit
        The line (its ``angle_deg`` and ``row_at_centre``).

    Returns
    -------
    ndarray
        float64, px; negative above the line as displayed.

    Examples
    --------
    >>> import blurmap
    >>> from blurmap import synthetic
    >>> fit = blurmap.focal(synthetic.tilted_focal_plane((101, 120), position=0.5, angle_deg=0.0))
    >>> d = distance_map((101, 120), fit)
    >>> round(float(d[0, 60])), round(float(d[100, 60]))
    (-50, 50)
    """
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    a = np.deg2rad(fit.angle_deg)
    return (yy - fit.row_at_centre) * np.cos(a) - (xx - (w - 1) / 2) * np.sin(a)
