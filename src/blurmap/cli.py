"""The command line: `blurmap demo OUTDIR` and `blurmap methods`."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from . import report
from .engine import estimate
from .focal import focal, hough_focal_line, profile
from .registry import DEFAULT, estimators, get
from .synthetic import sem_sample


def _write_atomic(path: Path, write) -> None:
    """Write a file through `write(temporary path)`, then move it into place: never half written."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_tiff(path: Path, data: np.ndarray, description: str) -> None:
    import tifffile

    _write_atomic(path, lambda tmp: tifffile.imwrite(tmp, data, description=description))


def demo(outdir: Path, method: str | None, shape: tuple[int, int], seed: int) -> dict:
    """Run the main job on the generated sample; write TIFFs, a PNG and a JSON summary; return it."""
    est = get(method)
    outdir.mkdir(parents=True, exist_ok=True)
    image, truth = sem_sample(shape, seed=seed)
    start = time.perf_counter()
    sigma, confidence = estimate(image, est.name, return_confidence=True)
    seconds = time.perf_counter() - start
    summary = {
        "method": est.name,
        "units": est.units,
        "shape": list(image.shape),
        "seconds": round(seconds, 3),
        "median_sigma_thirds_px": {"estimated": report.thirds(sigma), "true": report.thirds(truth)},
        "sharpest_band_height_fraction": {
            "estimated": report.sharpest_row(-sigma if est.higher_is_sharper else sigma),
            "true": report.sharpest_row(truth)},
    }
    if est.units == "px":  # a relative score has no focal-plane model and no error in px
        fit = focal(sigma)
        prof = profile(sigma, fit)
        summary["focal_line"] = {"estimated": fit.as_dict(), "true": focal(truth).as_dict(),
                                 "hough_check": hough_focal_line(sigma).as_dict()}
        summary["profile"] = prof.as_dict()
        summary["error"] = report.errors(sigma, truth)
    _write_tiff(outdir / "micrograph.tif", image, "synthetic SEM micrograph of a tilted specimen")
    _write_tiff(outdir / "sigma_true.tif", truth, "true Gaussian blur sigma, px")
    _write_tiff(outdir / f"sigma_{est.name}.tif", sigma, f"estimated blur sigma, {est.units}, {est.name}")
    _write_tiff(outdir / f"confidence_{est.name}.tif", confidence, "confidence, 0 to 1")
    shown = truth if est.units == "px" else sigma
    limits = (0.0, float(np.nanpercentile(shown, 99.5)))
    label = "Gaussian blur sigma (px)" if est.units == "px" else f"{est.name} (relative, higher is sharper)"
    _write_atomic(outdir / f"overlay_{est.name}.png",
                  lambda tmp: report.overlay_png(tmp, image, sigma, f"{est.name} map", limits, label))
    if est.units == "px":
        _write_atomic(outdir / f"profile_{est.name}.png",
                      lambda tmp: report.profile_png(tmp, prof, fit, est.units))
    _write_atomic(outdir / "summary.json",
                  lambda tmp: Path(tmp).write_text(json.dumps(summary, indent=2) + "\n"))
    return summary


def _print_summary(s: dict, outdir: Path) -> None:
    thirds = s["median_sigma_thirds_px"]
    print(f"blurmap demo: {s['method']} on a {s['shape'][0]} x {s['shape'][1]} px synthetic SEM micrograph "
          f"({s['seconds']:.2f} s)")
    print(f"  median ({s['units']})   upper   middle  lower")
    print("    estimated         " + "  ".join(f"{v:6.2f}" for v in thirds["estimated"]))
    print("    true sigma (px)   " + "  ".join(f"{v:6.2f}" for v in thirds["true"]))
    band = s["sharpest_band_height_fraction"]
    print(f"  sharpest band at {100 * band['estimated']:.1f}% of the height (true {100 * band['true']:.1f}%)")
    if "focal_line" in s:
        est, true = s["focal_line"]["estimated"], s["focal_line"]["true"]
        print(f"  focal line at {100 * est['position']:.1f}% of the height, {est['angle_deg']:+.1f} deg "
              f"(true {100 * true['position']:.1f}%, {true['angle_deg']:+.1f} deg); blur grows by "
              f"{est['gradient']:.4f} px per px (true {true['gradient']:.4f})")
        hough = s["focal_line"]["hough_check"]
        print(f"  Hough check on the band's ridge: {100 * hough['position']:.1f}% of the height, "
              f"{hough['angle_deg']:+.1f} deg")
    if "error" in s:
        e = s["error"]
        print(f"  error against the truth: RMSE {e['rmse_px']:.3f} px, {100 * e['within_30pct']:.1f}% of pixels "
              f"within 30%, {100 * e['unknown']:.1f}% unknown")
    written = sorted(p.name for p in outdir.iterdir() if not p.name.startswith("."))
    print(f"  wrote {outdir}/: {' '.join(written)}")


def methods_table() -> str:
    """Return the registry as a Markdown table (the README's table is generated from it)."""
    lines = ["| method | units | halo (px) | parameters (default, range) |", "|---|---|---|---|"]
    for est in estimators().values():
        params = "; ".join(
            f"`{p.name}`={p.default} ({p.minimum if p.minimum is not None else ''}..{p.maximum if p.maximum is not None else ''} "
            f"{p.unit})" for p in est.params)
        lines.append(f"| `{est.name}` | {est.units} | {est.halo} | {params} |")
    return "\n".join(lines)


def _shape(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 768x1024, not {text!r}") from None
    if h < 64 or w < 64:
        raise argparse.ArgumentTypeError("size must be at least 64x64")
    return h, w


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = argparse.ArgumentParser(prog="blurmap", description="Measure how blurred each part of an image is.")
    sub = parser.add_subparsers(dest="command", required=True)
    p_demo = sub.add_parser("demo", help="generate the SEM sample, estimate its sigma map, write and summarise")
    p_demo.add_argument("outdir", type=Path)
    blind = sorted(name for name, est in estimators().items() if not est.inputs)  # the sample has no reference
    p_demo.add_argument("--method", default=DEFAULT, choices=blind)
    p_demo.add_argument("--size", type=_shape, default=(768, 1024), help="HxW in px (default 768x1024)")
    p_demo.add_argument("--seed", type=int, default=0)
    sub.add_parser("methods", help="list the registered estimators as a Markdown table")
    args = parser.parse_args(argv)
    if args.command == "methods":
        print(methods_table())
        return 0
    summary = demo(args.outdir, args.method, args.size, args.seed)
    _print_summary(summary, args.outdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
