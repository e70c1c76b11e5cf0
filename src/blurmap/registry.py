"""The one registry of estimators: names, parameters, units and halos for engine, GUI, CLI and docs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from . import gradient_ratio as _gr
from ._validate import check_param
from .noise import estimate_noise_model


@dataclass(frozen=True)
class Param:
    """One parameter of an estimator: its default, its range and what it means."""

    name: str
    default: Any
    minimum: float | None = None
    maximum: float | None = None
    unit: str = ""
    doc: str = ""
    kind: type = float
    nullable: bool = False  # None is allowed and means "work it out from the image"

    def check(self, value: Any) -> Any:
        """Return `value` converted to this parameter's kind, or raise a clear error."""
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
    """A registered blur estimator: a pure function from a 2-D float tile to (map, confidence)."""

    name: str
    title: str
    func: Callable[..., tuple[np.ndarray, np.ndarray]]
    units: str  # "px" (absolute sigma) or "relative" (a sharpness score)
    params: tuple[Param, ...]
    halo_for_params: Callable[..., int]
    align: int = 1  # chunk origins must be multiples of this (px)
    description: str = ""
    prepare: Callable[[Any, dict], dict] | None = None  # fills image-wide parameters once
    extra: dict = field(default_factory=dict)

    @property
    def halo(self) -> int:
        """Return the halo (px) each side of a chunk at the default parameters."""
        return self.halo_for(self.defaults())

    def defaults(self) -> dict:
        """Return the default value of every parameter."""
        return {p.name: p.default for p in self.params}

    def check(self, params: dict) -> dict:
        """Return the defaults updated by `params`, each checked; unknown names raise TypeError."""
        known = {p.name: p for p in self.params}
        unknown = sorted(set(params) - set(known))
        if unknown:
            raise TypeError(f"estimator {self.name!r} has no parameter {', '.join(map(repr, unknown))}; "
                            f"it takes {', '.join(known) or 'none'}")
        merged = self.defaults()
        merged.update({k: known[k].check(v) for k, v in params.items()})
        return merged

    def halo_for(self, params: dict) -> int:
        """Return the halo (px) each side of a chunk for these checked parameters."""
        keys = [p.name for p in self.params if p.name in params]
        return int(self.halo_for_params(**{k: params[k] for k in keys if k in _halo_args(self)}))


def _halo_args(est: Estimator) -> tuple[str, ...]:
    import inspect
    return tuple(inspect.signature(est.halo_for_params).parameters)


_NOISE_PARAMS = ("noise", "shot_noise", "dark_level")


def _prepare_noise(image, params: dict) -> dict:
    """Fill the noise-model parameters left None from one image-wide estimate, the same for every chunk."""
    if all(params[k] is not None for k in _NOISE_PARAMS):
        return params
    a, b, dark = estimate_noise_model(image)
    estimated = {"noise": float(np.sqrt(a)), "shot_noise": b, "dark_level": dark}
    return {**params, **{k: estimated[k] for k in _NOISE_PARAMS if params[k] is None}}


_REGISTRY: dict[str, Estimator] = {}


def register(est: Estimator) -> Estimator:
    """Add `est` to the registry under its name and return it."""
    if est.units not in ("px", "relative"):
        raise ValueError(f"units must be 'px' or 'relative', not {est.units!r}")
    _REGISTRY[est.name] = est
    return est


register(Estimator(
    name="gradient_ratio",
    title="Re-blur gradient ratio",
    func=_gr.gradient_ratio,
    units="px",
    params=(
        Param("window", 16.0, 8.0, 128.0, "px", "pooling window; larger is steadier, less local"),
        Param("fill", 32.0, 4.0, 256.0, "px", "reach of the confidence-weighted fill into textureless areas"),
        Param("noise", None, 0.0, None, "image units",
              "std of signal-independent noise; None estimates it from the image, 0 means none",
              nullable=True),
        Param("shot_noise", None, 0.0, None, "image units",
              "shot-noise variance per unit of intensity above dark_level; None estimates it, 0 means none",
              nullable=True),
        Param("dark_level", None, None, None, "image units",
              "intensity at which shot noise vanishes; None estimates it", nullable=True),
        Param("sigma_max", 10.0, 1.0, 20.0, "px", "largest blur reported"),
    ),
    halo_for_params=_gr.halo,
    align=_gr.BLOCK,
    description=("Absolute Gaussian sigma from ratios of self-weighted gradient energies of the image and "
                 "its re-blurred copies (0.7, 1.4 px), calibrated on dead-leaves textures; invariant to "
                 "gain and offset, with white noise removed and a confidence-weighted fill."),
    prepare=_prepare_noise,
))

DEFAULT = "gradient_ratio"


def estimators() -> dict[str, Estimator]:
    """Return the registry: estimator name to its record (a copy; register() adds new ones)."""
    return dict(_REGISTRY)


def get(method: str | None) -> Estimator:
    """Return the estimator called `method` (the default if None), or raise a clear KeyError."""
    name = DEFAULT if method is None else method
    if name not in _REGISTRY:
        raise ValueError(f"unknown method {name!r}; choose one of {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]
