"""Many images at once: `blurmap estimate` over a folder or a glob, one map per image, a summary CSV, resumable."""

from __future__ import annotations

import csv
import glob
import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..analysis.focal import focal
from ..analysis.optics import SIGMA_LIMIT, tilt_optics
from ..engine import DEFAULT_CHUNK
from ..registry import get_blind
from . import formats as io
from .metadata import read_geometry
from .stream import Progress, estimate_file, is_blurmap_output

__all__ = ["expand_inputs", "estimate_files", "SUMMARY"]

SUMMARY = "summary.csv"  # the batch's table, in the output folder
SUMMARY_SIDE = 1024  # px; the focal line and the medians come from the first level of the map at most this large
IMAGE_SUFFIXES = io.TIFF_SUFFIXES + (".png", ".jpg", ".jpeg")
COLUMNS = ["input", "output", "status", "method", "shape", "median_sigma", "median_sigma_physical", "unit",
           "pixel_size_source", "focal_found", "focal_position", "focal_angle_deg", "focal_gradient", "tilt_deg",
           "convergence_mrad", "depth_of_field", "seconds", "message"]


def is_batch(spec: str | Path) -> bool:
    """Return whether an input names many images: a folder that is not a Zarr store, or a glob pattern."""
    text = str(spec)
    return any(c in text for c in "*?[") or (Path(text).is_dir() and not io.is_zarr(Path(text)))


def expand_inputs(spec: str | Path) -> list[Path]:
    """Return the images a folder or a glob names, sorted: TIFF, PNG, JPEG files and Zarr stores.

    Parameters
    ----------
    spec : str or Path
        A folder (its images, not those of sub-folders) or a glob pattern (``"run/*.tif"``,
        ``"**"`` for sub-folders).

    Returns
    -------
    list of Path
        The images; hidden files (a run's own temporary outputs among them) are left out.

    Raises
    ------
    FileNotFoundError
        If it names no image.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> folder = Path(tempfile.mkdtemp())
    >>> for name in ("b.tif", "a.png", "notes.txt", ".a.tif.partial-1"):
    ...     _ = (folder / name).write_bytes(b"")
    >>> [p.name for p in expand_inputs(folder)]
    ['a.png', 'b.tif']
    """
    text = str(spec)
    if Path(text).is_dir() and not io.is_zarr(Path(text)):
        found = list(Path(text).iterdir())
    else:
        found = [Path(p) for p in glob.glob(text, recursive=True)]
    images = sorted(p for p in found if not p.name.startswith(".") and
                    (io.is_zarr(p) or (p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)))
    if not images:
        raise FileNotFoundError(f"{spec} names no image (TIFF, PNG, JPEG or Zarr)")
    return images


def output_for(source: Path, outdir: Path, suffix: str = ".zarr") -> Path:
    """Return the map's path in `outdir` for one input: its name without its suffixes, then `suffix`."""
    return outdir / (source.name.split(".")[0] + suffix)


def _done_before(output: Path, source: Path, method: str, params: dict) -> bool:
    """Return whether `output` is a map blurmap made of `source` with this method and these parameters."""
    if not output.exists() or not is_blurmap_output(output):
        return False
    meta = _metadata(output)
    return (meta.get("method") == method and meta.get("asked", {}) == params
            and Path(meta.get("source", "")).resolve() == source.resolve())


def _metadata(output: Path) -> dict:
    import json

    if output.is_dir():
        import zarr

        return dict(zarr.open_group(str(output), mode="r").attrs)["blurmap"]
    import tifffile

    with tifffile.TiffFile(output) as tif:
        return json.loads(tif.pages[0].description)


