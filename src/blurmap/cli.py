"""The command line: `blurmap demo OUTDIR`, `blurmap profile IMAGE OUTDIR`, `blurmap estimate INPUT OUTPUT`, `blurmap methods`."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from ._validate import as_2d_float
from .analysis import figures
from .analysis.astigmatism import astigmatism
from .analysis.focal import focal, hough_focal_line, profile
from .analysis.optics import SIGMA_LIMIT, check_geometry
from .analysis.summary import TILE, errors, sharpest_row, thirds, tile_table
from .engine import DEFAULT_CHUNK, estimate
from .io.formats import read_pixels
from .io.metadata import read_geometry
from .registry import DEFAULT, estimators, get, get_blind
from .synthetic import sem_sample

__all__ = ["main"]


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


def _write_maps(outdir: Path, est, image: np.ndarray, sigma: np.ndarray, confidence: np.ndarray, title: str,
                top: float, focal_fit: tuple | None, pixel: tuple | None = None) -> None:
    """Write the map and confidence TIFFs, the overlay PNG (colour bar 0 to `top`) and, given (fit, profile), the profile PNG."""
    _write_tiff(outdir / f"sigma_{est.name}.tif", sigma, f"{est.label()}, {est.name}")
    _write_tiff(outdir / f"confidence_{est.name}.tif", confidence, "confidence, 0 to 1")
    _write_atomic(outdir / f"overlay_{est.name}.png",
                  lambda tmp: figures.overlay_png(tmp, image, sigma, title, (0.0, top), est.label()))
    if focal_fit is not None:
        fit, prof = focal_fit
        _write_atomic(outdir / f"profile_{est.name}.png", lambda tmp: figures.profile_png(tmp, prof, fit, est.units, pixel))


def outputs(outdir: Path, method: str, *extra: str) -> list[Path]:
    """Return the files `profile` and `demo` write for `method` into `outdir` (extra names first, then a TIFF for each
    further output of the method, e.g. sigma_major)."""
    return [outdir / name for name in extra] + [
        outdir / f"{kind}_{method}.{suffix}" for kind, suffix in
        (("sigma", "tif"), ("confidence", "tif"), ("overlay", "png"), ("profile", "png"), ("summary", "json"))] + [
        outdir / f"{name}_{method}.tif" for name in get(method).extra_outputs]


def check_outputs(files: list[Path], overwrite: bool, inputs: tuple[Path, ...] = ()) -> None:
    """Refuse, before anything is written, to write over an input, into a folder that is a file, or over results."""
    outdir = files[0].parent
    if outdir.exists() and not outdir.is_dir():
        raise NotADirectoryError(f"{outdir} is a file, not a folder: choose another output folder")
    for path in files:
        if any(path.resolve() == source.resolve() for source in inputs):
            raise ValueError(f"{path} is the input itself: write the results into another folder")
    existing = [p.name for p in files if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{outdir} holds results already ({', '.join(existing)}); pass --overwrite to "
                              "replace them")


def demo(outdir: Path, method: str | None, shape: tuple[int, int], seed: int, overwrite: bool = False) -> dict:
    """Run the main job on the generated sample; write TIFFs, a PNG and a JSON summary; return it."""
    est = get(method)
    if seed < 0:
        raise ValueError(f"--seed must be 0 or more, not {seed}")
    check_outputs(outputs(outdir, est.name, "micrograph.tif", "sigma_true.tif"), overwrite)
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
        "median_sigma_thirds_px": {"estimated": thirds(sigma), "true": thirds(truth)},
        "sharpest_band_height_fraction": {
            "estimated": sharpest_row(-sigma if est.higher_is_sharper else sigma),
            "true": sharpest_row(truth)},
    }
    focal_fit = None
    if est.units == "px":  # a relative score has no focal-plane model and no error in px
        fit = focal(sigma)
        summary["focal_line"] = {"estimated": fit.as_dict(), "true": focal(truth).as_dict(),
                                 "hough_check": hough_focal_line(sigma).as_dict()}
        if fit.found:
            prof = profile(sigma, fit)
            summary["profile"] = prof.as_dict()
            focal_fit = (fit, prof)
        summary["error"] = errors(sigma, truth)
    _write_tiff(outdir / "micrograph.tif", image, "synthetic SEM micrograph of a tilted specimen")
    _write_tiff(outdir / "sigma_true.tif", truth, "true Gaussian blur sigma, px")
    shown = truth if est.units == "px" else sigma
    _write_maps(outdir, est, image, sigma, confidence, f"{est.title} ({est.name}) on the demo micrograph",
                float(np.nanpercentile(shown, 99.5)),
                focal_fit)
    _write_atomic(outdir / "summary.json",
                  lambda tmp: Path(tmp).write_text(json.dumps(summary, indent=2) + "\n"))
    return summary


def read_image(path: Path) -> np.ndarray:
    """Return the pixels of a TIFF, PNG or JPEG file (whole, in memory), or raise a clear error."""
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder, not an image file (for a Zarr store, use blurmap estimate)")
    if not path.is_file():
        raise FileNotFoundError(f"no such image file: {path}")
    if path.suffix.lower() in (".tif", ".tiff"):
        import tifffile

        try:
            return tifffile.imread(path)
        except Exception as err:  # tifffile raises many kinds for a damaged file
            raise ValueError(f"cannot read {path} as a TIFF ({type(err).__name__}: {err}); is it whole?") from None
    return read_pixels(path)


def parse_params(pairs: list[str]) -> dict:
    """Return {name: value} from 'name=value' strings; values are numbers, or None for 'none'."""
    out = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name:
            raise ValueError(f"a parameter must look like name=value, not {pair!r}")
        if text.strip().lower() in ("none", "auto"):
            out[name] = None
            continue
        try:
            out[name] = float(text)
        except ValueError:
            raise ValueError(f"parameter {name!r} must be a number or 'none', not {text!r}") from None
    return out


def profile_image(path: Path, outdir: Path, method: str | None, params: dict, overwrite: bool = False,
                  geometry: dict | None = None, geometry_source: str = "", table_tile: int | None = None) -> dict:
    """Estimate a user's image; write the map, overlay, focal profile PNG and JSON; return the summary.

    Nothing is written over the input, over earlier results (unless `overwrite`), or before the
    image and the parameters are checked. `geometry` (pixel_size and unit: sigma in that unit too;
    with tilt_deg and sigma_limit, the optics of a tilted specimen; see blurmap.analysis.optics),
    said to come from `geometry_source`. `table_tile` (px) adds table_<method>.csv: per-tile
    statistics (see blurmap.analysis.summary.tile_table).
    """
    est = get_blind(method)
    if table_tile is not None and table_tile < 8:
        raise ValueError(f"--table tiles must be at least 8 px a side, not {table_tile}")
    geometry = dict(geometry or {})
    pixel = (geometry.pop("pixel_size", None), geometry.pop("unit", None))
    if "tilt_deg" in geometry:
        check_geometry(pixel[0], geometry["tilt_deg"], geometry["sigma_limit"])
        geometry.update(pixel_size=pixel[0], unit=pixel[1])
    check_outputs(outputs(outdir, est.name, *([f"table_{est.name}.csv"] if table_tile else [])), overwrite,
                  inputs=(path,))
    image = as_2d_float(read_image(path))  # grey float32; RGB becomes luminance with a warning
    start = time.perf_counter()
    maps = estimate(image, est.name, return_outputs=True, **params)  # checks before writing
    sigma, confidence = maps["sigma"], maps["confidence"]
    seconds = time.perf_counter() - start
    outdir.mkdir(parents=True, exist_ok=True)
    summary = {"image": str(path), "method": est.name, "units": est.units, "label": est.label(),
               "params": params, "shape": list(sigma.shape), "seconds": round(seconds, 3),
               "median_thirds": thirds(sigma), "geometry": geometry_source or None,
               "pixel_size": None if pixel[0] is None else {"value": pixel[0], "unit": pixel[1]},
               "sharpest_band_height_fraction": sharpest_row(-sigma if est.higher_is_sharper else sigma)}
    if est.units == "px":  # the tilted-plane model is in px of sigma
        fit = focal(sigma, **geometry)
        summary["focal_line"] = {"fit": fit.as_dict(), "hough_check": hough_focal_line(sigma).as_dict()}
        focal_fit = None
        if fit.found:  # a line that shows no band is not drawn, nor a profile against it
            prof = profile(sigma, fit)
            summary["profile"] = prof.as_dict()
            focal_fit = (fit, prof)
    else:
        focal_fit = None
        summary["focal_line"] = None
        summary["note"] = "a relative score has no focal-plane model in px; use a px method for the focal line"
    if "sigma_major" in maps:  # a directional method: the frame's astigmatism, across the focal line if found
        line = summary["focal_line"]["fit"] if summary["focal_line"] else None
        summary["astigmatism"] = astigmatism(maps["sigma_major"], maps["sigma_minor"], maps["angle_deg"],
                                             fit if line and line["found"] else None).as_dict()
    for name in est.extra_outputs:
        _write_tiff(outdir / f"{name}_{est.name}.tif", maps[name], f"{name} ({est.output_unit(name)}), {est.name}")
    finite = sigma[np.isfinite(sigma)]
    _write_maps(outdir, est, image, sigma, confidence, f"{path.name}: {est.title} ({est.name})",
                float(np.percentile(finite, 99.5)) if finite.size else 1.0, focal_fit,
                pixel if pixel[0] is not None else None)
    if table_tile:
        rows = tile_table(sigma, confidence, table_tile, *pixel) if pixel[0] is not None else \
            tile_table(sigma, confidence, table_tile)
        _write_atomic(outdir / f"table_{est.name}.csv", lambda tmp: _write_csv(tmp, rows))
    _write_atomic(outdir / f"summary_{est.name}.json",
                  lambda tmp: Path(tmp).write_text(json.dumps(summary, indent=2) + "\n"))
    return summary


def _write_csv(path, rows: list[dict]) -> None:
    """Write dict rows as CSV with a header (NaN as empty)."""
    import csv

    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if isinstance(v, float) and not np.isfinite(v) else v) for k, v in row.items()})


def focus_series_files(path: Path, outdir: Path, z_step: float, unit: str, method: str | None, params: dict,
                       overwrite: bool = False, fit_kind: str = "sigma") -> dict:
    """Fit a focus series (a multi-page TIFF, one focus position a page); write the height map, its confidence,
    the all-in-focus image and a JSON summary; return the summary. Nothing is written before the input is checked.
    """
    from .analysis.focus_series import focus_series

    est = get_blind(method)
    tag = est.name if fit_kind == "sigma" else "relative"  # the files say how the heights were found
    files = [outdir / f"{kind}_{tag}.{suffix}" for kind, suffix in
             (("height", "tif"), ("height_confidence", "tif"), ("all_in_focus", "tif"), ("focus_summary", "json"))]
    check_outputs(files, overwrite, inputs=(path,))
    stack = read_image(path)
    if stack.ndim != 3:
        raise ValueError(f"{path} has shape {stack.shape}: a focus series is a (Z, Y, X) multi-page TIFF")
    start = time.perf_counter()
    if fit_kind == "relative":  # no plane is mapped: no estimator
        fit = focus_series(stack, z_step, fit="relative", **params)  # checks before writing
    else:
        fit = focus_series(stack, z_step, est.name, **params)  # checks the step and the planes before writing
    seconds = time.perf_counter() - start
    outdir.mkdir(parents=True, exist_ok=True)
    _write_tiff(files[0], fit.height, f"height of best focus, {unit}, from the first plane ({est.name})")
    _write_tiff(files[1], fit.confidence, "confidence of the height, 0 to 1")
    _write_tiff(files[2], fit.all_in_focus, "all-in-focus composite: each pixel from the plane nearest its height")
    known = np.isfinite(fit.height)
    summary = {"image": str(path), "method": est.name if fit_kind == "sigma" else None, "fit": fit_kind,
               "planes": int(stack.shape[0]), "z_step": z_step, "unit": unit,
               "shape": list(fit.height.shape), "seconds": round(seconds, 3), "unknown": float(1 - known.mean()),
               "height": {q: float(np.percentile(fit.height[known], v)) if known.any() else None
                          for q, v in (("min", 0), ("median", 50), ("max", 100))}}
    _write_atomic(files[3], lambda tmp: Path(tmp).write_text(json.dumps(summary, indent=2) + "\n"))
    return summary


def _print_focus(s: dict, outdir: Path) -> None:
    h, u = s["height"], s["unit"]
    how = s["method"] if s["fit"] == "sigma" else "relative blur of adjacent planes"
    print(f"blurmap focus-series: {how} on {s['image']} ({s['planes']} planes {s['z_step']:g} {u} apart, "
          f"{s['shape'][0]} x {s['shape'][1]} px, {s['seconds']:.2f} s)")
    if h["median"] is None:
        print("  no pixel has its best focus within the series")
    else:
        print(f"  height of best focus from the first plane: {h['min']:.3g} .. {h['max']:.3g} {u}, median "
              f"{h['median']:.3g} {u}; {100 * s['unknown']:.1f}% unknown (best focus beyond the series)")
    written = sorted(p.name for p in outdir.iterdir() if not p.name.startswith("."))
    print(f"  wrote {outdir}/: {' '.join(written)}")


def _print_profile(s: dict, outdir: Path) -> None:
    print(f"blurmap profile: {s['method']} on {s['image']} ({s['shape'][0]} x {s['shape'][1]} px, "
          f"{s['seconds']:.2f} s)")
    print(f"  median {s['label']}, upper / middle / lower third: "
          + " / ".join(f"{v:.2f}" for v in s["median_thirds"]))
    if s["pixel_size"] and s["units"] == "px":
        size, unit = s["pixel_size"]["value"], s["pixel_size"]["unit"]
        print(f"  in {unit}: " + " / ".join(f"{v * size:.3g}" for v in s["median_thirds"])
              + f" {unit} ({s['geometry']})")
    elif s["geometry"]:
        print(f"  {s['geometry']}")
    print(f"  sharpest band at {100 * s['sharpest_band_height_fraction']:.1f}% of the height")
    if s["focal_line"] and not s["focal_line"]["fit"]["found"]:
        print(f"  {s['focal_line']['fit']['reason']}")
    elif s["focal_line"]:
        fit = s["focal_line"]["fit"]
        print(f"  focal line at {100 * fit['position']:.1f}% of the height, {fit['angle_deg']:+.1f} deg; blur grows "
              f"by {fit['gradient']:.4f} px per px; in-focus floor {fit['floor']:.2f} px; R^2 {fit['r_squared']:.2f}")
        if fit["optics"]:
            o, u = fit["optics"], fit["optics"]["unit"]
            print(f"  tilt {o['tilt_deg']:g} deg at {o['pixel_size']:g} {u} per px: beam convergence semi-angle "
                  f"{o['convergence_mrad']:.2f} mrad; depth of field {o['depth_of_field']:.4g} {u} (sigma at most "
                  f"{o['sigma_limit_px']:g} px); defocus {o['defocus_per_px']:.4g} {u} per px from the focal line; "
                  f"in-focus sigma {o['floor']:.3g} {u}")
    else:
        print(f"  ({s['note']})")
    if s.get("astigmatism"):
        a = s["astigmatism"]
        axis = f"major axis at {a['angle_deg']:.0f} deg" if a["angle_deg"] is not None else "round"
        print(f"  astigmatism: major / minor {a['ratio']:.2f} (median), major - minor {a['difference_px']:.2f} px; {axis} "
              f"({a['elongated_share']:.0f}% of pixels elongated)")
        if a["turns"] is not None:
            print(f"  across the focal line the axis goes from {a['angle_before_deg']:.0f} to {a['angle_after_deg']:.0f} "
                  f"deg: {'it turns, as through an astigmatic focus' if a['turns'] else 'it does not turn'}")
    written = sorted(p.name for p in outdir.iterdir() if p.stem.endswith("_" + s["method"]))
    print(f"  wrote {outdir}/: {' '.join(written)}")


def _print_summary(s: dict, outdir: Path) -> None:
    thirds = s["median_sigma_thirds_px"]
    print(f"blurmap demo: {s['method']} on a {s['shape'][0]} x {s['shape'][1]} px synthetic SEM micrograph "
          f"({s['seconds']:.2f} s)")
    rows = [(f"median ({s['units']}) by third", ("upper", "middle", "lower")),
            ("  estimated", [f"{v:.2f}" for v in thirds["estimated"]]),
            ("  true sigma (px)", [f"{v:.2f}" for v in thirds["true"]])]
    for label, cells in rows:  # each value right-aligned under its header
        print(f"  {label:<24s}" + "".join(f"{c:>8s}" for c in cells))
    band = s["sharpest_band_height_fraction"]
    print(f"  sharpest band at {100 * band['estimated']:.1f}% of the height (true {100 * band['true']:.1f}%)")
    if "focal_line" in s and not s["focal_line"]["estimated"]["found"]:
        print(f"  {s['focal_line']['estimated']['reason']}")
    elif "focal_line" in s:
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


def _cluster(args):
    """Return a dask.distributed Client for --scheduler or --workers, or None for local threads."""
    if args.scheduler is None and args.workers is None:
        return None
    try:
        from distributed import Client
    except ImportError:
        raise ValueError("--scheduler and --workers need dask.distributed: pip install 'napari-blurmap[cluster]'") \
            from None
    if args.scheduler is not None:
        return Client(args.scheduler)
    if args.workers < 1:
        raise ValueError("--workers must be at least 1")
    return Client(local_cluster(args.workers))


KEEP_FREED = 64 << 20  # bytes; freed blocks up to this size stay in the process for the next chunk (see keep_freed_memory)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters


def keep_freed_memory(limit: int = KEEP_FREED) -> bool:
    """Ask glibc's malloc to keep freed memory up to `limit` bytes for reuse; return whether it took (False elsewhere).

    A chunk's temporaries (5 to 40 MB each) are otherwise handed back to the OS when freed and
    faulted in again, page by page, for the next chunk, a sixth of the time of a run (the figures
    are in docs/large-images.md). For the command line's own process only: a library should not
    change how its host allocates.
    """
    import ctypes

    try:  # the process's own symbols, the C library's among them (ctypes.util.find_library runs ldconfig: 2 ms)
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError, TypeError):  # no mallopt (macOS), or no CDLL(None) (Windows)
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, limit)) and bool(mallopt(_M_TRIM_THRESHOLD, limit))


def local_cluster(workers: int):
    """Return a LocalCluster of single-threaded worker processes whose malloc keeps freed memory for the next chunk.

    distributed's nanny sets MALLOC_TRIM_THRESHOLD_=65536 in its workers, which makes every
    multi-megabyte array of a chunk a fresh mmap, and a worker then spends much of its time in
    page faults. The workers blurmap starts get glibc's
    environment equivalent of ``keep_freed_memory`` instead.
    """
    import dask
    from distributed import LocalCluster

    env = {"MALLOC_TRIM_THRESHOLD_": str(KEEP_FREED), "MALLOC_MMAP_THRESHOLD_": str(KEEP_FREED)}
    with dask.config.set({f"distributed.nanny.pre-spawn-environ.{k}": v for k, v in env.items()}):
        return LocalCluster(n_workers=workers, threads_per_worker=1, dashboard_address=None)


class Terminated(Exception):
    """SIGTERM, raised in the main thread so that a run cleans up as on Ctrl-C."""


STOPS = {KeyboardInterrupt: ("interrupted", 130), Terminated: ("terminated", 143)}  # what to say, exit status


def _raise_terminated(signum, frame) -> None:
    raise Terminated()


def _print_batch(rows: list[dict], outdir: Path) -> int:
    """Print what a batch did (failures on stderr); return 0, or 1 if any image failed."""
    from .io.batch import SUMMARY

    count = {status: sum(r["status"] == status for r in rows) for status in ("done", "skipped", "failed")}
    for row in rows:
        if row["status"] == "failed":
            print(f"blurmap estimate: {row['input']}: {row['message']}", file=sys.stderr)
    print(f"blurmap estimate: {len(rows)} images: {count['done']} mapped, {count['skipped']} done before (kept), "
          f"{count['failed']} failed; wrote {outdir / SUMMARY}")
    return 1 if count["failed"] else 0


def _estimate_command(args) -> int:
    """Run `blurmap estimate`; print one summary line; return the exit status."""
    from .io.batch import estimate_files, is_batch
    from .io.stream import Stopped, estimate_file, request_stop

    # dask imports distributed, when installed, at its first compute (0.3 s here): import it with the
    # rest of the start-up, so that the time reported below is the work's
    if importlib.util.find_spec("distributed") is not None:
        importlib.import_module("distributed")
    keep_freed_memory()
    client = None
    # Ctrl-C and SIGTERM stop the run at its next block, where its cleanup can remove all it wrote
    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        if args.chunk < 64:
            raise ValueError("--chunk must be at least 64 px")
        params = parse_params(args.param)
        batch = is_batch(args.input)
        if args.format and not batch:
            raise ValueError("--format is for many images (a folder or a glob); one map's format is its output's "
                             "suffix (.zarr or .tif)")
        client = _cluster(args)
        if batch:
            rows = estimate_files(args.input, args.output, args.method, params, chunk=args.chunk, client=client,
                                  overwrite=args.overwrite, progress=args.progress, suffix=f".{args.format or 'zarr'}")
            return _print_batch(rows, args.output)
        done = estimate_file(args.input, args.output, args.method, params, chunk=args.chunk, client=client,
                             overwrite=args.overwrite, progress=args.progress)
    except (ValueError, TypeError, FileNotFoundError, FileExistsError, OSError) as err:
        print(f"blurmap estimate: {err}", file=sys.stderr)
        return 2
    except Stopped as stop:
        what, status = STOPS[KeyboardInterrupt if stop.signum == signal.SIGINT else Terminated]
        kept = ("the maps finished before are whole and kept, the one in progress removed; run again to go on"
                if is_batch(args.input) else f"nothing was written under {args.output}")
        print(f"\nblurmap estimate: {what}; {kept}", file=sys.stderr)
        return status
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if client is not None:
            cluster = client.cluster
            client.close()
            if cluster is not None:
                cluster.close()
    for path in done["removed_leftovers"]:
        print(f"blurmap estimate: removed {path}, left by a run that was killed")
    size = " x ".join(map(str, done["shape"])) + (f" ({', '.join(done['axes'])})" if "axes" in done else " px")
    print(f"blurmap estimate: {done['method']} on {args.input} ({size}, {done['chunks']} chunks) in "
          f"{done['seconds']:.1f} s, {done['megapixels_per_second']:.2f} MP/s; wrote {args.output} "
          f"({done['levels']} levels)")
    return 0


METHOD_HELP = (f"the estimator (default {DEFAULT}); `blurmap methods` lists them with their parameters; "
               "reference needs a second image: use it from Python or napari")


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status.

    Parameters
    ----------
    argv : list of str, optional
        The arguments; ``sys.argv[1:]`` if None.

    Returns
    -------
    int
        0 on success, 2 for bad input (with a message on stderr).

    Examples
    --------
    >>> main(["methods"])  # doctest: +ELLIPSIS
    | method | units | halo (px) | parameters (default, range) |
    ...
    0
    """
    parser = argparse.ArgumentParser(prog="blurmap", description="Measure how blurred each part of an image is.")
    sub = parser.add_subparsers(dest="command", required=True)
    p_demo = sub.add_parser("demo", help="generate the SEM sample, estimate its sigma map, write and summarise")
    p_demo.add_argument("outdir", type=Path, help="folder for the results (made if missing)")
    blind = sorted(name for name, est in estimators().items() if not est.inputs)  # the sample has no reference
    p_demo.add_argument("--method", default=DEFAULT, choices=blind,
                        help=METHOD_HELP)
    p_demo.add_argument("--size", type=_shape, default=(768, 1024), help="HxW in px (default 768x1024)")
    p_demo.add_argument("--seed", type=int, default=0, help="random seed of the sample (0 or more; default 0)")
    p_demo.add_argument("--overwrite", action="store_true", help="replace the results of an earlier run in OUTDIR")
    p_prof = sub.add_parser("profile", help="estimate a TIFF, PNG or JPEG image in memory; map, focal line, "
                                           "profile PNG and JSON")
    p_prof.add_argument("image", type=Path, help="a TIFF, PNG or JPEG image, read whole")
    p_prof.add_argument("outdir", type=Path, help="folder for the results (made if missing)")
    p_prof.add_argument("--method", default=DEFAULT, choices=blind,
                        help=METHOD_HELP)
    p_prof.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="an estimator parameter (repeatable); 'none' lets it be estimated")
    p_prof.add_argument("--overwrite", action="store_true", help="replace the results of an earlier run in OUTDIR")
    p_prof.add_argument("--pixel-size", type=float, metavar="LENGTH",
                        help="the image's pixel size, in --unit per px (default: from the image's OME, Thermo "
                             "Fisher / FEI, Zeiss SmartSEM or resolution tags); with a tilt, the optics of a tilted "
                             "specimen")
    p_prof.add_argument("--unit", default="nm", help="the pixel size's unit (default nm)")
    p_prof.add_argument("--tilt", type=float, metavar="DEGREES",
                        help="the stage tilt, degrees (default: from the FEI or Zeiss tags): gives the beam's "
                             "convergence semi-angle and the depth of field")
    p_prof.add_argument("--table", type=int, nargs="?", const=TILE, default=None, metavar="TILE_PX",
                        help=f"also write table_METHOD.csv: per-tile centre, median and quartiles of sigma (px, and "
                             f"in the pixel size's unit when known), confidence, share unknown (tiles of {TILE} px "
                             "unless given)")
    p_prof.add_argument("--sigma-limit", type=float, default=SIGMA_LIMIT, metavar="PX",
                        help=f"px; the blur at which the depth of field ends (default {SIGMA_LIMIT:g})")
    p_focus = sub.add_parser("focus-series", help="a focus series (multi-page TIFF) to a height map of best focus, "
                                                  "its confidence and an all-in-focus image")
    p_focus.add_argument("stack", type=Path, help="a multi-page TIFF: the same field, one focus position a page")
    p_focus.add_argument("outdir", type=Path, help="folder for the results (made if missing)")
    p_focus.add_argument("--z-step", type=float, required=True, metavar="LENGTH",
                         help="the focus step between pages, in --unit (heights come in it)")
    p_focus.add_argument("--unit", default="um", help="the focus step's unit (default um)")
    p_focus.add_argument("--method", default=DEFAULT, choices=blind, help=METHOD_HELP)
    p_focus.add_argument("--fit", default="sigma", choices=("sigma", "relative"),
                         help="sigma (default): each plane mapped by --method, robust to noise; relative: the blur "
                              "between adjacent planes, a few px of reach (height steps keep their edges), for clean "
                              "series")
    p_focus.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                         help="an estimator parameter (repeatable); 'none' lets it be estimated")
    p_focus.add_argument("--overwrite", action="store_true", help="replace the results of an earlier run in OUTDIR")
    p_est = sub.add_parser("estimate", help="write the sigma map of an image or a stack of any size (TIFF, Zarr, "
                                            "OME-Zarr, PNG, JPEG) to OME-Zarr or TIFF, chunk by chunk; or of every "
                                            "image in a folder or a glob, with a summary CSV")
    p_est.add_argument("input", type=Path, help="a TIFF or BigTIFF, a Zarr array or OME-Zarr image, a PNG or JPEG; "
                                               "or a folder or a quoted glob ('run/*.tif') of them")
    p_est.add_argument("output", type=Path, help="NAME.zarr (OME-Zarr pyramid, sigma and confidence) or NAME.tif; "
                                                "for a folder or a glob, the folder for the maps and summary.csv")
    p_est.add_argument("--format", choices=("zarr", "tif"), help="for a folder or a glob: the maps' format "
                                                                "(default zarr)")
    p_est.add_argument("--method", default=DEFAULT, choices=blind,
                        help=METHOD_HELP)
    p_est.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                       help="an estimator parameter (repeatable); 'none' lets it be estimated")
    p_est.add_argument("--chunk", type=int, default=DEFAULT_CHUNK, help=f"chunk side in px (default {DEFAULT_CHUNK})")
    where = p_est.add_mutually_exclusive_group()
    where.add_argument("--scheduler", metavar="ADDRESS", help="run on this dask.distributed scheduler")
    where.add_argument("--workers", type=int, metavar="N", help="start a local dask.distributed cluster of N workers")
    p_est.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists (for a folder or a "
                                                               "glob: map again the images done before; a rerun "
                                                               "without it skips them)")
    p_est.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                       help="draw a progress bar (default: only on a terminal)")
    sub.add_parser("methods", help="list the registered estimators as a Markdown table")
    args = parser.parse_args(argv)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if main_thread else None
    try:
        code = _run(args)
        sys.stdout.flush()  # here, where a closed pipe can still be answered, not at exit
        return code
    except BrokenPipeError:  # whoever read the output stopped reading (`| head`): stop quietly, as other tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the flush at exit would raise again
        return 1
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)


