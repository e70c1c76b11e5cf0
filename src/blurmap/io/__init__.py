"""Images on disk and maps of any size: formats, direct TIFF windows, streamed output, lazy pyramids."""

from .formats import Source, open_image, read_pixels
from .metadata import PixelGeometry, read_geometry

__all__ = ["Source", "open_image", "read_pixels", "PixelGeometry", "read_geometry"]
