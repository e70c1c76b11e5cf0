"""Reference-based blur recovery: the sigma map that, through ``blur``, turns a sharp image into a blurred one.

Seed 001 mixed a minimum and a maximum blur with fitted weights, a rough stand-in for the blurs in
between. Here the model is the project's forward model itself: a ladder of uniform blurs of the
reference (0, 0.2 px, then steps of 20%), interpolated per pixel linearly in sigma squared. Within
one ladder interval the model is linear in the interpolation weight u, so the least-squares fit
of a window that shares one sigma is a quadratic in u with a closed-form minimiser; scanning the
intervals gives the exact local optimum. A smoothness prior (weight `smoothness`) then joins the
local fits: each fit's Fisher information (the data term's curvature) weights a screened-Poisson
problem, solved by a fixed number of Jacobi sweeps so its reach is bounded. Registration, gain
and offset are refined by Gauss-Newton (Lucas-Kanade) steps with analytic Jacobians. Bounds hold
throughout.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy import ndimage as ndi

from ..forward import blur, blur_many, ladder, ladder_levels, ladder_reach
from ..noise import estimate_noise
from ..registry import Estimator, Param, register
from ._grid import BLOCK, block_mean, box2, box_size, upsample, weighted_mean
from ._noise_params import WHITE_NOISE

__all__ = ["reference_fit", "halo", "ESTIMATOR"]

MIN_CORRELATION = 0.5  # below this, the reference does not show the same field
MAX_SHIFT = 16.0  # px; the largest registration shift accepted
CROP = 512  # px; side of the central crop used to register and fit gain and offset
ADAPT_TOLERANCE = 5.0  # a centred window this much worse than a neighbour is straddling a change
SMOOTH_REACH = 8  # blocks; Jacobi sweeps of the smoothness prior, so also its reach
JUMP = 1.0  # px; neighbouring blocks this far apart mark an abrupt change of blur
JUMP_INFORMATION = 16.0  # 1/px**2: only blocks whose sigma is pinned to 0.25 px can mark a jump


def _shifted(reference: np.ndarray, shift: tuple[float, float]) -> np.ndarray:
    """Return `reference` moved by `shift` (px, rows then columns), cubic spline, borders mirrored."""
    if shift[0] == 0 and shift[1] == 0:
        return reference
    return ndi.shift(reference, shift, order=3, mode="mirror")


def register_shift(reference: np.ndarray, image: np.ndarray) -> tuple[tuple[float, float], float]:
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
            raise ValueError(_why_no_fit(image, ref, gain))
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
    for k, above in enumerate(ladder_levels(reference, levels), start=1):
        lo, hi = t_levels[k - 1], t_levels[k]
        if hi < sigma_min**2:
            below = above
            continue
        a = gain * below - target  # residual at u = 0
        b = gain * (above - below)  # change of the model from u = 0 to u = 1
        saa = box2(block_mean(a * a, np.float32), size).astype(np.float64)
        sab = box2(block_mean(a * b, np.float32), size).astype(np.float64)
        sbb = box2(block_mean(b * b, np.float32), size).astype(np.float64)
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


def halo(params: Mapping) -> int:
    """Return the context (px, a multiple of 4) each side of a tile that the fit depends on.

    Parameters
    ----------
    params : mapping
        Checked parameters: ``fit_window``, ``sigma_max``, ``smoothness`` and ``fill_reach`` set the reach.

    Returns
    -------
    int
        px: the blur ladder, the shift and its spline, then the windows, jumps, fill and prior.

    Examples
    --------
    >>> halo({"fit_window": 8.0, "sigma_max": 6.0, "smoothness": 1.0, "fill_reach": 32.0})
    204
    """
    size = box_size(params["fit_window"])
    full_res = ladder_reach(params["sigma_max"]) + int(MAX_SHIFT) + 4  # blur ladder, shift, spline
    reach = 2 * (size // 2)
    coarse = -(-full_res // BLOCK) + 2 * (size // 2) + reach + 1  # pooling, adaptive reach, interp
    coarse += 2 * reach + 2  # jumps: detection, dilation, second adaptive pass, neighbour candidates
    coarse += 2 * (box_size(params["fill_reach"]) // 2)
    if params["smoothness"] > 0:
        coarse += SMOOTH_REACH
    return BLOCK * (coarse + 1)


def reference_fit(image: np.ndarray, *, reference: np.ndarray, fit_window: float, smoothness: float,
                  fill_reach: float, sigma_min: float, sigma_max: float, gain: float, offset: float,
                  shift_y: float, shift_x: float, noise: float) -> tuple[np.ndarray, np.ndarray]:
    """Return the sigma map (px) and confidence of `image` given a sharp `reference` of the same field.

    Call it through ``blurmap.estimate(image, "reference", reference=sharp)``, which checks the
    parameters and first registers the reference and fits gain, offset and noise.

    Parameters
    ----------
    image : ndarray
        2-D float32 tile; its top-left corner on the global 4 px grid.
    reference : ndarray
        The sharp image of the same field, the tile's shape.
    fit_window : float
        px; the window over which one sigma is fitted.
    smoothness : float
        Weight of the smoothness prior (1: a 1 px change of sigma between neighbouring 4 px blocks
        costs as much as a 1 px error where the data pin sigma to 1 px).
    fill_reach : float
        px; reach of the fill into textureless areas (NaN beyond it).
    sigma_min, sigma_max : float
        px; the bounds of the fit.
    gain, offset, shift_y, shift_x : float
        image = gain * reference moved by (shift_y, shift_x) px + offset.
    noise : float
        Noise std, image units.

    Returns
    -------
    sigma : ndarray
        float32, px; NaN where no texture is within reach.
    confidence : ndarray
        float32 in [0, 1]: noise**2 over the window's residual variance, clipped to 1: 1 where the
        model explains the image down to its noise, lower where it does not.

    References
    ----------
    .. [1] B. D. Lucas and T. Kanade, "An iterative image registration technique with an
       application to stereo vision", IJCAI 1981 (the Gauss-Newton refinement of shift and gain).
    .. [2] M. Kuwahara et al., "Processing of RI-angiocardiographic images", Digital Processing of
       Biomedical Images, 1976 (choosing the best-fitting of the windows covering a pixel).

    Examples
    --------
    >>> import blurmap
    >>> from blurmap import synthetic
    >>> sharp = synthetic.dead_leaves((128, 128), seed=1)
    >>> image = blurmap.blur(sharp, np.full(sharp.shape, 1.5))
    >>> sigma = blurmap.estimate(image, "reference", reference=sharp)
    >>> bool(abs(np.nanmedian(sigma) - 1.5) < 0.1)
    True
    """
    ref = _shifted(np.asarray(reference, dtype=np.float32), (shift_y, shift_x))
    sigma, cost = _fit_and_cost(image, ref, gain, offset, fit_window=fit_window, smoothness=smoothness,
                                sigma_min=sigma_min, sigma_max=sigma_max, fill_reach=fill_reach, noise=noise)
    # the pooled cost is a mean squared residual per pixel: at the noise level, confidence 1
    conf = np.clip((noise * noise + 1e-30) / np.maximum(cost, 1e-30), 0.0, 1.0)
    return sigma, conf.astype(np.float32)


def _fit_and_cost(image, reference, gain, offset, *, fit_window, smoothness, sigma_min, sigma_max, fill_reach,
                  noise) -> tuple[np.ndarray, np.ndarray]:
    """Return (sigma px, NaN where unknown; mean squared residual of the centred window), full resolution."""
    img = np.asarray(image, dtype=np.float32)
    ref = np.asarray(reference, dtype=np.float32)
    size = box_size(fit_window)
    t, curvature, centred_cost = _local_fit(img, ref, gain, offset, sigma_min, sigma_max, size)
    reach = 2 * (size // 2)
    t1, curv1, _ = _adaptive_windows(t, curvature, centred_cost, reach=reach)
    # near an abrupt change, found by that first pass among blocks the data inform (elsewhere the
    # fit is arbitrary), take the best-fitting covering window outright
    sigma1 = np.sqrt(np.maximum(t1, 0.0))
    sigma1 = np.where(_information(curv1, sigma1, size, noise) > JUMP_INFORMATION, sigma1, np.nan)
    near = ndi.binary_dilation(_jumps(sigma1), iterations=reach)
    t2, curv2, _ = _adaptive_windows(t, curvature, centred_cost, reach=reach, tolerance=1.0)
    t, curvature = np.where(near, t2, t1), np.where(near, curv2, curv1)
    sigma = np.sqrt(np.maximum(t, 0.0))
    weight = _information(curvature, sigma, size, noise)
    # where the data pin sigma to worse than 1 px (no texture within the blur's reach) the fit is
    # arbitrary: those blocks take the weighted mean of informed blocks within `fill_reach` px, or NaN
    informed = weight > 1.0
    filled, den = weighted_mean(sigma, np.where(informed, weight, 0.0), box_size(fill_reach))
    sigma = np.where(informed, sigma, np.where(den > 0, filled, np.nan))
    sigma = np.clip(_smooth(sigma, np.where(informed, weight, 0.0), smoothness, SMOOTH_REACH), sigma_min, sigma_max)
    jumps = _jumps(np.where(weight > JUMP_INFORMATION, sigma, np.nan))
    full = _sharpen_jumps(upsample(sigma, img.shape), sigma, jumps, img, ref, gain, offset, noise)
    # the centred window's residual: high where no single sigma explains the window
    return full, upsample(centred_cost, img.shape)


def _information(curvature: np.ndarray, sigma: np.ndarray, size: int, noise: float) -> np.ndarray:
    """Return each window's Fisher information about sigma (1/px**2): 1 / the variance of its fit.

    pixels * d2(cost)/dsigma2 / noise**2, where d2/dsigma2 = (2 sigma)**2 d2/dt2.
    """
    pixels = (BLOCK * size) ** 2
    return pixels * curvature * (2 * sigma + 0.1) ** 2 / max(noise, 1e-12) ** 2


def _jumps(sigma: np.ndarray) -> np.ndarray:
    """Return the blocks whose sigma differs from a known 4-neighbour's by more than JUMP px."""
    jump = np.zeros(sigma.shape, dtype=bool)
    for axis in (0, 1):
        a = np.moveaxis(sigma, axis, 0)
        with np.errstate(invalid="ignore"):
            d = np.abs(a[1:] - a[:-1]) > JUMP  # False where either side is NaN
        j = np.moveaxis(jump, axis, 0)
        j[:-1] |= d
        j[1:] |= d
    return jump


