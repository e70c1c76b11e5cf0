"""Block acutance (seed 000, answer 2): mean gradient magnitude per block, made comparable across brightness."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from ._grid import expand_cells
from .noise import impulse_response


def _block_view(a: np.ndarray, block: int) -> np.ndarray:
    """Return `a`, mirrored up to whole blocks, as (rows of blocks, block, columns of blocks, block)."""
    h, w = a.shape
    a = np.pad(a, ((0, (-h) % block), (0, (-w) % block)), mode="symmetric")
    return a.reshape(a.shape[0] // block, block, a.shape[1] // block, block)


def halo(block: int = 32, derivative: float = 0.0) -> int:
    """Return the context (px, whole blocks) each side of a tile: the derivative filter's reach."""
    reach = int(4.0 * derivative + 0.5) + 1
    return block * -(-reach // block)


def gradient_energy(img: np.ndarray, derivative: float = 0.0) -> np.ndarray:
    """Return the squared gradient magnitude (image units**2 per px**2).

    derivative 0: differences between neighbours (forward, the last row and column repeated);
    otherwise Gaussian derivatives of `derivative` px.
    """
    if derivative == 0:
        gy = np.diff(img, axis=0, append=img[-1:])
        gx = np.diff(img, axis=1, append=img[:, -1:])
        return gy * gy + gx * gx
    grad = ndi.gaussian_gradient_magnitude(img, derivative, mode="reflect")
    return grad * grad


def noise_gain(derivative: float = 0.0) -> float:
    """Return the mean gradient energy (per unit noise variance) that white noise adds."""
    reach = int(4.0 * derivative + 0.5) + 2
    noise_var = 0.0
    for axis in (0, 1):  # each component's gain is the sum of its squared kernel
        kernel = impulse_response(lambda d: np.diff(d, axis=axis) if derivative == 0
                                  else ndi.gaussian_filter1d(d, derivative, axis=axis, order=1, mode="constant"), reach)
        noise_var += float((kernel * kernel).sum())
    return noise_var


def acutance(image: np.ndarray, *, block: int = 32, derivative: float = 0.0,
             noise: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Return (acutance per block, 1/px**2, higher is sharper; confidence in [0, 1]) shown as blocks.

    Acutance, as Higgins and Jones defined it, is the mean squared gradient over the contrast:
    here the block's mean squared gradient magnitude (differences between neighbours, or
    Gaussian derivatives of `derivative` px) over the block's variance, both less what white
    noise of std `noise` adds, so that gain, offset and noise cancel: a bright block is not sharper
    for being bright. (The mean gradient magnitude of seed 000's answer barely sees an edge's
    blur: blurring keeps its total variation.) Blocks lie on a grid from the image's top-left
    corner (the engine keeps chunks on it). Confidence is contrast**2 / (contrast**2 + noise**2).
    """
    img = np.asarray(image, dtype=np.float64)
    mean_energy = _block_view(gradient_energy(img, derivative), block).mean(axis=(1, 3))
    mean_energy = np.maximum(mean_energy - noise_gain(derivative) * noise**2, 0.0)
    variance = np.maximum(_block_view(img, block).var(axis=(1, 3)) - noise**2, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        score = np.where(variance > 0, mean_energy / variance, np.nan)
    conf = variance / (variance + noise**2 + 1e-300)
    return expand_cells(score, block, img.shape), expand_cells(conf, block, img.shape)
