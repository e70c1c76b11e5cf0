"""Scenes for the stress benchmark: sharp specimens, sigma fields and degradations drawn at random.

Every scene is drawn from its seed alone (``scene(regime, seed)``), so a figure can be reproduced
and the development and evaluation seed ranges never meet:

- DEV_SEEDS: for choosing designs, fitting, tuning and looking at failures;
- EVAL_SEEDS: for the figures that are reported, and nothing else.

Sources are kept apart from every other data set of the project: dead leaves here use radius laws
other than the suite's r**-3 and seeds far from every other range (the suite's 2000-2001, the
calibration's 100-103, the learned estimator's training from 10000); the photographs are
scikit-image's motorcycle_left, motorcycle_right, microaneurysms and page (read from its wheel), none of which the
suite, the calibration or the learned estimator's training uses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from blurmap import blur, synthetic

DEV_SEEDS = range(0, 100_000)
EVAL_SEEDS = range(5_000_000, 5_100_000)
SIZE = 384  # px a side
SIGMA_LOW, SIGMA_HIGH = 0.3, 8.0  # px: the range a scene's sigma field is drawn in
PHOTOS = ("motorcycle_left.png", "motorcycle_right.png", "microaneurysms.png", "page.png")  # in scikit-image's wheel


@dataclass(frozen=True)
class Scene:
    """One drawn scene: the degraded image, its true sigma map (px), the sharp specimen, and how it was made."""

    image: np.ndarray
    truth: np.ndarray
    sharp: np.ndarray
    recipe: str


# ---------------------------------------------------------------- sharp specimens, in [0, 1]

def dead_leaves_law(rng: np.random.Generator, shape: tuple[int, int]) -> tuple[np.ndarray, str]:
    """Dead leaves with radii ~ r**-a, a in [2.2, 3.8], between rmin in [0.6, 2] and rmax in [side/12, side/3] px."""
    a = rng.uniform(2.2, 3.8)
    rmin, rmax = rng.uniform(0.6, 2.0), rng.uniform(shape[0] / 12, shape[0] / 3)
    return synthetic.dead_leaves(shape, rng, rmin, rmax, exponent=a), f"dead leaves r^-{a:.1f}"


def power_law_noise(rng: np.random.Generator, shape: tuple[int, int]) -> tuple[np.ndarray, str]:
    """Gaussian noise with an isotropic 1/f**b amplitude spectrum, b in [1, 2]."""
    b = rng.uniform(1.0, 2.0)
    fy, fx = np.meshgrid(np.fft.fftfreq(shape[0]), np.fft.rfftfreq(shape[1]), indexing="ij")
    f = np.hypot(fy, fx)
    f[0, 0] = 1.0
    spectrum = (rng.normal(size=f.shape) + 1j * rng.normal(size=f.shape)) / f**b
    spectrum[0, 0] = 0
    return _unit(np.fft.irfft2(spectrum, shape)), f"power-law noise 1/f^{b:.1f}"


def cells(rng: np.random.Generator, shape: tuple[int, int]) -> tuple[np.ndarray, str]:
    """Voronoi cells (grains, tiles) of their own grey, with fine grain and dark or bright boundaries."""
    n = int(rng.integers(30, 300))
    pts = rng.uniform(0, 1, (n, 2)) * shape
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    from scipy.spatial import cKDTree
    dist, idx = cKDTree(pts).query(np.stack([yy.ravel(), xx.ravel()], 1), k=2)
    grey = rng.random(n)[idx[:, 0]].reshape(shape)
    edge = (dist[:, 1] - dist[:, 0]).reshape(shape) < rng.uniform(0.8, 2.5)
    grain = rng.normal(0, rng.uniform(0.02, 0.1), shape)
    return _unit(grey + grain + np.where(edge, rng.choice([-0.6, 0.6]), 0.0)), "cells"


def fibres(rng: np.random.Generator, shape: tuple[int, int]) -> tuple[np.ndarray, str]:
    """Thin straight strokes (fibres, scratches) of random length and width over a mottled background."""
    img = ndi.gaussian_filter(rng.random(shape), 6) * 0.3
    for _ in range(int(rng.integers(60, 200))):
        y, x = rng.uniform(0, shape[0]), rng.uniform(0, shape[1])
        t = rng.uniform(0, np.pi)
        length = rng.uniform(10, shape[0] / 2)
        s = np.linspace(-length / 2, length / 2, int(length * 2))
        ys, xs = (y + s * np.sin(t)).astype(int), (x + s * np.cos(t)).astype(int)
        keep = (ys >= 0) & (ys < shape[0]) & (xs >= 0) & (xs < shape[1])
        img[ys[keep], xs[keep]] = rng.uniform(0.5, 1.0)
    return _unit(img), "fibres"


def photo_tile(rng: np.random.Generator, shape: tuple[int, int]) -> tuple[np.ndarray, str]:
    """A random crop of one of PHOTOS, grey, averaged 2 x 2 (which halves its own optical blur) where large enough."""
    from pathlib import Path

    import skimage
    import skimage.io

    name = PHOTOS[int(rng.integers(len(PHOTOS)))]
    photo = np.asarray(skimage.io.imread(Path(skimage.__file__).parent / "data" / name), np.float32)
    if photo.ndim == 3:
        photo = photo[..., :3] @ np.array([0.2126, 0.7152, 0.0722], np.float32)
    if min(photo.shape) >= 2 * shape[0]:
        h, w = (n // 2 * 2 for n in photo.shape)
        photo = photo[:h, :w].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
    if min(photo.shape) < shape[0]:  # mirrored out to the scene's size
        photo = np.pad(photo, [(0, max(0, s - n)) for s, n in zip(shape, photo.shape)], mode="symmetric")
    y = int(rng.integers(0, photo.shape[0] - shape[0] + 1))
    x = int(rng.integers(0, photo.shape[1] - shape[1] + 1))
    return _unit(photo[y:y + shape[0], x:x + shape[1]]), f"photo {name.removesuffix('.png')}"


TEXTURES: dict[str, Callable] = {"dead_leaves": dead_leaves_law, "power_law": power_law_noise, "cells": cells,
                                 "fibres": fibres, "photo": photo_tile}


def _unit(a: np.ndarray) -> np.ndarray:
    """Return `a` scaled to [0, 1] between its 0.5th and 99.5th percentiles (clipped), float32."""
    lo, hi = np.percentile(a, [0.5, 99.5])
    return np.clip((a - lo) / max(hi - lo, 1e-12), 0, 1).astype(np.float32)


# ---------------------------------------------------------------- sigma fields, px

def _range(rng: np.random.Generator, high: float | None = None) -> tuple[float, float]:
    low = rng.uniform(SIGMA_LOW, 1.2)
    return low, high if high is not None else rng.uniform(max(2.0, low + 1.0), SIGMA_HIGH)


def _coords(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float64)
    return yy - (shape[0] - 1) / 2, xx - (shape[1] - 1) / 2


def tilted_plane(rng, shape, high=None):
    """A tilted flat specimen at any angle: sqrt(floor**2 + (g d)**2), the focal line anywhere within the middle half."""
    low, high = _range(rng, high)
    yy, xx = _coords(shape)
    a = rng.uniform(0, np.pi)
    d = yy * np.cos(a) - xx * np.sin(a) - rng.uniform(-0.25, 0.25) * shape[0]
    g = np.sqrt(max(high**2 - low**2, 0.0)) / np.abs(d).max()
    return np.sqrt(low**2 + (g * d) ** 2), f"tilted plane {np.rad2deg(a):.0f} deg"


def step(rng, shape, high=None):
    """Two levels of blur on either side of a straight line at any angle through the middle half."""
    low, high = _range(rng, high)
    yy, xx = _coords(shape)
    a = rng.uniform(0, np.pi)
    d = yy * np.cos(a) - xx * np.sin(a) - rng.uniform(-0.25, 0.25) * shape[0]
    return np.where(d < 0, low, high), "step"


def radial(rng, shape, high=None):
    """Sharp at a point, blur growing with the distance from it (a field curvature, a tilted lens)."""
    low, high = _range(rng, high)
    yy, xx = _coords(shape)
    cy, cx = rng.uniform(-0.3, 0.3, 2) * shape
    r = np.hypot(yy - cy, xx - cx)
    p = rng.uniform(1.0, 2.0)
    return low + (high - low) * (r / r.max()) ** p, f"radial ^{p:.1f}"


def sine(rng, shape, high=None):
    """A sine of blur at any angle, 0.5 to 2 periods across the image."""
    low, high = _range(rng, high)
    yy, xx = _coords(shape)
    a = rng.uniform(0, np.pi)
    periods = rng.uniform(0.5, 2.0)
    d = (yy * np.cos(a) - xx * np.sin(a)) / shape[0]
    return low + (high - low) * 0.5 * (1 - np.cos(2 * np.pi * periods * d + rng.uniform(0, 2 * np.pi))), "sine"


def smooth_field(rng, shape, high=None):
    """A random smooth field: white noise low-passed by 30 to 90 px, stretched to [low, high]."""
    low, high = _range(rng, high)
    f = ndi.gaussian_filter(rng.normal(size=shape), rng.uniform(30, 90), mode="reflect")
    f = (f - f.min()) / max(np.ptp(f), 1e-12)
    return low + (high - low) * f, "smooth field"


PROFILES: dict[str, Callable] = {"tilted_plane": tilted_plane, "step": step, "radial": radial, "sine": sine,
                                 "smooth": smooth_field}


# ---------------------------------------------------------------- degradations

def brightness_ramp(rng, clean, ratio_range=(1.0, 100.0)):
    """Multiply by a gain rising log-linearly by a factor in `ratio_range` across the image, in any direction."""
    ratio = float(np.exp(rng.uniform(*np.log(ratio_range))))
    yy, xx = _coords(clean.shape)
    a = rng.uniform(0, 2 * np.pi)
    d = yy * np.cos(a) + xx * np.sin(a)
    d = (d - d.min()) / max(np.ptp(d), 1e-12)
    gain = (ratio**d).astype(np.float32)
    return clean * gain, gain, f"ramp x{ratio:.0f}"


def shot_noise(rng, clean, counts_range=(10.0, 1000.0)):
    """Poisson noise: `counts` (drawn log-uniformly) electrons at the brightest pixel; returned in counts."""
    counts = float(np.exp(rng.uniform(*np.log(counts_range))))
    scale = counts / max(float(clean.max()), 1e-12)
    return rng.poisson(np.clip(clean, 0, None) * scale).astype(np.float32), f"{counts:.0f} counts"


def detector(rng, counts):
    """A detector offset (100-2000 counts) and Gaussian read noise (0.5-3 counts)."""
    offset, read = rng.uniform(100, 2000), rng.uniform(0.5, 3.0)
    return counts + offset + rng.normal(0, read, counts.shape), f"offset {offset:.0f}, read {read:.1f}"


def scan_lines(rng, image):
    """Line-to-line scan noise: each row shifted by its own offset (std 0.5-3% of the image's std)."""
    s = rng.uniform(0.005, 0.03) * float(np.std(image))
    return image + rng.normal(0, s, (image.shape[0], 1)), "scan lines"


def edge_brightening(rng, sharp):
    """Topographic contrast: edges of the specimen brighter by up to 0.5-1.5 of its range (before blur)."""
    k = rng.uniform(0.5, 1.5)
    edges = ndi.gaussian_gradient_magnitude(sharp, 0.7)
    return sharp + k * edges / max(float(edges.max()), 1e-12), "bright edges"


def quantise8(image):
    """Scale to [0, 255] and round to whole numbers (an 8-bit image), float32."""
    lo, hi = float(image.min()), float(image.max())
    return np.round((image - lo) / max(hi - lo, 1e-12) * 255).astype(np.float32), "8-bit"


def jpeg(image, quality=75):
    """Encode as an 8-bit JPEG at `quality` and decode it again."""
    import io

    from PIL import Image

    q, _ = quantise8(image)
    buf = io.BytesIO()
    Image.fromarray(q.astype(np.uint8)).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(buf), np.float32), f"JPEG q{quality}"


