"""An image made ready for an estimator, once, before any chunk: its normalised intensities and image-wide parameters."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._validate import IntensityScale, as_2d_grey, intensity_scale, is_dask, normalised, normalised_samples, to_grey
from ..noise import sample_regions
from ..registry import Estimator, get


class Prepared(NamedTuple):
    """An image ready for an estimator: the normalised float32 image, the estimator, its parameters, its other inputs.

    `params` are what the estimator computes with (in the normalised image's units); `reported`
    are the same in the image's own units, as a user gives and reads them.
    """

    image: object
    estimator: Estimator
    params: dict
    inputs: dict
    scale: IntensityScale
    reported: dict
    raw: tuple  # (grey image, scale), then (other image, its scale) per input: what a dask block normalises itself


def prepare(image, method: str | None = None, *, reader=None, **params) -> Prepared:
    """Check everything, normalise the image's intensities, and fill image-wide parameters once, before any chunk.

    The image enters as (value - loc) / scale, loc and scale from the 0.1th and 99.9th percentiles
    of its sampled pixels, so that every estimator sees the same numbers whatever the image's gain
    and offset; another image a method needs is normalised by its own loc and scale. Parameters
    in image units are converted to the normalised units and back (see Param.scaling). A lazy
    image's samples are read once, from `reader` if given (as in ``lazy_maps``), else through dask.
    """
    est = get(method)
    arrays = {name: params.pop(name, None) for name in est.inputs}
    checked = est.check(params)
    grey = as_2d_grey(image)
    regions = None  # a lazy image is read once where the samples lie (the same pixels as its grey plane), normalised
    if reader is not None:
        scale, regions = normalised_samples([to_grey(w) for w in sample_regions(reader)])
    elif is_dask(grey):
        scale, regions = normalised_samples(sample_regions(grey))
    else:
        scale = intensity_scale(sample_regions(grey))
    if is_dask(grey):
        img, raw = normalised(grey, scale), [(grey, scale)]
    else:  # a grey plane made here (from integers, RGB...) is scaled where it lies: one copy of the image, not two
        img = normalised(grey, scale, in_place=not np.may_share_memory(grey, image))
        raw = [(img, None)]
    other_scale = None
    for name, array in arrays.items():
        if array is None:
            raise TypeError(f"method {est.name!r} needs the image {name!r} (e.g. {name}=array)")
        other = as_2d_grey(array, name=name)
        if other.shape != img.shape:
            raise ValueError(f"{name} has shape {other.shape}, the image {img.shape}; they must agree")
        other_scale = intensity_scale(sample_regions(other), name=name)
        arrays[name] = normalised(other, other_scale)
        raw.append((other, other_scale))
    inner = _computed_params(est, checked, scale, img, regions, other_scale, arrays)
    return Prepared(img, est, inner, arrays, scale, _to_image(est, inner, scale, other_scale), tuple(raw))


def _computed_params(est: Estimator, checked: dict, scale: IntensityScale, image, regions: list | None,
                     other_scale: IntensityScale | None = None, inputs: dict | None = None) -> dict:
    """Return the parameters `est` computes with: `checked` (image units) in the normalised image's units, the
    image-wide ones (noise) filled by its preparation, from `regions` (the normalised image's noise samples) if given,
    else from `image` (only where the preparation samples it)."""
    inner = _to_normalised(est, checked, scale, other_scale)
    if est.prepare is not None:
        inner = est.prepare(image, inner, regions=regions, **(inputs or {}))
    return inner


def _to_normalised(est: Estimator, params: dict, scale: IntensityScale, other: IntensityScale | None) -> dict:
    """Return `params` (image units) as the normalised images see them (see Param.scaling)."""
    out = dict(params)
    for p in est.params:
        value = out.get(p.name)
        if not p.scaling or value is None:
            continue
        if p.scaling == "gain":  # image = gain * other + offset, both normalised by their own loc and scale
            out[p.name] = float(value * other.scale / scale.scale)
        elif p.scaling == "offset":
            if params.get("gain") is None:
                raise ValueError(f"give gain as well when you give {p.name} (in image units, it depends on the gain)")
            out[p.name] = float((value + params["gain"] * other.loc - scale.loc) / scale.scale)
        else:
            out[p.name] = float(scale.from_image(value, p.scaling))
    return out


def _to_image(est: Estimator, params: dict, scale: IntensityScale, other: IntensityScale | None) -> dict:
    """Return normalised `params` in image units: the inverse of _to_normalised."""
    out = dict(params)
    for p in est.params:
        value = out.get(p.name)
        if not p.scaling or value is None:
            continue
        if p.scaling == "gain":
            out[p.name] = float(value * scale.scale / other.scale)
        elif p.scaling == "offset":
            gain = params["gain"] * scale.scale / other.scale
            out[p.name] = float(value * scale.scale + scale.loc - gain * other.loc)
        else:
            out[p.name] = float(scale.to_image(value, p.scaling))
    return out
