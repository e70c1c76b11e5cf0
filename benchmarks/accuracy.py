"""Sigma-map accuracy on the benchmark suite (seed 002's protocol): RMSE for px estimators, Spearman for relative ones.

    python benchmarks/accuracy.py [--noise 0.0316] [METHOD ...]

Dead leaves and scikit-image's brick, grass and gravel, blurred by blurmap.blur with a ramp and
a sine sigma profile over 0.3 .. 3.0 px. Per case: RMSE (px) over the pixels with an estimate,
the share of all pixels within 30% of the truth (unknown pixels count as misses) and the share
unknown, the mean error where the true sigma is below 1 px and above 2 px, and the RMSE against
sqrt(truth**2 + s0**2) for the best s0 (how much of the error an image's own blur could explain).
--noise adds white noise with this std relative to the image's (0.0316: SNR 30 dB).
Every estimator runs with its defaults, as a user would: noise is estimated from the image.
Time per megapixel is the whole estimate() call (noise estimation included), numpy, one process,
averaged over the suite's 256 x 256 images: a rough figure; benchmarks/speed.py measures speed.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _suite import cases
from scipy.stats import spearmanr

from blurmap import estimate, estimators
from blurmap.analysis.summary import errors

SEED_002 = {"ramp": 0.1645, "sine": 0.1991}  # its CNN (30 classes), RMSE px


def score(sigma: np.ndarray, truth: np.ndarray) -> tuple[float, float, float]:
    """Return (RMSE px over known pixels, share within 30% counting unknown as misses, share unknown)."""
    e = errors(sigma, truth)
    return e["rmse_px"], e["within_30pct"], e["unknown"]


def biases(sigma: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Return the mean error (px, estimate minus truth) where the true sigma is below 1 px and above 2 px."""
    known = np.isfinite(sigma)
    return tuple(float(np.mean(sigma[m] - truth[m])) for m in (known & (truth < 1.0), known & (truth > 2.0)))


def own_blur_fit(sigma: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Return (s0 px, RMSE px) of the best truth sqrt(truth**2 + s0**2), s0 in 0 .. 1 px: how much an image's own blur explains."""
    known = np.isfinite(sigma)
    fits = [(float(np.sqrt(np.mean((sigma[known] - np.hypot(truth[known], s0)) ** 2))), s0)
            for s0 in np.arange(0.0, 1.001, 0.05)]
    rmse, s0 = min(fits)
    return s0, rmse


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--noise", type=float, default=0.0)
    parser.add_argument("methods", nargs="*", help="estimators to run (default: every blind one)")
    args = parser.parse_args()
    chosen = set(args.methods) if args.methods else set(estimators())

    def timed(image, method):
        start = time.perf_counter()
        out = estimate(image, method)
        seconds.append((time.perf_counter() - start) / (image.size / 1e6))
        return out

    # blind px estimators; one needing other images (reference) has its own benchmark
    methods = [name for name, est in estimators().items() if est.units == "px" and not est.inputs and name in chosen]
    print(f"noise std / image std = {args.noise}")
    print(f"{'method':15s} {'profile':6s} {'source':14s} {'RMSE px':>8s} {'within30':>9s} {'unknown':>8s} "
          f"{'bias<1px':>9s} {'bias>2px':>9s}  best own blur s0 px: RMSE")
    for method in methods:
        rows, seconds = [], []
        for sname, pname, image, truth in cases(args.noise):
            sigma = timed(image, method)
            rmse, within, unknown = score(sigma, truth)
            rows.append((pname, rmse, within, unknown))
            (low, high), (s0, rmse_s0) = biases(sigma, truth), own_blur_fit(sigma, truth)
            print(f"{method:15s} {pname:6s} {sname:14s} {rmse:8.3f} {within:9.3f} {unknown:8.3f} {low:+9.3f} "
                  f"{high:+9.3f}  {s0:.2f}: {rmse_s0:.3f}")
        for pname in ("ramp", "sine"):
            sel = [r for r in rows if r[0] == pname]
            print(f"{method:15s} {pname:6s} {'MEAN':14s} {np.mean([r[1] for r in sel]):8.3f} "
                  f"{np.mean([r[2] for r in sel]):9.3f} {np.mean([r[3] for r in sel]):8.3f}"
                  f"   (seed 002 CNN: RMSE {SEED_002[pname]})")
        print(f"{method:15s} {'all':6s} {'MEAN':14s} {np.mean([r[1] for r in rows]):8.3f} "
              f"{np.mean([r[2] for r in rows]):9.3f} {np.mean([r[3] for r in rows]):8.3f}"
              f"   {np.mean(seconds):.2f} s/MP")
    relative = [name for name, est in estimators().items()
                if est.units == "relative" and not est.inputs and name in chosen]
    if relative:
        print(f"\n{'method':15s} {'profile':6s} {'source':14s} {'Spearman':>9s}   (with the true sigma; "
              f"negative when higher is sharper)")
    for method in relative:
        values, seconds = [], []
        for sname, pname, image, truth in cases(args.noise):
            rank_map = timed(image, method)
            known = np.isfinite(rank_map)
            rho = float(spearmanr(rank_map[known], truth[known]).statistic)
            values.append(rho)
            print(f"{method:15s} {pname:6s} {sname:14s} {rho:9.3f}")
        print(f"{method:15s} {'all':6s} {'MEAN':14s} {np.mean(values):9.3f}   (target |rho| >= 0.9)   {np.mean(seconds):.2f} s/MP")


if __name__ == "__main__":
    main()
