"""Focal-band analysis: the tilted-focal-plane model fitted robustly to a sigma map."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np
from scipy.optimize import least_squares

from .line import distance_map
from .optics import SIGMA_LIMIT, TiltOptics, check_geometry, tilt_optics
from .summary import sharpest_row

__all__ = ["focal", "profile", "hough_focal_line", "FocalFit", "Profile", "HoughLine", "distance_map"]

_MAX_SAMPLES = 20000
MIN_R_SQUARED = 0.5  # a focal band explains at least this share of the map's variance
MIN_RISE = 0.2  # px: and the blur rises at least this much from the focal line across the image
_ANGLE_BOUND = 45.0  # degrees: the fit's bound on the line's angle


@dataclass(frozen=True)
class FocalFit:
    """A focal line and the blur around it, as :func:`focal` fits them; distances and sigma in px of the map.

    Examples
    --------
    >>> import blurmap
    >>> from blurmap import synthetic
    >>> fit = blurmap.focal(synthetic.tilted_focal_plane((300, 400), position=0.4, angle_deg=4.0))
    >>> round(fit.position, 2), round(fit.angle_deg, 1), round(fit.gradient, 4)
    (0.4, 4.0, 0.008)
    """

    angle_deg: float  # of the focal line from horizontal; positive: it descends to the right as displayed
    row_at_centre: float  # px: where the line crosses the centre column
    position: float  # row_at_centre as a fraction of the height (0 top, 1 bottom)
    gradient: float  # px of sigma per px of distance from the line
    floor: float  # px: the in-focus blur
    rmse: float  # px: root mean square residual of the fit
    r_squared: float  # share of the map's variance the model explains
    found: bool = True  # whether the map shows a focal band at all (see focal); if not, the line means nothing
    reason: str = ""  # why not, when found is False
    optics: TiltOptics | None = None  # given a pixel size and a tilt: the optics behind the blur (analysis.optics)

    @property
    def convergence_mrad(self) -> float | None:
        """The beam's convergence semi-angle (mrad), if a pixel size and a tilt were given and a band found."""
        return None if self.optics is None else self.optics.convergence_mrad

    @property
    def depth_of_field(self) -> float | None:
        """The depth of field, in the pixel size's unit, if a pixel size and a tilt were given and a band found."""
        return None if self.optics is None else self.optics.depth_of_field

    def as_dict(self) -> dict:
        """Return the fit as a plain dict (for JSON)."""
        return asdict(self)


def model(params: np.ndarray, yy: np.ndarray, xx: np.ndarray, centre_x: float) -> np.ndarray:
    """Return sigma (px) of a tilted plane: sqrt(floor**2 + (gradient * distance to the line)**2)."""
    angle, row, gradient, floor = params
    d = (yy - row) * np.cos(angle) - (xx - centre_x) * np.sin(angle)  # as synthetic.tilted_focal_plane
    return np.sqrt(floor**2 + (gradient * d) ** 2)


