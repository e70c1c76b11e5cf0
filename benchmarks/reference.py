"""Reference-based recovery (method "reference"): accuracy at SNR 30 dB and speed per core.

    python benchmarks/reference.py

Accuracy: the benchmark's sharp sources (dead leaves, brick, grass, gravel; see _suite.py),
blurred by blurmap.blur with ramp, sine and step profiles over 0.3 .. 5 px, plus white noise at
SNR 30 dB (std 0.0316 of the image's). Each is fitted against its sharp source with every
parameter estimated (registration, gain, offset, noise), as a user would run it. RMSE (px) over
pixels with an estimate, and the share unknown.
Speed: one 1024 x 1024 fit on one core (numpy path, single thread), preparation (registration,
gain/offset refinement) timed apart; and the dask path over 2 threads on 2048 x 2048.
"""

from __future__ import annotations

import time

import numpy as np
from _suite import SIZE, sources

from blurmap import blur, estimate, synthetic
from blurmap.engine import prepare


def profiles() -> dict[str, np.ndarray]:
    """Return the issue's profiles over 0.3 .. 5 px: ramp, one sine period, a step."""
    shape = (SIZE, SIZE)
    return {"ramp": synthetic.ramp(shape, 0.3, 5.0), "sine": synthetic.sine(shape, 0.3, 5.0),
            "step": synthetic.step(shape, 0.3, 5.0)}


def accuracy() -> None:
    rng = np.random.default_rng(0)
    print(f"{'profile':6s} {'source':14s} {'RMSE px':>8s} {'unknown':>8s}")
    rows = []
    for pname, truth in profiles().items():
        for sname, sharp in sources().items():
            clean = blur(sharp, truth)
            noisy = clean + rng.normal(0, 0.0316 * clean.std(), clean.shape).astype(np.float32)
            got = estimate(noisy, "reference", reference=sharp)
            known = np.isfinite(got)
            rmse = float(np.sqrt(np.mean((got[known] - truth[known]) ** 2)))
            rows.append((pname, rmse, 1 - known.mean()))
            print(f"{pname:6s} {sname:14s} {rmse:8.3f} {1 - known.mean():8.3f}")
    for pname in profiles():
        print(f"{pname:6s} {'MEAN':14s} {np.mean([r[1] for r in rows if r[0] == pname]):8.3f}")
    print(f"{'all':6s} {'MEAN':14s} {np.mean([r[1] for r in rows]):8.3f}   (target <= 0.10 px)")
    pooled = np.sqrt(np.mean([r[1] ** 2 for r in rows]))
    print(f"{'all':6s} {'POOLED':14s} {pooled:8.3f}   (RMSE over every pixel of every case)")


def step_phases() -> None:
    """The step above falls on the 4 px grid; print the mean over all four phases against it."""
    rng = np.random.default_rng(1)
    out = []
    for sname in ("dead_leaves_a", "dead_leaves_b"):
        sharp = sources()[sname]
        for position in range(SIZE // 2, SIZE // 2 + 4):
            truth = np.where(np.arange(SIZE) < position, 0.3, 5.0)[None, :] * np.ones((SIZE, 1), np.float32)
            clean = blur(sharp, truth)
            noisy = clean + rng.normal(0, 0.0316 * clean.std(), clean.shape).astype(np.float32)
            got = estimate(noisy, "reference", reference=sharp)
            out.append(float(np.sqrt(np.nanmean((got - truth) ** 2))))
    print(f"step 0.3 -> 5 px at the four phases of the 4 px grid, dead leaves: RMSE {np.mean(out):.3f} "
          f"(per phase {', '.join(f'{v:.3f}' for v in np.reshape(out, (2, 4)).mean(axis=0))})")


def speed() -> None:
    import dask
    import dask.array as da

    sharp = np.tile(synthetic.dead_leaves((512, 512), seed=21), (2, 2))
    blurred = blur(sharp, synthetic.sine(sharp.shape, 0.3, 5.0))
    start = time.perf_counter()
    prep = prepare(blurred, "reference", reference=sharp)
    prepared = time.perf_counter() - start
    fit = prep.estimator.func
    best = np.inf
    for _ in range(3):
        start = time.perf_counter()
        fit(prep.image, **prep.params, **prep.inputs)
        best = min(best, time.perf_counter() - start)
    print(f"1024 x 1024, one core: fit {best:.2f} s = {sharp.size / 1e6 / best:.2f} MP/s per core; "
          f"preparation (register, gain/offset refinement on a 512 px crop) {prepared:.2f} s once per image")
    big_sharp = np.tile(sharp, (2, 2))
    big = blur(big_sharp, synthetic.ramp(big_sharp.shape, 0.3, 5.0))
    lazy = estimate(da.from_array(big, chunks=1024), "reference", reference=big_sharp,
                    **{k: prep.params[k] for k in ("shift_y", "shift_x", "gain", "offset", "noise")})
    start = time.perf_counter()
    with dask.config.set(scheduler="threads", num_workers=2):
        lazy.compute()
    seconds = time.perf_counter() - start
    print(f"2048 x 2048, dask, 1024 px chunks, 2 threads: {seconds:.2f} s = {big.size / 1e6 / seconds:.2f} MP/s "
          f"({big.size / 1e6 / seconds / 2:.2f} per core)")


if __name__ == "__main__":
    accuracy()
    step_phases()
    speed()
