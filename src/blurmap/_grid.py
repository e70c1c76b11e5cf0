"""Values on a coarse grid of square cells, shown at full resolution."""

from __future__ import annotations

import numpy as np


def expand_cells(coarse: np.ndarray, cell: int, shape: tuple[int, int]) -> np.ndarray:
    """Return `coarse` (one value per `cell` x `cell` px from the top-left corner) repeated to `shape`, float32."""
    out = np.repeat(np.repeat(np.asarray(coarse, dtype=np.float32), cell, axis=0), cell, axis=1)
    return out[:shape[0], :shape[1]]
