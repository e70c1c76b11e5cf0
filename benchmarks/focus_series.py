"""Focus series to height maps: the fitted height of best focus against the per-pixel arg-min of sigma.

    python benchmarks/focus_series.py [--seeds eval|dev] [--scenes 3] [--planes 9] [--counts N]

Each scene is a dead-leaves specimen (radius law r^-3, a seed of the chosen range: DEV_SEEDS for
developing, EVAL_SEEDS, the default, for the figures reported) over one of three surfaces, imaged
at `--planes` focus positions one step apart: plane i carries sigma = sqrt(s0**2 + (k (i - h))**2)
px at a pixel of height h steps (s0 = 0.6 px, k = 0.8 px per step), rendered by blurmap.blur.
Surfaces: a tilted plane (h from 1.5 to 6.5 steps across the image), a sphere cap (h from 1.5 at
the rim to 6.5 at the top), steps (three terraces at 2.2, 4.5 and 6.1 steps); `--counts` adds
Poisson noise. blurmap.analysis.focus_series fits each pixel twice: its parabola through the
planes' sigma maps (the default estimator, ``fit="sigma"``) and through the relative blur of
adjacent planes (``fit="relative"``). Prints, per surface, the height RMSE in steps of both fits
and of the per-pixel arg-min of sigma (which can only name a plane), over pixels at least 24 px
from the image's border, and the shares the fits leave unknown.
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
    parser.add_argument("--counts", type=float, default=None,
                        help="Poisson noise: counts at intensity 1 (the specimens span 0-1); none by default")
    parser.add_argument("--surfaces", default="tilted plane,sphere cap,steps", help="comma-separated")
    args = parser.parse_args()
    seeds = (EVAL_SEEDS if args.seeds == "eval" else DEV_SEEDS)[:args.scenes]
    inner = (slice(MARGIN, -MARGIN), slice(MARGIN, -MARGIN))
    noise = f", Poisson noise at {args.counts:g} counts" if args.counts else ", noise-free"
    print(f"Focus series, {args.seeds} seeds {seeds.start}-{seeds.stop - 1}, {args.planes} planes of "
          f"{SIZE} x {SIZE} px, s0 {FLOOR} px, k {SLOPE} px per step{noise}\n")
    print("| surface | sigma fit RMSE (steps) | relative fit RMSE (steps) | arg-min of sigma RMSE (steps) | "
          "unknown (sigma / relative) |")
    print("|---|---|---|---|---|")
    for kind in args.surfaces.split(","):
        h = surface(kind)
        rows = []
        for seed in seeds:
            rng = np.random.default_rng(seed)
            sharp = synthetic.dead_leaves((SIZE, SIZE), rng)
            stack = np.stack([blur(sharp, np.hypot(FLOOR, SLOPE * (i - h)).astype(np.float32))
                              for i in range(args.planes)])
            if args.counts:
                stack = rng.poisson(np.clip(stack, 0, None) * args.counts).astype(np.float32)
            by_sigma = focus_series(stack, z_step=1.0, method=args.method)
            relative = focus_series(stack, z_step=1.0, fit="relative")
            errs = [(f.height - h)[inner] for f in (by_sigma, relative)]
            rows.append([np.sqrt(np.nanmean(e**2)) for e in errs]
                        + [np.sqrt(np.mean((by_sigma.sharpest - h)[inner] ** 2))]
                        + [np.isnan(e).mean() for e in errs])
        m = np.mean(rows, axis=0)
        print(f"| {kind} | {m[0]:.3f} | {m[1]:.3f} | {m[2]:.3f} | {100 * m[3]:.1f}% / {100 * m[4]:.1f}% |")


if __name__ == "__main__":
    main()
