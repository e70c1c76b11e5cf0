"""Focus series to height maps: the fitted height of best focus against the per-pixel arg-min of sigma.

    python benchmarks/focus_series.py [--seeds eval|dev] [--scenes 3] [--planes 9]

Each scene is a dead-leaves specimen (radius law r^-3, a seed of the chosen range: DEV_SEEDS for
developing, EVAL_SEEDS, the default, for the figures reported) over one of three surfaces, imaged
at `--planes` focus positions one step apart: plane i carries sigma = sqrt(s0**2 + (k (i - h))**2)
px at a pixel of height h steps (s0 = 0.6 px, k = 0.8 px per step), rendered by blurmap.blur.
Surfaces: a tilted plane (h from 1.5 to 6.5 steps across the image), a sphere cap (h from 1.5 at
the rim to 6.5 at the top), steps (three terraces at 2.2, 4.5 and 6.1 steps). Each plane is
mapped by the default estimator; blurmap.analysis.focus_series fits each pixel's parabola.
Prints, per surface, the height RMSE in steps of the fit and of the arg-min (which can only name
a plane), over pixels at least 24 px from the image's border, and the share the fit leaves unknown.
"""

from __future__ import annotations

import argparse

import numpy as np
from _scenes import DEV_SEEDS, EVAL_SEEDS

from blurmap import blur, synthetic
from blurmap.analysis.focus_series import focus_series

SIZE = 256
FLOOR, SLOPE = 0.6, 0.8  # px; px of sigma per step
MARGIN = 24  # px left out at the border


def surface(kind: str) -> np.ndarray:
    """Return a height map (steps) of SIZE x SIZE px."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] / (SIZE - 1)
    if kind == "tilted plane":
        return 1.5 + 5.0 * (0.7 * xx + 0.3 * yy)
    if kind == "sphere cap":
        r2 = (yy - 0.5) ** 2 + (xx - 0.5) ** 2
        return 1.5 + 5.0 * np.clip(1 - r2 / 0.5, 0, 1) ** 0.5
    return np.select([xx < 1 / 3, xx < 2 / 3], [2.2, 4.5], 6.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", choices=("eval", "dev"), default="eval")
    parser.add_argument("--scenes", type=int, default=3, help="specimens per surface")
    parser.add_argument("--planes", type=int, default=9)
    parser.add_argument("--method", default=None, help="the estimator each plane is mapped with (default: the default)")
    parser.add_argument("--surfaces", default="tilted plane,sphere cap,steps", help="comma-separated")
    args = parser.parse_args()
    seeds = (EVAL_SEEDS if args.seeds == "eval" else DEV_SEEDS)[:args.scenes]
    inner = (slice(MARGIN, -MARGIN), slice(MARGIN, -MARGIN))
    print(f"Focus series, {args.seeds} seeds {seeds.start}-{seeds.stop - 1}, {args.planes} planes of "
          f"{SIZE} x {SIZE} px, s0 {FLOOR} px, k {SLOPE} px per step\n")
    print("| surface | fit RMSE (steps) | arg-min RMSE (steps) | fit unknown |")
    print("|---|---|---|---|")
    for kind in args.surfaces.split(","):
        h = surface(kind)
        fits, mins, unknown = [], [], []
        for seed in seeds:
            sharp = synthetic.dead_leaves((SIZE, SIZE), np.random.default_rng(seed))
            stack = np.stack([blur(sharp, np.hypot(FLOOR, SLOPE * (i - h)).astype(np.float32))
                              for i in range(args.planes)])
            fit = focus_series(stack, z_step=1.0, method=args.method)
            err = (fit.height - h)[inner]
            fits.append(np.sqrt(np.nanmean(err**2)))
            mins.append(np.sqrt(np.mean((fit.sharpest - h)[inner] ** 2)))
            unknown.append(np.isnan(err).mean())
        print(f"| {kind} | {np.mean(fits):.3f} | {np.mean(mins):.3f} | {100 * np.mean(unknown):.1f}% |")


if __name__ == "__main__":
    main()
