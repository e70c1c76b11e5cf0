"""BLAS kept to one thread while estimators run tile by tile on every core (private to ``blurmap.estimators``).

The engine already runs one tile per core; a matrix product that starts BLAS threads of its own
on top of that oversubscribes the cores (their spinning threads took 40% more wall time on 2
cores, docs/benchmarks.md). The limit is the process's, so it is counted: the first tile in
sets it, the last one out restores what the user had.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from functools import cache

from threadpoolctl import ThreadpoolController

_lock = threading.Lock()
_inside = 0
_restore = ExitStack()


@cache
def _controller() -> ThreadpoolController:
    """Return the process's thread-pool controller (the BLAS libraries loaded, found once)."""
    return ThreadpoolController()


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """Run the block with BLAS on one thread, however many threads run such blocks at once.

    Examples
    --------
    >>> import numpy as np
    >>> with one_blas_thread():
    ...     product = np.ones((64, 64), np.float32) @ np.ones((64, 64), np.float32)
    >>> float(product[0, 0])
    64.0
    """
    global _inside
    with _lock:
        if _inside == 0:
            _restore.enter_context(_controller().limit(limits=1, user_api="blas"))
        _inside += 1
    try:
        yield
    finally:
        with _lock:
            _inside -= 1
            if _inside == 0:
                _restore.close()
