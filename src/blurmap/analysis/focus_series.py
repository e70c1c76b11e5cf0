"""Focus series to a height map: each pixel's blur against focus, fitted, gives the height of best focus.

Across a series of images of one field at focus positions z_i = i x z_step, a pixel at height h
carries sigma(z) = sqrt(s0**2 + (k (z - h))**2) (the blur model of a defocused point, as for a
tilted specimen, see :mod:`blurmap.analysis.optics`): sigma**2 is a parabola in z, whose vertex is
the height. Per pixel, the parabola a z**2 + b z + c is fitted to sigma**2 by weighted least
squares (weights: each plane's confidence over sigma**2, so every plane counts by its relative
error) over the planes within WINDOW of the sharpest, in closed form; h = -b / 2a (unknown if it
lies more than half a step beyond the series: a minimum outside it is extrapolated, not seen),
s0**2 = c - b**2 / 4a, k = sqrt(a). The height lands between planes, to a fraction of the step,
where the per-pixel arg-min of sigma (what most extended-depth-of-field tools do) can only name a
plane.

That parabola is fitted, by default, to sigma maps of each plane (``fit="sigma"``, any
estimator). ``fit="relative"`` needs no estimator: between adjacent planes of one field the
texture is the same, so how much the sharper plane must be re-blurred for its local gradient
energy to match the blurrier one's gives the difference of their variances,
sigma_(i+1)**2 - sigma_i**2 = k**2 (2 (i - h) + 1), texture-free and over a few px only (the
depth-from-defocus principle); a line through those differences over the planes near the
sharpest gives h where it crosses zero (less half a step), and k. The energy window is tried
where it is and moved 2 px each way, and the line that fits its differences best is kept (as
Kuwahara's filter keeps the most uniform of its windows): beside a height step one of them lies on
one side only. It keeps a step's edge within a few px where a sigma map's reach (16-60 px)
blends the two sides over its width.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from .optics import check_positive

__all__ = ["FocusSeries", "focus_series", "fit_focus", "fit_relative", "relative_blur"]

WINDOW = 3  # planes either side of each pixel's sharpest that its parabola is fitted to
SIGMA_FLOOR = 0.3  # px; sigma below this counts as this in the weights (no plane weighs without bound)
CONF_RESIDUAL = 0.3  # px of RMS residual (in sigma) at which the confidence halves
FITS = ("sigma", "relative")  # how focus_series fits: sigma maps per plane, or relative blur between planes
ENERGY_WINDOW = 2.0  # px; the Gaussian window of the local gradient energies fit="relative" matches
REBLUR_LADDER = np.linspace(0.0, 4.0, 41)  # px; the re-blurs tried (a step of at most 16 px**2 of variance)
HEIGHT_MEDIAN = 15  # px; the relative fit's heights are the median over this square (outliers of flat areas)
WINDOW_SHIFT = 2  # px; the relative fit also tries the energy window moved this far up, down, left and right
WINDOW_SHIFTS = ((0, 0), (WINDOW_SHIFT, 0), (-WINDOW_SHIFT, 0), (0, WINDOW_SHIFT), (0, -WINDOW_SHIFT))


@dataclass(frozen=True)
class FocusSeries:
    """A focus series' height map and what goes with it (see :func:`focus_series`).

    Examples
    --------
    >>> z = np.arange(5.0)[:, None, None] * np.ones((5, 2, 3))
    >>> fit = fit_focus(np.sqrt(0.25 + (0.8 * (z - 1.5)) ** 2), z_step=1.0)
    >>> np.round(fit.height, 3).tolist()[0]
    [1.5, 1.5, 1.5]
    """

    height: np.ndarray  # (Y, X) float32, in the unit of z_step, from the first plane; NaN where no vertex is found
    confidence: np.ndarray  # (Y, X) float32 in [0, 1]
    all_in_focus: np.ndarray | None  # (Y, X): each pixel from the plane nearest its height; None without the stack
    floor: np.ndarray  # (Y, X) float32, px: the in-focus blur s0
    slope: np.ndarray  # (Y, X) float32, px of sigma per unit of z: k
    sharpest: np.ndarray  # (Y, X) int: the plane of least sigma (the arg-min)
    z_step: float


def fit_focus(sigma: np.ndarray, z_step: float, confidence: np.ndarray | None = None,
              stack: np.ndarray | None = None) -> FocusSeries:
    """Return the height map a stack of sigma maps (px) implies, planes z_step apart.

    Parameters
    ----------
    sigma : ndarray
        (Z, Y, X) sigma maps, px, one per focus position; NaN where unknown.
    z_step : float
        The focus step between planes, in any unit (the height comes in it), > 0.
    confidence : ndarray, optional
        (Z, Y, X) in [0, 1]; 1 everywhere by default.
    stack : ndarray, optional
        (Z, Y, X) the images themselves, for the all-in-focus composite.

    Returns
    -------
    FocusSeries
        Heights from the first plane, their confidence, the composite, the fitted s0 and k.

    Raises
    ------
    ValueError
        For fewer than three planes, a step that is not a positive number, or shapes that differ.

    Examples
    --------
    >>> z = np.arange(7.0)[:, None, None] * np.ones((7, 4, 4))
    >>> fit = fit_focus(np.sqrt(0.36 + (0.5 * (z - 2.25 / 0.5)) ** 2), z_step=0.5)
    >>> round(float(fit.height[0, 0]), 3), round(float(fit.floor[0, 0]), 3)
    (2.25, 0.6)
    """
    sigma = np.asarray(sigma, dtype=np.float64)
    if sigma.ndim != 3 or sigma.shape[0] < 3:
        raise ValueError(f"a focus series needs (Z, Y, X) maps of at least 3 planes, got shape {sigma.shape}")
    check_positive("z_step", z_step)
    conf = np.ones_like(sigma) if confidence is None else np.asarray(confidence, dtype=np.float64)
    if conf.shape != sigma.shape or (stack is not None and np.shape(stack) != sigma.shape):
        raise ValueError("sigma, confidence and stack must have the same (Z, Y, X) shape")
    n = sigma.shape[0]
    known = np.isfinite(sigma)
    filled = np.where(known, sigma, np.inf)
    sharpest = np.argmin(filled, axis=0)
    i = np.arange(n, dtype=np.float64)[:, None, None]
    near = np.abs(i - sharpest[None]) <= WINDOW
    w = np.where(known & near, conf / np.maximum(np.where(known, sigma, 1.0), SIGMA_FLOOR) ** 2, 0.0)
    y = np.where(known, sigma, 0.0) ** 2
    u = i - sharpest[None]  # planes from the sharpest: keeps the normal equations well conditioned
    s = [np.sum(w * u**p, axis=0) for p in range(5)]
    t = [np.sum(w * y * u**p, axis=0) for p in range(3)]
    matrix = np.stack([np.stack([s[4], s[3], s[2]], -1), np.stack([s[3], s[2], s[1]], -1),
                       np.stack([s[2], s[1], s[0]], -1)], -2)
    rhs = np.stack([t[2], t[1], t[0]], -1)
    enough = (np.sum(w > 0, axis=0) >= 3) & (np.abs(np.linalg.det(matrix)) > 1e-12)
    matrix[~enough] = np.eye(3)
    a, b, c = np.moveaxis(np.linalg.solve(matrix, rhs[..., None])[..., 0], -1, 0)
    vertex = np.where(a > 0, -b / np.where(a > 0, 2 * a, 1.0), np.nan)  # in planes from the sharpest
    plane_of = sharpest + np.nan_to_num(vertex, nan=-np.inf)
    # a vertex beyond the series (by more than half a step) is extrapolated, not found: unknown
    ok = enough & (a > 0) & (np.abs(vertex) <= WINDOW) & (plane_of >= -0.5) & (plane_of <= n - 0.5)
    height = np.where(ok, (sharpest + vertex) * z_step, np.nan)
    floor = np.sqrt(np.clip(c - np.where(ok, b * b / (4 * np.where(a > 0, a, 1.0)), 0.0), 0.0, None))
    model = np.sqrt(np.clip(a * u**2 + b * u + c, 0.0, None))
    residual = np.sqrt(np.sum(w * (np.where(known, sigma, 0.0) - model) ** 2, axis=0)
                       / np.maximum(np.sum(w, axis=0), 1e-300))
    best_conf = np.take_along_axis(conf, sharpest[None], axis=0)[0]
    confidence_out = np.where(ok, best_conf / (1.0 + (residual / CONF_RESIDUAL) ** 2), 0.0)
    composite = None
    if stack is not None:
        plane = np.where(ok, np.clip(np.rint(sharpest + np.nan_to_num(vertex)), 0, n - 1), sharpest).astype(int)
        composite = np.take_along_axis(np.asarray(stack), plane[None], axis=0)[0]
    return FocusSeries(height.astype(np.float32), confidence_out.astype(np.float32), composite,
                       np.where(ok, floor, np.nan).astype(np.float32),
                       np.where(ok, np.sqrt(np.where(a > 0, a, 0.0)) / z_step, np.nan).astype(np.float32),
                       sharpest, float(z_step))


@cache
def _noise_energy(d: float) -> float:
    """Return the gradient energy (central differences) unit white noise keeps after a re-blur by d px."""
    from scipy import ndimage as ndi

    from ..noise import impulse_response

    g = impulse_response(lambda x: ndi.gaussian_filter(x, d) if d > 0 else x, int(4 * max(d, 1.0) + 4))
    gy, gx = np.gradient(g)
    return float((gy * gy + gx * gx).sum())


def _energies(plane: np.ndarray, noise_var: float) -> np.ndarray:
    """Return the local gradient energy of `plane` re-blurred by each of REBLUR_LADDER (d, Y, X), noise removed."""
    from scipy import ndimage as ndi

    out = []
    for d in REBLUR_LADDER:
        g = ndi.gaussian_filter(plane, d) if d > 0 else plane
        gy, gx = np.gradient(g)
        out.append(np.maximum(ndi.gaussian_filter(gy * gy + gx * gx, ENERGY_WINDOW) - noise_var * _noise_energy(d),
                              0.0))
    return np.stack(out).astype(np.float32)


def relative_blur(sharper: np.ndarray, blurrier: np.ndarray) -> np.ndarray:
    """Return sigma_b**2 - sigma_a**2 (px**2) per pixel between two planes of one field, from their (d, Y, X) energies.

    Parameters
    ----------
    sharper, blurrier : ndarray
        (d, Y, X) local gradient energies of the two planes at each re-blur of REBLUR_LADDER
        (as ``_energies`` makes them); which is sharper may change from pixel to pixel.

    Returns
    -------
    ndarray
        px**2: positive where the second plane is the blurrier, negative where the first is;
        the re-blur d at which the sharper one's energy falls to the other's, squared.

    Examples
    --------
    >>> from scipy import ndimage as ndi
    >>> from blurmap import synthetic
    >>> sharp = synthetic.dead_leaves((96, 96), seed=2).astype(np.float64)
    >>> a, b = ndi.gaussian_filter(sharp, 1.0), ndi.gaussian_filter(sharp, 2.0)
    >>> delta = relative_blur(_energies(a, 0.0), _energies(b, 0.0))
    >>> bool(abs(np.median(delta[16:-16, 16:-16]) - 3.0) < 0.3)  # 2**2 - 1**2
    True
    """
    out = np.zeros(sharper.shape[1:])
    for sign, ladder, target in ((1.0, sharper, blurrier[0]), (-1.0, blurrier, sharper[0])):
        below = ladder <= target[None]
        first = np.argmax(below, axis=0)
        found = below.any(axis=0) & (first > 0)
        i0, i1 = np.maximum(first - 1, 0), first
        e0 = np.take_along_axis(ladder, i0[None], 0)[0]
        e1 = np.take_along_axis(ladder, i1[None], 0)[0]
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):  # a flat step: u is clipped anyway
            u = np.clip(np.nan_to_num((e0 - target) / (e0 - e1), nan=0.0, posinf=1.0), 0.0, 1.0)
        d = REBLUR_LADDER[i0] + u * (REBLUR_LADDER[i1] - REBLUR_LADDER[i0])
        this_side = (blurrier[0] < sharper[0]) if sign > 0 else (sharper[0] <= blurrier[0])
        out = np.where(found & this_side, sign * d * d, out)
    return out


def _line_fit(deltas: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (plane of best focus, 2 k**2, misfit) per pixel from the differences of adjacent planes' variances.

    A line alpha i + beta is fitted to deltas (n - 1, Y, X) over the pairs within WINDOW of the
    first whose blur rises; it crosses zero at i = h - 1/2. The misfit is the line's RMS residual
    over its slope (in planes); NaN and inf where no line rises.
    """
    i = np.arange(deltas.shape[0], dtype=np.float64)[:, None, None]
    rising = deltas > 0
    cross = np.where(rising.any(axis=0), np.argmax(rising, axis=0), deltas.shape[0])
    w = (np.abs(i - cross[None]) <= WINDOW).astype(np.float64)
    sw, si, sii = w.sum(0), (w * i).sum(0), (w * i * i).sum(0)
    sy, siy = (w * deltas).sum(0), (w * i * deltas).sum(0)
    det = sw * sii - si * si
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = (sw * siy - si * sy) / det  # 2 k**2
        beta = (sii * sy - si * siy) / det  # k**2 (1 - 2 h)
        plane = 0.5 - beta / alpha
        good = (alpha > 0) & (sw >= 2) & (plane >= -0.5) & (plane <= deltas.shape[0] + 0.5)  # within the series
        plane = np.where(good, plane, np.nan)
        misfit = np.sqrt((w * (deltas - alpha * i - beta) ** 2).sum(0) / np.maximum(sw, 1.0)) / alpha
    return plane, alpha, np.where(good, misfit, np.inf)


