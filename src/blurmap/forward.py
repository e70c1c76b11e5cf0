"""The forward model: a spatially varying Gaussian blur, each output pixel with its own sigma (round, or elliptical
with its own major and minor sigma and angle)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from ._validate import as_2d_float

__all__ = ["blur", "blur_elliptical", "ladder", "ladder_reach"]

_FIRST_LEVEL = 0.2  # px; below it a Gaussian is within 0.1% of the identity on a pixel grid
RATIO = 1.2  # ladder step; interpolation error is < 0.5% of the image range (tests/test_forward.py)
CASCADE_FROM = 1.5  # px; ladder levels above this are blurred from the level below


def ladder(sigma_max: float, first: float = _FIRST_LEVEL, ratio: float = RATIO) -> np.ndarray:
    """Return the blur levels (px) used to interpolate any sigma in [0, sigma_max]: 0, then geometric.

    Parameters
    ----------
    sigma_max : float
        px; the last level reaches at least this.
    first : float
        px; the first level above 0.
    ratio : float
        The step from one level to the next.

    Returns
    -------
    ndarray
        float64, px, increasing.

    Examples
    --------
    >>> ladder(0.3).round(3).tolist()
    [0.0, 0.2, 0.24, 0.288, 0.346]
    """
    levels = [0.0, first]
    while levels[-1] < sigma_max:
        levels.append(levels[-1] * ratio)
    return np.asarray(levels)


def ladder_reach(sigma_max: float) -> int:
    """Return how far (px) a ladder_levels level up to `sigma_max` reaches: the radii of its cascade added up.

    A level blurred directly reaches int(4 sigma + 0.5) px; one blurred from the level below
    reaches as far as that one plus its own step's radius.

    Parameters
    ----------
    sigma_max : float
        px; the largest blur the ladder must reach.

    Returns
    -------
    int
        px.

    Examples
    --------
    >>> ladder_reach(1.0), ladder_reach(6.0) > 4 * 6.0
    (4, True)
    """
    levels = ladder(sigma_max)
    reach = 0
    for k in range(1, len(levels)):
        if levels[k] <= CASCADE_FROM:
            reach = int(4.0 * levels[k] + 0.5)
        else:
            reach += int(4.0 * np.sqrt(levels[k] ** 2 - levels[k - 1] ** 2) + 0.5)
    return reach


def ladder_levels(image: np.ndarray, levels: np.ndarray):
    """Yield `image` blurred to each level (px) after the first, in order.

    Small levels are blurred directly; above CASCADE_FROM px each level is the previous one
    blurred by the difference (variances add), which costs far less and differs from a direct
    blur by under 0.05% of the image range (tests/test_forward.py).
    """
    previous = image
    for k in range(1, len(levels)):
        if levels[k] <= CASCADE_FROM:
            level = ndi.gaussian_filter(image, levels[k], mode="reflect", truncate=4.0)
        else:
            step = np.sqrt(levels[k] ** 2 - levels[k - 1] ** 2)
            level = ndi.gaussian_filter(previous, step, mode="reflect", truncate=4.0)
        yield level
        previous = level


def blur_many(image: np.ndarray, sigma_maps: list[np.ndarray]) -> list[np.ndarray]:
    """Return `image` blurred by each per-pixel sigma map (px), in one pass over the ladder.

    Output pixel p is sum_q G(q - p; sigma(p)) image(q), the "gather" form of a spatially varying
    Gaussian, evaluated exactly on a ladder of uniform blurs and interpolated per pixel between
    the two neighbouring levels, linearly in sigma**2. NaN sigma counts as 0 (no blur).
    """
    ts = [np.nan_to_num(np.asarray(s, dtype=np.float64), nan=0.0) ** 2 for s in sigma_maps]
    levels = ladder(float(np.sqrt(max(t.max() for t in ts))))
    t_levels = levels**2
    out = [image.copy() for _ in sigma_maps]  # sigma == 0 pixels keep their value
    below = image
    for k, above in enumerate(ladder_levels(image, levels), start=1):
        for t, model in zip(ts, out):
            sel = (t > t_levels[k - 1]) & (t <= t_levels[k])
            if sel.any():
                u = (t[sel] - t_levels[k - 1]) / (t_levels[k] - t_levels[k - 1])
                model[sel] = (1 - u) * below[sel] + u * above[sel]
        below = above
    return out


def blur(image, sigma_map) -> np.ndarray:
    """Blur `image` so that each output pixel carries the Gaussian blur `sigma_map` gives it (px).

    Output pixel p is sum_q G(q - p; sigma(p)) image(q), the "gather" form of a spatially varying
    Gaussian, with borders reflected as in ``scipy.ndimage``. It is evaluated exactly at a ladder
    of uniform blurs (0, 0.2 px, then steps of 20%) and interpolated per pixel between the two
    neighbouring levels, linearly in the variance sigma**2, along which a Gaussian blur evolves
    smoothly (the heat equation). Unlike mixing a minimum and a maximum blur (seed 001), no
    frequency of the sharper level leaks through beyond the interpolation error, which stays
    under 0.5% of the image range. The reference method inverts exactly this model.

    Parameters
    ----------
    image : array_like
        2-D image (RGB is read as luminance).
    sigma_map : array_like
        px, the image's shape, finite and non-negative.

    Returns
    -------
    ndarray
        float32, in the units of `image`.

    Examples
    --------
    >>> import numpy as np, blurmap
    >>> from scipy import ndimage as ndi
    >>> from blurmap import synthetic
    >>> sharp = synthetic.dead_leaves((64, 64), seed=1)
    >>> out = blurmap.blur(sharp, np.full(sharp.shape, 2.0))
    >>> bool(np.abs(out - ndi.gaussian_filter(sharp, 2.0)).max() < 0.01)  # 1% of the range
    True
    """
    img = np.asarray(as_2d_float(image), dtype=np.float64)
    if not np.isfinite(img).all():
        raise ValueError("image contains NaN or infinite values; blur needs every pixel")
    smap = np.asarray(sigma_map, dtype=np.float64)
    if smap.shape != img.shape:
        raise ValueError(f"sigma_map has shape {smap.shape}, image has {img.shape}; they must agree")
    if not np.isfinite(smap).all() or (smap < 0).any():
        raise ValueError("sigma_map must be finite and non-negative (px)")
    return blur_many(img, [smap])[0].astype(np.float32)


LINE_STEP = 0.5  # px; spacing of the samples along the major axis (cubic-spline interpolated)
LINE_MIN = 0.05  # px; an extra spread along the major axis below this is none


def axis_vector(angle_deg) -> tuple[np.ndarray, np.ndarray]:
    """Return the (row, column) steps of a unit vector at `angle_deg`: 0 along image rows (to the right),
    counter-clockwise as displayed (rows grow downwards, so a positive angle points up)."""
    theta = np.deg2rad(np.asarray(angle_deg, dtype=np.float64))
    return -np.sin(theta), np.cos(theta)


def blur_elliptical(image, sigma_major, sigma_minor, angle_deg) -> np.ndarray:
    """Blur `image` so that each output pixel carries its own elliptical Gaussian: major and minor sigma (px), angle.

    Output pixel p is sum_q G(q - p; C(p)) image(q), the gather form of a spatially varying Gaussian
    of covariance C = R diag(major**2, minor**2) R^T (R the rotation by the angle). C splits into a
    round Gaussian of the minor sigma and a line Gaussian along the major axis of variance
    major**2 - minor**2; evaluated per pixel as the round blur's ladder (see :func:`blur`, linear
    in the variance between two levels) sampled along the pixel's own major axis every
    LINE_STEP px (cubic spline) with the line Gaussian's weights. Within 1% of the image range of
    a direct per-pixel kernel for smooth fields (tests/test_forward.py).

    Parameters
    ----------
    image : array_like
        2-D image (RGB is read as luminance).
    sigma_major, sigma_minor : array_like
        px, the image's shape (or scalars), finite, 0 <= minor <= major.
    angle_deg : array_like
        Degrees: the major axis's direction, 0 along image rows, counter-clockwise as displayed.

    Returns
    -------
    ndarray
        float32, in the units of `image`.

    Examples
    --------
    >>> import numpy as np, blurmap
    >>> from scipy import ndimage as ndi
    >>> from blurmap import synthetic
    >>> sharp = synthetic.dead_leaves((96, 96), seed=1)
    >>> out = blurmap.blur_elliptical(sharp, 3.0, 1.0, 0.0)  # 3 px along the rows, 1 px across
    >>> bool(np.abs(out - ndi.gaussian_filter(sharp, (1.0, 3.0)))[8:-8, 8:-8].max() < 0.01)
    True
    """
    img = np.asarray(as_2d_float(image), dtype=np.float64)
    if not np.isfinite(img).all():
        raise ValueError("image contains NaN or infinite values; blur needs every pixel")
    major, minor, angle = (np.broadcast_to(np.asarray(a, dtype=np.float64), img.shape)
                           for a in (sigma_major, sigma_minor, angle_deg))
    if not all(np.isfinite(a).all() for a in (major, minor, angle)):
        raise ValueError("sigma_major, sigma_minor and angle_deg must be finite")
    if (minor < 0).any() or (major < minor - 1e-9).any():
        raise ValueError("the sigmas must satisfy 0 <= sigma_minor <= sigma_major (px)")
    extra = np.sqrt(np.clip(major**2 - minor**2, 0.0, None))  # px: the line Gaussian along the major axis
    dy, dx = axis_vector(angle)
    reach = int(np.ceil(4.0 * extra.max() / LINE_STEP))
    taps = np.arange(-reach, reach + 1) * LINE_STEP
    line = extra > LINE_MIN
    weights = np.exp(-0.5 * (taps[:, None] / np.where(line, extra, 1.0).ravel()[None]) ** 2)
    weights[:, ~line.ravel()] = (taps[:, None] == 0)  # no line blur: the pixel itself
    weights /= weights.sum(axis=0, keepdims=True)
    rows, cols = (a.ravel() for a in np.indices(img.shape, dtype=np.float64))
    dy, dx = dy.ravel(), dx.ravel()
    t = minor.ravel() ** 2
    levels = ladder(float(np.sqrt(t.max())))
    t_levels = levels**2
    out = np.empty(img.size)

    def along(coeffs: np.ndarray, sel: np.ndarray) -> np.ndarray:
        """Sum a level (its spline coefficients) along each selected pixel's major axis, with its line weights."""
        r, c, sy, sx = rows[sel], cols[sel], dy[sel], dx[sel]
        acc = np.zeros(r.size)
        for k, step in enumerate(taps):
            w = weights[k, sel]
            if w.any():
                acc += w * ndi.map_coordinates(coeffs, (r + step * sy, c + step * sx), order=3, mode="reflect",
                                               prefilter=False)
        return acc

    def spline(level: np.ndarray) -> np.ndarray:
        return ndi.spline_filter(level, order=3, mode="reflect")

    below = spline(img)  # each level's coefficients once: a level is the upper end of one step and the lower of the next
    zero = t == 0
    if zero.any():
        out[zero] = along(below, zero)
    for k, level in enumerate(ladder_levels(img, levels), start=1):
        above = spline(level)
        sel = (t > t_levels[k - 1]) & (t <= t_levels[k])
        if sel.any():
            u = (t[sel] - t_levels[k - 1]) / (t_levels[k] - t_levels[k - 1])
            out[sel] = (1 - u) * along(below, sel) + u * along(above, sel)
        below = above
    return out.reshape(img.shape).astype(np.float32)


