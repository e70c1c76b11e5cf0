"""Reference-based blur recovery: the sigma map that, through ``blur``, turns a sharp image into a blurred one.

Seed 001 mixed a minimum and a maximum blur with fitted weights, a rough stand-in for the blurs in
between. Here the model is the project's forward model itself: a ladder of uniform blurs of the
reference (0, 0.2 px, then steps of 20%), interpolated per pixel linearly in sigma squared. Within
one ladder interval the model is linear in the interpolation weight u, so the least-squares fit
of a window that shares one sigma is a quadratic in u with a closed-form minimiser; scanning the
intervals gives the exact local optimum. A smoothness prior (weight `smoothness`) then joins the
local fits: the data term's curvature at each optimum weights a screened-Poisson problem solved
by conjugate gradients (Gauss-Newton with analytic Jacobians). Bounds hold throughout.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from .forward import blur, ladder
from .gradient_ratio import BLOCK, _block_mean, _box2, _box_size, _upsample

MIN_CORRELATION = 0.5  # below this, the reference does not show the same field
MAX_SHIFT = 16.0  # px; the largest registration shift accepted
CROP = 512  # px; side of the central crop used to register and fit gain and offset
ADAPT_TOLERANCE = 5.0  # a centred window this much worse than a neighbour is straddling a change
CASCADE_FROM = 1.5  # px; ladder levels above this are blurred from the level below
SMOOTH_REACH = 8  # blocks; Jacobi sweeps of the smoothness prior, so also its reach


def _shifted(reference: np.ndarray, shift: tuple[float, float]) -> np.ndarray:
    """Return `reference` moved by `shift` (px, rows then columns), cubic spline, borders mirrored."""
    if shift[0] == 0 and shift[1] == 0:
        return reference
    return ndi.shift(reference, shift, order=3, mode="mirror")


def register(reference: np.ndarray, image: np.ndarray) -> tuple[tuple[float, float], float]:
    """Return (shift in px that aligns `reference` to `image`, correlation of the aligned pair).

    Phase correlation to 1/20 px; a Gaussian blur has no phase, so the blurred image registers
    against the sharp one. The correlation is that of the two images low-passed by 4 px after
    alignment: near 1 for the same field, near 0 for unrelated images.
    """
    from skimage.registration import phase_cross_correlation

    shift, _, _ = phase_cross_correlation(image, reference, upsample_factor=20, normalization=None)
    shift = (float(shift[0]), float(shift[1]))
    a = ndi.gaussian_filter(_shifted(reference, shift).astype(np.float64), 4.0)
    b = ndi.gaussian_filter(image.astype(np.float64), 4.0)
    a, b = a - a.mean(), b - b.mean()
    corr = float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum() + 1e-300))
    return shift, corr


def gain_offset(reference: np.ndarray, image: np.ndarray, scale: float = 16.0) -> tuple[float, float]:
    """Return (gain, offset) with image ~ gain * reference + offset, fitted where blur cannot reach.

    Both images are low-passed by `scale` px, far beyond any blur fitted, so the fit does not
    depend on the blur it is a step towards.
    """
    a = ndi.gaussian_filter(reference.astype(np.float64), scale).ravel()
    b = ndi.gaussian_filter(image.astype(np.float64), scale).ravel()
    gain, offset = np.polyfit(a, b, 1)
    return float(gain), float(offset)


def _ladder_levels(reference: np.ndarray, levels: np.ndarray):
    """Yield the reference blurred to each level (px) after the first, in order.

    Small levels are blurred directly, as ``blur`` does; above CASCADE_FROM px each level is the
    previous one blurred by the difference (variances add), which costs far less and differs
    from a direct blur by under 0.05% of the image range (tests/test_reference.py).
    """
    previous = reference
    for k in range(1, len(levels)):
        if levels[k] <= CASCADE_FROM:
            level = ndi.gaussian_filter(reference, levels[k], mode="reflect", truncate=4.0)
        else:
            step = np.sqrt(levels[k] ** 2 - levels[k - 1] ** 2)
            level = ndi.gaussian_filter(previous, step, mode="reflect", truncate=4.0)
        yield level
        previous = level


def refine(reference: np.ndarray, image: np.ndarray, shift: tuple[float, float], gain: float, offset: float,
           rounds: int = 12, **fit_params) -> tuple[tuple[float, float], float, float]:
    """Return (shift px, gain, offset) refined against the fitted model image, until they settle.

    Phase correlation of the sharp reference against the blurred image is slightly biased where
    the blur varies, and a low-pass regression is only approximate. The model image
    B = blur(shifted reference, fitted sigma) carries the image's own blur; linearising
    image ~ gain * (B - dy dB/dy - dx dB/dx) + offset makes shift, gain and offset one linear
    least-squares problem (a Gauss-Newton, Lucas-Kanade step), solved each round. Gain and blur
    partly trade for each other, so it takes several rounds: it stops when the shift moves by
    under 1e-3 px and the gain by under 1e-4 of itself, or after `rounds`.
    """
    target = image.astype(np.float64).ravel()
    for _ in range(rounds):
        ref = _shifted(reference, shift)
        sigma, cost = _fit_and_cost(image, ref, gain, offset, **fit_params)
        known = np.isfinite(sigma)
        if not known.any():
            raise ValueError("the reference and the image hold no texture in common: blur cannot be fitted")
        model = blur(ref, np.where(known, sigma, np.nanmedian(sigma))).astype(np.float64)
        dy_model = np.gradient(model, axis=0)
        dx_model = np.gradient(model, axis=1)
        design = np.stack([model.ravel(), -dy_model.ravel(), -dx_model.ravel(), np.ones(model.size)], axis=1)
        # where no single sigma explains a window (a change of blur), the model is wrong: discount it
        weight = np.sqrt(known.ravel() / (cost.ravel() + np.median(cost) + 1e-30))
        (g, g_dy, g_dx, o), *_ = np.linalg.lstsq(design * weight[:, None], target * weight, rcond=None)
        if not np.isfinite(g) or g == 0:
            break
        # ndi.shift moves content by +shift, so a residual displacement d adds d to the shift
        step = (g_dy / g, g_dx / g)
        settled = max(abs(step[0]), abs(step[1])) < 1e-3 and abs(g / gain - 1) < 1e-4
        shift = (shift[0] + step[0], shift[1] + step[1])
        gain, offset = float(g), float(o)
        if settled:
            break
    return (float(shift[0]), float(shift[1])), gain, offset


def _local_fit(image, reference, gain, offset, sigma_min, sigma_max, size):
    """Return (t = sigma**2, curvature, cost) per 4 x 4 block: the best window fit over the ladder."""
    levels = ladder(sigma_max)  # the forward model's own ladder: the fit inverts blur() exactly
    t_levels = levels**2
    best_cost = best_t = curvature = None
    below = reference
    target = image - np.float32(offset)
    gain = np.float32(gain)
    for k, above in enumerate(_ladder_levels(reference, levels), start=1):
        lo, hi = t_levels[k - 1], t_levels[k]
        if hi < sigma_min**2:
            below = above
            continue
        a = gain * below - target  # residual at u = 0
        b = gain * (above - below)  # change of the model from u = 0 to u = 1
        saa = _box2(_block_mean(a * a, np.float32), size).astype(np.float64)
        sab = _box2(_block_mean(a * b, np.float32), size).astype(np.float64)
        sbb = _box2(_block_mean(b * b, np.float32), size).astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            u = np.where(sbb > 0, -sab / sbb, 0.0)
        u_min = max(0.0, (sigma_min**2 - lo) / (hi - lo))
        u = np.clip(u, u_min, 1.0)
        cost = saa + 2 * u * sab + u * u * sbb
        t = lo + u * (hi - lo)
        curv = sbb / (hi - lo) ** 2  # d2 cost / dt2, up to a factor 2
        if best_cost is None:
            best_cost, best_t, curvature = cost, t, curv
        else:
            better = cost < best_cost
            best_cost = np.where(better, cost, best_cost)
            best_t = np.where(better, t, best_t)
            curvature = np.where(better, curv, curvature)
        below = above
    return best_t, curvature, best_cost


def _adaptive_windows(t: np.ndarray, curvature: np.ndarray, cost: np.ndarray, reach: int,
                      tolerance: float = ADAPT_TOLERANCE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (t, curvature, cost) where each block takes the best-fitting window that contains it.

    A window straddling a change of blur fits neither side; one wholly on a side fits down to the
    noise. Where the centred window's cost exceeds `tolerance` times the least cost among the
    windows within `reach` blocks, the block takes that window's fit (Kuwahara's idea, on the fit
    residual). On smooth blur the costs agree within the tolerance and nothing moves.
    """
    h, w = cost.shape
    pad = ((reach, reach), (reach, reach))
    cost_p = np.pad(cost, pad, mode="edge")
    t_p = np.pad(t, pad, mode="edge")
    curv_p = np.pad(curvature, pad, mode="edge")
    best_cost, best_t, best_curv = cost.copy(), t.copy(), curvature.copy()
    for dy in range(-reach, reach + 1):
        for dx in range(-reach, reach + 1):
            window = (slice(reach + dy, reach + dy + h), slice(reach + dx, reach + dx + w))
            lower = cost_p[window] < best_cost
            best_cost = np.where(lower, cost_p[window], best_cost)
            best_t = np.where(lower, t_p[window], best_t)
            best_curv = np.where(lower, curv_p[window], best_curv)
    move = cost > tolerance * best_cost
    return (np.where(move, best_t, t), np.where(move, best_curv, curvature), np.where(move, best_cost, cost))


