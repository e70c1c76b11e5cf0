"""Bad and unusual input, every method, numpy and dask: a clear error or the documented behaviour, never a changed input.

Each kind below is (name, make(), expected): make() returns (image, extra keyword arguments);
expected is "ok" (a float32 map of the image's shape, finite or NaN, never infinite) or
(exception type, words the message must hold).
"""

import warnings

import dask.array as da
import numpy as np
import pytest

from blurmap import blur, estimate, estimators, synthetic

SHAPE = (64, 80)
_SHARP = synthetic.dead_leaves(SHAPE, seed=21)
_IMAGE = blur(_SHARP, synthetic.ramp(SHAPE, 0.5, 2.5))


def _with(a, y=10, x=12, value=np.nan):
    a = np.array(a, dtype=np.float64 if np.asarray(a).dtype.kind != "f" else np.asarray(a).dtype)
    a[y, x] = value
    return a


IMAGES = [  # (name, image, expected)
    ("float32", _IMAGE, "ok"),
    ("float64", _IMAGE.astype(np.float64), "ok"),
    ("float16", _IMAGE.astype(np.float16), "ok"),
    ("uint8", (_IMAGE * 255).astype(np.uint8), "ok"),
    ("uint16", (_IMAGE * 65535).astype(np.uint16), "ok"),
    ("uint16 near the top", (_IMAGE * 1000 + 64000).astype(np.uint16), "ok"),
    ("int32 negative", ((_IMAGE - 0.5) * 1e5).astype(np.int32), "ok"),
    ("int64", (_IMAGE * 1e6).astype(np.int64), "ok"),
    ("bool", _IMAGE > 0.5, "ok"),
    ("big-endian", _IMAGE.astype(">f4"), "ok"),
    ("Fortran order", np.asfortranarray(_IMAGE), "ok"),
    ("strided view", np.repeat(_IMAGE, 2, axis=1)[:, ::2], "ok"),
    ("read-only", np.require(_IMAGE, requirements="C").copy(), "ok"),
    ("scaled 1e-30", _IMAGE * np.float32(1e-30), "ok"),
    ("scaled 1e30", _IMAGE * np.float32(1e30), "ok"),
    ("scaled 1e-40", _IMAGE * np.float32(1e-40), "ok"),  # float32 subnormals: normalised in float64
    ("float64 at 1e40", _IMAGE.astype(np.float64) * 1e40, "ok"),
    ("float64 offset 1e4", _IMAGE.astype(np.float64) + 1e4, "ok"),
    ("negative", _IMAGE - 7.0, "ok"),
    ("white noise", np.random.default_rng(1).random(SHAPE), "ok"),
    ("one bright pixel", _with(np.zeros(SHAPE), value=1.0), "ok"),
    ("one NaN pixel", _with(_IMAGE), "ok"),
    ("one +inf pixel", _with(_IMAGE, value=np.inf), "ok"),
    ("one -inf pixel", _with(_IMAGE, value=-np.inf), "ok"),
    ("NaN half", np.where(np.arange(SHAPE[0])[:, None] < 32, np.nan, _IMAGE), "ok"),
    ("smallest side 8", _IMAGE[:8, :8], "ok"),
    ("RGB uint8", np.stack([(_IMAGE * 255).astype(np.uint8)] * 3, axis=-1), "ok"),
    ("RGBA float", np.concatenate([np.stack([_IMAGE] * 3, -1), np.ones(SHAPE + (1,), np.float32)], -1), "ok"),
    ("masked array", np.ma.MaskedArray(_IMAGE, np.arange(_IMAGE.size).reshape(SHAPE) % 97 == 0), "ok"),
    ("np.matrix", np.asmatrix(_IMAGE), "ok"),
    ("nested lists", _IMAGE.tolist(), "ok"),
    ("constant", np.full(SHAPE, 3.0), (ValueError, "constant")),
    ("all NaN", np.full(SHAPE, np.nan), (ValueError, "no finite pixel")),
    ("all +inf", np.full(SHAPE, np.inf), (ValueError, "no finite pixel")),
    ("3-D stack", np.stack([_IMAGE] * 5), "ok"),
    ("1-D", _IMAGE[0], (ValueError, "2-D")),
    ("0-D", np.float32(3.0), (ValueError, "2-D")),
    ("empty", np.zeros((0, 0)), (ValueError, "at least")),
    ("4 rows", _IMAGE[:4], (ValueError, "at least")),
    ("two channels last", np.stack([_IMAGE] * 2, -1), (ValueError, "for colour channels, give channel_axis")),
    ("complex", _IMAGE.astype(np.complex64), (TypeError, "real numbers")),
    ("strings", np.array([["a"] * 10] * 10), (TypeError, "real numbers")),
    ("objects", np.array([[object()] * 10] * 10), (TypeError, "real numbers")),
    ("datetime", np.zeros(SHAPE, "datetime64[s]"), (TypeError, "real numbers")),
]

