"""Numbers that summarise a sigma map: thirds, the sharpest band, error against a truth."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi


def thirds(sigma: np.ndarray) -> list[float]:
    """Return the median sigma (px) of the upper, middle and lower horizontal thirds."""
    h = sigma.shape[0]
    cuts = [0, h // 3, 2 * h // 3, h]
    return [float(np.nanmedian(sigma[a:b])) for a, b in zip(cuts[:-1], cuts[1:])]


def sharpest_row(sigma: np.ndarray) -> float:
    """Return where the sharpest horizontal band lies, as a fraction of the height (0 top, 1 bottom)."""
    rows = np.nanmedian(sigma, axis=1)
    rows = np.where(np.isfinite(rows), rows, np.nanmax(rows))
    smooth = ndi.uniform_filter1d(rows, max(3, sigma.shape[0] // 20), mode="nearest")
    return float(np.argmin(smooth) / max(sigma.shape[0] - 1, 1))


def errors(sigma: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Return RMSE (px) over known pixels, share of all pixels within 30% of the truth (unknown
    pixels count as misses) and share unknown (NaN) of a sigma map."""
    known = np.isfinite(sigma)
    err = sigma[known] - truth[known]
    within = np.zeros(truth.shape, dtype=bool)
    within[known] = np.abs(err) <= 0.3 * truth[known]
    return {"rmse_px": float(np.sqrt(np.mean(err**2))), "within_30pct": float(within.mean()),
            "unknown": float(1 - known.mean())}
