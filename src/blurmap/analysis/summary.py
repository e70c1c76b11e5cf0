"""Numbers that summarise a sigma map: thirds, the sharpest band, error against a truth."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

__all__ = ["thirds", "sharpest_row", "errors", "tile_table", "plane_curve"]


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


TILE = 256  # px; the side of a tile of tile_table, unless asked otherwise
TABLE_COLUMNS = ("row", "col", "centre_y_px", "centre_x_px", "median_px", "q25_px", "q75_px", "confidence", "unknown")


def tile_table(sigma: np.ndarray, confidence: np.ndarray, tile: int = TILE,
               pixel_size: float | None = None, unit: str | None = None) -> list[dict]:
    """Return per-tile statistics of a map: centre, median and quartiles of sigma, mean confidence, share unknown.

    Parameters
    ----------
    sigma, confidence : ndarray
        2-D map (px) and its confidence, the same shape.
    tile : int
        px; the tiles' side (the last ones are what is left).
    pixel_size : float, optional
        With `unit`, the median is also given in that unit (``median_<unit>``).
    unit : str, optional
        The pixel size's unit.

    Returns
    -------
    list of dict
        One per tile, row by row: TABLE_COLUMNS (px; the confidence in [0, 1], the unknown share of
        the tile's pixels) and ``median_<unit>`` if a pixel size is given; NaN where a tile is all unknown.

    Examples
    --------
    >>> rows = tile_table(np.full((300, 520), 2.0), np.ones((300, 520)), tile=256, pixel_size=5.0, unit="nm")
    >>> len(rows), rows[0]["centre_x_px"], rows[-1]["centre_x_px"], rows[0]["median_nm"]
    (6, 127.5, 515.5, 10.0)
    """
    if tile < 1:
        raise ValueError(f"tile must be at least 1 px, not {tile}")
    h, w = sigma.shape
    rows = []
    for i, y0 in enumerate(range(0, h, tile)):
        for j, x0 in enumerate(range(0, w, tile)):
            block = sigma[y0:y0 + tile, x0:x0 + tile]
            known = block[np.isfinite(block)]
            stats = np.percentile(known, [50, 25, 75]) if known.size else [np.nan] * 3
            row = {"row": i, "col": j, "centre_y_px": (y0 + min(y0 + tile, h) - 1) / 2,
                   "centre_x_px": (x0 + min(x0 + tile, w) - 1) / 2, "median_px": float(stats[0]),
                   "q25_px": float(stats[1]), "q75_px": float(stats[2]),
                   "confidence": float(np.mean(confidence[y0:y0 + tile, x0:x0 + tile])),
                   "unknown": float(1 - known.size / block.size)}
            if pixel_size is not None:
                row[f"median_{unit}"] = row["median_px"] * pixel_size
            rows.append(row)
    return rows


def plane_curve(sigma: np.ndarray) -> dict[str, np.ndarray]:
    """Return a stack's focus-quality curve: per plane, the median sigma, its quartiles and the share unknown.

    Parameters
    ----------
    sigma : ndarray
        A stack of maps, (N, H, W) or any leading axes before H, W (flattened in C order); NaN
        is unknown.

    Returns
    -------
    dict of ndarray
        ``plane`` (0..N-1), ``median``, ``q25`` and ``q75`` (the map's units, px for a px
        estimator; NaN for a plane with no finite value) and ``unknown`` (share 0 to 1).

    Examples
    --------
    >>> import numpy as np
    >>> stack = np.stack([np.full((4, 4), s) for s in (3.0, 1.0, 2.0)])
    >>> stack[2, 0] = np.nan
    >>> curve = plane_curve(stack)
    >>> curve["median"].tolist(), curve["unknown"].tolist()
    ([3.0, 1.0, 2.0], [0.0, 0.0, 0.25])
    """
    flat = np.asarray(sigma, dtype=np.float64).reshape(-1, int(np.prod(sigma.shape[-2:])))
    known = np.isfinite(flat)
    out = {"plane": np.arange(flat.shape[0]), "median": np.full(flat.shape[0], np.nan),
           "q25": np.full(flat.shape[0], np.nan), "q75": np.full(flat.shape[0], np.nan),
           "unknown": 1.0 - known.mean(axis=1)}
    for k in np.flatnonzero(known.any(axis=1)):
        out["q25"][k], out["median"][k], out["q75"][k] = np.percentile(flat[k][known[k]], (25, 50, 75))
    return out
