"""Speed, cores used and peak memory of every estimator on a 4096 x 4096 image, per path.

    python benchmarks/speed.py [--size 4096] [--chunk 1024] [METHOD ...]

Paths: `numpy` (blurmap.estimate on a numpy array: cut into tiles on every core when larger than
one), `dask` (a dask array, made before timing, the threaded scheduler on every core), `tiles`
(blurmap.estimate_tiles, the napari widget's loop: a tile per core at a time, with progress) and
`cli` (`blurmap estimate image.tif out.zarr`, run in the process: the image read from a TIFF in
one uncompressed strip, as microscopes write them, and its sigma and confidence pyramids written
to OME-Zarr). Each (method, path) runs in a fresh subprocess, so peak resident memory (from the
OS, ru_maxrss) is that path's alone; it is reported above the process's size once the image is
in memory. In the same process and interleaved with the method's five runs, one float32 add
(``image + image``, a new array as a user's code makes it) and one ``scipy.ndimage.gaussian_filter``
pass (sigma 2 px, the default truncate; single-threaded) over the same image are timed; each
time is the best of five (this machine's noise moves single runs by up to a third), and the
method's wall time is given as a multiple of each (add- and Gaussian-pass equivalents), so the
figures hold on any machine. Cores busy is the process's CPU time over the wall time of the
method's best run; work is that CPU time over one pass, the cost on one core.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

PATHS = ("numpy", "dask", "tiles", "cli")
REPEAT = 5  # runs of each, interleaved; the best of each is reported


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


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

    if path == "dask":  # the caller's array, made before timing (dask hashes a numpy array to name it)
        import dask.array as da
        lazy = da.from_array(image, chunks=chunk)
    if path == "cli":  # the file is there before timing; the run reads it, maps it and writes the maps
        import contextlib
        import io
        import tempfile

        import tifffile

        from blurmap import cli

        folder = tempfile.TemporaryDirectory()
        tif = os.path.join(folder.name, "image.tif")
        tifffile.imwrite(tif, image)
        runs_made = []  # each run writes a new output, as the documented command does (nothing to replace)

        def argv() -> list[str]:
            runs_made.append(os.path.join(folder.name, f"maps-{len(runs_made)}.zarr"))
            return ["estimate", "--method", method, "--chunk", str(chunk), "--no-progress", tif, runs_made[-1]]

    def run():
        if path == "numpy":
            return blurmap.estimate(image, method)
        if path == "tiles":
            *_, last = blurmap.estimate_tiles(image, method, chunk=chunk)
            return last.sigma
        if path == "cli":
            args = argv()
            with contextlib.redirect_stdout(io.StringIO()):
                if cli.main(args) != 0:
                    raise RuntimeError(f"blurmap {' '.join(args)} failed")
            return None
        return blurmap.estimate(lazy, method).compute(scheduler="threads")

    def timed(f) -> tuple[float, float]:
        cpu, start = _cpu(), time.perf_counter()
        f()
        wall = time.perf_counter() - start
        return wall, (_cpu() - cpu) / wall

    adds, passes, runs, peak = [], [], [], None
    for _ in range(REPEAT):  # interleaved: a drift of the machine's speed moves all three alike
        adds.append(timed(lambda: image + image)[0])
        passes.append(timed(lambda: ndi.gaussian_filter(image, 2.0))[0])
        runs.append(timed(run))
        if peak is None:
            peak = _rss_mb()  # the first run's peak: later runs reuse freed memory
    seconds, busy = min(runs)
    add, gauss = min(adds), min(passes)
    return {"method": method, "path": path, "seconds": seconds, "mp_per_s": size * size / 1e6 / seconds,
            "adds": seconds / add, "gaussian_passes": seconds / gauss, "cores_busy": busy,
            "work_passes": seconds * busy / gauss, "add_s": add,
            "reference_s": gauss, "peak_extra_mb": peak - base, "image_mb": image.nbytes / 2**20}


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

    print(f"{args.size} x {args.size} float32, {os.cpu_count()} cores; dask, tile and CLI chunks {args.chunk} px")
    print(f"{'method':15s} {'path':6s} {'s':>7s} {'MP/s':>7s} {'x add':>7s} {'x gauss pass':>13s} "
          f"{'cores busy':>11s} {'work, passes':>13s} {'peak MB':>8s}")
    blind = [name for name, est in estimators().items() if not est.inputs]  # reference: its own benchmark
    for method in (m for m in blind if not args.methods or m in args.methods):
        for path in PATHS:
            out = subprocess.run([sys.executable, __file__, "--size", str(args.size), "--chunk", str(args.chunk),
                                  "--child", method, path], capture_output=True, text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{method:15s} {path:6s} {r['seconds']:7.2f} {r['mp_per_s']:7.2f} {r['adds']:7.0f} "
                  f"{r['gaussian_passes']:13.1f} {r['cores_busy']:11.2f} {r['work_passes']:13.1f} "
                  f"{r['peak_extra_mb']:8.0f}")
    print(f"(one float32 add: {r['add_s']:.4f} s; one gaussian_filter pass, sigma 2 px: {r['reference_s']:.3f} s "
          f"= {r['reference_s'] / r['add_s']:.0f} adds; the image itself: {r['image_mb']:.0f} MB)")


if __name__ == "__main__":
    main()