def _smooth(sigma: np.ndarray, weight: np.ndarray, smoothness: float, sweeps: int) -> np.ndarray:
    """Return sigma after `sweeps` Jacobi sweeps of: minimise sum weight (s - sigma)**2 + smoothness |grad s|**2.

    A fixed number of sweeps of a 4-neighbour stencil reaches `sweeps` blocks and no further, so
    the prior is the same whether the image is fitted whole or chunk by chunk. NaN blocks
    (unknown) neither move nor pull their neighbours.
    """
    if smoothness <= 0:
        return sigma
    known = np.isfinite(sigma)
    data = np.where(known, weight * np.nan_to_num(sigma), 0.0)
    w = np.where(known, weight, 0.0)
    s = np.nan_to_num(sigma)
    for _ in range(sweeps):
        padded = np.pad(s, 1, mode="edge")
        padded_known = np.pad(known, 1, mode="edge").astype(np.float64)
        total = np.zeros_like(s)
        count = np.zeros_like(s)
        for sl in ((slice(0, -2), slice(1, -1)), (slice(2, None), slice(1, -1)),
                   (slice(1, -1), slice(0, -2)), (slice(1, -1), slice(2, None))):
            total += padded[sl] * padded_known[sl]
            count += padded_known[sl]
        s = np.where(known, (data + smoothness * total) / (w + smoothness * count + 1e-300), s)
    return np.where(known, s, np.nan)


