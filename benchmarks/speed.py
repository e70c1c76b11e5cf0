"""Speed and peak memory of every estimator on a 4096 x 4096 image, numpy and dask paths.

    python benchmarks/speed.py [--size 4096] [--chunk 1024] [METHOD ...]

Each figure comes from a fresh subprocess, so peak resident memory (from the OS, ru_maxrss) is
that path's alone; it is reported above the process's size once the image is in memory.
Time is the best of three runs, and is also given as a multiple of one
scipy.ndimage.gaussian_filter pass (sigma 2 px, the default truncate; also the best of three)
over the same float32 image, measured in the same process, so the figure holds on any machine. The dask path uses the threaded scheduler on all cores.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def child(method: str, path: str, size: int, chunk: int) -> dict:
    """Measure one (method, path) in this process; return the figures."""
    import numpy as np
    from scipy import ndimage as ndi

    import blurmap
    from blurmap.synthetic import dead_leaves

    tile = ndi.gaussian_filter(dead_leaves((512, 512), seed=7), 1.2)
    image = np.tile(tile, (size // 512 + 1, size // 512 + 1))[:size, :size].copy()
    image += np.random.default_rng(0).normal(0, 0.01, image.shape).astype(np.float32)
    ndi.gaussian_filter(image[:256, :256], 2.0)
    base = _rss_mb()

    def run():
        if path == "numpy":
            return blurmap.estimate(image, method)
        import dask.array as da
        return blurmap.estimate(da.from_array(image, chunks=chunk), method).compute(scheduler="threads")

    times = []
    for _ in range(3):  # the best of three, as for the reference pass below
        start = time.perf_counter()
        sigma = run()
        times.append(time.perf_counter() - start)
        if len(times) == 1:
            peak = _rss_mb()  # the first run's peak: later runs reuse freed memory
        del sigma
    seconds = min(times)
    passes = []
    for _ in range(3):
        t0 = time.perf_counter()
        ndi.gaussian_filter(image, 2.0)
        passes.append(time.perf_counter() - t0)
    reference = min(passes)
    return {"method": method, "path": path, "seconds": seconds, "mp_per_s": size * size / 1e6 / seconds,
            "gaussian_passes": seconds / reference, "reference_s": reference,
            "peak_extra_mb": peak - base, "image_mb": image.nbytes / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--chunk", type=int, default=1024)
    parser.add_argument("--child", nargs=2, metavar=("METHOD", "PATH"))
    parser.add_argument("methods", nargs="*", help="estimators to time (default: every blind one)")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*args.child, args.size, args.chunk)))
        return
    from blurmap import estimators

    print(f"{args.size} x {args.size} float32, {os.cpu_count()} cores; dask chunks {args.chunk} px")
    print(f"{'method':15s} {'path':6s} {'s':>7s} {'MP/s':>7s} {'x gauss pass':>13s} {'peak MB':>8s}")
    blind = [name for name, est in estimators().items() if not est.inputs]  # reference: its own benchmark
    for method in (m for m in blind if not args.methods or m in args.methods):
        for path in ("numpy", "dask"):
            out = subprocess.run([sys.executable, __file__, "--size", str(args.size), "--chunk", str(args.chunk),
                                  "--child", method, path], capture_output=True, text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{method:15s} {path:6s} {r['seconds']:7.2f} {r['mp_per_s']:7.2f} {r['gaussian_passes']:13.1f} "
                  f"{r['peak_extra_mb']:8.0f}")
    print(f"(one gaussian_filter pass, sigma 2 px: {r['reference_s']:.3f} s; the image itself: {r['image_mb']:.0f} MB)")


if __name__ == "__main__":
    main()