def focal(sigma_map: np.ndarray, *, pixel_size: float | None = None, tilt_deg: float | None = None,
          unit: str = "px", sigma_limit: float = SIGMA_LIMIT) -> FocalFit:
    """Return the focal line fitted to a sigma map (px) of a tilted flat specimen, and the optics if the tilt is known.

    The model is sigma = sqrt(floor**2 + (gradient * d)**2), d the distance to a straight focal
    line, fitted by robust least squares (soft L1) to up to 20 000 finite pixels on a regular
    grid, from starts at -10, 0 and 10 degrees around the sharpest row. Lines within 45 degrees
    of horizontal are found; for a vertical band, fit the transposed map.

    Parameters
    ----------
    sigma_map : array_like
        2-D sigma map, px; NaN pixels are left out.
    pixel_size : float, optional
        The image's pixel size in `unit` per px; with `tilt_deg`, the fit also gives the optics.
    tilt_deg : float, optional
        The stage tilt, degrees (0 .. 90, exclusive).
    unit : str
        The pixel size's unit ("nm", "um"); the optics' lengths are in it.
    sigma_limit : float
        px; the blur at which the depth of field ends.

    Returns
    -------
    FocalFit
        The line's angle (degrees from horizontal) and its row at the centre column (px and as a
        fraction of the height), the blur gradient (px of sigma per px), the in-focus floor (px),
        and the fit's RMSE (px) and R squared. ``found`` says whether the map shows a focal band
        at all: the fitted line crosses the image, lies within the angles searched (not pinned at
        45 degrees), explains at least MIN_R_SQUARED of the map's variance, and the blur rises by at
        least MIN_RISE px from it across the image; otherwise ``reason`` says which failed and the
        line means nothing (an image blurred left and right, a uniform blur, a band outside the image).
        Given `pixel_size` and `tilt_deg` and a band found, ``optics`` holds the beam's convergence
        semi-angle, the defocus per px and the depth of field (see :mod:`blurmap.analysis.optics`),
        also read as ``fit.convergence_mrad`` and ``fit.depth_of_field``.

    Raises
    ------
    ValueError
        If the map is not 2-D or has fewer than 16 known pixels.

    Examples
    --------
    >>> import blurmap
    >>> from blurmap import synthetic
    >>> truth = synthetic.tilted_focal_plane((300, 400), position=0.3, angle_deg=-5.0, floor=0.6)
    >>> fit = blurmap.focal(truth)
    >>> round(fit.position, 2), round(fit.angle_deg, 1), round(fit.floor, 2)
    (0.3, -5.0, 0.6)
    >>> optics = blurmap.focal(truth, pixel_size=4.0, unit="nm", tilt_deg=45.0)
    >>> round(optics.convergence_mrad, 1), round(optics.depth_of_field), optics.optics.unit
    (16.0, 800, 'nm')
    """
    if (pixel_size is None) != (tilt_deg is None):
        raise ValueError("give both pixel_size and tilt_deg for the optics, or neither")
    if pixel_size is not None:
        check_geometry(pixel_size, tilt_deg, sigma_limit)
    sigma = np.asarray(sigma_map, dtype=np.float64)
    if sigma.ndim != 2:
        raise ValueError(f"sigma_map must be 2-D, got shape {sigma.shape}")
    finite = np.isfinite(sigma)
    if finite.sum() < 16:
        raise ValueError("sigma_map has fewer than 16 known pixels: no focal line can be fitted")
    h, w = sigma.shape
    step = max(1, int(np.sqrt(finite.sum() / _MAX_SAMPLES)))
    yy, xx = np.mgrid[0:h:step, 0:w:step]
    values = sigma[::step, ::step]
    keep = np.isfinite(values)
    yy, xx, values = yy[keep].astype(float), xx[keep].astype(float), values[keep]
    centre_x = (w - 1) / 2
    row0 = sharpest_row(sigma) * (h - 1)
    floor0 = float(np.percentile(values, 2))
    gradient0 = max(float(np.median(np.abs(values - floor0) / (np.abs(yy - row0) + 1.0))), 1e-4)
    scale = max(float(np.median(np.abs(values - np.median(values)))), 1e-3)
    best = None
    for angle0 in np.deg2rad([-10.0, 0.0, 10.0]):
        fit = least_squares(lambda p: model(p, yy, xx, centre_x) - values, [angle0, row0, gradient0, floor0],
                            bounds=([-np.pi / 4, -h, 0.0, 0.0], [np.pi / 4, 2 * h, np.inf, np.inf]),
                            loss="soft_l1", f_scale=scale)
        if best is None or fit.cost < best.cost:
            best = fit
    angle, row, gradient, floor = best.x
    residual = model(best.x, yy, xx, centre_x) - values
    rmse = float(np.sqrt(np.mean(residual**2)))
    r_squared = float(1 - np.mean(residual**2) / max(np.var(values), 1e-300))
    rise = float(model(best.x, yy, xx, centre_x).max() - floor)
    reason = _no_band(float(np.rad2deg(angle)), float(row), (h, w), r_squared, rise)
    fit = FocalFit(float(np.rad2deg(angle)), float(row), float(row / max(h - 1, 1)), float(gradient),
                   float(floor), rmse, r_squared, found=not reason, reason=reason)
    if pixel_size is not None and fit.found:
        fit = replace(fit, optics=tilt_optics(fit, pixel_size, tilt_deg, unit, sigma_limit))
    return fit


