"""The one registry of estimators: names, parameters, units and halos for engine, GUI, CLI and docs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from . import acutance as _ac
from . import difference as _df
from . import gradient_ratio as _gr
from . import learned as _lr
from . import log_scale as _ls
from . import reblur_curve as _rb
from . import reference as _rf
from ._validate import check_param
from .noise import estimate_noise, estimate_noise_model


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
    align: int | Callable[[dict], int] = 1  # chunk origins must be multiples of this (px), or f(params)
    description: str = ""
    prepare: Callable[..., dict] | None = None  # fills image-wide parameters once: (image, params, **inputs)
    inputs: tuple[str, ...] = ()  # other images the method needs, same shape, passed by name
    higher_is_sharper: bool = False  # relative scores of sharpness run the other way from sigma

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

    def label(self) -> str:
        """Return what the map's values are, with their unit: for axes and colour-bar titles."""
        if self.units == "px":
            return "Gaussian blur sigma (px)"
        return f"{self.title} (relative, higher is {'sharper' if self.higher_is_sharper else 'blurrier'})"

    def halo_for(self, params: dict) -> int:
        """Return the halo (px) each side of a chunk for these checked parameters."""
        return int(self.halo_for_params(params))

    def align_for(self, params: dict) -> int:
        """Return the grid (px) chunk origins must lie on for these checked parameters."""
        return int(self.align(params) if callable(self.align) else self.align)


_NOISE_MODEL = (  # signal-dependent noise, noise**2 + shot_noise * (intensity - dark_level), filled by _prepare_noise
    Param("noise", None, 0.0, None, "image units",
          "std of signal-independent noise; None estimates it from the image, 0 means none", nullable=True),
    Param("shot_noise", None, 0.0, None, "image units",
          "shot-noise variance per unit of intensity above dark_level; None estimates it, 0 means none",
          nullable=True),
    Param("dark_level", None, None, None, "image units", "intensity at which shot noise vanishes; None estimates it",
          nullable=True),
)
_NOISE_PARAMS = tuple(p.name for p in _NOISE_MODEL)
_WHITE_NOISE = Param("noise", None, 0.0, None, "image units", "noise std, for the confidence; None estimates it",
                     nullable=True)


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
        *_NOISE_MODEL,
        Param("sigma_max", 10.0, 1.0, 20.0, "px", "largest blur reported"),
    ),
    halo_for_params=lambda p: _gr.halo(p["window"], p["fill"]),
    align=_gr.BLOCK,
    description=("Absolute Gaussian sigma from energy ratios of the image and its re-blurred copies: "
                 "Laplacian over gradient energy (no spectral exponent to know; also from a 0.7 px base, "
                 "for noise) and self-weighted gradient energy (robust), blended by confidence, each "
                 "calibrated on dead leaves; invariant to gain and offset, noise removed, NaN where no "
                 "texture is in reach."),
    prepare=_prepare_noise,
))