def _geometry(args) -> tuple[dict, str]:
    """Return the tilted specimen's geometry for the profile command ({} if incomplete) and where it came from.

    The pixel size and the tilt come from the options, or else from the image's metadata
    (blurmap.io.metadata: OME, Thermo Fisher / FEI, Zeiss SmartSEM, TIFF resolution).
    """
    found = read_geometry(args.image) if args.pixel_size is None or args.tilt is None else None  # both given
    size, unit = (args.pixel_size, args.unit) if args.pixel_size is not None else \
        ((found.pixel_size, found.unit) if found else (None, None))
    tilt = args.tilt if args.tilt is not None else (found.tilt_deg if found and found.tilt_deg else None)
    said = []
    if size is not None:
        said.append(f"pixel size {size:g} {unit} ({'given' if args.pixel_size is not None else found.source})")
    if tilt is not None:
        said.append(f"stage tilt {tilt:g} deg ({'given' if args.tilt is not None else found.source})")
    if args.tilt is not None and size is None:
        raise ValueError("--tilt needs the pixel size: give --pixel-size (the image's metadata gives none)")
    if size is None or tilt is None:
        return ({"pixel_size": size, "unit": unit} if size is not None else {}), "; ".join(said)
    return {"pixel_size": size, "unit": unit, "tilt_deg": tilt, "sigma_limit": args.sigma_limit}, "; ".join(said)


def _run(args) -> int:
    """Run the parsed command; return the exit status."""
    if args.command == "estimate":
        return _estimate_command(args)
    if args.command == "methods":
        print(methods_table())
        return 0
    try:
        if args.command == "focus-series":
            summary = focus_series_files(args.stack, args.outdir, args.z_step, args.unit, args.method,
                                         parse_params(args.param), args.overwrite, args.fit)
            _print_focus(summary, args.outdir)
            return 0
        if args.command == "profile":
            summary = profile_image(args.image, args.outdir, args.method, parse_params(args.param), args.overwrite,
                                    *_geometry(args), table_tile=args.table)
        else:
            summary = demo(args.outdir, args.method, args.size, args.seed, args.overwrite)
    except (ValueError, TypeError, OSError) as err:  # OSError: a read-only folder, a full disk, a file for a folder
        print(f"blurmap {args.command}: {err}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, Terminated) as stop:
        what, status = STOPS[type(stop)]
        print(f"\nblurmap {args.command}: {what}; the files written so far are whole, the others absent",
              file=sys.stderr)
        return status
    (_print_profile if args.command == "profile" else _print_summary)(summary, args.outdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
