"""The benchmark suite: sharp sources and sigma profiles, kept apart from calibration and training."""

from __future__ import annotations

import numpy as np
import skimage.data

from blurmap import blur, synthetic

SIZE = 256  # px a side
LOW, HIGH = 0.3, 3.0  # px, seed 002's range


def sources() -> dict[str, np.ndarray]:
    """Return the sharp images: dead leaves (seeds 2000, 2001) and scikit-image's brick, grass, gravel.

    The photographs carry an optical blur of their own of about 1 px at full size, which would
    count against any estimator as error at small sigma; averaging 2 x 2 pixels halves it.
    """
    out = {"dead_leaves_a": synthetic.dead_leaves((SIZE, SIZE), seed=2000),
           "dead_leaves_b": synthetic.dead_leaves((SIZE, SIZE), seed=2001)}
    for name in ("brick", "grass", "gravel"):
        photo = getattr(skimage.data, name)().astype(np.float32) / 255.0
        h, w = photo.shape
        out[name] = photo.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))[:SIZE, :SIZE]
    return out


def profiles() -> dict[str, np.ndarray]:
    """Return seed 002's sigma profiles over 0.3 .. 3.0 px: a ramp and one period of a sine."""
    shape = (SIZE, SIZE)
    return {"ramp": synthetic.ramp(shape, LOW, HIGH), "sine": synthetic.sine(shape, LOW, HIGH, periods=1)}


def cases(noise: float = 0.0, seed: int = 0):
    """Yield (source name, profile name, blurred image, true sigma map) for the whole suite."""
    rng = np.random.default_rng(seed)
    for pname, truth in profiles().items():
        for sname, sharp in sources().items():
            image = blur(sharp, truth)
            if noise:
                image = image + rng.normal(0, noise * np.std(image), image.shape).astype(np.float32)
            yield sname, pname, image, truth
