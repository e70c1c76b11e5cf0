"""Input checks shared by every public entry point: clear errors instead of crashes deep in scipy."""

from __future__ import annotations

import warnings

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
            f"{tuple(image.shape)}. For a stack, estimate each plane separately."
        )
    if min(shape) < MIN_SIDE:
        raise ValueError(f"{name} is {shape[0]} x {shape[1]} px; blur needs at least {MIN_SIDE} x {MIN_SIDE} px")
    return shape


def as_2d_float(image, *, name: str = "image"):
    """Return `image` as a 2-D float32 array (numpy or dask); RGB(A) becomes luminance, with a warning.

    The pixels of a masked array under its mask become NaN: unknown, as every non-finite pixel is
    (the engine makes the map unknown within reach of them, and only there).
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
    if isinstance(image, np.ndarray) and image.dtype.kind == "f" and image.dtype.itemsize > 4:
        finite = image[np.isfinite(image)]
        if finite.size and np.abs(finite).max() > np.finfo(np.float32).max:
            raise ValueError(f"{name} holds values up to {np.abs(finite).max():.3g}, beyond float32's range "
                             f"({np.finfo(np.float32).max:.3g}): rescale it")
    return to_float32(image)


def to_float32(image):
    """Return a 2-D or RGB(A) array (numpy or dask) as float32 grey, RGB(A) as luminance; no checks, no warning."""
    if image.ndim == 3:
        image = (image[..., :3].astype(np.float32) * LUMA.astype(np.float32)).sum(axis=-1)
    return image if image.dtype == np.float32 else image.astype(np.float32)


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