def _overview(output: Path) -> tuple[np.ndarray, float, tuple[int, ...]]:
    """Return the first level of a written map at most SUMMARY_SIDE px a side (all of a stack's planes), its factor
    (full-resolution px per px of it) and the map's full shape."""
    src = io.open_image(output)
    levels = src.levels
    y = src.axes.index("y")
    level = next((lv for lv in levels if max(lv.shape[y:y + 2]) <= SUMMARY_SIDE), levels[-1])
    return (np.asarray(level, dtype=np.float64), levels[0].shape[y + 1] / level.shape[y + 1],
            tuple(levels[0].shape[:y + 2]))


def summarise(source: Path, output: Path, units: str, sigma_limit: float = SIGMA_LIMIT) -> dict:
    """Return one image's row of the summary: shape, median sigma, pixel size, focal line and optics, from its written map.

    The focal line is fitted to the map's overview (at most SUMMARY_SIDE px a side), its gradient
    converted to full-resolution px; the pixel size and the tilt come from the input's metadata
    (blurmap.io.metadata, or the OME-Zarr scale). A stack gets its medians only.
    """
    sigma, factor, shape = _overview(output)
    finite = sigma[np.isfinite(sigma)]
    row = {"shape": "x".join(map(str, shape)), "median_sigma": float(np.median(finite)) if finite.size else float("nan")}
    geometry = read_geometry(source)
    size, unit, said = (geometry.pixel_size, geometry.unit, geometry.source) if geometry else (None, None, "")
    if geometry is None and io.is_zarr(source):
        src = io.open_image(source)
        if src.unit:
            size, unit, said = src.scale[-1], src.unit, "OME-Zarr scale"
    if size is not None and units == "px":
        row.update(median_sigma_physical=row["median_sigma"] * size, unit=unit)
    row["pixel_size_source"] = said
    if units != "px" or sigma.ndim != 2 or finite.size < 16:
        return row
    fit = focal(sigma)
    row.update(focal_found=fit.found, focal_position=fit.position if fit.found else "",
               focal_angle_deg=fit.angle_deg if fit.found else "", focal_gradient=fit.gradient / factor if fit.found
               else "")
    tilt = geometry.tilt_deg if geometry else None
    if fit.found and tilt and size is not None:
        optics = tilt_optics(replace(fit, gradient=fit.gradient / factor), size, tilt, unit, sigma_limit)
        row.update(tilt_deg=tilt, convergence_mrad=optics.convergence_mrad, depth_of_field=optics.depth_of_field)
    return row


class _FileBar:
    """One file's share of a progress bar across files: each of its blocks advances the bar by its pixels."""

    def __init__(self, bar: Progress, pixels: int):
        self.bar, self.pixels = bar, pixels
        self.total = 0  # blocks: set by estimate_file once the file's map is planned
        self.given = 0.0  # px advanced so far

    def advance(self, n: int = 1) -> None:
        step = n * self.pixels / max(self.total, 1)
        self.given += step
        self.bar.advance(step)

    def finish(self) -> None:
        """Advance the bar by what this file has not given yet (it was skipped or failed)."""
        self.bar.advance(max(0.0, self.pixels - self.given))
        self.given = self.pixels


def _write_summary(path: Path, rows: list[dict]) -> None:
    """Write the summary CSV whole under a temporary name, then move it into place."""
    tmp = path.with_name(f".{path.name}.partial-{os.getpid()}")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _cell(row.get(k, "")) for k in COLUMNS})
    os.replace(tmp, path)


def _cell(value):
    if isinstance(value, float):
        return "" if not np.isfinite(value) else f"{value:.6g}"
    return value


