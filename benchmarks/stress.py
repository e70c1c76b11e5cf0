"""The stress benchmark: every estimator on scenes drawn at random from named regimes, never tuned on.

    python benchmarks/stress.py [--seeds eval|dev] [--scenes 6] [--jobs 2] [METHOD ...]

Scenes come from benchmarks/_scenes.py: textures (dead leaves of several radius laws, procedural
textures, photographs no other data set of the project uses), sigma fields (tilted planes at any
angle, steps, radial fields, sines, smooth random fields; 0.3 to 8 px), SEM degradations (shot
noise of 10 to 1000 counts at the brightest pixel, brightness ramps of 1x to 100x in any
direction, detector offset and read noise, scan-line noise, brighter edges) and photographic ones
(noise-free float, 8-bit, JPEG at quality 75). Scene k of a regime is drawn from seed k of the
chosen range: --seeds dev (DEV_SEEDS, for developing) or --seeds eval (EVAL_SEEDS, the default:
the only figures to report). Every estimator runs with its defaults, as a user would (`reference`
is given the sharp specimen under the scene's brightness ramp).

Prints Markdown tables, the rows docs/benchmarks.md holds: per regime and px method, RMSE (px,
over known pixels, averaged over the regime's scenes), the share within 30% of the truth (unknown
pixels count as misses) and the share unknown; the mean error where the true sigma is below 1 px
and above 3 px; per regime and relative method, |Spearman| with the true sigma.
"""

from __future__ import annotations

import argparse
import time
import warnings
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from _scenes import DEV_SEEDS, EVAL_SEEDS, REGIMES, scene
from scipy.stats import spearmanr

from blurmap import estimate, estimators
from blurmap.analysis.summary import errors

SPEARMAN_SAMPLES = 20_000  # pixels per scene, on a regular grid


def measure(args: tuple[str, int, tuple[str, ...]]) -> dict:
    """Return every method's figures on one scene: {method: {...}}."""
    regime, seed, methods = args
    sc = scene(regime, seed)
    out = {}
    for method in methods:
        est = estimators()[method]
        extra = {"reference": sc.sharp} if "reference" in est.inputs else {}
        start = time.perf_counter()
        try:
            sigma = np.asarray(estimate(sc.image, method, **extra), np.float64)
        except ValueError as err:  # a refusal is reported, not hidden
            out[method] = {"error": str(err)}
            continue
        seconds = time.perf_counter() - start
        known = np.isfinite(sigma)
        row = {"unknown": float(1 - known.mean()), "seconds": seconds}
        if est.units == "px":
            e = errors(sigma, sc.truth)
            low, high = known & (sc.truth < 1.0), known & (sc.truth > 3.0)
            row.update(rmse=e["rmse_px"] if known.any() else np.nan, within=e["within_30pct"],  # no RMSE if none known
                       low=(float(np.sum(sigma[low] - sc.truth[low])), int(low.sum())),
                       high=(float(np.sum(sigma[high] - sc.truth[high])), int(high.sum())))
        else:
            step = max(1, int(np.sqrt(known.sum() / SPEARMAN_SAMPLES)))
            s, t = sigma[::step, ::step], sc.truth[::step, ::step]
            keep = np.isfinite(s)
            row["spearman"] = abs(float(spearmanr(s[keep], t[keep])[0])) if keep.sum() > 10 else np.nan
        out[method] = row
    return out


def _mean(rows: list[dict], key: str) -> float:
    """Return the mean of `key` over the scenes that have it (a scene with no known pixel has no RMSE)."""
    values = [r[key] for r in rows if key in r and np.isfinite(r[key])]
    return float(np.mean(values)) if values else np.nan


