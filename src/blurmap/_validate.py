"""Input checks shared by every public entry point: clear errors instead of crashes deep in scipy."""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np

# ITU-R BT.709 luma weights, the usual choice for linear RGB micrographs and photographs.
LUMA = np.array([0.2126, 0.7152, 0.0722])
MIN_SIDE = 8


def is_dask(a) -> bool:
    """Return whether `a` is a dask collection (without importing dask)."""
    return type(a).__module__.startswith("dask")


def check_2d(image, *, name: str = "image") -> tuple[int, int]:
    """Return the 2-D shape `image` gives (RGB(A) counts as 2-D), or raise a clear error; reads no pixels."""
    if not hasattr(image, "ndim") or not hasattr(image, "dtype"):
        image = np.asarray(image)
    dtype = np.dtype(image.dtype)
    if dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, not {dtype} values")
    shape = tuple(image.shape[:2]) if image.ndim == 3 and image.shape[-1] in (3, 4) else tuple(image.shape)
    if len(shape) != 2:
        raise ValueError(
            f"{name} must be a 2-D grey image (or RGB with 3 or 4 channels last); got shape "
            f"{tuple(image.shape)}. blurmap.estimate maps a stack (leading axes) plane by plane; here, give one plane."
        )
    if min(shape) < MIN_SIDE:
        raise ValueError(f"{name} is {shape[0]} x {shape[1]} px; blur needs at least {MIN_SIDE} x {MIN_SIDE} px")
    return shape


def as_2d_float(image, *, name: str = "image"):
    """Return `image` checked, as a 2-D float32 array (numpy or dask); see as_2d_grey (not normalised).

    float64 values beyond float32's range are refused with a message (as_2d_grey keeps them, as
    float64, for the engine to normalise).
    """
    grey = as_2d_grey(image, name=name)
    if isinstance(grey, np.ndarray) and grey.dtype == np.float64:
        finite = grey[np.isfinite(grey)]
        if finite.size and np.abs(finite).max() > np.finfo(np.float32).max:
            raise ValueError(f"{name} holds values up to {np.abs(finite).max():.3g}, beyond float32's range "
                             f"({np.finfo(np.float32).max:.3g}): rescale it")
    return grey if grey.dtype == np.float32 else grey.astype(np.float32)


class IntensityScale(NamedTuple):
    """How an image's intensities are normalised where it enters the engine: (value - loc) / scale."""

    loc: float  # image units: the 0.1th percentile of the sampled finite pixels
    scale: float  # image units: from that to the 99.9th percentile

    def to_image(self, value: float, kind: str) -> float:
        """Return a normalised value of a parameter of this `kind` in image units.

        "spread": a std, or a variance per unit of intensity; "level": an intensity.
        """
        return value * self.scale + (self.loc if kind == "level" else 0.0)

    def from_image(self, value: float, kind: str) -> float:
        """Return a value in image units of a parameter of this `kind` as the normalised image sees it."""
        return (value - (self.loc if kind == "level" else 0.0)) / self.scale


def as_2d_grey(image, *, name: str = "image"):
    """Return `image` checked and as one grey plane (numpy or dask): float64 stays float64, anything else float32.

    RGB(A) becomes luminance, with a warning. The pixels of a masked array under its mask become
    NaN: unknown, as every non-finite pixel is.
    """
    if isinstance(image, np.ma.MaskedArray):
        image = np.ma.getdata(image.astype(np.float64).filled(np.nan))
    elif isinstance(image, np.ndarray) and type(image) is not np.ndarray:  # np.matrix and other subclasses
        image = np.asarray(image)
    if not hasattr(image, "ndim") or not hasattr(image, "dtype"):
        image = np.asarray(image)
    if is_dask(image) and any(np.isnan(c) for axis in image.chunks for c in axis):
        raise ValueError(f"{name} is a dask array of unknown chunk sizes; call its compute_chunk_sizes() first")
    check_2d(image, name=name)
    if image.ndim == 3:
        warnings.warn(
            f"{name} has shape {tuple(image.shape)}: treated as RGB(A) and converted to luminance "
            "(0.2126 R + 0.7152 G + 0.0722 B); alpha is ignored",
            UserWarning,
            stacklevel=3,
        )
    return to_grey(image)


def to_grey(image):
    """Return a 2-D or RGB(A) array (numpy or dask) as one grey plane, float64 if it is float64, else float32; no checks."""
    dtype = np.float64 if np.dtype(image.dtype) == np.float64 else np.float32
    if image.ndim == 3:
        image = (image[..., :3].astype(dtype) * LUMA.astype(dtype)).sum(axis=-1)
    return image if image.dtype == dtype else image.astype(dtype)