def _sharpen_jumps(full: np.ndarray, coarse: np.ndarray, jump: np.ndarray, image: np.ndarray,
                   reference: np.ndarray, gain: float, offset: float, noise: float) -> np.ndarray:
    """Return `full` with pixels near abrupt changes of blur set by their own residual.

    Interpolating the 4 px grid across a jump of blur spreads it over 4 px. Where neighbouring
    well-informed blocks differ by more than JUMP px (`jump`), each pixel of those blocks takes the
    sigma of whichever of its four nearest blocks explains the pixel best, if it does so by a
    margin over the noise against blocks of a distinctly different sigma; where none does (no
    texture), it keeps the interpolated value. The ladder is re-run over the bounding box of those
    pixels only, so smooth maps cost nothing more.
    """
    if not jump.any():
        return full
    mask = np.kron(jump, np.ones((BLOCK, BLOCK), dtype=bool))[:full.shape[0], :full.shape[1]]
    rows, cols = np.nonzero(mask)
    margin = ladder_reach(float(np.nanmax(coarse))) + 2  # the box's borders are reflected: beyond the ladder's reach
    y0, y1 = max(rows.min() - margin, 0), min(rows.max() + margin + 1, full.shape[0])
    x0, x1 = max(cols.min() - margin, 0), min(cols.max() + margin + 1, full.shape[1])
    box = (slice(y0, y1), slice(x0, x1))
    # candidates: the sigma of each of the pixel's four nearest blocks, and the interpolated one
    yy = np.clip(((np.arange(y0, y1) + 0.5) / BLOCK - 0.5), 0, coarse.shape[0] - 1)
    xx = np.clip(((np.arange(x0, x1) + 0.5) / BLOCK - 0.5), 0, coarse.shape[1] - 1)
    iy = [np.floor(yy).astype(int), np.ceil(yy).astype(int)]
    ix = [np.floor(xx).astype(int), np.ceil(xx).astype(int)]
    candidates = [full[box]] + [coarse[np.ix_(a, b)] for a in iy for b in ix]
    models = blur_many(reference[box], candidates)
    target = image[box]
    # each pixel's own residual: a window would let the far side of the jump vote
    errors = [(np.float32(gain) * m + np.float32(offset) - target) ** 2 for m in models]
    # the best of the blocks' own sigmas wins where the runner-up is clearly worse; where they
    # explain the pixel equally (no texture), the interpolated value stays
    block_errors = np.stack(errors[1:])
    block_sigmas = np.stack(candidates[1:])
    decisive = 4.0 * noise * noise  # a single pixel's squared residual scatters by about 1.4 noise**2
    best = np.argmin(block_errors, axis=0)
    chosen = np.take_along_axis(block_sigmas, best[None], 0)[0]
    best_error = np.take_along_axis(block_errors, best[None], 0)[0]
    runner_up = np.where(np.abs(block_sigmas - chosen) > JUMP, block_errors, np.inf).min(axis=0)
    better = (runner_up - best_error > decisive) & mask[box] & np.isfinite(chosen)
    out = full.copy()
    out[box] = np.where(better, chosen, full[box]).astype(out.dtype)
    return out


