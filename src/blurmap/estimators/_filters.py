"""Compiled inner loops of the block estimators: Gaussian re-blurs, per-block energies and sums, box windows,
interpolation from the block grid, and a table lookup.

Private to ``blurmap.estimators``. Each gives the numbers of the scipy or numpy calls it replaced,
in one pass and with no full-size temporaries, compiled by numba (docs/benchmarks.md gives the
figures that earn it its place). They release the GIL, so the engine's threads run them side by side.
"""

from __future__ import annotations

import numpy as np

from .._compile import compiled

TRUNCATE = 4.0  # Gaussian re-blurs are cut at this many standard deviations (every block estimator)


@compiled(inline="always")
def _reflect(i: int, n: int) -> int:
    """Return the index `i` (any integer) mirrored into 0 .. n - 1 as scipy's "reflect" mode does (d c b a | a b c d)."""
    period = 2 * n
    i = i % period
    return i if i < n else period - 1 - i


@compiled
def _along_rows(img: np.ndarray, taps: np.ndarray, out: np.ndarray) -> None:
    """Write to `out` the symmetric filter `taps` (centre first) along axis 0 of `img`, summed in float64."""
    h, w = img.shape
    acc = np.empty(w, np.float64)
    for y in range(h):
        for x in range(w):
            acc[x] = taps[0] * img[y, x]
        for k in range(1, taps.size):
            above, below, tap = img[_reflect(y - k, h)], img[_reflect(y + k, h)], taps[k]
            for x in range(w):
                acc[x] += tap * (np.float64(above[x]) + np.float64(below[x]))
        for x in range(w):
            out[y, x] = acc[x]


@compiled
def _along_columns(img: np.ndarray, taps: np.ndarray, out: np.ndarray) -> None:
    """Write to `out` the symmetric filter `taps` (centre first) along axis 1 of `img`, summed in float64."""
    h, w = img.shape
    r = taps.size - 1
    line, acc = np.empty(w + 2 * r, np.float64), np.empty(w, np.float64)
    for y in range(h):
        for x in range(w):
            line[x + r] = img[y, x]
        for j in range(1, r + 1):
            line[r - j], line[w + r - 1 + j] = img[y, _reflect(-j, w)], img[y, _reflect(w - 1 + j, w)]
        for x in range(w):
            acc[x] = taps[0] * line[x + r]
        for k in range(1, r + 1):
            left, right, tap = line[r - k:r - k + w], line[r + k:r + k + w], taps[k]  # views: indices from 0 vectorise
            for x in range(w):
                acc[x] += tap * (left[x] + right[x])
        for x in range(w):
            out[y, x] = acc[x]


def gaussian_taps(sigma: float, truncate: float = TRUNCATE) -> np.ndarray:
    """Return the half Gaussian kernel (centre first, float64, summing to 1 over both sides) scipy uses for `sigma` px."""
    radius = int(truncate * float(sigma) + 0.5)
    phi = np.exp(-0.5 / float(sigma) ** 2 * np.arange(radius + 1, dtype=np.float64) ** 2)
    return phi / (phi[0] + 2.0 * phi[1:].sum())


def gaussian(image: np.ndarray, sigma: float, truncate: float = TRUNCATE) -> np.ndarray:
    """Return a 2-D image re-blurred by a Gaussian of `sigma` px, borders reflected, as float32.

    The same numbers as ``scipy.ndimage.gaussian_filter(image, sigma, mode="reflect",
    truncate=truncate)`` on a float32 image (axis 0, then axis 1, each summed in float64 and
    rounded to float32), about three times faster.

    Parameters
    ----------
    image : ndarray
        2-D, converted to float32.
    sigma : float
        px, > 0.
    truncate : float
        The kernel is cut at this many standard deviations.

    Returns
    -------
    ndarray
        float32, the image's shape.

    Examples
    --------
    >>> from scipy import ndimage as ndi
    >>> a = np.random.default_rng(0).random((40, 30), dtype=np.float32)
    >>> bool(np.array_equal(gaussian(a, 1.4), ndi.gaussian_filter(a, 1.4, mode="reflect", truncate=4.0)))
    True
    """
    img = np.ascontiguousarray(image, dtype=np.float32)
    taps = gaussian_taps(sigma, truncate)
    between, out = np.empty_like(img), np.empty_like(img)
    _along_rows(img, taps, between)
    _along_columns(between, taps, out)
    return out


