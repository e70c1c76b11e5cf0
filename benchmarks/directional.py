"""Directional blur: major and minor sigma and angle, on elliptical blur nobody tuned on; round estimators beside it.

    python benchmarks/directional.py [--seeds eval|dev] [--scenes 4]

Scenes of 256 x 256 px, each a sharp specimen from a seed of the chosen range (DEV_SEEDS for
developing, EVAL_SEEDS, the default, for the figures reported) blurred by
``blurmap.blur_elliptical`` with a known field of (major, minor, angle), then shot noise
(200-1000 counts at the brightest pixel) and a detector's offset and read noise:

- smooth: major 1.2-4 px rising across the image, major / minor 1.5-3, the angle turning by
  60 degrees across it; dead leaves, cells, photographs;
- through focus: a focal band across the image where the probe's two line foci lie 20-40 px
  either side of it (sigma along theta is sqrt(s0**2 + (k (d + delta))**2), across it
  sqrt(s0**2 + (k (d - delta))**2), d the distance from the band): the major axis turns by 90
  degrees across the band; dead leaves;
- isotropic controls: round blur (1-4 px) on dead leaves, cells, photographs;
- oriented textures: strokes within 10 degrees of one direction, round blur (1-4 px).

Reports the RMSE of the major and minor sigma (px), the median angle error (degrees) where the
true major / minor >= 1.5, the median major / minor on the controls and on the oriented
textures, and how the round estimators (learned, gradient_ratio) read elliptical blur: their
RMSE against the round-equivalent sigma sqrt((major**2 + minor**2) / 2), against major and minor.
"""

from __future__ import annotations

import argparse

import numpy as np
from _scenes import DEV_SEEDS, EVAL_SEEDS, cells, dead_leaves_law, detector, photo_tile
from scipy import ndimage as ndi

from blurmap import blur_elliptical, estimate

SIZE = 256
MARGIN = 24  # px left out at the border
ROUND = ("learned", "gradient_ratio")


def _coords():
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] / (SIZE - 1)
    return yy, xx


def smooth_field(rng):
    yy, xx = _coords()
    a = rng.uniform(0, 2 * np.pi)
    u = 0.5 + (np.cos(a) * (xx - 0.5) + np.sin(a) * (yy - 0.5))  # 0..1 across the image
    u = np.clip(u, 0, 1)
    major = 1.2 + rng.uniform(1.5, 2.8) * u
    ratio = rng.uniform(1.5, 3.0)
    angle = np.mod(rng.uniform(0, 180) + 60 * u, 180)
    return major, major / ratio, angle


def through_focus(rng):
    yy, xx = _coords()
    tilt = np.deg2rad(rng.uniform(-8, 8))
    d = ((yy - rng.uniform(0.4, 0.6)) * np.cos(tilt) - (xx - 0.5) * np.sin(tilt)) * SIZE  # px from the band
    delta, k, s0 = rng.uniform(20, 40), rng.uniform(0.02, 0.035), rng.uniform(0.6, 1.0)
    theta = rng.uniform(0, 180)
    along = np.sqrt(s0**2 + (k * (d + delta)) ** 2)
    across = np.sqrt(s0**2 + (k * (d - delta)) ** 2)
    major, minor = np.maximum(along, across), np.minimum(along, across)
    angle = np.where(along >= across, theta, np.mod(theta + 90, 180))
    return major, minor, angle


def round_field(rng):
    yy, xx = _coords()
    a = rng.uniform(0, 2 * np.pi)
    u = np.clip(0.5 + (np.cos(a) * (xx - 0.5) + np.sin(a) * (yy - 0.5)), 0, 1)
    sigma = 1.0 + rng.uniform(1.5, 3.0) * u
    return sigma, sigma, np.zeros_like(sigma)


def oriented(rng, shape):
    """Strokes within 10 degrees of one direction over a faint mottled background (no astigmatism of their own)."""
    img = ndi.gaussian_filter(rng.random(shape), 6) * 0.2
    t0 = rng.uniform(0, np.pi)
    for _ in range(int(rng.integers(150, 300))):
        y, x = rng.uniform(0, shape[0]), rng.uniform(0, shape[1])
        t = t0 + np.deg2rad(rng.uniform(-10, 10))
        length = rng.uniform(30, shape[0])
        s = np.linspace(-length / 2, length / 2, int(length * 2))
        ys, xs = (y - s * np.sin(t)).astype(int), (x + s * np.cos(t)).astype(int)
        keep = (ys >= 0) & (ys < shape[0]) & (xs >= 0) & (xs < shape[1])
        img[ys[keep], xs[keep]] = rng.uniform(0.5, 1.0)
    return img, "oriented strokes"


TEXTURES = {"dead leaves": dead_leaves_law, "cells": cells, "photo": photo_tile}
KINDS = {  # name: (field, textures)
    "smooth": (smooth_field, ("dead leaves", "cells", "photo")),
    "through focus": (through_focus, ("dead leaves",)),
    "isotropic control": (round_field, ("dead leaves", "cells", "photo")),
    "oriented texture": (round_field, ("oriented",)),
}