def halo(window: float = 8.0, sigma_max: float = 6.0, smoothness: float = 1.0, fill: float = 32.0) -> int:
    """Return the context (px, a multiple of 4) each side of a tile that the fit depends on."""
    size = _box_size(window)
    full_res = int(4.0 * sigma_max + 0.5) + int(MAX_SHIFT) + 4  # blur ladder, shift, spline
    coarse = -(-full_res // BLOCK) + 2 * (size // 2) + 2 * (size // 2) + 1  # pooling, adaptive reach, interp
    coarse += 2 * (_box_size(fill) // 2)
    if smoothness > 0:
        coarse += SMOOTH_REACH
    return BLOCK * (coarse + 1)


def reference_fit(image: np.ndarray, *, reference: np.ndarray, window: float = 8.0, smoothness: float = 1.0,
                  fill: float = 32.0, sigma_min: float = 0.0, sigma_max: float = 6.0, gain: float = 1.0,
                  offset: float = 0.0, shift_y: float = 0.0, shift_x: float = 0.0,
                  noise: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Return (sigma map in px, confidence in [0, 1]) of `image` given its sharp `reference` tile.

    `window` (px) is the fitting window, `smoothness` the prior's weight (1: a 1 px change of sigma
    between neighbouring 4 px blocks costs as much as a 1 px error where the data pin sigma to 1 px),
    `fill` (px) the reach into textureless areas (NaN beyond it),
    `sigma_min`, `sigma_max` (px) the bounds, gain, offset and shift (px) map the reference onto
    the image. Confidence is noise**2 / residual variance, clipped to 1: 1 where the model
    explains the image down to its noise, lower where it does not.
    """
    ref = _shifted(np.asarray(reference, dtype=np.float32), (shift_y, shift_x))
    sigma, cost = _fit_and_cost(image, ref, gain, offset, window, smoothness, sigma_min, sigma_max, fill, noise)
    # the pooled cost is a mean squared residual per pixel: at the noise level, confidence 1
    conf = np.clip((noise * noise + 1e-30) / np.maximum(cost, 1e-30), 0.0, 1.0)
    return sigma, conf.astype(np.float32)


def _fit_and_cost(image, reference, gain, offset, window=8.0, smoothness=1.0, sigma_min=0.0,
                  sigma_max=6.0, fill=32.0, noise=0.0) -> tuple[np.ndarray, np.ndarray]:
    """Return (sigma px, NaN where unknown; mean squared residual of the centred window), full resolution."""
    img = np.asarray(image, dtype=np.float32)
    ref = np.asarray(reference, dtype=np.float32)
    size = _box_size(window)
    t, curvature, centred_cost = _local_fit(img, ref, gain, offset, sigma_min, sigma_max, size)
    t, curvature, _ = _adaptive_windows(t, curvature, centred_cost, reach=2 * (size // 2))
    sigma = np.sqrt(np.maximum(t, 0.0))
    # curvature in sigma: d2/dsigma2 = (2 sigma)**2 d2/dt2; normalise so the prior weight is relative
    # Fisher information about sigma of each window: pixels * d2(cost)/dsigma2 / noise**2, where
    # d2/dsigma2 = (2 sigma)**2 d2/dt2; 1 / weight is the variance of the fitted sigma (px**2)
    pixels = (BLOCK * size) ** 2
    weight = pixels * curvature * (2 * sigma + 0.1) ** 2 / max(noise, 1e-12) ** 2
    # where the data pin sigma to worse than 1 px (no texture within the blur's reach) the fit is
    # arbitrary: those blocks take the weighted mean of informed blocks within `fill` px, or NaN
    informed = weight > 1.0
    den = _box2(np.where(informed, weight, 0.0), _box_size(fill))
    with np.errstate(divide="ignore", invalid="ignore"):
        filled = _box2(np.where(informed, weight * sigma, 0.0), _box_size(fill)) / den
    sigma = np.where(informed, sigma, filled)
    sigma = np.clip(_smooth(sigma, np.where(informed, weight, 0.0), smoothness, SMOOTH_REACH), sigma_min, sigma_max)
    # the centred window's residual: high where no single sigma explains the window
    return _upsample(sigma, img.shape), _upsample(centred_cost, img.shape)
