"""Figures of a sigma map: the overlay PNG with its colour bar, and the focal profile."""

from __future__ import annotations

import numpy as np

__all__ = ["overlay_png", "profile_png"]


UNKNOWN_COLOUR = "#3fa7ff"  # unknown areas of an overlay: a blue the magma map never takes


def overlay_png(path, image: np.ndarray, sigma: np.ndarray, title: str, limits: tuple[float, float],
                label: str = "Gaussian blur sigma (px)") -> None:
    """Write a PNG of a map laid over `image` with a colour bar labelled `label`.

    Parameters
    ----------
    path : str or Path
        The PNG to write.
    image : ndarray
        2-D grey image, shown between its 1st and 99th percentiles.
    sigma : ndarray
        The map, the image's shape; NaN pixels (unknown) are hatched in UNKNOWN_COLOUR, and the
        colour bar's label gives their share.
    title : str
        Above the picture.
    limits : tuple of float
        The colour bar's range, in the map's unit.
    label : str
        The colour bar's title.

    Returns
    -------
    None

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from pathlib import Path
    >>> path = Path(tempfile.mkdtemp()) / "overlay.png"
    >>> overlay_png(path, np.random.default_rng(0).random((40, 50)), np.ones((40, 50)), "map", (0.0, 2.0))
    >>> path.stat().st_size > 1000
    True
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    h, w = image.shape
    fig = Figure(figsize=(8, 8 * h / w * 0.9 + 0.6), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    lo, hi = np.percentile(image, [1, 99])
    ax.imshow(image, cmap="gray", vmin=lo, vmax=hi)
    shown = ax.imshow(sigma, cmap="magma", vmin=limits[0], vmax=limits[1], alpha=0.6)
    unknown = ~np.isfinite(sigma)
    if unknown.any():  # hatched, in a colour the map never takes: not to be read as the bar's 0
        ax.contourf(unknown.astype(np.float32), levels=[0.5, 1.5], colors="none", hatches=["////"])
        ax.contourf(unknown.astype(np.float32), levels=[0.5, 1.5], colors=[UNKNOWN_COLOUR], alpha=0.35)
        label = f"{label}; hatched: unknown ({100 * unknown.mean():.1f}%)"
    bar = fig.colorbar(shown, ax=ax, fraction=0.04, pad=0.02)
    bar.set_label(label)
    ax.set_title(title)
    ax.set_axis_off()
    fig.savefig(path)


def _physical_axes(ax, pixel: tuple[float, str] | None) -> None:
    """Add a sigma axis in a physical length unit (`pixel` = size of a px and its unit) on the right, if known."""
    if pixel is None or pixel[1] == "px":
        return
    size, unit = pixel
    ax.secondary_yaxis("right", functions=(lambda v: v * size, lambda v: v / size)).set_ylabel(f"sigma ({unit})")


def plane_axes(ax, curve: dict, unit: str = "px", pixel: tuple[float, str] | None = None) -> None:
    """Draw a stack's focus-quality curve (see blurmap.analysis.summary.plane_curve): median and quartiles per plane.

    `pixel` (a px's size and its unit) adds a sigma axis in that unit.
    """
    ax.fill_between(curve["plane"], curve["q25"], curve["q75"], alpha=0.3, label="25-75%")
    ax.plot(curve["plane"], curve["median"], "o-", lw=2, label="median")
    ax.set_xlabel("plane")
    ax.set_ylabel(f"sigma ({unit})")
    if unit == "px":
        _physical_axes(ax, pixel)
    if np.isfinite(curve["median"]).any():
        best = int(np.nanargmin(curve["median"]))
        ax.axvline(best, color="k", lw=1)
        ax.set_title(f"sharpest plane {best}: median {curve['median'][best]:.2f} {unit}", fontsize=9)
    ax.legend(loc="upper right", fontsize=8)


def profile_axes(ax, prof, fit, unit: str = "px", pixel: tuple[float, str] | None = None,
                 others: dict | None = None) -> None:
    """Draw a focal profile on matplotlib axes: median, quartile band, thirds and the focal line.

    `pixel` (a px's size and its unit) adds a sigma axis in that unit; `others` ({label: Profile})
    adds the medians of further maps against the same line (a directional method's major and minor sigma).
    """
    ax.fill_between(prof.distance, prof.lower, prof.upper, alpha=0.3, label="25-75%")
    ax.plot(prof.distance, prof.median, lw=2, label="median")
    for (label, other), style in zip((others or {}).items(), ("--", ":", "-.")):
        ax.plot(other.distance, other.median, style, lw=1.5, label=f"{label}, median")
    for x in prof.thirds:
        ax.axvline(x, color="grey", ls="--", lw=1)
    lo, hi = float(prof.distance.min()), float(prof.distance.max())
    for (a, b), name in zip(((lo, prof.thirds[0]), prof.thirds, (prof.thirds[1], hi)), ("upper", "centre", "lower")):
        ax.text((a + b) / 2, 1.0, name, transform=ax.get_xaxis_transform(), ha="center", va="bottom")
    ax.axvline(0.0, color="k", lw=1)
    ax.set_xlabel("distance from the focal line (px)")
    ax.set_ylabel(f"sigma ({unit})")
    ax.set_title(f"focal line at {100 * fit.position:.1f}% of the height, {fit.angle_deg:+.1f} deg; "
                 f"{fit.gradient:.4f} px per px", fontsize=9, pad=14)
    ax.legend(loc="upper right", fontsize=8)
    if unit == "px":
        _physical_axes(ax, pixel)


def profile_png(path, prof, fit, unit: str = "px", pixel: tuple[float, str] | None = None) -> None:
    """Write a PNG of a focal profile: median sigma and quartiles against the distance from the focal line.

    Parameters
    ----------
    path : str or Path
        The PNG to write.
    prof : Profile
        From :func:`blurmap.profile`.
    fit : FocalFit
        From :func:`blurmap.focal`.
    unit : str
        The map's unit, for the axis.
    pixel : tuple of (float, str), optional
        A px's size and its unit: adds a sigma axis in that unit.

    Returns
    -------
    None

    Examples
    --------
    >>> import tempfile, blurmap
    >>> from pathlib import Path
    >>> from blurmap import synthetic
    >>> truth = synthetic.tilted_focal_plane((120, 160))
    >>> fit = blurmap.focal(truth)
    >>> path = Path(tempfile.mkdtemp()) / "profile.png"
    >>> profile_png(path, blurmap.profile(truth, fit), fit)
    >>> path.stat().st_size > 1000
    True
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    profile_axes(fig.add_subplot(), prof, fit, unit, pixel)
    fig.savefig(path)
