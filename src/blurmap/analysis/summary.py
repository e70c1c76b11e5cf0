"""Numbers that summarise a sigma map: thirds, the sharpest band, error against a truth."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

__all__ = ["thirds", "sharpest_row", "errors"]


def thirds(sigma: np.ndarray) -> list[float]:
    """Return the median sigma (px) of the upper, middle and lower horizontal thirds.

    Parameters
    ----------
    sigma : ndarray
        2-D map; NaN is ignored.

    Returns
    -------
    list of float
        Three medians, top to bottom.

    Examples
    --------
    >>> from blurmap import synthetic
    >>> [round(v, 2) for v in thirds(synthetic.ramp((6, 6), 1.0, 2.0, axis=0))]
    [1.1, 1.5, 1.9]
    """
    h = sigma.shape[0]
    cuts = [0, h // 3, 2 * h // 3, h]
    return [float(np.nanmedian(sigma[a:b])) for a, b in zip(cuts[:-1], cuts[1:])]


def sharpest_row(sigma: np.ndarray) -> float:
    """Return where the sharpest horizontal band lies, as a fraction of the height (0 top, 1 bottom).

    Parameters
    ----------
    sigma : ndarray
        2-D map (px, or a score where lower is sharper).

    Returns
    -------
    float
        The row of least (row-median, smoothed) sigma over the height less one.

    Examples
    --------
    >>> from blurmap import synthetic
    >>> round(sharpest_row(synthetic.tilted_focal_plane((101, 80), position=0.3, angle_deg=0.0)), 2)
    0.3
    """
    rows = np.nanmedian(sigma, axis=1)
    rows = np.where(np.isfinite(rows), rows, np.nanmax(rows))
    smooth = ndi.uniform_filter1d(rows, max(3, sigma.shape[0] // 20), mode="nearest")
    return float(np.argmin(smooth) / max(sigma.shape[0] - 1, 1))


def errors(sigma: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Return the error of a sigma map against the truth.

    Parameters
    ----------
    sigma, truth : ndarray
        px, the same shape.

    Returns
    -------
    dict
        ``rmse_px`` over the known pixels; ``within_30pct``, the share of all pixels within 30% of
        the truth (unknown pixels count as misses); ``unknown``, the share of NaN pixels.

    Examples
    --------
    >>> import numpy as np
    >>> truth = np.full((2, 2), 2.0)
    >>> errors(np.array([[2.0, 2.5], [3.0, np.nan]]), truth)
    {'rmse_px': 0.6454972243679028, 'within_30pct': 0.5, 'unknown': 0.25}
    """
    known = np.isfinite(sigma)
    err = sigma[known] - truth[known]
    within = np.zeros(truth.shape, dtype=bool)
    within[known] = np.abs(err) <= 0.3 * truth[known]
    return {"rmse_px": float(np.sqrt(np.mean(err**2))), "within_30pct": float(within.mean()),
            "unknown": float(1 - known.mean())}
