"""Robust estimate of additive white noise, for the noise-aware estimators."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from ._compile import compiled
from ._validate import is_dask

__all__ = ["estimate_noise", "estimate_noise_model"]


# Immerkaer's (1996) mask [[1, -2, 1], [-2, 4, -2], [1, -2, 1]] / 6 cancels any locally quadratic signal
_BLOCK = 8
_QUANTILE = 0.1
SAMPLE = 256  # px; side of each square the noise is sampled in
_MAXSAMPLES = 64


def impulse_response(operator, reach: int) -> np.ndarray:
    """Return what `operator` makes of a unit impulse centred in a (2 reach + 1) px square of zeros.

    For a linear operator this is its kernel, and the sum of its squares is the variance the
    operator gives unit-variance white noise; `reach` must cover the kernel.
    """
    impulse = np.zeros((2 * reach + 1, 2 * reach + 1))
    impulse[reach, reach] = 1.0
    return operator(impulse)


def _blocks(a: np.ndarray) -> np.ndarray:
    """Return the mean of each 8x8 block of `a`, flattened."""
    h, w = (a.shape[0] // _BLOCK) * _BLOCK, (a.shape[1] // _BLOCK) * _BLOCK
    return a[:h, :w].reshape(h // _BLOCK, _BLOCK, w // _BLOCK, _BLOCK).mean(axis=(1, 3)).ravel()


@compiled
def _immerkaer_blocks(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return, per whole 8x8 block of the interior t[1:-1, 1:-1] (float32 or float64, read as float64), the mean of t
    and of its squared mask response."""
    hb, wb = (t.shape[0] - 2) // _BLOCK, (t.shape[1] - 2) // _BLOCK
    means, variances = np.zeros((hb, wb)), np.zeros((hb, wb))
    vertical = np.empty(wb * _BLOCK + 2)  # a row's second differences down the columns
    squares = np.empty(wb * _BLOCK)  # and its squared mask responses: whole rows at a time, which vectorise
    for y in range(hb * _BLOCK):
        above, row, below = t[y], t[y + 1], t[y + 2]
        for x in range(wb * _BLOCK + 2):
            vertical[x] = float(above[x]) - 2.0 * float(row[x]) + float(below[x])
        for x in range(wb * _BLOCK):
            # Immerkaer's mask is the outer product of [1, -2, 1] with itself, / 6: two second differences
            r = (vertical[x] - 2.0 * vertical[x + 1] + vertical[x + 2]) / 6.0
            squares[x] = r * r
        for bx in range(wb):
            s, s2 = 0.0, 0.0
            for x in range(bx * _BLOCK, (bx + 1) * _BLOCK):
                s += float(row[x + 1])
                s2 += squares[x]
            means[y // _BLOCK, bx] += s
            variances[y // _BLOCK, bx] += s2
    n = float(_BLOCK * _BLOCK)
    return means.ravel() / n, variances.ravel() / n


def _block_stats(sample: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (mean intensity, mean squared high-pass response) of each whole 8x8 block of `sample`'s interior, flattened."""
    # float32 is read in float64 by the loop; a window of a wider image is copied first, for contiguous rows are faster
    t = np.ascontiguousarray(sample if sample.dtype in (np.float32, np.float64) else sample.astype(np.float64))
    if min(t.shape) < _BLOCK + 2:
        return np.empty(0), np.empty(0)
    return _immerkaer_blocks(t)


def _pure_noise_quantile() -> float:
    """Return the `_QUANTILE` of 8x8 block means of the squared mask response to unit white noise."""
    _, v = _block_stats(np.random.default_rng(12345).standard_normal((1024, 1024)))
    return float(np.quantile(v, _QUANTILE))


_UNIT_QUANTILE = _pure_noise_quantile()


def sample_regions(image) -> list[np.ndarray]:
    """Return the windows of a 2-D image the noise estimates read (SAMPLE px at sample_origins), as numpy arrays.

    `image` is a numpy or dask array, or any array whose ``[rows, cols]`` reads numpy (an
    ``io.Source`` plane). Anything but numpy is read only where the windows lie (a dask array in
    one computation): a row of windows that covers half its band of the image or more is read as
    the whole band (at most twice the pixels, one read where dask would read each chunk two
    windows share whole), any other window on its own.
    """
    origins = sample_origins(tuple(image.shape[:2]))
    if isinstance(image, np.ndarray):
        return [image[y:y + SAMPLE, x:x + SAMPLE] for y, x in origins]
    width = image.shape[1]
    starts: dict[int, list[int]] = {}
    for y, x in origins:
        starts.setdefault(y, []).append(x)
    banded = sorted(y for y, xs in starts.items() if 2 * len(xs) * min(SAMPLE, width) >= width)
    pieces = [image[y:y + SAMPLE, :] for y in banded] + [
        image[y:y + SAMPLE, x:x + SAMPLE] for y, x in origins if y not in banded]
    if is_dask(image):
        import dask
        pieces = dask.compute(*pieces)
    read = iter(pieces)
    bands = {y: np.asarray(next(read)) for y in banded}
    return [bands[y][:, x:x + SAMPLE] if y in bands else np.asarray(next(read)) for y, x in origins]


def _sampled_stats(regions: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Return block (means, high-pass variances) over an image's sample_regions."""
    stats = [_finite_block_stats(t) for t in regions]
    return np.concatenate([m for m, _ in stats]), np.concatenate([v for _, v in stats])


def _finite_block_stats(sample: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return _block_stats of the blocks whose mask support holds no NaN or infinite pixel (the others dropped)."""
    bad = ~np.isfinite(sample)
    if not bad.any():
        return _block_stats(sample)
    if bad.all():
        return np.empty(0), np.empty(0)
    mean, var = _block_stats(np.where(bad, np.mean(sample[~bad]), sample))
    touched = _blocks(ndi.maximum_filter(bad, size=3)[1:-1, 1:-1].astype(np.float64)) > 0
    return mean[~touched], var[~touched]


def sample_origins(shape: tuple[int, int], side: int = SAMPLE, most: int = _MAXSAMPLES) -> list[tuple[int, int]]:
    """Return the top-left corners of at most `most` noise samples of `side` px on a regular grid over `shape` (px)."""
    def starts(n: int, k: int) -> list[int]:
        if n <= side:
            return [0]
        return sorted({int(round(x)) for x in np.linspace(0, n - side, k)})
    per_axis = max(1, int(np.sqrt(most)))
    return [(y, x) for y in starts(shape[0], per_axis) for x in starts(shape[1], per_axis)]


def estimate_noise(image, *, regions: list[np.ndarray] | None = None) -> float:
    """Return the standard deviation of additive white noise in `image`, in image units.

    The 10th percentile of local high-pass variances (Immerkaer's mask, 8 x 8 blocks) is read in
    the smoothest part of the image, so texture does not count as noise wherever part of the
    image is blurred by 1 px or more. The samples read are fixed by the image shape alone, so a
    numpy array and any chunking of the same data as a dask array give the same number.

    Parameters
    ----------
    image : array_like or dask array
        2-D image; a dask array is read only where the samples lie.
    regions : list of ndarray, optional
        The image's ``sample_regions``, if they have been read already (the image is then not read).

    Returns
    -------
    float
        Noise std, image units; 0 for an image too small to sample.

    References
    ----------
    .. [1] J. Immerkaer, "Fast noise variance estimation", Computer Vision and Image
       Understanding 64(2), 300-302, 1996.

    Examples
    --------
    >>> import numpy as np, blurmap
    >>> from blurmap import synthetic
    >>> rng = np.random.default_rng(0)
    >>> sharp = synthetic.dead_leaves((256, 256), seed=1)
    >>> noisy = blurmap.blur(sharp, np.full(sharp.shape, 2.0)) + rng.normal(0, 0.02, sharp.shape)
    >>> bool(abs(blurmap.estimate_noise(noisy) - 0.02) < 0.004)
    True
    """
    _, v = _sampled_stats(sample_regions(image) if regions is None else regions)
    if v.size == 0:
        return 0.0
    return float(np.sqrt(np.quantile(v, _QUANTILE) / _UNIT_QUANTILE))


def estimate_noise_model(image, bins: int = 8, *, regions: list[np.ndarray] | None = None) -> tuple[float, float, float]:
    """Return (a, b, dark) of the noise variance a + b * max(intensity - dark, 0) of `image`.

    Shot noise, as in SEM and fluorescence, grows with the signal above a dark level; detector
    noise does not. The blocks are split into `bins` intensity classes; in each, the 10th
    percentile of high-pass variances gives the noise variance there; a line through those
    points, with b >= 0, is the model, anchored at `dark`, the darkest 1% of block means, so
    that an offset moves `dark` and nothing else.

    Parameters
    ----------
    image : array_like or dask array
        2-D image.
    bins : int
        Intensity classes.
    regions : list of ndarray, optional
        The image's ``sample_regions``, if they have been read already (the image is then not read).

    Returns
    -------
    a : float
        Image units squared: the variance at the dark level.
    b : float
        Image units (variance per unit of intensity above `dark`).
    dark : float
        Image units.

    Examples
    --------
    >>> import numpy as np, blurmap
    >>> from blurmap import synthetic
    >>> rng = np.random.default_rng(0)
    >>> clean = blurmap.blur(synthetic.dead_leaves((256, 256), seed=1), np.full((256, 256), 2.0))
    >>> a, b, dark = estimate_noise_model(clean + rng.normal(0, 0.02, clean.shape))
    >>> bool(abs(np.sqrt(a) - 0.02) < 0.005 and b < 1e-4)
    True
    """
    mean, var = _sampled_stats(sample_regions(image) if regions is None else regions)
    if var.size == 0:
        return 0.0, 0.0, 0.0
    dark = float(np.quantile(mean, 0.01))
    edges = np.quantile(mean, np.linspace(0, 1, bins + 1))
    mus, noise_vars = [], []
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (mean >= lo) & (mean <= hi)
        if sel.sum() >= 20:
            mus.append(np.median(mean[sel]))
            noise_vars.append(np.quantile(var[sel], _QUANTILE) / _UNIT_QUANTILE)
    mus, noise_vars = np.asarray(mus), np.asarray(noise_vars)
    if mus.size < 2 or np.ptp(mus) == 0:
        return float(np.quantile(var, _QUANTILE) / _UNIT_QUANTILE), 0.0, dark
    b, a = np.polyfit(mus, noise_vars, 1)
    if b <= 0:
        return float(np.median(noise_vars)), 0.0, dark
    return float(max(a + b * dark, 0.0)), float(b), dark
