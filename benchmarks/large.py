"""Large images through `blurmap estimate`: throughput, peak memory and cost per pixel from 16 MP to 1 GP.

    python benchmarks/large.py [--sides 4096 8192 16384 32768] [--method gradient_ratio] [--dir DIR] [--repeat 2]

Makes a synthetic SEM micrograph of a tilted specimen as a tiled uint16 BigTIFF of each side,
tile by tile (never whole in memory): a dead-leaves grain texture repeated with a period of
2048 px, under slowly varying material contrast, blurred through blurmap.blur by a tilted focal
plane (0.5 px in focus, 3.5 px at the far edge), with shot and detector noise. Then runs the
CLI on each, as a user would, into OME-Zarr, sampling the resident memory of the whole process
tree from the OS (psutil) every 0.1 s; each size runs `--repeat` times, the fastest time and the
highest peak reported; the runs go in rounds over all sizes. Before each run the same engine
runs on the 67 MP specimen held in memory, in the same chunks, nothing written (its per-chunk
throughput): each run is compared with the figure measured just before it (this VM's speed drifts
by 10-25% over minutes), and with the best of all those figures. The cost per pixel is given
two ways: the whole command's, and the CLI's own work's (as it reports: after the interpreter's
start and imports, which are most of a 16 MP run).
Also: one against two local workers (--workers 1 / 2), and how far each coarse pyramid level of
the written map lies from the block mean of the full resolution map, against a map estimated from
the image downsampled by the same factor.
"""

from __future__ import annotations

import argparse
import functools
import multiprocessing
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np

TILE = 512  # px; TIFF tile and generation unit
PERIOD = 2048  # px; the texture repeats with this period
HALO = 24  # px; context each side of a tile for the blur (4 x 3.5 px and some)
_TEXTURE: list[np.ndarray] = []


def _texture() -> np.ndarray:
    if not _TEXTURE:
        from blurmap import synthetic

        _TEXTURE.append(synthetic.dead_leaves((PERIOD, PERIOD), seed=7, rmin=1.0, rmax=64.0))
    return _TEXTURE[0]


def sigma_at(yy: np.ndarray, xx: np.ndarray, side: int) -> np.ndarray:
    """Return the true sigma (px) of the tilted specimen of `side` px at (yy, xx): 0.5 in focus, 3.5 at the far edge."""
    a = np.deg2rad(4.0)
    d = (yy - 0.4 * (side - 1)) * np.cos(a) - (xx - (side - 1) / 2) * np.sin(a)
    gradient = np.sqrt(3.5**2 - 0.5**2) / (0.6 * side * np.cos(a) + 0.5 * side * np.sin(a))
    return np.sqrt(0.25 + (gradient * d) ** 2).astype(np.float32)


def make_tile(args: tuple[int, int, int]) -> np.ndarray:
    """Return tile (row, col) of the micrograph of `side` px as uint16, from a HALO-padded region."""
    row, col, side = args
    from blurmap import blur

    y0, x0 = row * TILE - HALO, col * TILE - HALO
    n = TILE + 2 * HALO
    yy, xx = np.mgrid[y0:y0 + n, x0:x0 + n]
    tex = _texture()[yy % PERIOD, xx % PERIOD]
    gain = 0.25 + 0.75 * (0.5 + 0.5 * np.sin(2 * np.pi * xx / side * 1.5 + 0.6) * np.cos(np.pi * yy / side))
    clean = blur((0.1 + 0.9 * tex) * gain, sigma_at(yy, xx, side))[HALO:-HALO, HALO:-HALO]
    rng = np.random.default_rng([side, row, col])
    counts = rng.poisson(np.clip(clean, 0, None) * 5000.0) + rng.normal(0, 20.0, clean.shape)
    return np.clip(counts + 200, 0, 65535).astype(np.uint16)


