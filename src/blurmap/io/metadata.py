"""What a TIFF says of its pixels: their size and unit, and the stage tilt, from the metadata tifffile parses.

Sources, in order (the first that gives a pixel size wins; the tilt comes from the vendor tags):

1. OME-XML (``PhysicalSizeX`` and its unit);
2. Thermo Fisher / FEI xT tags (34680, 34682): ``[Scan] PixelWidth`` in metres, ``[Stage] StageT``
   in radians;
3. Zeiss SmartSEM tag (34118): ``AP_IMAGE_PIXEL_SIZE`` with its unit, ``AP_STAGE_AT_T`` in degrees;
4. the TIFF resolution tags (``XResolution`` per ``ResolutionUnit``, inch or centimetre), when they
   are not the 72 or 96 dpi of a screen.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple

__all__ = ["PixelGeometry", "read_geometry"]

_TO_NM = {"m": 1e9, "mm": 1e6, "um": 1e3, "µm": 1e3, "μm": 1e3, "micron": 1e3, "nm": 1.0, "pm": 1e-3, "a": 0.1,
          "å": 0.1, "angstrom": 0.1, "cm": 1e7, "inch": 2.54e7, "meter": 1e9, "millimeter": 1e6,
          "micrometer": 1e3, "nanometer": 1.0, "centimeter": 1e7}
SCREEN_DPI = (72.0, 96.0)  # resolution tags at these values say nothing of the specimen


class PixelGeometry(NamedTuple):
    """A pixel's size along x (in `unit`), the stage tilt (degrees, None if unknown) and where they came from.

    Examples
    --------
    >>> PixelGeometry(5.0, "nm", 52.0, "Zeiss SmartSEM tags").describe()
    '5 nm per px, stage tilt 52 deg (Zeiss SmartSEM tags)'
    """

    pixel_size: float
    unit: str
    tilt_deg: float | None
    source: str

    def describe(self) -> str:
        """Return the geometry in words, with where it came from."""
        tilt = f", stage tilt {self.tilt_deg:g} deg" if self.tilt_deg is not None else ""
        return f"{self.pixel_size:g} {self.unit} per px{tilt} ({self.source})"


def _readable(nm: float) -> tuple[float, str]:
    """Return a length given in nm in nm below 1000 nm, else in um."""
    return (nm, "nm") if nm < 1000 else (nm / 1000, "um")


def _nm(value: float, unit: str) -> float | None:
    factor = _TO_NM.get(str(unit).strip().lower())
    return None if factor is None or not value or not math.isfinite(value) or value <= 0 else value * factor


def _ome(tif) -> float | None:
    import xml.etree.ElementTree as ET

    text = tif.ome_metadata
    if not text:
        return None
    for element in ET.fromstring(text).iter():
        if element.tag.endswith("Pixels") and "PhysicalSizeX" in element.attrib:
            return _nm(float(element.attrib["PhysicalSizeX"]), element.attrib.get("PhysicalSizeXUnit", "µm"))
    return None


def _fei(tif) -> tuple[float | None, float | None]:
    meta = tif.fei_metadata
    if not meta:
        return None, None
    width = meta.get("Scan", {}).get("PixelWidth") or meta.get("EScan", {}).get("PixelWidth")
    tilt = meta.get("Stage", {}).get("StageT")
    size = _nm(float(width), "m") if isinstance(width, (int, float)) else None
    return size, math.degrees(float(tilt)) if isinstance(tilt, (int, float)) else None


def _zeiss(tif) -> tuple[float | None, float | None]:
    meta = tif.sem_metadata
    if not meta:
        return None, None
    size = tilt = None
    entry = meta.get("ap_image_pixel_size") or meta.get("ap_pixel_size")
    if entry and len(entry) >= 3 and isinstance(entry[1], (int, float)):
        size = _nm(float(entry[1]), entry[2])
    entry = meta.get("ap_stage_at_t")
    if entry and len(entry) >= 2 and isinstance(entry[1], (int, float)):
        tilt = float(entry[1])
    return size, tilt


def _resolution(tif) -> float | None:
    page = tif.pages.first
    tags = page.tags
    if "XResolution" not in tags or "ResolutionUnit" not in tags:
        return None
    num, den = tags["XResolution"].value
    per_unit = num / den if den else 0.0
    unit = {2: "inch", 3: "cm"}.get(int(tags["ResolutionUnit"].value))
    if not unit or per_unit <= 0 or (unit == "inch" and round(per_unit, 3) in SCREEN_DPI):
        return None
    return _nm(1.0 / per_unit, unit)


def read_geometry(path: Path | str) -> PixelGeometry | None:
    """Return the pixel size and stage tilt a TIFF's metadata gives, or None if it gives no pixel size.

    Parameters
    ----------
    path : str or Path
        A TIFF file; other files give None.

    Returns
    -------
    PixelGeometry or None
        The pixel size in nm below 1 um, else in um; the tilt in degrees from the vendor's tags
        (None if they give none); the source in words.

    Examples
    --------
    >>> import tempfile, tifffile, numpy as np
    >>> from pathlib import Path
    >>> path = Path(tempfile.mkdtemp()) / "sem.tif"
    >>> zeiss = "AP_IMAGE_PIXEL_SIZE\\nImage Pixel Size = 5.000 nm\\nAP_STAGE_AT_T\\nStage at T = 52.0 °\\n"
    >>> tag = zeiss.encode("latin-1")  # as SmartSEM writes it
    >>> tifffile.imwrite(path, np.zeros((8, 8), np.uint8), extratags=[(34118, "B", len(tag), tag, True)])
    >>> read_geometry(path).describe()
    '5 nm per px, stage tilt 52 deg (Zeiss SmartSEM tags)'
    """
    import tifffile

    path = Path(path)
    if path.suffix.lower() not in (".tif", ".tiff"):
        return None
    try:
        with tifffile.TiffFile(path) as tif:
            fei, zeiss = _fei(tif), _zeiss(tif)
            found = [(_ome(tif), None, "OME metadata"), (*fei, "Thermo Fisher / FEI tags"),
                     (*zeiss, "Zeiss SmartSEM tags"), (_resolution(tif), None, "TIFF resolution tags")]
    except (OSError, ValueError, SyntaxError):  # unreadable metadata is no metadata (the pixels are read elsewhere)
        return None
    tilt = next((round(t, 2) for _, t, _ in found[1:3] if t is not None), None)
    for size, _, source in found:
        if size is not None:
            value, unit = _readable(size)
            return PixelGeometry(round(value, 9), unit, tilt, source)
    return None
