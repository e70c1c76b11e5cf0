"""A frame's astigmatism from a directional map: how elongated the blur is, along which axis, and whether the axis
turns across the focal band (as it does when focus passes between an astigmatic probe's two line foci)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .focal import FocalFit, distance_map

__all__ = ["Astigmatism", "astigmatism"]

TURN_DEG = 45.0  # the axis on the two sides of the focal line differing by more than this: it turns through focus
MIN_SIDE_SHARE = 0.05  # each side of the line holds at least this share of the elongated pixels to be compared


@dataclass(frozen=True)
class Astigmatism:
    """A frame's astigmatism (see :func:`astigmatism`).

    Examples
    --------
    >>> a = Astigmatism(0.8, 1.6, 30.0, 25.0, None, None, None)
    >>> a.as_dict()["angle_deg"]
    30.0
    """

    difference_px: float  # median of major - minor, px
    ratio: float  # median of major / minor
    angle_deg: float | None  # the major axis's mean direction (degrees, 0 along rows, counter-clockwise), None if round
    elongated_share: float  # percent of the known pixels whose blur is elongated (major / minor >= 1.15 or the map's own)
    angle_before_deg: float | None  # the mean axis on the side of the focal line towards the top of the image
    angle_after_deg: float | None  # ... and on the other side
    turns: bool | None  # whether the axis turns (by more than TURN_DEG) across the focal line; None without a line

    def as_dict(self) -> dict:
        """Return the summary as a plain dict (for JSON)."""
        return asdict(self)


def _mean_axis(angle: np.ndarray, weight: np.ndarray) -> float | None:
    """Return the weighted mean of axes (degrees, period 180) by their doubled angles, or None if none."""
    if weight.sum() <= 0:
        return None
    rad = np.deg2rad(2 * angle)
    c, s = np.sum(weight * np.cos(rad)), np.sum(weight * np.sin(rad))
    return float(np.mod(np.rad2deg(0.5 * np.arctan2(s, c)), 180.0)) if np.hypot(c, s) > 0 else None


def astigmatism(major: np.ndarray, minor: np.ndarray, angle_deg: np.ndarray, fit: FocalFit | None = None) -> Astigmatism:
    """Return a frame's astigmatism: magnitude, direction, and whether the axis turns across the focal line.

    Parameters
    ----------
    major, minor : ndarray
        px; the directional method's major and minor sigma maps (NaN unknown).
    angle_deg : ndarray
        Degrees; the major axis (NaN where the blur is round).
    fit : FocalFit, optional
        A focal line found in the round-equivalent map (:func:`blurmap.focal`): the axis is
        compared on its two sides.

    Returns
    -------
    Astigmatism
        The median difference (px) and ratio of major to minor, the mean axis of the elongated
        pixels (weighted by major - minor), their share, the mean axis on each side of the
        focal line and whether the two differ by more than TURN_DEG degrees.

    Examples
    --------
    >>> import numpy as np
    >>> major, minor = np.full((40, 40), 2.0), np.full((40, 40), 1.0)
    >>> angle = np.where(np.arange(40)[:, None] < 20, 10.0, 100.0) * np.ones((1, 40))
    >>> from blurmap.analysis.focal import FocalFit
    >>> line = FocalFit(0.0, 19.5, 0.5, gradient=0.05, floor=0.5, rmse=0.0, r_squared=1.0)
    >>> a = astigmatism(major, minor, angle, line)
    >>> a.ratio, round(a.angle_before_deg, 6), round(a.angle_after_deg, 6), a.turns
    (2.0, 10.0, 100.0, True)
    """
    major, minor, angle = (np.asarray(a, dtype=np.float64) for a in (major, minor, angle_deg))
    known = np.isfinite(major) & np.isfinite(minor) & (minor > 0)
    if not known.any():
        raise ValueError("the maps know no pixel: no astigmatism can be read")
    elongated = known & np.isfinite(angle)
    weight = np.where(elongated, major - minor, 0.0)
    summary = dict(difference_px=float(np.median((major - minor)[known])),
                   ratio=float(np.median((major / np.where(known, minor, 1.0))[known])),
                   angle_deg=_mean_axis(angle[elongated], weight[elongated]),
                   elongated_share=float(100 * elongated.sum() / known.sum()))
    if fit is None or not fit.found:
        return Astigmatism(**summary, angle_before_deg=None, angle_after_deg=None, turns=None)
    side = distance_map(major.shape, fit) < 0  # towards the top of the image
    sides = []
    for mask in (side, ~side):
        sel = elongated & mask
        enough = sel.sum() >= MIN_SIDE_SHARE * max(elongated.sum(), 1)
        sides.append(_mean_axis(angle[sel], weight[sel]) if enough else None)
    turns = None if None in sides else bool(abs(np.mod(sides[0] - sides[1] + 90, 180) - 90) > TURN_DEG)
    return Astigmatism(**summary, angle_before_deg=sides[0], angle_after_deg=sides[1], turns=turns)