def estimate_files(spec: str | Path, outdir: Path, method: str | None = None, params: dict | None = None, *,
                   chunk: int = DEFAULT_CHUNK, client=None, overwrite: bool = False,
                   progress: bool | None = None, suffix: str = ".zarr") -> list[dict]:
    """Map every image a folder or a glob names into `outdir`, one map each, with a summary CSV; skip what is done.

    Each map is written as :func:`blurmap.io.stream.estimate_file` writes one (whole or not at
    all); a map already in `outdir` made from the same input with the same method and parameters
    is kept (a rerun after an interruption does only what is left), unless `overwrite`. An image
    that fails is reported in its row and the others go on. ``summary.csv`` in `outdir` is
    rewritten after each image: per image, the status, median sigma (px and in the pixel size's
    unit), where the pixel size came from, the focal line, and with a stage tilt the convergence
    semi-angle and depth of field.

    Parameters
    ----------
    spec : str or Path
        A folder or a glob pattern (see :func:`expand_inputs`).
    outdir : Path
        The folder for the maps (made if missing); it must not be one of the inputs.
    method : str, optional
        A registered estimator that needs no other image; the default if None.
    params : dict, optional
        Its parameters, the same for every image.
    chunk : int
        px; the block side.
    client : dask.distributed.Client, optional
        Run on its cluster; local threads if None.
    overwrite : bool
        Recompute maps already made.
    progress : bool or None
        One bar across all files: None on a terminal only, False never, True always.
    suffix : str
        ".zarr" (OME-Zarr) or ".tif".

    Returns
    -------
    list of dict
        The summary's rows, one per image, in order.

    Examples
    --------
    >>> import tempfile, tifffile
    >>> from pathlib import Path
    >>> from blurmap import synthetic
    >>> folder = Path(tempfile.mkdtemp())
    >>> for seed in (1, 2):
    ...     tifffile.imwrite(folder / f"sem{seed}.tif", synthetic.sem_sample((160, 200), seed=seed)[0])
    >>> rows = estimate_files(folder, folder / "maps", "gradient_ratio", progress=False)
    >>> [(r["input"].name, r["status"]) for r in rows]
    [('sem1.tif', 'done'), ('sem2.tif', 'done')]
    >>> [r["status"] for r in estimate_files(folder, folder / "maps", "gradient_ratio", progress=False)]
    ['skipped', 'skipped']
    """
    est = get_blind(method)
    params = dict(params or {})
    est.check(params)
    if suffix not in (".zarr", ".tif"):
        raise ValueError(f"the outputs are .zarr or .tif, not {suffix!r}")
    sources = expand_inputs(spec)
    if outdir.exists() and not outdir.is_dir():
        raise NotADirectoryError(f"{outdir} is a file; the outputs of many images go into a folder")
    if any(outdir.resolve() == s.resolve() or s.resolve() in outdir.resolve().parents for s in sources):
        raise ValueError(f"the output folder {outdir} is one of the inputs, or inside one")
    outdir.mkdir(parents=True, exist_ok=True)
    sizes = [_pixels(s) for s in sources]
    bar = Progress(sum(sizes), sum(sizes), f"blurmap {est.name}, {len(sources)} images",
                   enabled=progress if isinstance(progress, bool) else None, unit="MP")
    rows = []
    for source, pixels in zip(sources, sizes):
        output = output_for(source, outdir, suffix)
        row = {"input": source, "output": output, "method": est.name}
        start = time.perf_counter()
        share = _FileBar(bar, pixels)
        try:
            if not overwrite and _done_before(output, source, est.name, params):
                row["status"] = "skipped"
            else:
                done = estimate_file(source, output, est.name, params, chunk=chunk, client=client,
                                     overwrite=overwrite, progress=share)
                row.update(status="done", seconds=done["seconds"])
            row.update(summarise(source, output, est.units))
        except (ValueError, TypeError, FileNotFoundError, FileExistsError, OSError) as err:
            row.update(status="failed", message=str(err), seconds=round(time.perf_counter() - start, 2))
        share.finish()
        rows.append(row)
        _write_summary(outdir / SUMMARY, rows)
    return rows


def _pixels(source: Path) -> int:
    """Return an image's pixel count from its header (0 if it cannot be opened: it fails in its own row later)."""
    try:
        src = io.open_image(source)
    except (ValueError, FileNotFoundError, OSError):
        return 0
    y = src.axes.index("y")
    return int(np.prod(src.levels[0].shape[:y + 2]))
