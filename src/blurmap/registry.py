"""The one registry of estimators: what each is called, takes, returns and reaches.

Each estimator module in ``blurmap.estimators`` defines its own :class:`Estimator` record next to
its function and registers it; the engine, the napari widgets, the command line and the docs'
tables are all driven from these records. This module holds no estimator's parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._validate import check_param

__all__ = ["Param", "Estimator", "register", "estimators", "get", "DEFAULT"]

UNITS = ("px", "relative")
DEFAULT = "learned"  # the estimator used when none is named (docs/estimators/README.md says why)


@dataclass(frozen=True)
class Param:
    """One parameter of an estimator: its default, its range, its unit and what it means.

    Parameters
    ----------
    name : str
        The keyword the estimator's function takes.
    default : float, int or None
        The value used when none is given; the only place this default is written.
    minimum, maximum : float or None
        The closed range of allowed values; None leaves that side open.
    unit : str
        The unit of the value ("px", "image units"...), "" for a pure number.
    doc : str
        What the parameter means, one sentence: shown as the widget's tooltip and in the docs.
    kind : type
        ``float`` or ``int``.
    nullable : bool
        Whether None is allowed; it then means "work it out from the image".
    scaling : str
        How the value follows the image's intensities, which the engine normalises where the image
        enters: "" (it does not), "spread" (a std, or a variance per unit of intensity: divided by
        the scale), "level" (an intensity: the offset taken away, then divided), or "gain" and
        "offset" (of image = gain * other + offset, each image normalised by its own loc and scale;
        an offset needs its gain).

    Examples
    --------
    >>> p = Param("pooling_width", 16.0, 8.0, 128.0, "px", "width of the pooling window")
    >>> p.check(24)
    24.0
    >>> p.check(2.0)
    Traceback (most recent call last):
    ...
    ValueError: parameter 'pooling_width' must be >= 8.0, got 2.0
    """

    name: str
    default: Any
    minimum: float | None = None
    maximum: float | None = None
    unit: str = ""
    doc: str = ""
    kind: type = float
    nullable: bool = False
    scaling: str = ""

    def check(self, value: Any) -> Any:
        """Return `value` converted to this parameter's kind, or raise a ValueError or TypeError that names it."""
        if value is None:
            if self.nullable:
                return None
            raise ValueError(f"parameter {self.name!r} needs a value")
        number = check_param(self.name, value, self.minimum, self.maximum)
        if self.kind is int:
            if number != int(number):
                raise ValueError(f"parameter {self.name!r} must be a whole number, got {value!r}")
            return int(number)
        return number


