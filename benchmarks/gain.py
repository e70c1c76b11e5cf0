"""How much a 10x gain change across the image moves each px estimator's map, on the benchmark suite.

    python benchmarks/gain.py [METHOD ...]

Each suite image is multiplied by a gain rising geometrically from 1 at the left edge to 10 at the
right (brightness changing across a micrograph, as with detector or material contrast), and by the
same ramp from top to bottom. Reported: the mean, median and 95th percentile over pixels of
|map(gain x image) / map(image) - 1|. Every estimator runs with its defaults (noise estimated from
each image, as a user would).
"""

from __future__ import annotations

import argparse

import numpy as np
from _suite import cases

from blurmap import estimate, estimators


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("methods", nargs="*")
    args = parser.parse_args()
    methods = args.methods or [n for n, e in estimators().items() if e.units == "px" and not e.inputs]
    print(f"{'method':15s} {'mean':>7s} {'median':>7s} {'p95':>7s}   (|relative change| of the map, 10x gain ramp)")
    for method in methods:
        changes = []
        for _, _, image, _ in cases():
            plain = estimate(image, method)
            n = image.shape[1]
            ramp = np.logspace(0, 1, n, dtype=np.float32)
            for gain in (ramp[None, :], ramp[:, None]):
                scaled = estimate(image * gain, method)
                ok = np.isfinite(plain) & np.isfinite(scaled) & (plain > 0)
                changes.append(np.abs(scaled[ok] / plain[ok] - 1))
        c = np.concatenate(changes)
        print(f"{method:15s} {100 * c.mean():6.2f}% {100 * np.median(c):6.2f}% {100 * np.percentile(c, 95):6.2f}%")


if __name__ == "__main__":
    main()