def fit_relative(stack: np.ndarray, z_step: float) -> FocusSeries:
    """Return the height map of a focus series from the relative blur of adjacent planes (no estimator).

    Parameters
    ----------
    stack : ndarray
        (Z, Y, X): the same field at focus positions z_step apart, at least 3 planes.
    z_step : float
        The focus step, in any unit (the heights come in it), > 0.

    Returns
    -------
    FocusSeries
        ``height`` (from the first plane; NaN where no line crosses zero within the series),
        ``confidence`` (from the line's residual against the differences), ``all_in_focus``,
        ``slope`` (k, px per unit of z); ``floor`` is NaN (relative blur gives no absolute
        sigma; ``fit="sigma"`` does), ``sharpest`` (the plane where blur stops falling).

    Examples
    --------
    >>> import blurmap
    >>> from blurmap import synthetic
    >>> sharp = synthetic.dead_leaves((96, 96), seed=3)
    >>> planes = [blurmap.blur(sharp, np.full((96, 96), np.hypot(0.6, 0.9 * (i - 2.4)), np.float32))
    ...           for i in range(6)]
    >>> fit = fit_relative(np.stack(planes), z_step=0.5)
    >>> bool(abs(np.nanmedian(fit.height) - 1.2) < 0.1)  # 2.4 steps of 0.5
    True
    """
    from scipy import ndimage as ndi

    from ..noise import estimate_noise

    check_positive("z_step", z_step)
    stack = np.asarray(stack, dtype=np.float64)
    if stack.ndim != 3 or stack.shape[0] < 3:
        raise ValueError(f"a focus series needs (Z, Y, X) planes, at least 3, got shape {stack.shape}")
    if not np.isfinite(stack).all():
        raise ValueError("the focus series holds NaN or infinite pixels; the relative fit needs every pixel")
    n = stack.shape[0]
    # per window position, the differences of each adjacent pair: two planes' energies held at a time
    deltas = np.empty((len(WINDOW_SHIFTS), n - 1) + stack.shape[1:], np.float32)
    below = _energies(stack[0], estimate_noise(stack[0]) ** 2)
    for k in range(n - 1):
        above = _energies(stack[k + 1], estimate_noise(stack[k + 1]) ** 2)
        for j, (dy, dx) in enumerate(WINDOW_SHIFTS):
            moved = [ndi.shift(e, (0, dy, dx), order=1, mode="nearest") if dy or dx else e for e in (below, above)]
            deltas[j, k] = relative_blur(*moved)
        below = above
    best = None
    for window in deltas:  # the window around each pixel, and four beside it: the most consistent line wins
        fit = _line_fit(window.astype(np.float64))
        if best is None:
            best = fit
        else:
            better = fit[2] < best[2]
            best = tuple(np.where(better, a, b) for a, b in zip(fit, best))
    plane_of, alpha, misfit = best
    ok = np.isfinite(plane_of) & (plane_of >= -0.5) & (plane_of <= n - 0.5)
    filled = np.where(ok, plane_of, np.nanmedian(plane_of[ok]) if ok.any() else 0.0)
    plane_of = np.where(ndi.minimum_filter(ok, size=3), ndi.median_filter(filled, size=HEIGHT_MEDIAN), np.nan)
    with np.errstate(invalid="ignore"):
        confidence = np.where(np.isfinite(plane_of), 1.0 / (1.0 + misfit**2), 0.0)
        slope = np.where(np.isfinite(plane_of), np.sqrt(np.maximum(alpha, 0.0) / 2) / z_step, np.nan)
    sharpest = np.clip(np.rint(np.nan_to_num(plane_of, nan=0.0)), 0, n - 1).astype(int)
    composite = np.take_along_axis(stack, sharpest[None], axis=0)[0].astype(np.float32)
    return FocusSeries((plane_of * z_step).astype(np.float32), confidence.astype(np.float32), composite,
                       np.full(plane_of.shape, np.nan, np.float32), slope.astype(np.float32), sharpest, float(z_step))