def _bias(rows: list[dict], key: str) -> float:
    total = sum(r[key][0] for r in rows if key in r)
    count = sum(r[key][1] for r in rows if key in r)
    return total / count if count else np.nan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("methods", nargs="*", default=list(estimators()))
    parser.add_argument("--seeds", choices=("eval", "dev"), default="eval")
    parser.add_argument("--scenes", type=int, default=6, help="scenes per regime")
    parser.add_argument("--first", type=int, default=0, help="index of the first seed of the range")
    parser.add_argument("--jobs", type=int, default=2, help="processes")
    parser.add_argument("--regimes", nargs="*", default=list(REGIMES))
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=RuntimeWarning)  # means of empty selections are reported as nan
    seeds = (EVAL_SEEDS if args.seeds == "eval" else DEV_SEEDS)[args.first:args.first + args.scenes]
    methods = tuple(args.methods)
    jobs = [(regime, seed, methods) for regime in args.regimes for seed in seeds]
    with ProcessPoolExecutor(args.jobs) as pool:
        results = list(pool.map(measure, jobs))
    table = {(regime, m): [] for regime in args.regimes for m in methods}
    errors_seen = []
    for (regime, seed, _), res in zip(jobs, results):
        for m, row in res.items():
            if "error" in row:
                errors_seen.append(f"{m} on {regime} seed {seed}: {row['error']}")
            else:
                table[(regime, m)].append(row)
    px = [m for m in methods if estimators()[m].units == "px"]
    rel = [m for m in methods if estimators()[m].units != "px"]
    print(f"Stress benchmark, {args.seeds} seeds {seeds.start}-{seeds.stop - 1}, {args.scenes} scenes of "
          f"384 x 384 px per regime\n")
    if px:
        print("RMSE px · within 30% · unknown, per regime (mean over its scenes)\n")
        print("| regime | " + " | ".join(f"`{m}`" for m in px) + " |")
        print("|---|" + "---|" * len(px))
        means = {m: [] for m in px}
        for regime in args.regimes:
            cells = []
            for m in px:
                rows = table[(regime, m)]
                r, w, u = _mean(rows, "rmse"), _mean(rows, "within"), _mean(rows, "unknown")
                means[m].append((r, w, u))
                cells.append(f"{r:.3f} · {100 * w:.0f}% · {100 * u:.1f}%")
            print(f"| {regime} | " + " | ".join(cells) + " |")
        print("| **mean over regimes** | " + " | ".join(
            f"**{np.nanmean([v[0] for v in means[m]]):.3f} · {100 * np.nanmean([v[1] for v in means[m]]):.0f}% · "
            f"{100 * np.nanmean([v[2] for v in means[m]]):.1f}%**" for m in px) + " |")
        print("| worst regime RMSE | " + " | ".join(f"{np.nanmax([v[0] for v in means[m]]):.3f}" for m in px) + " |")
        print("\nbias (px, estimate minus truth) where the true sigma is below 1 px / above 3 px\n")
        print("| regime | " + " | ".join(f"`{m}`" for m in px) + " |")
        print("|---|" + "---|" * len(px))
        for regime in args.regimes:
            print(f"| {regime} | " + " | ".join(
                f"{_bias(table[(regime, m)], 'low'):+.2f} / {_bias(table[(regime, m)], 'high'):+.2f}" for m in px) + " |")
    if rel:
        print("\n|Spearman| with the true sigma, per regime (mean over its scenes) · unknown\n")
        print("| regime | " + " | ".join(f"`{m}`" for m in rel) + " |")
        print("|---|" + "---|" * len(rel))
        for regime in args.regimes:
            print(f"| {regime} | " + " | ".join(
                f"{_mean(table[(regime, m)], 'spearman'):.2f} · {100 * _mean(table[(regime, m)], 'unknown'):.1f}%"
                for m in rel) + " |")
    seconds = {m: np.mean([r["seconds"] for k, rows in table.items() if k[1] == m for r in rows]) for m in methods}
    print("\nseconds per scene: " + ", ".join(f"{m} {s:.2f}" for m, s in seconds.items()))
    for line in errors_seen:
        print(f"refused: {line}")


if __name__ == "__main__":
    main()
