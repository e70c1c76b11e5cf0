"""Images on disk: lazy reading of TIFF, Zarr and OME-Zarr (and PNG/JPEG), and OME-Zarr metadata."""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .._validate import is_dask
from . import tiffwindows

__all__ = ["open_image", "Source", "read_pixels", "stack_axes"]

TIFF_SUFFIXES = (".tif", ".tiff", ".btf", ".tf8")
SPACE_UNITS = {"angstrom", "nanometer", "micrometer", "millimeter", "centimeter", "meter"}


class Source(NamedTuple):
    """An image opened lazily by :func:`open_image`: its levels and its pixel size.

    Examples
    --------
    >>> import tempfile, tifffile, numpy as np
    >>> from pathlib import Path
    >>> path = Path(tempfile.mkdtemp()) / "plane.tif"
    >>> tifffile.imwrite(path, np.zeros((32, 48), np.uint8))
    >>> src = open_image(path)
    >>> len(src.levels), src.scale, src.unit
    (1, (1.0, 1.0), None)
    """

    levels: list  # dask arrays, level k downsampled about 2**k times
    scale: tuple[float, float]  # size of a full-resolution pixel along y, x (in `unit`, or 1 px)
    unit: str | None  # an OME-NGFF space unit, or None when the file gives none
    name: str
    planes: list | None = None  # a Plane per level reading the file itself; None for an image read whole
    axes: tuple[str, ...] = ("y", "x")  # the names of the levels' axes: leading stack axes (z, t, ...), y, x, and c for colour

    @property
    def stack_shape(self) -> tuple[int, ...]:
        """The shape of the leading (stack) axes: () for one 2-D or RGB image."""
        return tuple(self.levels[0].shape[:len(self.axes) - 2 - (self.axes[-1] == "c")])


class Plane:
    """Windows of one 2-D (or RGB) plane of an on-disk array, read as numpy: `plane[rows, cols]`.

    It holds the array (a Zarr array or a TiffLevel, both small to pickle and read lazily), not
    pixels, so a task can carry it to a cluster's worker and read its own window there.
    """

    def __init__(self, array, lead: tuple[int, ...]):
        self.array, self.lead = array, tuple(lead)  # the indices of the axes before the plane's
        self.shape, self.dtype = tuple(array.shape[len(self.lead):]), np.dtype(array.dtype)
        self.ndim = len(self.shape)

    def __getitem__(self, index) -> np.ndarray:
        index = index if isinstance(index, tuple) else (index,)
        return np.asarray(self.array[self.lead + index])

    def at(self, index: tuple[int, ...]) -> Plane:
        """Return the Plane of one plane of a stack: `index` picks it along the stack's axes."""
        return Plane(self.array, self.lead + tuple(int(i) for i in index))


def _plane(array, lazy) -> Plane:
    """Return the reader of `array` that `lazy` (its dask view from _lazy_image) shows (singleton axes at 0)."""
    return Plane(array, (0,) * (array.ndim - lazy.ndim))


def is_zarr(path: Path) -> bool:
    """Return whether `path` is a Zarr store (a directory with .zarray, .zgroup or zarr.json)."""
    return path.is_dir() and any((path / f).exists() for f in (".zarray", ".zgroup", "zarr.json"))


LEAD_AXES = ("z", "t", "u", "v")  # the names given to unnamed stack axes, innermost first


def stack_axes(n: int) -> tuple[str, ...]:
    """Return the names of `n` unnamed stack axes before y, x (z innermost, then t, u, v; at most 4).

    Parameters
    ----------
    n : int
        How many axes lie before y, x.

    Returns
    -------
    tuple of str
        Their names, outermost first.

    Examples
    --------
    >>> stack_axes(2)
    ('t', 'z')
    """
    return tuple(LEAD_AXES[:max(0, n)][::-1])