def focus_series(stack, z_step: float, method: str | None = None, *, fit: str = "sigma", **params) -> FocusSeries:
    """Return the height map, its confidence and the all-in-focus image of a focus series.

    Parameters
    ----------
    stack : array_like
        (Z, Y, X): the same field at focus positions z_step apart, the first at height 0.
    z_step : float
        The focus step, in any unit (the heights come in it).
    method : str, optional
        The estimator each plane is mapped with (the default one if None), for ``fit="sigma"``.
    fit : {"sigma", "relative"}
        "sigma": each pixel's parabola fitted to the planes' sigma maps (`method`); "relative":
        to the relative blur of adjacent planes (:func:`fit_relative`, no estimator, a few px
        of reach: height steps keep their edges).
    **params
        The estimator's parameters.

    Returns
    -------
    FocusSeries
        ``height`` (the unit of `z_step`, from the first plane), ``confidence``, ``all_in_focus``,
        ``floor`` and ``slope`` (the fitted s0 in px and k in px per unit of z), ``sharpest``.

    References
    ----------
    .. [1] S. K. Nayar and Y. Nakagawa, "Shape from focus", IEEE Trans. PAMI 16(8), 1994 (height
       from focus by interpolating a focus measure between planes; here the blur model's parabola).

    Examples
    --------
    >>> import blurmap
    >>> from blurmap import synthetic
    >>> sharp = synthetic.dead_leaves((96, 96), seed=3)
    >>> planes = [blurmap.blur(sharp, np.full((96, 96), np.hypot(0.6, 0.9 * (i - 2.4)), np.float32))
    ...           for i in range(6)]
    >>> fit = focus_series(np.stack(planes), z_step=0.5)
    >>> bool(abs(np.nanmedian(fit.height) - 1.2) < 0.15)  # 2.4 steps of 0.5
    True
    """
    from ..engine import estimate

    check_positive("z_step", z_step)  # before the maps, which cost
    if fit not in FITS:
        raise ValueError(f"fit must be one of {', '.join(FITS)}, not {fit!r}")
    stack = np.asarray(stack)
    if stack.ndim != 3 or stack.shape[0] < 3:
        raise ValueError(f"a focus series is a (Z, Y, X) stack of at least 3 planes, got shape {stack.shape}")
    if stack.shape[-1] in (3, 4):  # estimate would read it as one colour image, not planes
        raise ValueError(f"a focus series is a (Z, Y, X) stack; shape {stack.shape} is one RGB(A) image, "
                         "colour channels last")
    if fit == "relative":
        if method is not None or params:
            raise ValueError('fit="relative" maps no plane: it takes no method or estimator parameters')
        return fit_relative(stack, z_step)
    sigma, conf = estimate(stack, method, return_confidence=True, **params)
    return fit_focus(sigma, z_step, conf, stack)