# ---------------------------------------------------------------- regimes

def _texture(rng, kinds=None):
    kinds = kinds or ("dead_leaves", "dead_leaves", "power_law", "cells", "fibres", "photo")
    return TEXTURES[kinds[int(rng.integers(len(kinds)))]](rng, (SIZE, SIZE))


def _profile(rng, kinds=None, high=None):
    kinds = kinds or tuple(PROFILES)
    return PROFILES[kinds[int(rng.integers(len(kinds)))]](rng, (SIZE, SIZE), high)


def _sem(rng, sharp, truth, counts=(10.0, 1000.0), ratio=(1.0, 100.0), extras=True):
    """The SEM chain: edge brightening, blur, brightness ramp, shot noise, detector, scan lines.

    Returns (image in counts, the sharp reference under the same brightness ramp, notes).
    """
    notes = []
    if extras and rng.random() < 0.5:
        sharp, n = edge_brightening(rng, sharp)
        notes.append(n)
    specimen = 0.1 + 0.9 * sharp
    clean, gain, n = brightness_ramp(rng, blur(specimen, truth), ratio)
    notes.append(n)
    image, n = shot_noise(rng, clean, counts)
    notes.append(n)
    if extras:
        image, n = detector(rng, image)
        notes.append(n)
        if rng.random() < 0.5:
            image, n = scan_lines(rng, image)
            notes.append(n)
    return image.astype(np.float32), specimen * gain, notes