def blur_elliptical_direct(image, sigma_major, sigma_minor, angle_deg) -> np.ndarray:
    """Return the elliptical blur by a direct per-pixel kernel: each output pixel sums its own sampled Gaussian.

    The reference :func:`blur_elliptical` is tested against (slow: one pass per kernel tap, the
    kernel reaching 4 major sigma; borders reflected). The kernel of each pixel is sampled on the
    pixel grid and normalised to sum 1; minor sigma below 0.3 px is taken as 0.3 px.

    Parameters
    ----------
    image : array_like
        2-D image.
    sigma_major, sigma_minor, angle_deg : array_like
        As for :func:`blur_elliptical`.

    Returns
    -------
    ndarray
        float32.

    Examples
    --------
    >>> import numpy as np
    >>> out = blur_elliptical_direct(np.eye(16), 2.0, 1.0, 45.0)
    >>> out.shape, bool(abs(out.mean() - np.eye(16).mean()) < 0.01)
    ((16, 16), True)
    """
    img = np.asarray(as_2d_float(image), dtype=np.float64)
    major, minor, angle = (np.broadcast_to(np.asarray(a, dtype=np.float64), img.shape)
                           for a in (sigma_major, sigma_minor, angle_deg))
    minor = np.maximum(minor, 0.3)
    major = np.maximum(major, minor)
    dy, dx = axis_vector(angle)  # the major axis in (row, column) steps
    radius = int(np.ceil(4.0 * major.max()))
    padded = np.pad(img, radius, mode="symmetric")  # scipy's "reflect"
    h, w = img.shape
    total = np.zeros(img.shape)
    norm = np.zeros(img.shape)
    for oy in range(-radius, radius + 1):
        for ox in range(-radius, radius + 1):
            along_major = oy * dy + ox * dx
            across = -oy * dx + ox * dy
            wgt = np.exp(-0.5 * ((along_major / major) ** 2 + (across / minor) ** 2))
            total += wgt * padded[radius + oy:radius + oy + h, radius + ox:radius + ox + w]
            norm += wgt
    return (total / norm).astype(np.float32)