def scene(kind: str, seed: int):
    """Return (image, major, minor, angle) of one scene."""
    rng = np.random.default_rng(seed)
    field, textures = KINDS[kind]
    texture = textures[int(rng.integers(len(textures)))]
    sharp = oriented(rng, (SIZE, SIZE))[0] if texture == "oriented" else TEXTURES[texture](rng, (SIZE, SIZE))[0]
    major, minor, angle = field(rng)
    clean = blur_elliptical(sharp, major, minor, angle)
    counts = float(np.exp(rng.uniform(np.log(200), np.log(1000))))
    noisy = rng.poisson(np.clip(clean, 0, None) * counts / max(float(clean.max()), 1e-12)).astype(np.float32)
    image, _ = detector(rng, noisy)
    return image.astype(np.float32), major, minor, angle


def angle_error(a, b):
    d = np.abs(np.mod(a - b + 90, 180) - 90)
    return d


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", choices=("eval", "dev"), default="eval")
    parser.add_argument("--scenes", type=int, default=4, help="scenes per kind")
    parser.add_argument("--round", action=argparse.BooleanOptionalAction, default=True,
                        help="also run the round estimators on the elliptical scenes")
    args = parser.parse_args()
    seeds = (EVAL_SEEDS if args.seeds == "eval" else DEV_SEEDS)[:args.scenes]
    inner = (slice(MARGIN, -MARGIN),) * 2
    print(f"Directional blur, {args.seeds} seeds {seeds.start}-{seeds.stop - 1}, {args.scenes} scenes per kind, "
          f"{SIZE} x {SIZE} px, shot noise 200-1000 counts\n")
    print("| scenes | major RMSE (px) | minor RMSE (px) | angle error, median (deg), major/minor >= 1.5 | "
          "median major/minor | unknown |")
    print("|---|---|---|---|---|---|")
    round_rows = {m: [] for m in ROUND}
    limits = {}  # kind: per scene, major RMSE had the scale been the true round-equivalent, and the scale's own RMSE
    for kind in KINDS:
        rm, rn, ang, ratios, unknown = [], [], [], [], []
        for seed in seeds:
            image, major, minor, angle = scene(kind, seed + 1000 * list(KINDS).index(kind))
            out = estimate(image, "directional", return_outputs=True)
            M, m, a = (out[k][inner] for k in ("sigma_major", "sigma_minor", "angle_deg"))
            tM, tm, ta = major[inner], minor[inner], angle[inner]
            known = np.isfinite(M) & np.isfinite(m)
            rm.append(np.sqrt(np.mean((M - tM)[known] ** 2)))
            rn.append(np.sqrt(np.mean((m - tm)[known] ** 2)))
            elong = known & (tM >= 1.5 * tm)
            err = angle_error(np.nan_to_num(a, nan=0.0), ta)[elong]  # an unknown angle counts as 0 degrees
            ang.extend(err.tolist())
            ratios.append(np.median((M / m)[known]))
            unknown.append(1 - known.mean())
            if kind not in ("smooth", "through focus"):
                continue
            equiv, r = np.sqrt((tM**2 + tm**2) / 2), (M / m)[known]  # the round-equivalent; the shape as read
            limits.setdefault(kind, []).append((  # the shape as read, the size from the truth
                np.sqrt(np.mean((equiv[known] * np.sqrt(2 * r**2 / (1 + r**2)) - tM[known]) ** 2)),
                np.sqrt(np.mean((out["sigma"][inner] - equiv)[known] ** 2))))
            if args.round:
                for method in ROUND:
                    s = estimate(image, method)[inner]
                    ok = np.isfinite(s)
                    round_rows[method].append([np.sqrt(np.mean((s - t)[ok] ** 2)) for t in (equiv, tM, tm)])
        angle_text = f"{np.median(ang):.1f}" if ang else "-"
        print(f"| {kind} | {np.mean(rm):.3f} | {np.mean(rn):.3f} | {angle_text} | {np.median(ratios):.2f} | "
              f"{100 * np.mean(unknown):.1f}% |")
    print("\nWhere the major sigma's error comes from: its RMSE (px) had the estimator read the round-equivalent")
    print("sigma sqrt((M^2 + m^2)/2) exactly and the shape (major/minor) as it does, and the RMSE of its own")
    print("round-equivalent reading (from the learned estimator's round blur)\n")
    print("| scenes | major RMSE, true round-equivalent | round-equivalent RMSE |")
    print("|---|---|---|")
    for kind, rows in limits.items():
        shape_only, scale = np.mean(rows, axis=0)
        print(f"| {kind} | {shape_only:.3f} | {scale:.3f} |")
    if args.round:
        print("\nRound estimators on the elliptical scenes (smooth and through focus): RMSE (px) against")
        print("\n| method | round-equivalent sqrt((M^2 + m^2)/2) | major | minor |")
        print("|---|---|---|---|")
        for method, rows in round_rows.items():
            e, M, m = np.mean(rows, axis=0)
            print(f"| `{method}` | {e:.3f} | {M:.3f} | {m:.3f} |")


if __name__ == "__main__":
    main()