def _prepare_reference(image, params: dict, reference) -> dict:
    """Register the reference, fit gain and offset, estimate noise: once per image, on a central crop."""
    params = dict(params)
    crop = tuple(slice(max(0, (n - _rf.CROP) // 2), max(0, (n - _rf.CROP) // 2) + _rf.CROP) for n in image.shape)
    img, ref = image[crop], reference[crop]
    if not isinstance(img, np.ndarray) or not isinstance(ref, np.ndarray):
        import dask
        img, ref = (np.asarray(a) for a in dask.compute(img, ref))
    auto = [k for k in ("shift_y", "shift_x", "gain", "offset") if params[k] is None]
    if params["shift_y"] is None or params["shift_x"] is None:
        (dy, dx), corr = _rf.register(ref, img)
        if corr < _rf.MIN_CORRELATION:
            raise ValueError(f"the reference does not match the image: after registration their correlation "
                             f"is {corr:.2f} (needs {_rf.MIN_CORRELATION}); is it the same field?")
        if max(abs(dy), abs(dx)) > _rf.MAX_SHIFT:
            raise ValueError(f"registration found a shift of ({dy:.1f}, {dx:.1f}) px, beyond the "
                             f"{_rf.MAX_SHIFT} px this method accepts; crop the images to the same field")
        params["shift_y"] = dy if params["shift_y"] is None else params["shift_y"]
        params["shift_x"] = dx if params["shift_x"] is None else params["shift_x"]
    if params["gain"] is None or params["offset"] is None:
        gain, offset = _rf.gain_offset(_rf._shifted(ref, (params["shift_y"], params["shift_x"])), img)
        params["gain"] = gain if params["gain"] is None else params["gain"]
        params["offset"] = offset if params["offset"] is None else params["offset"]
    if params["noise"] is None:  # floored: noise-free data still get a finite, scale-free weight
        params["noise"] = max(estimate_noise(img), 1e-3 * float(np.std(img)))
    if auto:  # refine what was estimated against the fitted model, which shares the image's blur
        fit = {k: params[k] for k in ("window", "smoothness", "sigma_min", "sigma_max", "fill", "noise")}
        (dy, dx), gain, offset = _rf.refine(ref, img, (params["shift_y"], params["shift_x"]), params["gain"],
                                            params["offset"], **fit)
        params.update({k: v for k, v in zip(("shift_y", "shift_x", "gain", "offset"), (dy, dx, gain, offset))
                       if k in auto})
    return params


register(Estimator(
    name="reference",
    title="Fit against a sharp reference",
    func=_rf.reference_fit,
    units="px",
    params=(
        Param("window", 8.0, 4.0, 64.0, "px", "fitting window; smaller follows sharper changes, larger resists noise"),
        Param("smoothness", 1.0, 0.0, 1000.0, "", "weight of the smoothness prior against the data's information"),
        Param("fill", 32.0, 4.0, 256.0, "px", "reach of the fill into textureless areas"),
        Param("sigma_min", 0.0, 0.0, 19.0, "px", "smallest blur allowed"),
        Param("sigma_max", 6.0, 1.0, 20.0, "px", "largest blur allowed"),
        Param("shift_y", None, -_rf.MAX_SHIFT, _rf.MAX_SHIFT, "px", "reference shift in rows; None registers", nullable=True),
        Param("shift_x", None, -_rf.MAX_SHIFT, _rf.MAX_SHIFT, "px", "reference shift in columns; None registers",
              nullable=True),
        Param("gain", None, None, None, "", "image = gain * reference + offset; None fits it", nullable=True),
        Param("offset", None, None, None, "image units", "None fits it", nullable=True),
        _WHITE_NOISE,
    ),
    halo_for_params=lambda p: _rf.halo(p["window"], p["sigma_max"], p["smoothness"], p["fill"]),
    align=_gr.BLOCK,
    description=("Sigma map that, through blurmap.blur, best turns a sharp reference of the same field into "
                 "the image: exact windowed least squares over a ladder of blurs, adaptive windows at "
                 "changes of blur, a smoothness prior; registration, gain and offset fitted first."),
    prepare=_prepare_reference,
    inputs=("reference",),
))

register(Estimator(
    name="log",
    title="LoG scale selection",
    func=_ls.log_scale,
    units="px",
    params=(
        Param("window", 8.0, 4.0, 64.0, "px", "std of the Gaussian pooling window; larger is steadier, less local"),
        *_NOISE_MODEL,
    ),
    halo_for_params=lambda p: _ls.halo(p["window"]),
    description=("Seed 000's answer 1: scale-normalised Laplacian-of-Gaussian energies over a ladder of "
                 "scales 0.5 .. 8 px, each pixel's best scale from their weighted average, normalised per "
                 "pixel before pooling (no strong edge or bright region dominates), noise removed, read "
                 "as px through a table measured on dead leaves. Reads 0 .. 6 px."),
    prepare=_prepare_noise,
))


def _prepare_white_noise(image, params: dict) -> dict:
    """Fill noise=None with one image-wide estimate of white noise, the same for every chunk."""
    if params["noise"] is None:
        params = dict(params, noise=estimate_noise(image))
    return params


register(Estimator(
    name="acutance",
    title="Block acutance",
    func=_ac.acutance,
    units="relative",
    params=(
        Param("block", 32, 8, 256, "px", "block side; the map is shown as blocks", kind=int),
        Param("derivative", 0.0, 0.0, 4.0, "px",
              "scale of a Gaussian derivative; 0 takes differences between neighbours"),
        _WHITE_NOISE,
    ),
    halo_for_params=lambda p: _ac.halo(p["block"], p["derivative"]),
    align=lambda p: p["block"],
    description=("Seed 000's answer 2, in Higgins and Jones's form: mean squared gradient over variance per "
                 "block, both less the noise's share, so brightness and noise cancel. Higher is sharper; a "
                 "relative score."),
    prepare=_prepare_white_noise,
    higher_is_sharper=True,
))

register(Estimator(
    name="difference",
    title="Image minus re-blurred image",
    func=_df.difference,
    units="relative",
    params=(
        Param("radius", 2.0, 0.5, 8.0, "px", "sigma of the re-blur"),
        Param("window", 16.0, 4.0, 64.0, "px", "half-width of the contrast window"),
        Param("iterations", 20, 0, 100, "", "Perona-Malik smoothing steps", kind=int),
        _WHITE_NOISE,
    ),
    halo_for_params=lambda p: _df.halo(p["radius"], p["window"], p["iterations"]),
    description=("Seed 000's answer 3: the detail a re-blur removes, over the local contrast, smoothed by "
                 "Perona-Malik diffusion. Higher is sharper; a relative score."),
    prepare=_prepare_white_noise,
    higher_is_sharper=True,
))

register(Estimator(
    name="reblur_curve",
    title="Re-blur error curve knee",
    func=_rb.reblur_curve,
    units="relative",
    params=(
        Param("tile", 64, 16, 256, "px", "tile side; tiles slide on a 4 px grid", kind=int),
        Param("radius_max", 20, 6, 40, "px", "largest re-blur radius of the curve (from 1 px)", kind=int),
        _WHITE_NOISE,
    ),
    halo_for_params=lambda p: _rb.halo(p["tile"], p["radius_max"]),
    align=_rb.STEP,
    description=("Seed 000's answer 4: per tile, the RMS error between the tile and its re-blurs of radius "
                 "1 .. 20 px; the knee where the best two-line fit's lines cross. Higher is blurrier, in px "
                 "of re-blur radius; a relative score (it also grows with the texture's own scale)."),
    prepare=_prepare_white_noise,
))

register(Estimator(
    name="learned",
    title="Learned regressor",
    func=_lr.learned,
    units="px",
    params=_NOISE_MODEL,
    halo_for_params=lambda p: _lr.halo(),
    align=_gr.BLOCK,
    description=("Seed 002 as a regression: a small fully convolutional network on the 4 px grid, fed "
                 "gain-free log ratios of gradient and Laplacian energies over re-blurs of 0 .. 4 px and "
                 "the noise's share, regresses log sigma and its variance (the confidence). Trained on "
                 "synthetic data apart from the benchmark (training/train_learned.py); numpy inference."),
    prepare=_prepare_noise,
))

DEFAULT = "gradient_ratio"


def estimators() -> dict[str, Estimator]:
    """Return the registry: estimator name to its record (a copy; register() adds new ones)."""
    return dict(_REGISTRY)


def get(method: str | None) -> Estimator:
    """Return the estimator called `method` (the default if None), or raise a clear ValueError."""
    name = DEFAULT if method is None else method
    if name not in _REGISTRY:
        raise ValueError(f"unknown method {name!r}; choose one of {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def get_blind(method: str | None) -> Estimator:
    """Return the estimator called `method` if it needs nothing but the image (as files on the command line), or raise."""
    est = get(method)
    if est.inputs:
        raise ValueError(f"method {est.name!r} needs {', '.join(est.inputs)} as well; use it from Python or napari")
    return est