PARAMS = [  # (name, keyword arguments, expected); `P` stands for the method's first numeric parameter
    ("unknown parameter", {"sharpness": 3}, (TypeError, "no parameter 'sharpness'")),
    ("parameter as text", {"P": "wide"}, (TypeError, "must be a number")),
    ("parameter NaN", {"P": float("nan")}, (ValueError, "finite")),
    ("parameter inf", {"P": float("inf")}, (ValueError, "finite")),
    ("parameter True", {"P": True}, (TypeError, "must be a number")),
    ("parameter below range", {"P": "MIN-1"}, (ValueError, ">=")),
    ("parameter above range", {"P": "MAX+1"}, (ValueError, "<=")),
    ("parameter as list", {"P": [1.0]}, (TypeError, "must be a number")),
    ("method unknown", {"method": "sharpness"}, (ValueError, "unknown method")),
    ("method as list", {"method": ["log"]}, (TypeError, "estimator's name")),
    ("chunks as one int", {"chunks": 48}, "ok"),
    ("chunks negative", {"chunks": -4}, (ValueError, "chunks")),
    ("chunks of three", {"chunks": (32, 32, 1)}, (ValueError, "chunks")),
    ("chunks as floats", {"chunks": (32.5, 32.0)}, (ValueError, "chunks")),
    ("with confidence", {"return_confidence": True}, "ok"),
]
REFERENCE = [  # the reference method's own inputs
    ("no reference", {"reference": None}, (TypeError, "needs the image 'reference'")),
    ("reference of another shape", {"reference": _SHARP[:60]}, (ValueError, "must agree")),
    ("reference is the image", {"reference": _IMAGE, "same": True}, (ValueError, "as sharp as the reference")),
    ("unrelated reference", {"reference": np.random.default_rng(5).random(SHAPE)}, (ValueError, "does not match")),
    ("sigma_min above sigma_max", {"sigma_min": 5.0, "sigma_max": 3.0}, (ValueError, "must not exceed")),
    ("gain 0", {"gain": 0.0, "offset": 0.0}, (ValueError, "gain 0")),
    ("offset of 1e30", {"gain": 1.0, "offset": 1e30}, (ValueError, "offset")),
    ("offset without gain", {"offset": 0.1}, (ValueError, "give gain")),
    ("reference with NaN", {"reference": _with(_SHARP)}, "ok"),
    ("reference as np.matrix", {"reference": np.asmatrix(_SHARP)}, "ok"),
]
NOT_THE_FIELD = {  # image kinds that are no blurred copy of the reference the reference method is given
    "white noise": (ValueError, "does not match"),
    "one bright pixel": (ValueError, "does not match"),
    "smallest side 8": (ValueError, "must agree"),
}
KINDS = ([("image", *k) for k in IMAGES] + [("params", *k) for k in PARAMS]
         + [("reference", *k) for k in REFERENCE])
assert len(KINDS) >= 60