def _no_band(angle_deg: float, row: float, shape: tuple[int, int], r_squared: float, rise: float) -> str:
    """Return why a fitted line shows no focal band ("" when it does)."""
    h, w = shape
    ends = row + np.tan(np.deg2rad(angle_deg)) * (np.array([0.0, w - 1.0]) - (w - 1) / 2)
    if rise < MIN_RISE or r_squared < 0.05:
        return f"no focal band found: the blur is about uniform (it rises by {rise:.2f} px from the best line)"
    if abs(angle_deg) > _ANGLE_BOUND - 1:
        return ("no focal band found: the blur does not grow away from a line within 45 degrees of horizontal "
                "(a band near vertical: fit the transposed map)")
    if ends.max() < 0 or ends.min() > h - 1:
        return (f"no focal band found: the sharpest line lies outside the image, at {100 * row / max(h - 1, 1):.0f}% "
                "of the height")
    if r_squared < MIN_R_SQUARED:
        return f"no focal band found: a tilted plane explains only {100 * r_squared:.0f}% of the map's variance"
    return ""


@dataclass(frozen=True)
class Profile:
    """Sigma against signed distance from the focal line (px), binned: median and quartiles (see :func:`profile`).

    Examples
    --------
    >>> import blurmap
    >>> from blurmap import synthetic
    >>> prof = blurmap.profile(synthetic.tilted_focal_plane((300, 400)))
    >>> bool(prof.median.min() < 0.6 < prof.median.max())
    True
    """

    distance: np.ndarray  # px, bin centres; negative above the line as displayed
    median: np.ndarray  # px of sigma
    lower: np.ndarray  # 25th percentile
    upper: np.ndarray  # 75th percentile
    count: np.ndarray  # pixels in each bin
    thirds: tuple[float, float]  # distances of the image's one-third and two-thirds rows at the centre column

    def as_dict(self) -> dict:
        """Return the profile as plain lists (for JSON)."""
        return {k: (v.tolist() if isinstance(v, np.ndarray) else list(v)) for k, v in asdict(self).items()}


def profile(sigma_map: np.ndarray, fit: FocalFit | None = None, bins: int = 40) -> Profile:
    """Return median sigma and its quartiles against distance from the focal line (px).

    Parameters
    ----------
    sigma_map : array_like
        2-D sigma map, px.
    fit : FocalFit, optional
        The focal line; fitted by :func:`focal` unless given.
    bins : int
        How many distance bins; bins with fewer than 20 known pixels are left out.

    Returns
    -------
    Profile
        Bin centres (px, negative above the line as displayed), median, 25th and 75th percentiles
        of sigma (px), pixel counts, and the distances of the image's thirds at the centre column.

    Examples
    --------
    >>> import blurmap
    >>> from blurmap import synthetic
    >>> truth = synthetic.tilted_focal_plane((300, 400), gradient=0.01)
    >>> prof = blurmap.profile(truth, bins=20)
    >>> len(prof.distance) == 20 and bool(abs(prof.median[0] - 0.01 * abs(prof.distance[0])) < 0.2)
    True
    """
    sigma = np.asarray(sigma_map, dtype=np.float64)
    fit = fit or focal(sigma)
    d = distance_map(sigma.shape, fit)
    known = np.isfinite(sigma)
    edges = np.linspace(d[known].min(), d[known].max(), bins + 1)
    which = np.clip(np.digitize(d[known], edges) - 1, 0, bins - 1)
    values = sigma[known]
    rows = []
    for b in range(bins):
        v = values[which == b]
        if v.size >= 20:
            rows.append(((edges[b] + edges[b + 1]) / 2, *np.percentile(v, [50, 25, 75]), v.size))
    table = np.asarray(rows, dtype=np.float64).reshape(-1, 5)
    h = sigma.shape[0]
    thirds = tuple(float((h * k / 3 - fit.row_at_centre) * np.cos(np.deg2rad(fit.angle_deg))) for k in (1, 2))
    return Profile(table[:, 0], table[:, 1], table[:, 2], table[:, 3], table[:, 4].astype(int), thirds)


