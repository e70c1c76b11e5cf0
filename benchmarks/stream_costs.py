"""Where streaming's time goes: the command line's engine on one specimen, with and without its disk, interleaved.

    python benchmarks/stream_costs.py [--side 8192] [--rounds 3] [--dir /tmp/blurmap-large]

Needs the specimen `benchmarks/large.py` makes (specimen_SIDE.tif). In one process, each round
runs four variants one after the other, so that this VM's drift falls on all of them alike:
  in memory     the engine's blocks on the image held in memory, maps dropped (large.py's figure)
  stream        blurmap.stream.estimate_file, TIFF in, OME-Zarr out, as `blurmap estimate` does
  numpy in      the same, each block reading its window from the image held in memory
  numpy in, no writes   the same, with the chunk files not written (stream._put a no-op)
Megapixels per second of each; the differences are reading the TIFF, writing the output, and
the rest (noise model, Zarr groups, the pyramid's top levels). First, how many block windows
one and two threads read from the TIFF a second (the file's pages cached).
"""

from __future__ import annotations

import argparse
import shutil
import threading
import time
from pathlib import Path

import numpy as np
from large import in_memory_figure, in_memory_image

from blurmap.cli import keep_freed_memory
from blurmap.io import formats as io
from blurmap.io import stream

METHOD = "gradient_ratio"
CHUNK = 1024


def streamed(source: Path, out: Path, image: np.ndarray | None = None, write: bool = True) -> float:
    """Return MP/s of estimate_file on `source`; blocks read `image` instead of the file when given; no chunk files if not `write`."""
    opener, put = io.open_image, stream._put
    if image is not None:
        stream.io.open_image = lambda path: opener(path)._replace(planes=[io.Plane(image, ())])
    if not write:
        stream._put = lambda array, origin, plane: None
    try:
        shutil.rmtree(out, ignore_errors=True)
        done = stream.estimate_file(source, out, METHOD, chunk=CHUNK, progress=False)
    finally:
        stream.io.open_image, stream._put = opener, put
        shutil.rmtree(out, ignore_errors=True)
    return done["megapixels_per_second"]


def window_reads(source: Path, threads: int, per_thread: int = 40) -> float:
    """Return windows (one block with its halo, 1160 px a side) read from the file per second by `threads` threads."""
    plane = io.open_image(source).planes[0]
    rows = plane.shape[0] // CHUNK - 1

    def read(k: int) -> None:
        for i in range(per_thread):
            y = CHUNK * ((7 * k + i) % rows)
            plane[y:y + CHUNK + 136, CHUNK:2 * CHUNK + 136]

    start = time.perf_counter()
    pool = [threading.Thread(target=read, args=(k,)) for k in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return threads * per_thread / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--side", type=int, default=8192)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/blurmap-large"))
    args = parser.parse_args()
    source = args.dir / f"specimen_{args.side}.tif"
    if not source.exists():
        raise SystemExit(f"{source} is missing: run benchmarks/large.py first (it makes the specimens)")
    keep_freed_memory()  # as `blurmap estimate` does
    image = in_memory_image(source)
    out = args.dir / "stream_costs.zarr"
    in_memory_figure(METHOD, CHUNK, source)  # imports and first calls, not timed below
    window_reads(source, 1)  # the file's pages cached
    reads = {n: [window_reads(source, n) for _ in range(2)] for n in (1, 2)}
    print("windows read from the TIFF a second: " + "; ".join(
        f"{n} thread{'s' if n > 1 else ''} {' '.join(f'{v:.0f}' for v in vs)}" for n, vs in reads.items()))
    names = ["in memory", "stream", "numpy in", "numpy in, no writes"]
    rows = []
    for _ in range(args.rounds):
        rows.append([in_memory_figure(METHOD, CHUNK, source)[0], streamed(source, out), streamed(source, out, image),
                     streamed(source, out, image, write=False)])
        print("  ".join(f"{n}: {v:.2f}" for n, v in zip(names, rows[-1])), "MP/s", flush=True)
    med = np.median(np.array(rows), axis=0)
    print(f"median MP/s over {args.rounds} rounds on {args.side} px: "
          + ", ".join(f"{n} {v:.2f}" for n, v in zip(names, med)))
    print(f"in memory / stream: {med[0] / med[1]:.2f}x; of which reading the TIFF {med[2] / med[1]:.2f}x, writing "
          f"{med[3] / med[2]:.2f}x, the rest {med[0] / med[3]:.2f}x")


if __name__ == "__main__":
    main()