@compiled(inline="always")
def _second_difference(before: np.float32, centre: np.float32, after: np.float32, i: int, n: int) -> np.float32:
    """Return before - 2 centre + after at index `i` of `n`; at the ends, where the mirror repeats the centre, after - centre."""
    if i == 0:
        return after - centre
    if i == n - 1:
        return before - centre
    return after + before - np.float32(2.0) * centre


@compiled
def _row_energies(g: np.ndarray, y: int, energy: np.ndarray, curvature: np.ndarray) -> None:
    """Write row `y`'s gradient energy and squared Laplacian (float32, borders reflected) to the two rows given."""
    h, w = g.shape
    up, down = g[max(y - 1, 0)], g[min(y + 1, h - 1)]  # differences reflect at the border
    row, half = g[y], np.float32(0.5)
    for x in range(w):
        gy = half * (down[x] - up[x])
        energy[x] = gy * gy
        curvature[x] = _second_difference(up[x], row[x], down[x], y, h)
    for end in range(min(w, 2)):  # the ends, where the mirror repeats the centre
        x = end * (w - 1)
        left, right = row[max(x - 1, 0)], row[min(x + 1, w - 1)]
        gx = half * (right - left)
        energy[x] += gx * gx
        lap = curvature[x] + _second_difference(left, row[x], right, x, w)
        curvature[x] = lap * lap
    left, centre, right = row[:w - 2], row[1:w - 1], row[2:]  # views: indices from 0 vectorise
    inner_energy, inner_curvature = energy[1:w - 1], curvature[1:w - 1]
    for x in range(w - 2):
        gx = half * (right[x] - left[x])
        inner_energy[x] += gx * gx
        lap = inner_curvature[x] + (right[x] + left[x] - np.float32(2.0) * centre[x])
        inner_curvature[x] = lap * lap


