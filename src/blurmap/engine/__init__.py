"""The engine: one estimator over a numpy image whole or in tiles on every core, or over a dask image chunk by chunk.

``_chunks`` cuts an image into chunks on an estimator's grid; ``_preparation`` normalises it and
fills its image-wide parameters once; ``_tile`` runs the estimator on one tile; ``_graph`` writes
the dask graphs of a lazy image's maps; ``_run`` holds the entry points built on them. Beside the
public names, ``DEFAULT_CHUNK``, ``prepare``, ``cores`` and ``run_tile`` are the rest of
blurmap's (its command line, pyramids, tests, benchmarks and training use them).
"""

from ._chunks import DEFAULT_CHUNK as DEFAULT_CHUNK
from ._preparation import prepare as prepare
from ._run import TileProgress, estimate, estimate_tiles, lazy_maps, tile_count
from ._run import cores as cores
from ._tile import run_tile as run_tile

__all__ = ["estimate", "estimate_tiles", "tile_count", "TileProgress", "lazy_maps"]