def _first_numeric(est):
    """Return the parameter the "P" cases try: the first with a lower bound (and an upper one, if any has)."""
    bounded = [p for p in est.params if p.minimum is not None]
    return next((p for p in bounded if p.maximum is not None), bounded[0])


def _call(method, family, payload, lazy):
    """Return (image, kwargs) for one case; payload is the kind's image or keyword arguments."""
    est = estimators()[method]
    image, kwargs = (_IMAGE, {}) if family != "image" else (payload, {})
    if family in ("params", "reference"):
        kwargs = dict(payload)
        if "P" in kwargs:
            p = _first_numeric(est)
            value = kwargs.pop("P")
            value = {"MIN-1": p.minimum - 1, "MAX+1": (p.maximum or 1e9) + 1}.get(value, value) \
                if isinstance(value, str) else value
            kwargs[p.name] = value
    if "reference" in est.inputs:
        if family == "reference":
            if kwargs.pop("same", False):
                image = _IMAGE
            kwargs.setdefault("reference", _SHARP)
            if kwargs["reference"] is None:
                del kwargs["reference"]
        else:
            kwargs["reference"] = _SHARP
    if lazy:
        if isinstance(image, np.ndarray) and type(image) is np.ndarray and image.ndim >= 2 and image.size:
            image = da.from_array(image, chunks=tuple(max(8, n // 2) for n in image.shape[:2]) + image.shape[2:])
        if isinstance(kwargs.get("reference"), np.ndarray) and type(kwargs["reference"]) is np.ndarray:
            kwargs["reference"] = da.from_array(kwargs["reference"], chunks=32)
    return image, kwargs


@pytest.mark.parametrize("lazy", [False, True], ids=["numpy", "dask"])
@pytest.mark.parametrize("method", list(estimators()))
@pytest.mark.parametrize("family, name, payload, expected", KINDS, ids=[k[1] for k in KINDS])
def test_bad_or_unusual_input(family, name, payload, expected, method, lazy):
    est = estimators()[method]
    if family == "reference" and "reference" not in est.inputs:
        pytest.skip("the reference method's own inputs")
    if family == "params" and name == "parameter above range" and _first_numeric(est).maximum is None:
        pytest.skip(f"{method}'s parameters have no upper bound")
    if "reference" in est.inputs and family == "image" and expected == "ok" and name in NOT_THE_FIELD:
        expected = NOT_THE_FIELD[name]  # the reference method is given a sharp image of another field
    if "reference" in est.inputs and name == "3-D stack":
        expected = (ValueError, "must agree")  # one 2-D reference for a stack of five
    image, kwargs = _call(method, family, payload, lazy)
    method_arg = kwargs.pop("method", method)
    snapshot = np.array(image, copy=True) if isinstance(image, np.ndarray) else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # RGB's conversion notice
        warnings.simplefilter("error", RuntimeWarning)  # numpy's overflow and invalid-value notices: none reach a user
        if expected == "ok":
            out = estimate(image, method_arg, **kwargs)
            sigma = out[0] if isinstance(out, tuple) else out
            sigma = np.asarray(sigma.compute() if hasattr(sigma, "compute") else sigma)
            given = np.shape(np.asarray(payload if family == "image" else _IMAGE))
            colour = len(given) == 3 and given[-1] in (3, 4)
            assert sigma.dtype == np.float32 and sigma.shape == (given[:2] if colour else given)
            assert not np.isinf(sigma).any()
            if name.startswith("one ") and "pixel" in name and "bright" not in name:
                assert np.isnan(sigma[10, 12])  # an unknown pixel is unknown
        else:
            error, words = expected
            with pytest.raises(error) as caught:
                out = estimate(image, method_arg, **kwargs)
                if hasattr(out, "compute"):
                    out.compute()
            assert words in str(caught.value), str(caught.value)
    if snapshot is not None:  # the input is never modified
        np.testing.assert_array_equal(np.asarray(image), snapshot)