@dataclass(frozen=True)
class HoughLine:
    """The strongest straight line through the sharpest pixels (seed 000's answer 4), as a check on :func:`focal`.

    Examples
    --------
    >>> import blurmap
    >>> from blurmap import synthetic
    >>> line = blurmap.hough_focal_line(synthetic.tilted_focal_plane((300, 400), angle_deg=4.0))
    >>> bool(abs(line.angle_deg - 4.0) < 1.0)
    True
    """

    angle_deg: float  # same convention as FocalFit.angle_deg
    row_at_centre: float  # px
    position: float  # fraction of the height

    def as_dict(self) -> dict:
        """Return the line as a plain dict (for JSON)."""
        return asdict(self)


def hough_focal_line(sigma_map: np.ndarray, bins: int = 720) -> HoughLine:
    """Return the Hough transform's strongest line through the band's ridge, as a check on :func:`focal`.

    Independent of the tilted-plane model: each column votes once, at the centre of its sharpest
    rows (those below the column's 15th percentile of column-smoothed sigma, weighted by how far
    below): a thick band of sharp pixels would let every line inside it vote, favouring the
    band's diagonal, and a single least row wanders along the band's flat bottom. Lines within
    45 degrees of horizontal count.

    Parameters
    ----------
    sigma_map : array_like
        2-D sigma map, px.
    bins : int
        Rows are binned so that at most about this many rows vote.

    Returns
    -------
    HoughLine
        The line's angle (degrees, as FocalFit's) and its row at the centre column (px and fraction).

    References
    ----------
    .. [1] R. O. Duda and P. E. Hart, "Use of the Hough transformation to detect lines and curves
       in pictures", Comm. ACM 15(1), 11-15, 1972.

    Examples
    --------
    >>> import blurmap
    >>> from blurmap import synthetic
    >>> line = blurmap.hough_focal_line(synthetic.tilted_focal_plane((300, 400), position=0.5))
    >>> bool(abs(line.position - 0.5) < 0.02)
    True
    """
    from scipy import ndimage as ndi
    from skimage.transform import hough_line, hough_line_peaks

    sigma = np.asarray(sigma_map, dtype=np.float64)
    if np.isfinite(sigma).sum() < 16:
        raise ValueError("sigma_map has fewer than 16 known pixels: no focal line can be found")
    h, w = sigma.shape
    filled = np.where(np.isfinite(sigma), sigma, np.nanmax(sigma))
    smooth = ndi.uniform_filter1d(filled, max(3, h // 20), axis=0, mode="nearest")
    depth = np.maximum(np.percentile(smooth, 15, axis=0)[None, :] - smooth, 0.0)
    rows = np.arange(h)[:, None]
    ridge = np.where(depth.sum(axis=0) > 0, (depth * rows).sum(axis=0) / np.maximum(depth.sum(axis=0), 1e-300),
                     np.argmin(smooth, axis=0))
    ridge = np.clip(np.round(ridge).astype(int), 0, h - 1)
    step = max(1, h // bins)
    mask = np.zeros((h // step + 1, w), dtype=bool)
    mask[ridge // step, np.arange(w)] = True
    theta = np.deg2rad(np.linspace(45.0, 135.0, 361))  # normals near vertical: lines near horizontal
    accumulator, angles, distances = hough_line(mask, theta=theta)
    _, peak_angles, peak_distances = hough_line_peaks(accumulator, angles, distances, num_peaks=1)
    angle, rho = float(peak_angles[0]), float(peak_distances[0])
    # rho = x cos(theta) + y sin(theta) in the row-binned mask; the line runs at theta - 90 degrees
    row_binned = (rho - (w - 1) / 2 * np.cos(angle)) / np.sin(angle)
    slope = -np.cos(angle) / np.sin(angle) * step  # rows per column in the full map
    return HoughLine(float(np.rad2deg(np.arctan(slope))), float(row_binned * step),
                     float(row_binned * step / max(h - 1, 1)))