def make_specimen(path: Path, side: int) -> float:
    """Write the micrograph of `side` px to a tiled BigTIFF at `path`, tile by tile; return seconds taken."""
    import tifffile

    start = time.perf_counter()
    n = -(-side // TILE)
    jobs = [(r, c, side) for r in range(n) for c in range(n)]
    tmp = path.with_name(path.name + ".partial")
    _texture()  # made once here, inherited by the forked workers
    with multiprocessing.get_context("fork").Pool(2) as pool:
        tifffile.imwrite(tmp, pool.imap(make_tile, jobs, chunksize=4), shape=(side, side), dtype=np.uint16,
                         tile=(TILE, TILE), bigtiff=True)
    os.replace(tmp, path)
    return time.perf_counter() - start


def own_seconds(output: str) -> float:
    """Return the time the CLI reports for its own work (after start-up, imports and any cluster start)."""
    return float(output.split(" in ")[1].split(" s,")[0])


def run_cli(args: list[str]) -> tuple[float, float, str, float]:
    """Run `blurmap estimate ARGS` in a new process; return (seconds, peak resident MB of its process tree, output, CPU seconds).

    CPU seconds: user and system time of the process and the children it waited for (its workers).
    """
    import psutil

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "blurmap.cli", "estimate", *args, "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = 0
    stop = threading.Event()

    def sample():
        nonlocal peak
        root = psutil.Process(proc.pid)
        while not stop.is_set():
            try:
                procs = [root] + root.children(recursive=True)
                peak = max(peak, sum(p.memory_info().rss for p in procs))
            except psutil.Error:
                pass
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = proc.communicate()
    stop.set()
    sampler.join()
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        raise RuntimeError(f"blurmap estimate {' '.join(args)} failed:\n{out}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return seconds, peak / 1e6, out.strip(), cpu


@functools.lru_cache(maxsize=1)
def in_memory_image(path: Path) -> np.ndarray:
    """Return the image in `path` read whole into memory (uint16, as on disk)."""
    import tifffile

    return tifffile.imread(path)


def _first_pixel(block: np.ndarray) -> np.ndarray:
    return block[:1, :1]


def in_memory_figure(method: str, chunk: int, source: Path) -> tuple[float, float]:
    """Return (megapixels per second, CPU µs per pixel) of the command line's engine on `source` held in memory, nothing read or written.

    The same blocks and tasks as `blurmap estimate`, each block reading its window and halo from
    the numpy image instead of the file, its map dropped once made instead of written: streaming's
    own cost is what sets the two apart. The blocks alone are timed (the command line's own time
    also holds its noise model, 0.1-0.2 s; here, on numpy, that would be 0.33 s). A whole pass over
    a 67 MP image, so that one figure spans seconds of this VM rather than one fast spell. This
    process's malloc keeps freed memory, as `blurmap estimate` sets its own (cli.keep_freed_memory).
    CPU time is this process's, all threads, user and system.
    """
    from blurmap.cli import keep_freed_memory
    from blurmap.engine import lazy_maps

    keep_freed_memory()
    image = in_memory_image(source)
    lazy, _ = lazy_maps(image, method, (chunk, chunk), reader=image)
    ny, nx = lazy.numblocks[:2]
    start, cpu = time.perf_counter(), time.process_time()
    lazy.map_blocks(_first_pixel, chunks=((1,) * ny, (1,) * nx, (2,)), dtype=np.float32).compute(scheduler="threads")
    return image.size / 1e6 / (time.perf_counter() - start), (time.process_time() - cpu) / image.size * 1e6


def coarse_honesty(path: Path, source: Path, method: str) -> list[tuple[int, float, float]]:
    """Return (factor, p95 |level - block mean of level 0|, the same for a map of the image downsampled) per level, px."""
    import tifffile
    import zarr

    from blurmap import estimate

    root = zarr.open_group(str(path), mode="r")
    full = root["0"][:4096, :4096]
    image = tifffile.imread(source)[:4096, :4096].astype(np.float32)
    rows = []
    k = 1
    while str(k) in root and 2**k <= 16:
        f = 2**k
        h, w = 4096 // f, 4096 // f
        with warnings.catch_warnings():  # a block of NaN (no evidence) has no mean: NaN, left out below
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(full[:h * f, :w * f].reshape(h, f, w, f), axis=(1, 3))
        down = image.reshape(h, f, w, f).mean(axis=(1, 3))
        level = root[str(k)][:h, :w]
        naive = f * estimate(down, method)
        ok = np.isfinite(mean) & np.isfinite(level) & np.isfinite(naive)
        rows.append((f, float(np.percentile(np.abs(level - mean)[ok], 95)),
                     float(np.percentile(np.abs(naive - mean)[ok], 95))))
        k += 1
    return rows


def overview_timing(source: Path, method: str) -> tuple[float, ...]:
    """Return s to lay the lazy pyramid, to its first overview chunk, to a chunk in every 8 x 8, 4 x 4, 2 x 2 group, to all; chunks."""
    from blurmap.io import formats as io
    from blurmap.io.pyramid import SigmaPyramid

    start = time.perf_counter()
    pyramid = SigmaPyramid(io.open_image(source).levels[0], method, {})
    laid = time.perf_counter() - start
    rows, cols = pyramid.maps.numblocks[:2]
    groups = [-(-rows // g) * -(-cols // g) for g in (8, 4, 2)]  # chunks in a grid of one per g x g group
    marks = {}
    for done in pyramid.fill_overview():  # coarse to fine: those grids fill first
        marks.setdefault(done, time.perf_counter() - start)
    return laid, marks[1], *(marks[n] for n in groups), time.perf_counter() - start, pyramid.n_chunks


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sides", type=int, nargs="+", default=[4096, 8192, 16384, 32768])
    parser.add_argument("--method", default="gradient_ratio")
    parser.add_argument("--chunk", type=int, default=1024)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/blurmap-large"))
    parser.add_argument("--repeat", type=int, default=2, help="runs per size; the fastest is reported (this VM "
                        "varies by about 10%% from run to run)")
    parser.add_argument("--workers-side", type=int, default=16384, help="image side for the 1 vs 2 workers run")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    print(f"{os.cpu_count()} cores; method {args.method}; chunks {args.chunk} px; files in {args.dir}")
    made = {}
    for side in args.sides:
        tif = args.dir / f"specimen_{side}.tif"
        made[side] = f"{make_specimen(tif, side):7.0f}" if not tif.exists() else "reused"
    # rounds over every size, so that a slow spell of this VM falls on one run of each size rather
    # than on both runs of one size; the in-memory figure measured again before each run
    in_memory_side = min(args.sides, key=lambda s: abs(s - 8192))
    bases, runs, paired = [], {side: [] for side in args.sides}, {side: [] for side in args.sides}
    own_paired, cpu_paired, busy = ({side: [] for side in args.sides} for _ in range(3))
    for _ in range(args.repeat):
        for side in args.sides:
            mps, cpu = in_memory_figure(args.method, args.chunk, args.dir / f"specimen_{in_memory_side}.tif")
            bases.append(mps)
            runs[side].append(run_cli([str(args.dir / f"specimen_{side}.tif"), str(args.dir / f"map_{side}.zarr"),
                                       "--method", args.method, "--chunk", str(args.chunk), "--overwrite"]))
            seconds, _peak, text, run_cpu = runs[side][-1]
            mp = side * side / 1e6
            paired[side].append(mps * seconds / mp)  # in-memory MP/s over the run's
            own_paired[side].append(mps * own_seconds(text) / mp)  # the same for the CLI's own work
            cpu_paired[side].append(run_cpu / mp / cpu)  # the run's CPU per pixel (start-up included) over in-memory's
            busy[side].append((mps * cpu, run_cpu / seconds))  # cores kept busy: in memory, the run
    base = max(bases)
    print(f"in memory (the {in_memory_side} px specimen read whole, the same engine and chunks, nothing written, "
          f"{os.cpu_count()} threads): {base:.2f} MP/s at best, median {np.median(bases):.2f} (before each run: "
          f"{', '.join(f'{b:.2f}' for b in bases)})")
    print(f"{'side':>6s} {'MP':>7s} {'make s':>7s} {'run s':>7s} {'MP/s':>6s} {'us/px':>6s} {'peak MB':>8s} "
          f"{'vs best in-memory':>17s} {'own s':>6s} {'own us/px':>9s}  own s per round; each run (whole) vs the "
          f"in-memory figure just before it, in wall time and CPU time per pixel")
    costs, own_costs = {}, {}
    for side in args.sides:
        seconds, peak = min(r[0] for r in runs[side]), max(r[1] for r in runs[side])  # the fastest; the highest peak
        own = min(own_seconds(r[2]) for r in runs[side])
        mp = side * side / 1e6
        costs[side] = seconds / mp
        own_costs[side] = own / mp
        print(f"{side:6d} {mp:7.1f} {made[side]:>7s} {seconds:7.1f} {mp / seconds:6.2f} {seconds / mp:6.3f} "
              f"{peak:8.0f} {base / (mp / seconds):16.2f}x {own:6.1f} {own / mp:9.3f}  "
              f"{' '.join(f'{own_seconds(r[2]):.1f}' for r in runs[side])}; "
              f"{' '.join(f'{p:.2f}x' for p in paired[side])}; CPU {' '.join(f'{c:.2f}x' for c in cpu_paired[side])}; "
              f"cores busy (in memory / run) {' '.join(f'{a:.1f}/{b:.1f}' for a, b in busy[side])}", flush=True)
    big = [side for side in args.sides if side >= 16384]
    if big:
        pairs = [p for side in big for p in paired[side]]
        print(f"runs of {', '.join(str(s) for s in big)} px against the in-memory figure just before each: median "
              f"{np.median(pairs):.2f}x, worst {max(pairs):.2f}x; their fastest against the fastest in-memory figure: "
              f"{', '.join(f'{base * costs[s]:.2f}x' for s in big)} (target <= 1.3x)")
        owns = [p for side in big for p in own_paired[side]]
        print(f"the CLI's own work (its reported time, after the interpreter's start and imports) against the same: "
              f"{' '.join(f'{p:.2f}x' for p in owns)}; median {np.median(owns):.2f}x, worst {max(owns):.2f}x")
        cpus = [c for side in big for c in cpu_paired[side]]
        steady = [p for side in big for p, (a, b) in zip(paired[side], busy[side]) if min(a, b) >= 0.9 * os.cpu_count()]
        print(f"the same in CPU time per pixel (the run's start-up included): median {np.median(cpus):.2f}x, worst "
              f"{max(cpus):.2f}x; in wall time where both kept at least 90% of the cores busy: "
              f"{' '.join(f'{p:.2f}x' for p in steady) or 'none'}")
    if len(costs) > 1:
        lo, hi = min(costs.values()), max(costs.values())
        print(f"cost per pixel of the whole command: {min(costs, key=costs.get)} px side cheapest, spread "
              f"{100 * (hi / lo - 1):.1f}% (its start-up, 1-2 s, is most of a 16 MP run)")
        lo, hi = min(own_costs.values()), max(own_costs.values())
        print(f"cost per pixel of the CLI's own work (after start-up and imports): spread {100 * (hi / lo - 1):.1f}% "
              f"(target <= 15%)")
    side = args.workers_side
    tif = args.dir / f"specimen_{side}.tif"
    if not tif.exists():
        make_specimen(tif, side)
    times, owns = {1: np.inf, 2: np.inf}, {1: np.inf, 2: np.inf}
    for _ in range(args.repeat):  # alternating, the fastest of each kept
        for n in (1, 2):
            seconds, peak, text, _cpu = run_cli([str(tif), str(args.dir / f"map_{side}_w{n}.zarr"), "--method", args.method,
                                           "--chunk", str(args.chunk), "--workers", str(n), "--overwrite"])
            times[n], owns[n] = min(times[n], seconds), min(owns[n], own_seconds(text))
            print(f"--workers {n} on {side} px: {seconds:.1f} s ({side * side / 1e6 / seconds:.2f} MP/s), its own "
                  f"work {own_seconds(text):.1f} s (after the cluster started), peak {peak:.0f} MB (all processes)",
                  flush=True)
    print(f"two workers against one: {times[1] / times[2]:.2f}x whole command, {owns[1] / owns[2]:.2f}x its work "
          f"(target >= 1.6)")
    print("\ncoarse levels of the written map against the block mean of its full resolution (first 4096 px square):")
    print(f"{'factor':>6s} {'p95 |level - mean| px':>22s} {'p95 |f x map(downsampled) - mean| px':>38s}")
    for f, level, naive in coarse_honesty(args.dir / f"map_{side}_w2.zarr", tif, args.method):
        print(f"{f:6d} {level:22.4f} {naive:38.3f}")
    for side in sorted({min(args.sides, key=lambda s: abs(s - 8192)), max(args.sides)}):  # 67 MP and the largest
        laid, first, g8, g4, g2, whole, n = overview_timing(args.dir / f"specimen_{side}.tif", args.method)
        print(f"\nnapari's lazy layer on {side} px (what the widget does, without the GUI): pyramid laid in {laid:.1f} s, "
              f"first overview chunk at {first:.1f} s; a chunk in every 8 x 8 group of chunks at {g8:.1f} s, every "
              f"4 x 4 at {g4:.1f} s, every 2 x 2 at {g2:.1f} s; whole overview ({n} chunks) at {whole:.1f} s", flush=True)
    for path in args.dir.glob("map_*.zarr"):
        shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    main()
