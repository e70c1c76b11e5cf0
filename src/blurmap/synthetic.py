"""Synthetic ground truth: sharp scale-invariant textures and known sigma profiles (px)."""

from __future__ import annotations

import numpy as np

from .forward import blur

__all__ = ["dead_leaves", "ramp", "sine", "step", "tilted_focal_plane", "sem_sample"]


def _rng(seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def dead_leaves(shape: tuple[int, int], seed=0, rmin: float = 1.0, rmax: float | None = None,
                exponent: float = 3.0) -> np.ndarray:
    """Return a sharp dead-leaves texture in [0, 1] (float32): occluding discs, radii ~ r**-exponent.

    The radius law r**-3 between `rmin` and `rmax` makes the texture scale invariant, the model
    the imaging industry uses to measure texture blur (IEEE CPIQ, ISO 19567-2); other exponents
    give textures dominated by small (above 3) or large (below 3) discs. Discs are point sampled:
    edges are as sharp as the pixel grid allows.

    Parameters
    ----------
    shape : tuple of int
        px.
    seed : int or numpy.random.Generator
        The random state; the same seed gives the same texture.
    rmin, rmax : float
        px; the smallest and largest disc radius (`rmax` defaults to a quarter of the longer side).
    exponent : float
        Of the radius law r**-exponent (not 1).

    Returns
    -------
    ndarray
        float32 in [0, 1].

    References
    ----------
    .. [1] F. Cao, F. Guichard and H. Hornung, "Dead leaves model for measuring texture quality
       on a digital camera", Proc. SPIE 7537, 2010.

    Examples
    --------
    >>> from blurmap import synthetic
    >>> leaves = synthetic.dead_leaves((64, 64), seed=1)
    >>> leaves.shape, leaves.dtype, bool(0 <= leaves.min() <= leaves.max() <= 1)
    ((64, 64), dtype('float32'), True)
    """
    rng = _rng(seed)
    h, w = (int(s) for s in shape)
    rmax = float(rmax or max(h, w) / 4)
    img = np.full((h, w), np.nan, dtype=np.float32)
    empty = h * w
    while empty > 0:
        m = 4096
        u = rng.random(m)
        if exponent == 3.0:  # inverse CDF of p(r) ~ r**-3
            r = 1.0 / np.sqrt(u / rmin**2 + (1.0 - u) / rmax**2)
        else:  # inverse CDF of p(r) ~ r**-exponent
            k = 1.0 - exponent
            r = (rmin**k + u * (rmax**k - rmin**k)) ** (1.0 / k)
        cy = rng.uniform(-rmax / 2, h + rmax / 2, m)
        cx = rng.uniform(-rmax / 2, w + rmax / 2, m)
        val = rng.random(m).astype(np.float32)
        _drop_discs(img, cy, cx, r, val)
        empty = int(np.isnan(img).sum())
        if empty < 0.0002 * h * w:  # a few isolated pixels left: give them their neighbours' mean
            img[np.isnan(img)] = np.nanmean(img)
            empty = 0
    return img


def _drop_discs(img: np.ndarray, cy: np.ndarray, cx: np.ndarray, r: np.ndarray, val: np.ndarray) -> None:
    """Paint discs (centres px, radii px, grey values) into the NaN pixels of `img`, the first disc on top.

    All the batch's discs at once: every pixel of each disc's bounding window is a candidate, those
    inside its disc and still empty are kept, and each pixel takes the first disc (in the order
    drawn) that covers it, as painting them one by one in that order would.
    """
    h, w = img.shape
    y0, y1 = np.maximum(0, (cy - r).astype(np.int64)), np.minimum(h, (cy + r).astype(np.int64) + 2)
    x0, x1 = np.maximum(0, (cx - r).astype(np.int64)), np.minimum(w, (cx + r).astype(np.int64) + 2)
    disc = np.nonzero((y0 < y1) & (x0 < x1))[0]
    heights, widths = (y1 - y0)[disc], (x1 - x0)[disc]
    sizes = heights * widths
    owner = np.repeat(disc, sizes)  # ascending: the candidates of earlier discs come first
    local = np.arange(owner.size) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    width = np.repeat(widths, sizes)
    py, px = y0[owner] + local // width, x0[owner] + local % width
    inside = (py - cy[owner]) ** 2 + (px - cx[owner]) ** 2 <= r[owner] ** 2
    flat = py * w + px
    free = inside & np.isnan(img.ravel()[flat])
    pixels, first = np.unique(flat[free], return_index=True)  # each pixel's first covering disc
    img.ravel()[pixels] = val[owner[free][first]]


def _along(line: np.ndarray, shape: tuple[int, int], axis: int) -> np.ndarray:
    """Return the profile `line` (px) repeated across `shape`, varying along `axis`, as float32."""
    return np.broadcast_to(line[:, None] if axis == 0 else line[None, :], shape).astype(np.float32)


def ramp(shape: tuple[int, int], low: float = 0.3, high: float = 3.0, axis: int = 1) -> np.ndarray:
    """Return a sigma map (px) growing linearly from `low` to `high` along `axis`.

    Parameters
    ----------
    shape : tuple of int
        px.
    low, high : float
        px.
    axis : int
        0 along rows, 1 along columns.

    Returns
    -------
    ndarray
        float32, px.

    Examples
    --------
    >>> from blurmap import synthetic
    >>> synthetic.ramp((2, 5), 1.0, 3.0)[0].tolist()
    [1.0, 1.5, 2.0, 2.5, 3.0]
    """
    n = shape[axis]
    line = np.linspace(low, high, n, dtype=np.float64)
    return _along(line, shape, axis)


def sine(shape: tuple[int, int], low: float = 0.3, high: float = 3.0, periods: float = 1.0,
         axis: int = 1) -> np.ndarray:
    """Return a sigma map (px) oscillating between `low` and `high`, `periods` times along `axis`.

    Parameters
    ----------
    shape : tuple of int
        px.
    low, high : float
        px.
    periods : float
        How many periods along `axis`.
    axis : int
        0 along rows, 1 along columns.

    Returns
    -------
    ndarray
        float32, px.

    Examples
    --------
    >>> from blurmap import synthetic
    >>> synthetic.sine((2, 4), 0.0, 2.0)[0].round(3).tolist()
    [0.0, 1.0, 2.0, 1.0]
    """
    n = shape[axis]
    line = low + (high - low) * 0.5 * (1 - np.cos(2 * np.pi * periods * np.arange(n) / n))
    return _along(line, shape, axis)


def step(shape: tuple[int, int], low: float = 0.5, high: float = 2.5, axis: int = 1) -> np.ndarray:
    """Return a sigma map (px) of `low` on the first half along `axis` and `high` on the second.

    Parameters
    ----------
    shape : tuple of int
        px.
    low, high : float
        px.
    axis : int
        0 along rows, 1 along columns.

    Returns
    -------
    ndarray
        float32, px.

    Examples
    --------
    >>> from blurmap import synthetic
    >>> synthetic.step((2, 4), 0.5, 2.5)[0].tolist()
    [0.5, 0.5, 2.5, 2.5]
    """
    n = shape[axis]
    line = np.where(np.arange(n) < n // 2, low, high)
    return _along(line, shape, axis)


def tilted_focal_plane(shape: tuple[int, int], position: float = 0.4, angle_deg: float = 4.0,
                       floor: float = 0.5, gradient: float = 0.008) -> np.ndarray:
    """Return the sigma map (px) of a tilted flat specimen: sqrt(floor**2 + (gradient * d)**2).

    Parameters
    ----------
    shape : tuple of int
        px.
    position : float
        Where the focal line crosses the centre column, as a fraction of the height (0 top, 1 bottom).
    angle_deg : float
        Degrees of the focal line from horizontal.
    floor : float
        px; the in-focus blur of the instrument.
    gradient : float
        px of sigma per px of distance d from the focal line: defocus blur grows linearly with d.

    Returns
    -------
    ndarray
        float32, px.

    Examples
    --------
    >>> from blurmap import synthetic
    >>> truth = synthetic.tilted_focal_plane((101, 101), position=0.5, angle_deg=0.0, gradient=0.01)
    >>> float(truth[50, 50]), round(float(truth[0, 50]), 3)
    (0.5, 0.707)
    """
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    a = np.deg2rad(angle_deg)
    d = (yy - position * (h - 1)) * np.cos(a) - (xx - (w - 1) / 2) * np.sin(a)
    return np.sqrt(floor**2 + (gradient * d) ** 2).astype(np.float32)


def sem_sample(shape: tuple[int, int] = (768, 1024), seed=0, noise: float = 0.01):
    """Return (micrograph, true sigma map in px) of a synthetic SEM image of a tilted specimen.

    The specimen is a dead-leaves grain texture under slowly varying material contrast (dark and
    bright regions, a factor 4 apart, so brightness cannot pass for sharpness), blurred by
    a tilted focal plane (sharp band at 40% of the height, 4 degrees off horizontal) and
    degraded by shot noise plus detector noise.

    Parameters
    ----------
    shape : tuple of int
        px.
    seed : int or numpy.random.Generator
        The random state.
    noise : float
        Detector noise std is half of this; shot noise has std about noise * sqrt(2 * signal).

    Returns
    -------
    image : ndarray
        float32, about 0 .. 1.
    sigma : ndarray
        float32, px: the true blur (0.5 px in focus, about 3.7 px at the far edge at the default size).

    Examples
    --------
    >>> from blurmap import synthetic
    >>> image, truth = synthetic.sem_sample((96, 128), seed=1)
    >>> image.shape == truth.shape == (96, 128), round(float(truth.min()), 2)
    (True, 0.5)
    """
    rng = _rng(seed)
    sharp = dead_leaves(shape, rng, rmin=1.0, rmax=min(shape) / 8)
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    gain = 0.25 + 0.75 * (0.5 + 0.5 * np.sin(2 * np.pi * xx / shape[1] * 1.5 + 0.6)
                          * np.cos(2 * np.pi * yy / shape[0] * 0.5))
    specimen = (0.1 + 0.9 * sharp) * gain
    sigma = tilted_focal_plane(shape)
    clean = blur(specimen, sigma)
    dose = 1.0 / noise**2 * 0.5  # shot noise: std ~ noise * sqrt(2 * signal)
    noisy = rng.poisson(np.clip(clean, 0, None) * dose) / dose + rng.normal(0, noise / 2, shape)
    return noisy.astype(np.float32), sigma