def _lazy_image(array, what: str, names: list[str] | None = None):
    """Return a dask array of `array` with its singleton leading axes dropped, and its axes' names.

    A trailing axis of 3 or 4 is colour (named c) when the names say so or, without names, for a
    3-D array; any other leading axes are a stack's (z, t, ...), mapped plane by plane.
    """
    import dask.array as da

    a = array if is_dask(array) else da.from_zarr(array)
    names = [n.lower() for n in names] if names else None
    if names is not None and len(names) != a.ndim:
        raise ValueError(f"{what} has {a.ndim} axes but its metadata names {len(names)}: {names}")
    colour = a.shape[-1] in (3, 4) and (names[-1] in ("c", "s") if names else a.ndim == 3)
    if names is None:
        names = list(stack_axes(a.ndim - 2 - colour)) + ["y", "x"] + (["c"] if colour else [])
        if len(names) != a.ndim:
            raise ValueError(f"{what} has shape {tuple(array.shape)}: too many axes to name (at most 4 before y, x)")
    names = [("c" if n == "s" else n) for n in names]
    while a.ndim > 2 + colour and a.shape[0] == 1:
        a, names = a[0], names[1:]
    if a.ndim < 2:
        raise ValueError(f"{what} has shape {tuple(array.shape)}: an image needs two axes")
    return a, tuple(names)


def multiscales_entry(attrs: dict) -> dict | None:
    """Return the first OME-NGFF multiscales entry of a group's attributes (v0.4 or v0.5), or None."""
    ms = attrs.get("multiscales") or attrs.get("ome", {}).get("multiscales")
    return ms[0] if ms else None


def _open_zarr(path: Path) -> Source:
    """Open a Zarr array, a group holding one, or an OME-Zarr image (its pyramid and pixel size)."""
    import zarr

    node = zarr.open(str(path), mode="r")
    if isinstance(node, zarr.Array):
        lazy, names = _lazy_image(node, str(path))
        return Source([lazy], (1.0, 1.0), None, path.name, [_plane(node, lazy)], names)
    ms = multiscales_entry(dict(node.attrs))
    if ms is None:
        arrays = [name for name, _ in node.arrays()]
        if len(arrays) != 1:
            raise ValueError(f"{path} is a Zarr group with arrays {arrays}, and no OME-Zarr multiscales "
                             "to say which is the image; give the array's own path")
        lazy, names = _lazy_image(node[arrays[0]], f"{path}/{arrays[0]}")
        return Source([lazy], (1.0, 1.0), None, path.name, [_plane(node[arrays[0]], lazy)], names)
    axes = ms.get("axes", [])
    names = [a["name"] if isinstance(a, dict) else a for a in axes]
    if names and [n.lower() for n in names if n.lower() != "c"][-2:] != ["y", "x"]:
        raise ValueError(f"{path}: the last two space axes are {names[-2:]}, not y and x")
    arrays = [node[d["path"]] for d in ms["datasets"]]
    opened = [_lazy_image(a, f"{path}/{d['path']}", names or None) for a, d in zip(arrays, ms["datasets"])]
    if "c" in opened[0][1][:-2]:  # OME-NGFF puts channels before z, y, x; blurmap reads colour last only
        raise ValueError(f"{path} has {opened[0][0].shape[0]} channels before y, x (axes {names}): blurmap maps "
                         "grey planes; save one channel, or their luminance")
    scale, unit = (1.0, 1.0), None
    transforms = ms["datasets"][0].get("coordinateTransformations", [])
    for t in transforms:
        if t.get("type") == "scale":
            scale = (float(t["scale"][-2]), float(t["scale"][-1]))
    if len(axes) >= 2 and isinstance(axes[-1], dict):
        unit = axes[-1].get("unit")
    levels = [lazy for lazy, _ in opened]
    return Source(levels, scale, unit, path.name.removesuffix(".zarr").removesuffix(".ome"),
                  [_plane(a, lazy) for a, lazy in zip(arrays, levels)], opened[0][1])