def _photographic(rng, sharp, truth, kind):
    clean = blur(sharp, truth)
    if kind == "float":
        return clean.astype(np.float32), ["noise-free float"]
    if kind == "uint8":
        image, n = quantise8(clean)
        return image, [n]
    image, n = jpeg(clean)
    return image, [n]


def _make(rng: np.random.Generator, texture_kinds=None, profile_kinds=None, high=None, finish="sem",
          **sem) -> Scene:
    sharp, tname = _texture(rng, texture_kinds)
    if high == "large":
        high = rng.uniform(4.0, SIGMA_HIGH)
    truth, pname = _profile(rng, profile_kinds, high)
    truth = truth.astype(np.float32)
    if finish == "sem":
        image, sharp, notes = _sem(rng, sharp, truth, **sem)
    else:
        image, notes = _photographic(rng, sharp, truth, finish)
    return Scene(image, truth, sharp.astype(np.float32), "; ".join([tname, pname, *notes]))


_MODERATE = {"counts": (200, 1000), "ratio": (1, 4), "extras": False}  # SEM conditions of the texture/profile rows
REGIMES: dict[str, dict] = {
    # textures, under moderate SEM conditions
    "dead leaves": {"texture_kinds": ("dead_leaves",), **_MODERATE},
    "procedural": {"texture_kinds": ("power_law", "cells", "fibres"), **_MODERATE},
    "photographs": {"texture_kinds": ("photo",), **_MODERATE},
    # blur profiles
    "tilted plane": {"profile_kinds": ("tilted_plane",), **_MODERATE},
    "step and radial": {"profile_kinds": ("step", "radial"), **_MODERATE},
    "large blur (4-8 px)": {"high": "large", **_MODERATE},
    # SEM degradations
    "SEM low counts (10-100)": {"counts": (10, 100), "ratio": (1, 10)},
    "SEM gain ramp (10-100x)": {"counts": (100, 1000), "ratio": (10, 100)},
    "SEM detector, scan lines, edges": {"counts": (100, 1000), "ratio": (1, 10)},
    # photographic
    "noise-free float": {"finish": "float"},
    "8-bit": {"finish": "uint8"},
    "JPEG q75": {"finish": "jpeg"},
}
TEXTURED = tuple(REGIMES)  # every regime's specimens are textured throughout


def scene(regime: str, seed: int) -> Scene:
    """Return the scene `seed` of `regime`: the same pair always gives the same scene, and regimes share none."""
    import zlib

    return _make(np.random.default_rng([zlib.crc32(regime.encode()), seed]), **REGIMES[regime])
