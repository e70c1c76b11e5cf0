"""Fit the gradient_ratio estimator's constants (GAMMA, T_DERIV) on uniformly blurred dead leaves.

    python benchmarks/calibrate.py

The calibration images are dead-leaves textures with seeds 100-103; the accuracy benchmark uses
other seeds and other textures, so nothing here is fitted to the figures it reports.
For each uniform blur sigma, the median over the image of the estimator's own log-ratio
statistic (the discrete operators it actually uses) is compared with the model
GAMMA * sum_s log((sigma^2 + s^2 + T_DERIV) / (sigma^2 + T_DERIV)); GAMMA is the least-squares
slope for each T_DERIV on a grid, and the pair with the smallest relative sigma error wins.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from blurmap import gradient_ratio as gr
from blurmap.synthetic import dead_leaves

SIGMAS = np.array([0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0])
SEEDS = (100, 101, 102, 103)


def measured_log_ratios() -> np.ndarray:
    """Return the median log-ratio statistic for each sigma in SIGMAS, pooled over SEEDS."""
    out = np.zeros((len(SEEDS), len(SIGMAS)))
    for i, seed in enumerate(SEEDS):
        sharp = dead_leaves((512, 512), seed=seed)
        for j, sigma in enumerate(SIGMAS):
            log_ratio, conf = gr.evidence(ndi.gaussian_filter(sharp, sigma))
            out[i, j] = np.median(log_ratio[conf > 0.5])
    return np.median(out, axis=0)


def model_terms(t_deriv: float) -> np.ndarray:
    """Return sum_s log((sigma^2 + s^2 + t_deriv) / (sigma^2 + t_deriv)) for each sigma in SIGMAS."""
    t = SIGMAS[:, None] ** 2 + t_deriv
    return np.log((t + np.asarray(gr.SCALES) ** 2) / t).sum(axis=1)


def invert(log_ratio: np.ndarray, gamma: float, t_deriv: float) -> np.ndarray:
    """Return the sigma (px) the model gives for each measured log ratio."""
    grid = np.linspace(0, 20, 20001)
    t = grid[:, None] ** 2 + t_deriv
    table = gamma * np.log((t + np.asarray(gr.SCALES) ** 2) / t).sum(axis=1)
    return np.interp(log_ratio, table[::-1], grid[::-1])


def main() -> None:
    measured = measured_log_ratios()
    best = None
    print("t_deriv  gamma   worst |rel. sigma error|")
    for t_deriv in np.arange(0.20, 0.50, 0.02):
        f = model_terms(t_deriv)
        gamma = float((measured * f).sum() / (f * f).sum())
        worst = float(np.max(np.abs(invert(measured, gamma, t_deriv) / SIGMAS - 1)))
        print(f"{t_deriv:6.2f}  {gamma:6.3f}  {worst:6.3f}")
        if best is None or worst < best[2]:
            best = (t_deriv, gamma, worst)
    print(f"\nbest: T_DERIV = {best[0]:.2f} px^2, GAMMA = {best[1]:.3f} (worst relative error {best[2]:.3f})")
    print(f"in use: T_DERIV = {gr.T_DERIV:.3f} (the central difference's own blur, 1/3), GAMMA = {gr.GAMMA}")
    est = invert(measured, gr.GAMMA, gr.T_DERIV)
    print("sigma true  " + " ".join(f"{s:5.2f}" for s in SIGMAS))
    print("sigma read  " + " ".join(f"{s:5.2f}" for s in est))


if __name__ == "__main__":
    main()
