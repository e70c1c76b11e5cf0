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
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .optics import check_positive

__all__ = ["FocusSeries", "focus_series", "fit_focus"]

WINDOW = 3  # planes either side of each pixel's sharpest that its parabola is fitted to
SIGMA_FLOOR = 0.3  # px; sigma below this counts as this in the weights (no plane weighs without bound)
CONF_RESIDUAL = 0.3  # px of RMS residual (in sigma) at which the confidence halves


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


def focus_series(stack, z_step: float, method: str | None = None, **params) -> FocusSeries:
    """Return the height map, its confidence and the all-in-focus image of a focus series.

    Parameters
    ----------
    stack : array_like
        (Z, Y, X): the same field at focus positions z_step apart, the first at height 0.
    z_step : float
        The focus step, in any unit (the heights come in it).
    method : str, optional
        The estimator each plane is mapped with (the default one if None).
    **params
        Its parameters.

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
    stack = np.asarray(stack)
    if stack.ndim != 3 or stack.shape[0] < 3:
        raise ValueError(f"a focus series is a (Z, Y, X) stack of at least 3 planes, got shape {stack.shape}")
    if stack.shape[-1] in (3, 4):  # estimate would read it as one colour image, not planes
        raise ValueError(f"a focus series is a (Z, Y, X) stack; shape {stack.shape} is one RGB(A) image, "
                         "colour channels last")
    sigma, conf = estimate(stack, method, return_confidence=True, **params)
    return fit_focus(sigma, z_step, conf, stack)