def _why_no_fit(image: np.ndarray, reference: np.ndarray, gain: float) -> str:
    """Return why no window's blur could be fitted: the image as sharp as the reference, or no texture in common."""
    def energy(a: np.ndarray) -> float:
        gy, gx = np.gradient(a.astype(np.float64))
        return float(np.mean(gy * gy + gx * gx))

    if energy(image) >= 0.9 * gain * gain * energy(reference) > 0:
        return ("the image is as sharp as the reference, or sharper: it is no blurred copy of it (are the image and "
                "the reference swapped, or the same image?)")
    return "the reference and the image hold no texture in common: blur cannot be fitted"


def _finite_or_mean(a: np.ndarray, name: str) -> np.ndarray:
    """Return the crop `a` with its non-finite pixels set to the mean of the others (for registration and gain)."""
    bad = ~np.isfinite(a)
    if bad.all():
        raise ValueError(f"the {name}'s central {CROP} px hold no finite pixel: registration needs them")
    return np.where(bad, np.mean(a[~bad]), a).astype(np.float32) if bad.any() else a


def _prepare(image, params: dict, regions: list | None = None, *, reference) -> dict:
    """Register the reference, fit gain and offset, estimate noise: once per image, on a central crop (not `regions`)."""
    params = dict(params)
    crop = tuple(slice(max(0, (n - CROP) // 2), max(0, (n - CROP) // 2) + CROP) for n in image.shape)
    img, ref = image[crop], reference[crop]
    if not isinstance(img, np.ndarray) or not isinstance(ref, np.ndarray):
        import dask
        img, ref = (np.asarray(a) for a in dask.compute(img, ref))
    if params["sigma_min"] > params["sigma_max"]:
        raise ValueError(f"sigma_min ({params['sigma_min']} px) must not exceed sigma_max ({params['sigma_max']} px)")
    if params["gain"] is not None and params["gain"] == 0:
        raise ValueError("gain 0 would make the model image flat: give the gain that maps the reference onto the image")
    if params["offset"] is not None and abs(params["offset"]) > 1e6:  # normalised units: the image spans about 1
        raise ValueError(f"the offset lies {abs(params['offset']):.3g} times the image's range away from it: "
                         "give one in the image's units that maps the reference onto it")
    img, ref = _finite_or_mean(img, "image"), _finite_or_mean(ref, "reference")
    auto = [k for k in ("shift_y", "shift_x", "gain", "offset") if params[k] is None]
    if params["shift_y"] is None or params["shift_x"] is None:
        (dy, dx), corr = register_shift(ref, img)
        if corr < MIN_CORRELATION:
            raise ValueError(f"the reference does not match the image: after registration their correlation "
                             f"is {corr:.2f} (needs {MIN_CORRELATION}); is it the same field?")
        if max(abs(dy), abs(dx)) > MAX_SHIFT:
            raise ValueError(f"registration found a shift of ({dy:.1f}, {dx:.1f}) px, beyond the "
                             f"{MAX_SHIFT} px this method accepts; crop the images to the same field")
        params["shift_y"] = dy if params["shift_y"] is None else params["shift_y"]
        params["shift_x"] = dx if params["shift_x"] is None else params["shift_x"]
    if params["gain"] is None or params["offset"] is None:
        gain, offset = gain_offset(_shifted(ref, (params["shift_y"], params["shift_x"])), img)
        params["gain"] = gain if params["gain"] is None else params["gain"]
        params["offset"] = offset if params["offset"] is None else params["offset"]
    if params["noise"] is None:  # floored: noise-free data still get a finite, scale-free weight
        params["noise"] = max(estimate_noise(img), 1e-3 * float(np.std(img)))
    if auto:  # refine what was estimated against the fitted model, which shares the image's blur
        fit = {k: params[k] for k in ("fit_window", "smoothness", "sigma_min", "sigma_max", "fill_reach", "noise")}
        (dy, dx), gain, offset = refine(ref, img, (params["shift_y"], params["shift_x"]), params["gain"],
                                        params["offset"], **fit)
        params.update({k: v for k, v in zip(("shift_y", "shift_x", "gain", "offset"), (dy, dx, gain, offset))
                       if k in auto})
    return params


ESTIMATOR = register(Estimator(
    name="reference",
    title="Fit against a sharp reference",
    func=reference_fit,
    units="px",
    params=(
        Param("fit_window", 8.0, 4.0, 64.0, "px",
              "window one sigma is fitted over; smaller follows sharper changes, larger resists noise"),
        Param("smoothness", 1.0, 0.0, 1000.0, "", "weight of the smoothness prior against the data's information"),
        Param("fill_reach", 32.0, 4.0, 256.0, "px", "reach of the fill into textureless areas"),
        Param("sigma_min", 0.0, 0.0, 19.0, "px", "smallest blur allowed"),
        Param("sigma_max", 6.0, 1.0, 20.0, "px", "largest blur allowed"),
        Param("shift_y", None, -MAX_SHIFT, MAX_SHIFT, "px", "reference shift in rows; None registers", nullable=True),
        Param("shift_x", None, -MAX_SHIFT, MAX_SHIFT, "px", "reference shift in columns; None registers",
              nullable=True),
        Param("gain", None, None, None, "", "image = gain * reference + offset; None fits it", nullable=True,
              scaling="gain"),
        Param("offset", None, None, None, "image units", "None fits it; give gain with it", nullable=True,
              scaling="offset"),
        WHITE_NOISE,
    ),
    halo_formula=halo,
    align=BLOCK,
    description=("Sigma map that, through blurmap.blur, best turns a sharp reference of the same field into "
                 "the image: exact windowed least squares over a ladder of blurs, adaptive windows at "
                 "changes of blur, a smoothness prior; registration, gain and offset fitted first."),
    prepare=_prepare,
    inputs=("reference",),
))