class TiffLevel:
    """One level of a TIFF as an array dask can slice: it keeps only the path, so it can travel to a cluster's workers.

    Each thread opens the file once and keeps it (opened anew when the file changes); a read
    touches only the tiles or strips it needs (see `tiffwindows`).
    """

    def __init__(self, path: str, key: str | None, shape: tuple[int, ...], dtype):
        self.path, self.key, self.shape, self.dtype = path, key, tuple(shape), np.dtype(dtype)
        self.ndim = len(self.shape)

    def __getitem__(self, index) -> np.ndarray:
        return tiffwindows.read(self.path, self.key, self.shape, index)


def _open_tiff(path: Path, chunk: int = 1024) -> Source:
    """Open a TIFF lazily: a chunk reads only the tiles or strips it needs (see `tiffwindows`)."""
    import dask.array as da
    import zarr

    try:
        node = tiffwindows.open_tiff(str(path)).node(None)  # this thread's file, kept for its later reads
    except ValueError as err:  # tifffile's TiffFileError is one
        raise ValueError(f"cannot read {path} as a TIFF: {err}") from None
    keys = [None] if isinstance(node, zarr.Array) else sorted((k for k, _ in node.arrays()), key=int)
    levels, planes, axes = [], [], None
    for key in keys:
        arr = node if key is None else node[key]
        # chunks: whole tiles or strips, about `chunk` px a side (any rows and columns where the pixels are
        # stored uncompressed one row after another, as in one strip); a trailing RGB axis stays whole
        stored = arr.chunks
        reader = tiffwindows.open_tiff(str(path)).reader(key)
        if isinstance(reader, tiffwindows.Segments) and reader.contiguous:
            lead = arr.ndim - len(reader.shape)
            stored = stored[:lead] + (1, 1) + stored[lead + 2:]
        chunks = tuple(max(1, chunk // c) * c if n > 1 else 1 for c, n in zip(stored, arr.shape))
        if arr.ndim == 3 and arr.shape[-1] in (3, 4):
            chunks = chunks[:2] + (arr.shape[-1],)
        level = TiffLevel(str(path), key, arr.shape, arr.dtype)
        lazy = da.from_array(level, chunks=chunks, asarray=False,
                             name=f"tiff-{path.name}-{key}-{path.stat().st_mtime_ns}")
        lazy, names = _lazy_image(lazy, f"{path}" + (f" level {key}" if key else ""), _tiff_axes(path, arr.ndim))
        levels.append(lazy)
        planes.append(_plane(level, lazy))
        axes = axes or names
    return Source(levels, (1.0, 1.0), None, path.name.split(".")[0], planes, axes)


TIFF_AXES = {"Z": "z", "T": "t", "C": "c", "S": "c", "Y": "y", "X": "x"}  # tifffile's axis codes; others are planes


def _tiff_axes(path: Path, ndim: int) -> list[str] | None:
    """Return the names of the TIFF's first series' axes (tifffile's codes: Z, T, C, samples S; I, Q a page index), or None."""
    series = tiffwindows.open_tiff(str(path)).tif.series[0]
    codes = series.axes
    if len(codes) != ndim:
        return None
    names = [TIFF_AXES.get(code, code.lower()) for code in codes]
    return names if names[-2:] in (["y", "x"], ["x", "c"]) else None


def open_image(path: Path | str) -> Source:
    """Return the image at `path` opened lazily: TIFF, Zarr, OME-Zarr; PNG, JPEG and others are read whole.

    Parameters
    ----------
    path : str or Path
        A TIFF or BigTIFF (tiled or striped), a Zarr array or group, an OME-Zarr image, or any
        file scikit-image reads.

    Returns
    -------
    Source
        Its levels (full resolution first, each a 2-D, RGB or stack dask array), the pixel size and
        unit (from OME metadata; 1 and None otherwise), a name, and per level a reader of the
        file's own windows.

    Raises
    ------
    FileNotFoundError, ValueError
        A missing file, a folder that is not a Zarr store, a file that cannot be read as an image,
        or axes it cannot name (a channel axis before y, x).

    Notes
    -----
    A stack (multi-page TIFF, a Zarr array or OME-Zarr image with axes before y, x) opens as one:
    its leading axes are kept and named (from the OME axes, tifffile's series axes, or z, t, ...),
    and its planes are mapped one by one.

    Examples
    --------
    >>> import tempfile, tifffile, numpy as np
    >>> from pathlib import Path
    >>> path = Path(tempfile.mkdtemp()) / "plane.tif"
    >>> tifffile.imwrite(path, np.zeros((64, 80), np.uint16), tile=(32, 32))
    >>> src = open_image(path)
    >>> src.levels[0].shape, src.name
    ((64, 80), 'plane')
    """
    import dask.array as da

    path = Path(path)
    if is_zarr(path):
        return _open_zarr(path)
    if not path.exists():
        raise FileNotFoundError(f"no such image: {path}")
    if path.is_dir():
        raise ValueError(f"{path} is a directory but not a Zarr store")
    if path.suffix.lower() in TIFF_SUFFIXES:
        return _open_tiff(path)
    lazy, names = _lazy_image(da.from_array(read_pixels(path)), str(path))
    return Source([lazy], (1.0, 1.0), None, path.stem, None, names)


def read_pixels(path: Path) -> np.ndarray:
    """Return the pixels of a PNG, JPEG or other file scikit-image reads, whole, or raise a clear ValueError.

    Parameters
    ----------
    path : Path
        The file.

    Returns
    -------
    ndarray
        Its pixels, in the file's dtype (RGB last where it has colour).

    Examples
    --------
    >>> import tempfile, numpy as np, skimage.io
    >>> from pathlib import Path
    >>> path = Path(tempfile.mkdtemp()) / "grey.png"
    >>> skimage.io.imsave(path, np.zeros((16, 24), np.uint8), check_contrast=False)
    >>> read_pixels(path).shape
    (16, 24)
    """
    import skimage.io

    try:
        return skimage.io.imread(path)
    except (ValueError, OSError) as err:
        raise ValueError(f"cannot read {path} as an image (TIFF, Zarr, OME-Zarr, PNG or JPEG): {err}") from None


AXIS_TYPES = {"z": "space", "y": "space", "x": "space", "t": "time", "c": "channel"}  # OME-NGFF axis types


def ome_multiscales(name: str, n_levels: int, scale: tuple[float, float], unit: str | None,
                    axes: tuple[str, ...] = ("y", "x")) -> dict:
    """Return an OME-NGFF 0.4 multiscales entry for a pyramid of 2 x 2 means over y, x (leading stack axes kept whole)."""
    entries = []
    for ax in axes:
        kind = AXIS_TYPES.get(ax)
        entries.append({"name": ax, **({"type": kind} if kind else {}),
                        **({"unit": unit} if kind == "space" and ax != "z" and unit in SPACE_UNITS else {})})
    lead = [1.0] * (len(axes) - 2)
    datasets = []
    for k in range(n_levels):
        f = 2**k  # a level-k pixel is the mean of f x f pixels: its centre lies (f - 1) / 2 pixels further
        datasets.append({"path": str(k), "coordinateTransformations": [
            {"type": "scale", "scale": lead + [scale[0] * f, scale[1] * f]},
            {"type": "translation", "translation": [0.0] * len(lead) + [scale[0] * (f - 1) / 2,
                                                                         scale[1] * (f - 1) / 2]}]})
    return {"version": "0.4", "name": name, "axes": entries, "datasets": datasets, "type": "mean"}


def describe(meta: dict) -> str:
    """Return `meta` as the JSON text stored beside a map (TIFF description or Zarr attributes)."""
    try:
        return json.dumps(meta, sort_keys=True, allow_nan=False)
    except ValueError:  # a NaN or infinite parameter would make the metadata invalid JSON
        raise ValueError(f"the map's metadata holds a value JSON cannot carry (NaN or infinite): {meta}") from None