def tail_percentiles(values: np.ndarray, percents: tuple[float, ...], *, sample: int = 65536) -> tuple[float, ...]:
    """Return percentiles near either end of `values`, exactly as ``np.percentile`` gives them, reading the tails only.

    ``np.percentile`` partitions the whole array around each order statistic; near an end, a
    strided subsample gives a threshold that keeps a few times the values needed, the
    partition runs over those, and the order statistics are the same (the whole array is
    partitioned where the threshold keeps too few). Fifteen times faster on 4 million values.

    Parameters
    ----------
    values : ndarray
        1-D, finite (float32 or float64).
    percents : tuple of float
        In percent, 0 to 100.
    sample : int
        Size of the subsample the thresholds come from.

    Returns
    -------
    tuple of float
        The percentiles, in the units of `values` (numpy's default, linear, interpolation).

    Examples
    --------
    >>> values = np.random.default_rng(0).random(100_000, dtype=np.float32)
    >>> tail_percentiles(values, (0.1, 99.9)) == tuple(np.percentile(values.astype(np.float64), [0.1, 99.9]))
    True
    """
    n = values.size
    stride = max(1, n // sample)
    sub = values[::stride]
    out = []
    for q in percents:
        at = (n - 1) * (q / 100.0)
        k = int(np.floor(at))
        k1 = min(k + 1, n - 1)
        # ranks kept from the nearer end: the subsample's share of them, with a margin
        keep = min(sub.size - 1, int(((k1 + 1) if q <= 50 else (n - k)) / stride * 1.5) + 16)
        if q <= 50:
            part = values[values <= np.partition(sub, keep)[keep]]
            first = 0
        else:
            part = values[values >= np.partition(sub, sub.size - 1 - keep)[sub.size - 1 - keep]]
            first = n - part.size  # the rank of part's smallest value in the whole array
        if first > k or first + part.size <= k1:
            part, first = values, 0
        part = np.partition(part, [k - first, k1 - first])
        a, b = float(part[k - first]), float(part[k1 - first])
        t = at - k
        out.append(b - (b - a) * (1 - t) if t >= 0.5 else a + (b - a) * t)  # numpy's own linear interpolation
    return tuple(out)


def _flat(arrays: list) -> np.ndarray:
    """Return the values of `arrays` one after the other as one 1-D array, each copied once (a window of a wider
    band is not contiguous, and its ravel would copy it first)."""
    arrays = [np.asarray(a) for a in arrays]
    out = np.empty(sum(a.size for a in arrays), dtype=np.result_type(*arrays))
    start = 0
    for a in arrays:
        out[start:start + a.size].reshape(a.shape)[...] = a
        start += a.size
    return out


def intensity_scale(samples: list[np.ndarray], *, name: str = "image") -> IntensityScale:
    """Return how to normalise an image, from the finite pixels of its `samples`: the regions the noise model samples
    (``noise.sample_regions``), the same whatever the array (numpy, or dask however chunked), so that both normalise
    alike and a large image is not read whole for this.

    Raises a ValueError for an image with no finite pixel, or constant, in those regions.
    """
    return _scale_of(_flat(samples), name)


def normalised_samples(samples: list[np.ndarray], *, name: str = "image") -> tuple[IntensityScale, list[np.ndarray]]:
    """Return an image's ``intensity_scale`` from its `samples` and the samples ``normalised`` by it (float32, the same
    numbers), all normalised in one pass over one copy of them."""
    pixels = _flat(samples)
    scale = _scale_of(pixels, name)
    flat = normalised(pixels, scale, in_place=True)
    starts = np.cumsum([0] + [s.size for s in samples])
    return scale, [flat[a:b].reshape(np.shape(s)) for s, a, b in zip(samples, starts[:-1], starts[1:])]


def _scale_of(pixels: np.ndarray, name: str) -> IntensityScale:
    """Return ``intensity_scale`` of the sampled `pixels` (1-D)."""
    finite = pixels if np.isfinite(pixels).all() else pixels[np.isfinite(pixels)]
    if finite.size == 0:
        raise ValueError(f"the {name} has no finite pixel (in the regions sampled): they are NaN or infinite")
    lo, hi = tail_percentiles(finite, (0.1, 99.9))
    if hi <= lo:
        lo, hi = float(finite.min()), float(finite.max())
    if hi <= lo:
        raise ValueError(f"the {name} is constant (in every region sampled): it holds no texture, so its blur "
                         "cannot be measured")
    return IntensityScale(lo, hi - lo)


def normalised(grey, scale: IntensityScale, *, in_place: bool = False):
    """Return `grey` as float32 (value - loc) / scale (numpy or dask, lazily).

    Computed in the grey plane's own precision (float32 unless the image was float64), in float64
    where the factor 1 / scale lies beyond float32's range (intensities below 1e-38 or so). With
    `in_place`, a float32 numpy `grey` is itself scaled and returned (the same numbers): for a
    plane the caller made and needs no more.
    """
    dtype = grey.dtype.type
    factor = 1.0 / scale.scale
    # compared as Python floats: numpy would cast `factor` to float32 first, and warn of its overflow
    if dtype is np.float32 and not (float(np.finfo(np.float32).tiny) < factor < float(np.finfo(np.float32).max)):
        grey, dtype = grey.astype(np.float64), np.float64
    elif in_place and isinstance(grey, np.ndarray) and dtype is np.float32 and grey.flags.writeable:
        np.subtract(grey, dtype(scale.loc), out=grey)
        grey *= dtype(factor)
        return grey
    out = grey - dtype(scale.loc)
    if isinstance(out, np.ndarray):
        out *= dtype(factor)  # a new array already: scaled where it lies
    else:
        out = out * dtype(factor)
    return out if out.dtype == np.float32 else out.astype(np.float32)



def check_param(name: str, value, minimum=None, maximum=None) -> float:
    """Return `value` as a float after checking it is a finite number within [minimum, maximum]."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"parameter {name!r} must be a number, got {value!r}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"parameter {name!r} must be finite, got {value}")
    if minimum is not None and value < minimum:
        raise ValueError(f"parameter {name!r} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"parameter {name!r} must be <= {maximum}, got {value}")
    return value
