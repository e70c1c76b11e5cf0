"""The optics behind a tilted specimen's blur: beam convergence, defocus and depth of field from a focal fit.

The model (small angles, geometric optics):

- a flat specimen tilted by ``tilt_deg`` about an axis along the focal line: a point at a distance
  d (px, across the line in the image) from the focal line lies d x pixel_size x tan(tilt) above or
  below the focal plane (the image foreshortens the specimen by cos(tilt));
- a beam (or cone of rays) of convergence semi-angle alpha blurs a point a height z out of focus
  into a disc of radius alpha x |z|;
- the Gaussian with the disc's second moment has sigma = radius / 2 (a uniform disc of radius r has
  a variance of r**2 / 4 along each axis);
- blur adds in quadrature to the in-focus blur s0 (the probe, the detector, the specimen).

So sigma(d) = sqrt(s0**2 + (g d)**2) with g = alpha tan(tilt) / 2 px per px: the focal fit's
gradient gives alpha = 2 g / tan(tilt). The depth of field, the height range over which sigma stays
at most a limit L px, is 2 sqrt(L**2 - s0**2) x pixel_size x 2 / alpha, whatever the tilt.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .line import distance_map

__all__ = ["TiltOptics", "tilt_optics", "defocus_map", "check_geometry", "check_positive"]

SIGMA_LIMIT = 1.0  # px; the blur at which the depth of field ends, unless the user sets another


@dataclass(frozen=True)
class TiltOptics:
    """What a focal fit says of the optics, given the pixel size and the stage tilt (see the module's model).

    Examples
    --------
    >>> from blurmap.analysis.focal import FocalFit
    >>> fit = FocalFit(0.0, 100.0, 0.5, gradient=0.01, floor=0.5, rmse=0.0, r_squared=1.0)
    >>> optics = tilt_optics(fit, pixel_size=2.0, unit="nm", tilt_deg=45.0)
    >>> round(optics.convergence_mrad, 1), round(optics.depth_of_field, 1), optics.unit
    (20.0, 346.4, 'nm')
    """

    pixel_size: float  # in `unit` per px
    unit: str
    tilt_deg: float
    convergence_mrad: float  # the beam's convergence semi-angle
    defocus_per_px: float  # height out of focus, in `unit`, per px of distance from the focal line
    depth_of_field: float  # in `unit`: the height range where sigma <= sigma_limit_px (0 if the floor exceeds it)
    sigma_limit_px: float
    floor: float  # in `unit`: the in-focus blur sigma

    def as_dict(self) -> dict:
        """Return the figures as a plain dict (for JSON)."""
        return asdict(self)


def check_positive(name: str, value) -> None:
    """Raise ValueError naming `name` unless `value` is a finite number above 0 (a bool is not a number here).

    Parameters
    ----------
    name : str
        What the value is, for the message.
    value : object
        The value.

    Returns
    -------
    None

    Examples
    --------
    >>> check_positive("z_step", -1.0)
    Traceback (most recent call last):
    ...
    ValueError: z_step must be a positive number, not -1.0
    """
    if isinstance(value, bool) or not (isinstance(value, (int, float, np.number)) and np.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive number, not {value!r}")


def check_geometry(pixel_size, tilt_deg, sigma_limit=SIGMA_LIMIT) -> None:
    """Raise ValueError naming the problem unless the pixel size and sigma limit are positive and the tilt in (0, 90) degrees.

    Parameters
    ----------
    pixel_size : float
        Length per px.
    tilt_deg : float
        Degrees.
    sigma_limit : float
        px.

    Returns
    -------
    None

    Examples
    --------
    >>> check_geometry(5.0, 90.0)
    Traceback (most recent call last):
    ...
    ValueError: tilt_deg must lie strictly between 0 and 90 degrees (exclusive), not 90.0
    """
    check_positive("pixel_size", pixel_size)
    check_positive("sigma_limit", sigma_limit)
    if isinstance(tilt_deg, bool) or not (isinstance(tilt_deg, (int, float, np.number)) and 0 < tilt_deg < 90):
        raise ValueError(f"tilt_deg must lie strictly between 0 and 90 degrees (exclusive), not {tilt_deg!r}")


def tilt_optics(fit, pixel_size: float, tilt_deg: float, unit: str = "px",
                sigma_limit: float = SIGMA_LIMIT) -> TiltOptics:
    """Return the convergence semi-angle, defocus rate and depth of field a focal fit implies.

    Parameters
    ----------
    fit : FocalFit
        From :func:`blurmap.focal`, on a map in px.
    pixel_size : float
        The image's pixel size, in `unit` per px, > 0.
    tilt_deg : float
        The specimen's tilt from the plane normal to the beam, degrees, strictly between 0 and 90.
    unit : str
        The pixel size's unit ("nm", "um", ...); the lengths returned are in it.
    sigma_limit : float
        px; the blur at which the depth of field ends.

    Returns
    -------
    TiltOptics
        convergence_mrad (mrad), defocus_per_px and depth_of_field (`unit`), and the inputs.

    Raises
    ------
    ValueError
        For a pixel size or a sigma limit that is not a positive number, a tilt outside (0, 90)
        degrees, or a fit that found no focal band.

    Examples
    --------
    >>> import blurmap
    >>> from blurmap import synthetic
    >>> fit = blurmap.focal(synthetic.tilted_focal_plane((300, 400), gradient=0.0087, floor=0.5))
    >>> round(tilt_optics(fit, pixel_size=5.0, tilt_deg=60.0, unit="nm").convergence_mrad, 1)
    10.0
    """
    check_geometry(pixel_size, tilt_deg, sigma_limit)
    if not fit.found:
        raise ValueError(f"no optics without a focal band: {fit.reason}")
    tan = float(np.tan(np.deg2rad(tilt_deg)))
    alpha = 2.0 * fit.gradient / tan  # rad
    reach = np.sqrt(max(sigma_limit**2 - fit.floor**2, 0.0)) / max(fit.gradient, 1e-300)  # px either side
    return TiltOptics(float(pixel_size), unit, float(tilt_deg), 1e3 * alpha, float(pixel_size * tan),
                      float(2 * reach * pixel_size * tan), float(sigma_limit), float(fit.floor * pixel_size))


def defocus_map(shape: tuple[int, int], fit, pixel_size: float, tilt_deg: float) -> np.ndarray:
    """Return every pixel's height out of the focal plane, signed (positive below the line as displayed), in the pixel size's unit.

    Parameters
    ----------
    shape : tuple of int
        px; the map's (rows, columns).
    fit : FocalFit
        From :func:`blurmap.focal`.
    pixel_size : float
        Unit per px.
    tilt_deg : float
        Degrees.

    Returns
    -------
    ndarray
        float32, `shape`.

    Examples
    --------
    >>> from blurmap.analysis.focal import FocalFit
    >>> fit = FocalFit(0.0, 10.0, 0.5, gradient=0.01, floor=0.5, rmse=0.0, r_squared=1.0)
    >>> z = defocus_map((21, 5), fit, pixel_size=2.0, tilt_deg=45.0)
    >>> float(z[10, 0]), round(float(z[20, 0]), 6)
    (0.0, 20.0)
    """

    return (distance_map(shape, fit) * pixel_size * np.tan(np.deg2rad(tilt_deg))).astype(np.float32)