@compiled
def _block_energies(g: np.ndarray, factor: int, squares: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return per `factor` x `factor` block the sums of e, e**2 (if `squares`) and the squared Laplacian (float64)."""
    h, w = g.shape
    hb, wb = -(-h // factor), -(-w // factor)
    energy, energy2, curvature = np.zeros((hb, wb)), np.zeros((hb, wb)), np.zeros((hb, wb))
    padded = wb * factor
    e, lap = np.empty(padded, np.float32), np.empty(padded, np.float32)
    for row in range(hb * factor):
        _row_energies(g, _reflect(row, h), e, lap)  # a partial last block mirrored
        for col in range(w, padded):
            e[col], lap[col] = e[_reflect(col, w)], lap[_reflect(col, w)]
        by = row // factor
        for bx in range(wb):
            se, se2, sl = 0.0, 0.0, 0.0
            for col in range(bx * factor, (bx + 1) * factor):
                se += e[col]
                sl += lap[col]
                se2 += e[col] * e[col]
            energy[by, bx] += se
            curvature[by, bx] += sl
            if squares:
                energy2[by, bx] += se2
    return energy, energy2, curvature


def block_energies(g: np.ndarray, factor: int = 4, squares: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return per block the mean gradient energy, its mean square and the mean Laplacian energy.

    The gradient energy is the squared gradient magnitude by central differences, the Laplacian
    energy the squared 5-point Laplacian, both in float32 with borders reflected (as
    ``_energy.gradient_energy`` and ``laplacian_energy`` give); their block means are summed in
    float64, a partial last block mirrored.

    Parameters
    ----------
    g : ndarray
        2-D image, converted to float32.
    factor : int
        px; the side of a block.
    squares : bool
        Whether to sum the squared gradient energy too (else its output is zeros).

    Returns
    -------
    energy, energy_squared, laplacian : ndarray
        float64, (ceil(h / factor), ceil(w / factor)): units**2 / px**2, units**4 / px**4 and
        units**2 / px**4.

    Examples
    --------
    >>> from blurmap.estimators._energy import gradient_energy
    >>> a = np.random.default_rng(0).random((8, 8), dtype=np.float32)
    >>> e, _, _ = block_energies(a)
    >>> bool(np.allclose(e, gradient_energy(a).reshape(2, 4, 2, 4).mean(axis=(1, 3))))
    True
    """
    energy, energy2, curvature = _block_energies(np.ascontiguousarray(g, dtype=np.float32), int(factor), bool(squares))
    n = float(factor * factor)
    return energy / n, energy2 / n, curvature / n


def _floats(a) -> np.ndarray:
    """Return `a` as a C-contiguous float32 or float64 array (float32 and float64 kept, anything else float64)."""
    a = np.asarray(a)
    return np.ascontiguousarray(a if a.dtype in (np.float32, np.float64) else a.astype(np.float64))


@compiled
def _box_along_rows(a: np.ndarray, size: int, out: np.ndarray) -> None:
    """Write to `out` the mean of `size` samples along axis 0 of `a`, borders reflected: a running sum in float64."""
    h, w = a.shape
    r = size // 2
    total = np.zeros(w, np.float64)
    for k in range(size):
        row = a[_reflect(k - r, h)]
        for x in range(w):
            total[x] += row[x]
    for y in range(h):
        if y:
            entering, leaving = a[_reflect(y + size - 1 - r, h)], a[_reflect(y - 1 - r, h)]
            for x in range(w):
                total[x] += np.float64(entering[x]) - np.float64(leaving[x])
        for x in range(w):
            out[y, x] = total[x] / size


def box2(a: np.ndarray, size: int) -> np.ndarray:
    """Return a 2-D array smoothed by two passes of a `size`-wide box on each axis (a triangle window), borders reflected.

    The same numbers as four ``scipy.ndimage.uniform_filter1d(a, size, axis, mode="reflect")``
    passes (axis 0 twice, then axis 1 twice; each a running sum in float64, rounded to the
    array's type), several times faster and without the GIL.

    Parameters
    ----------
    a : ndarray
        2-D, float32 or float64 (kept).
    size : int
        Samples, >= 1.

    Returns
    -------
    ndarray
        `a`'s shape and type.

    Examples
    --------
    >>> from scipy import ndimage as ndi
    >>> a = np.random.default_rng(0).random((20, 30))
    >>> b = a
    >>> for axis in (0, 0, 1, 1):
    ...     b = ndi.uniform_filter1d(b, 5, axis=axis, mode="reflect")
    >>> bool(np.array_equal(box2(a, 5), b))
    True
    """
    a = _floats(a)
    first, second = np.empty_like(a), np.empty_like(a)
    _box_along_rows(a, int(size), first)
    _box_along_rows(first, int(size), second)
    # axis 1 as axis 0 of the transpose: a running sum per row is one long dependent chain, one per column is not
    first, second = np.ascontiguousarray(second.T), first.reshape(a.shape[::-1])
    _box_along_rows(first, int(size), second)
    _box_along_rows(second, int(size), first)
    return np.ascontiguousarray(first.T)


@compiled
def _interpolate(coarse: np.ndarray, rows: np.ndarray, row_weights: np.ndarray, columns: np.ndarray,
                 column_weights: np.ndarray) -> np.ndarray:
    """Return `coarse` interpolated linearly between samples rows[:, 0] and rows[:, 1] (weights of the second), then columns."""
    out = np.empty((rows.shape[0], columns.shape[0]), np.float32)
    line = np.empty(coarse.shape[1], np.float32)
    for y in range(rows.shape[0]):
        low, high, wy = coarse[rows[y, 0]], coarse[rows[y, 1]], row_weights[y]
        for j in range(line.size):
            line[j] = low[j] + (high[j] - low[j]) * wy
        for x in range(columns.shape[0]):
            left = line[columns[x, 0]]
            out[y, x] = left + (line[columns[x, 1]] - left) * column_weights[x]
    return out


def interpolate(coarse: np.ndarray, rows: tuple[np.ndarray, np.ndarray, np.ndarray],
                columns: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    """Return a 2-D float32 grid interpolated linearly along axis 0, then axis 1, in float32.

    Parameters
    ----------
    coarse : ndarray
        2-D, converted to float32.
    rows, columns : tuple of ndarray
        For each output row (column): the two samples of `coarse` it lies between and the
        weight of the second, (low index, high index, weight in [0, 1]).

    Returns
    -------
    ndarray
        float32, (len(rows[0]), len(columns[0])); NaN where a sample it leans on is NaN.

    Examples
    --------
    >>> ends = (np.array([0, 0]), np.array([1, 1]), np.array([0.0, 0.5]))
    >>> interpolate(np.array([[0.0, 2.0], [4.0, 6.0]]), ends, ends).tolist()
    [[0.0, 1.0], [2.0, 3.0]]
    """
    def pairs(low: np.ndarray, high: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.stack([low, high], axis=1), dtype=np.int64)

    return _interpolate(np.ascontiguousarray(coarse, dtype=np.float32), pairs(rows[0], rows[1]),
                        np.ascontiguousarray(rows[2], dtype=np.float32), pairs(columns[0], columns[1]),
                        np.ascontiguousarray(columns[2], dtype=np.float32))


@compiled
def _block_sums(a: np.ndarray, factor: int) -> np.ndarray:
    """Return the float64 sum of each `factor` x `factor` block of `a`, a partial last block mirrored."""
    h, w = a.shape
    hb, wb = -(-h // factor), -(-w // factor)
    sums = np.zeros((hb, wb))
    for row in range(hb * factor):
        line = a[_reflect(row, h)]  # a partial last block mirrored
        by = row // factor
        for bx in range(wb):
            s = 0.0
            for col in range(bx * factor, (bx + 1) * factor):
                s += line[col if col < w else _reflect(col, w)]
            sums[by, bx] += s
    return sums


def block_sums(a: np.ndarray, factor: int) -> np.ndarray:
    """Return the sum of each `factor` x `factor` block of a 2-D array in float64, a partial last block mirrored.

    Examples
    --------
    >>> block_sums(np.arange(6.0).reshape(2, 3), 2).tolist()  # the second block mirrors column 2: 2 + 2 + 5 + 5
    [[8.0, 14.0]]
    """
    return _block_sums(_floats(a), int(factor))


_BUCKETS = 4096  # equal steps of a table's range, each knowing the table entries it holds


@compiled
def _interp(x: np.ndarray, xp: np.ndarray, fp: np.ndarray, out: np.ndarray) -> None:
    """Write np.interp(x, xp, fp) to `out` (1-D float64, xp strictly increasing, 2 entries or more), each bracket
    found within its bucket, then numpy's own formula."""
    n = xp.size
    lo, hi = xp[0], xp[n - 1]
    scale = _BUCKETS / (hi - lo)
    first = np.empty(_BUCKETS + 2, np.int64)  # per bucket, the last entry at or below its left edge
    j = 0
    for k in range(_BUCKETS + 1):
        edge = lo + k / scale
        while j + 1 < n and xp[j + 1] <= edge:
            j += 1
        first[k] = j
    first[_BUCKETS + 1] = n - 1
    slopes = np.empty(n - 1, np.float64)
    for i in range(n - 1):
        slopes[i] = (fp[i + 1] - fp[i]) / (xp[i + 1] - xp[i])
    for i in range(x.size):
        v = x[i]
        if np.isnan(v):
            out[i] = v
        elif v < lo:
            out[i] = fp[0]
        elif v > hi:
            out[i] = fp[n - 1]
        else:
            k = min(int((v - lo) * scale), _BUCKETS)
            a, b = max(first[k] - 1, 0), min(first[k + 1] + 2, n - 1)  # one entry more each way: the edges round
            while b - a > 1:  # the last entry at or below v
                m = (a + b) // 2
                if xp[m] <= v:
                    a = m
                else:
                    b = m
            j = b if xp[b] <= v else a
            if j == n - 1 or xp[j] == v:
                out[i] = fp[j]
            else:
                r = slopes[j] * (v - xp[j]) + fp[j]
                if np.isnan(r):  # as numpy: try from the other end, then a flat interval
                    r = slopes[j] * (v - xp[j + 1]) + fp[j + 1]
                    if np.isnan(r) and fp[j] == fp[j + 1]:
                        r = fp[j]
                out[i] = r


def interp(x, xp: np.ndarray, fp: np.ndarray) -> np.ndarray:
    """Return ``np.interp(x, xp, fp)``, the same numbers, several times faster on values in no order.

    np.interp looks up each value by a binary search from the last one's place, which is quick on
    sorted values and slow on a map's (4.5 ms for 84 100 values in a 4001-entry table); here each
    value's bucket of the table's range holds its bracket. Any table that is not strictly
    increasing, or shorter than two entries, goes to np.interp itself.

    Parameters
    ----------
    x : array_like
        The values to look up (any shape).
    xp, fp : ndarray
        1-D: the table's abscissae (increasing) and its values.

    Returns
    -------
    ndarray
        float64, `x`'s shape.

    Examples
    --------
    >>> xp, fp = np.array([0.0, 1.0, 3.0]), np.array([10.0, 20.0, 40.0])
    >>> interp([-1.0, 0.5, 2.0, 9.0, np.nan], xp, fp).tolist()
    [10.0, 15.0, 30.0, 40.0, nan]
    """
    xp, fp = (np.ascontiguousarray(a, dtype=np.float64) for a in (xp, fp))
    if xp.size < 2 or not np.all(np.diff(xp) > 0):
        return np.interp(x, xp, fp)
    values = np.ascontiguousarray(x, dtype=np.float64)
    out = np.empty(values.shape, np.float64)
    _interp(values.reshape(-1), xp, fp, out.reshape(-1))
    return out