@dataclass(frozen=True)
class Estimator:
    """A registered blur estimator: a pure function from a 2-D float32 tile to (map, confidence).

    Parameters
    ----------
    name : str
        The name the engine, the CLI's ``--method`` and the widgets use.
    title : str
        A short human title.
    func : callable
        ``func(tile, **checked_params, **inputs) -> (map, ..., confidence)``: one float32 array of
        the tile's shape per name in `outputs`, in that order.
    units : {"px", "relative"}
        "px": the map is the Gaussian blur sigma in pixels; "relative": a score that only ranks blur.
    params : tuple of Param
        Every parameter `func` takes, with its default.
    halo_formula : callable
        ``halo_formula(checked_params) -> int``: the context (px) each side of a chunk the map depends on.
    align : int or callable
        Chunk origins must be multiples of this (px), or ``align(checked_params)``.
    description : str
        One paragraph for the docs and the widget.
    limits : str
        Where the map stops meaning anything (measured on the stress benchmark), said in the
        widget beside the estimator and in the docs; empty if nothing needs saying.
    prepare : callable or None
        ``prepare(image, checked_params, regions, **inputs) -> params``: fills image-wide values
        (noise, registration) once, before any chunk; `regions` are the normalised image's
        ``noise.sample_regions`` when already read (a lazy image: its `image` is then None where
        the preparation is a task of the maps' graph, for a method with no other input), else None.
    inputs : tuple of str
        Other images the method needs, of the image's shape, passed by name.
    higher_is_sharper : bool
        For relative scores: whether they run the other way from sigma.
    outputs : tuple of str
        The maps the function returns, in order: "sigma" first (the map every tool reads: px or
        score), then any others (e.g. "sigma_major", "angle_deg"), "confidence" last.
    crops : bool
        Whether `func` also takes ``block=(rows, cols)``, slices of the tile, and then returns the
        maps of that part only, the same numbers (the engine asks for a tile's part within its
        halo, and the method skips work whose results would be cut away); else the engine cuts.

    Examples
    --------
    >>> import blurmap
    >>> est = blurmap.estimators()["gradient_ratio"]
    >>> est.units, est.halo
    ('px', 68)
    >>> est.check({"pooling_width": 24})["pooling_width"]
    24.0
    """

    name: str
    title: str
    func: Callable[..., tuple[np.ndarray, np.ndarray]]
    units: str
    params: tuple[Param, ...]
    halo_formula: Callable[[Mapping], int]
    align: int | Callable[[Mapping], int] = 1
    description: str = ""
    limits: str = ""
    prepare: Callable[..., dict] | None = None
    inputs: tuple[str, ...] = ()
    higher_is_sharper: bool = False
    outputs: tuple[str, ...] = ("sigma", "confidence")
    crops: bool = False

    def __post_init__(self):
        if self.outputs[0] != "sigma" or self.outputs[-1] != "confidence" or len(set(self.outputs)) != len(self.outputs):
            raise ValueError(f"{self.name}: outputs must start with 'sigma', end with 'confidence' and not repeat, "
                             f"not {self.outputs}")

    @property
    def extra_outputs(self) -> tuple[str, ...]:
        """The maps beyond sigma and confidence (e.g. a directional method's major and minor sigma and angle)."""
        return self.outputs[1:-1]

    def output_unit(self, output: str) -> str:
        """Return the unit of one output: px (or "relative") for sigma maps, "deg" for angles, "" for the confidence."""
        if output == "confidence":
            return ""
        return "deg" if output.endswith("_deg") else self.units

    @property
    def halo(self) -> int:
        """The halo (px) each side of a chunk at the default parameters."""
        return self.halo_for(self.defaults())

    def defaults(self) -> dict:
        """Return the default value of every parameter."""
        return {p.name: p.default for p in self.params}

    def check(self, params: Mapping) -> dict:
        """Return the defaults updated by `params`, each checked; unknown names raise TypeError."""
        known = {p.name: p for p in self.params}
        unknown = sorted(set(params) - set(known))
        if unknown:
            raise TypeError(f"estimator {self.name!r} has no parameter {', '.join(map(repr, unknown))}; "
                            f"it takes {', '.join(known) or 'none'}")
        merged = self.defaults()
        merged.update({k: known[k].check(v) for k, v in params.items()})
        return merged

    def label(self) -> str:
        """Return what the map's values are, with their unit: for axes and colour-bar titles."""
        if self.units == "px":
            return "Gaussian blur sigma (px)"
        return f"{self.title} (relative, higher is {'sharper' if self.higher_is_sharper else 'blurrier'})"

    def halo_for(self, params: Mapping) -> int:
        """Return the halo (px) each side of a chunk for these checked parameters."""
        return int(self.halo_formula(params))

    def align_for(self, params: Mapping) -> int:
        """Return the grid (px) chunk origins must lie on for these checked parameters."""
        return int(self.align(params) if callable(self.align) else self.align)


_REGISTRY: dict[str, Estimator] = {}


def register(est: Estimator) -> Estimator:
    """Add `est` to the registry under its name and return it (each estimator module calls this once).

    Parameters
    ----------
    est : Estimator
        The record; its units must be "px" or "relative", and its name not taken by another.

    Returns
    -------
    Estimator
        `est` itself, so a module can write ``ESTIMATOR = register(Estimator(...))``.

    Examples
    --------
    >>> import blurmap
    >>> est = blurmap.estimators()["log"]
    >>> register(est) is est  # registering the same record again changes nothing
    True
    """
    if est.units not in UNITS:
        raise ValueError(f"units must be one of {UNITS}, not {est.units!r}")
    if est.name in _REGISTRY and _REGISTRY[est.name] is not est:
        raise ValueError(f"an estimator named {est.name!r} is registered already")
    _REGISTRY[est.name] = est
    return est


def estimators() -> dict[str, Estimator]:
    """Return the registry: estimator name to its record, in registration order.

    Returns
    -------
    dict of str to Estimator
        A copy: changing it changes nothing registered.

    Examples
    --------
    >>> import blurmap
    >>> list(blurmap.estimators())[:2]
    ['learned', 'gradient_ratio']
    """
    return dict(_REGISTRY)


def get(method: str | None) -> Estimator:
    """Return the estimator called `method` (the default if None), or raise a ValueError that lists the names.

    Parameters
    ----------
    method : str or None
        A registered name; None means DEFAULT.

    Returns
    -------
    Estimator
        Its record.

    Examples
    --------
    >>> get(None).name
    'learned'
    >>> get("sharpness")
    Traceback (most recent call last):
    ...
    ValueError: unknown method 'sharpness'; choose one of acutance, difference, directional, gradient_ratio, learned, log, reblur_curve, reference
    """
    name = DEFAULT if method is None else method
    if not isinstance(name, str):
        raise TypeError(f"method must be an estimator's name (a str), not {type(name).__name__}")
    if name not in _REGISTRY:
        raise ValueError(f"unknown method {name!r}; choose one of {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def get_blind(method: str | None) -> Estimator:
    """Return the estimator called `method` if it needs nothing but the image (as files on the command line), or raise."""
    est = get(method)
    if est.inputs:
        raise ValueError(f"method {est.name!r} needs {', '.join(est.inputs)} as well; use it from Python or napari")
    return est
